import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The build parses the built-in YAML files ahead of time into <package>/dist/parsed-yaml/<sha256>.json
 * (scripts/parse-builtin-yaml.mjs): parsing the 660-line basic profile cost ~50 ms of every start-up,
 * JSON.parse of the same document ~1 ms. Entries are named by the content hash of the YAML text, so an
 * edited or user-written file can never be served a stale parse: it falls back to js-yaml.
 */
export const PARSED_YAML_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../dist/parsed-yaml');

export const yamlContentKey = (text: string): string => createHash('sha256').update(text).digest('hex');

const require = createRequire(import.meta.url);
let jsYaml: { load(text: string): unknown } | undefined;

/** Parses YAML text; throws js-yaml's error for malformed input. */
export function parseYaml(text: string): unknown {
  const prebuilt = join(PARSED_YAML_DIR, `${yamlContentKey(text)}.json`);
  if (existsSync(prebuilt)) return JSON.parse(readFileSync(prebuilt, 'utf8'));
  jsYaml ??= require('js-yaml') as { load(text: string): unknown };
  return jsYaml.load(text);
}
