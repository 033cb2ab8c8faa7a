import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import jsYaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { PARSED_YAML_DIR, parseYaml, yamlContentKey } from '../src/profiles/yaml.js';
import { REPO_ROOT } from './helpers/corpus.js';

const builtinYaml = readdirSync(join(REPO_ROOT, 'profiles'), { recursive: true, encoding: 'utf8' })
  .filter((f) => /\.ya?ml$/.test(f))
  .map((f) => join(REPO_ROOT, 'profiles', f));

describe('built-in YAML parsed at build time', () => {
  it.each(builtinYaml)('should have a prebuilt parse of %s that equals js-yaml on the text', (path) => {
    const text = readFileSync(path, 'utf8');
    const prebuilt = JSON.parse(readFileSync(join(PARSED_YAML_DIR, `${yamlContentKey(text)}.json`), 'utf8'));
    expect(prebuilt).toEqual(jsYaml.load(text));
    expect(parseYaml(text)).toEqual(prebuilt);
  });

  it('should parse edited or user YAML itself, never serving a stale prebuilt parse', () => {
    const text = readFileSync(builtinYaml.find((p) => p.endsWith('basic.yaml'))!, 'utf8').replace('name: basic', 'name: edited');
    expect((parseYaml(text) as { name: string }).name).toBe('edited');
  });

  it('should still raise js-yaml errors for malformed YAML', () => {
    expect(() => parseYaml('rules: [ {')).toThrow();
  });
});
