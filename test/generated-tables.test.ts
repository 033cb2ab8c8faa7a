import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: the generator is a plain ES module script with no type declarations
import { generateAll } from '../scripts/generate-tables.mjs';
// @ts-expect-error: the same
import { VALIDATOR_FILE, generateProfileValidator } from '../scripts/generate-validator.mjs';
import { PROFILE_SCHEMA } from '../src/profiles/schema.js';
import { REPO_ROOT, corpusFile } from './helpers/corpus.js';

describe('generated tables', () => {
  const generated = generateAll() as Map<string, string>;

  it.each([...generated.keys()])('should match a fresh generation from the standard: %s', (rel) => {
    expect(readFileSync(join(REPO_ROOT, rel), 'utf8')).toBe(generated.get(rel));
  });

  it('should match a fresh compilation of the profile schema: the standalone validator', () => {
    expect(readFileSync(join(REPO_ROOT, VALIDATOR_FILE), 'utf8')).toBe(generateProfileValidator(PROFILE_SCHEMA));
  });

  it('should record the action code and the name of every Table E.1-1 row on its own line', () => {
    const table = JSON.parse(readFileSync(corpusFile('standard/e1_1.json'), 'utf8'));
    const lines = readFileSync(join(REPO_ROOT, 'profiles/basic.yaml'), 'utf8').split('\n').filter((l) => l.startsWith('  - '));
    expect(lines).toHaveLength(table.rows.length);
    table.rows.forEach((row: { name: string; basic_profile: string }, i: number) => {
      expect(lines[i]).toContain(`action: ${row.basic_profile}`);
      expect(lines[i]).toContain(JSON.stringify(row.name));
    });
    expect(readFileSync(join(REPO_ROOT, 'profiles/basic.yaml'), 'utf8')).toMatch(/^# GENERATED .*2026d.*Do not edit/);
  });
});
