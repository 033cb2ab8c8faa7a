#!/usr/bin/env node
// Build step: parses every built-in YAML file under profiles/ into dist/parsed-yaml/<sha256 of the text>.json,
// which src/profiles/yaml.ts reads instead of parsing the YAML again at every start-up.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import jsYaml from 'js-yaml';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/parsed-yaml');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const entry of readdirSync(join(root, 'profiles'), { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !/\.ya?ml$/.test(entry.name)) continue;
  const text = readFileSync(join(entry.parentPath ?? entry.path, entry.name), 'utf8');
  const key = createHash('sha256').update(text).digest('hex');
  writeFileSync(join(out, `${key}.json`), JSON.stringify(jsYaml.load(text)));
}
