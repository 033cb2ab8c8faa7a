#!/usr/bin/env node
// Build step (after tsc): parses every built-in YAML file under profiles/ into dist/parsed-yaml/<content key>.json,
// which src/profiles/yaml.ts reads instead of parsing the YAML again at every start-up. The folder and the key
// come from that module, so the two cannot disagree.
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import jsYaml from 'js-yaml';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { PARSED_YAML_DIR, yamlContentKey } = await import(join(root, 'dist/profiles/yaml.js'));
rmSync(PARSED_YAML_DIR, { recursive: true, force: true });
mkdirSync(PARSED_YAML_DIR, { recursive: true });
for (const entry of readdirSync(join(root, 'profiles'), { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !/\.ya?ml$/.test(entry.name)) continue;
  const text = readFileSync(join(entry.parentPath ?? entry.path, entry.name), 'utf8');
  writeFileSync(join(PARSED_YAML_DIR, `${yamlContentKey(text)}.json`), JSON.stringify(jsYaml.load(text)));
}
