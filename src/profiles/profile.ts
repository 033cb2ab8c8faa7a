import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ErrorObject } from 'ajv';
import { DeidError } from '../errors.js';
import { compileProfile, fingerprintOf, type CompiledProfile, type ProfileChain, type RawProfile } from './compile.js';
import { keptIdentifiers } from './kept-identifiers.js';
import { validate as validateGenerated } from './profile-schema.generated.js';
import { parseYaml } from './yaml.js';

export * from './compile.js';

const here = dirname(fileURLToPath(import.meta.url));
/** Built-in profiles live in <package>/profiles whether we run from src/ or dist/. */
export const BUILTIN_DIR = resolve(here, '../../profiles');

export const DEFAULT_DATE_SHIFT = { minDays: -3650, maxDays: -1 };

/** The schema of schema.ts, compiled ahead of time (`npm run generate`). */
const validate = validateGenerated as { (doc: unknown): boolean; errors?: ErrorObject[] | null };

export function listBuiltinProfiles(): Array<{ name: string; description: string }> {
  return readdirSync(BUILTIN_DIR)
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .sort()
    .map((f) => {
      const raw = readProfileFile(join(BUILTIN_DIR, f));
      return { name: raw.name, description: raw.description ?? '' };
    });
}

function resolveProfilePath(nameOrPath: string, relativeTo: string): string {
  const looksLikePath = /[\\/]/.test(nameOrPath) || /\.(ya?ml|json)$/i.test(nameOrPath);
  if (looksLikePath) {
    const p = resolve(relativeTo, nameOrPath);
    if (!existsSync(p)) throw new DeidError('DEID_ERR_PROFILE_NOT_FOUND', nameOrPath);
    return p;
  }
  for (const ext of ['.yaml', '.yml', '.json']) {
    const p = join(BUILTIN_DIR, nameOrPath + ext);
    if (existsSync(p)) return p;
  }
  throw new DeidError('DEID_ERR_PROFILE_NOT_FOUND', nameOrPath);
}

function readProfileFile(path: string): RawProfile {
  let doc: unknown;
  try {
    const text = readFileSync(path, 'utf8');
    doc = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new DeidError('DEID_ERR_PROFILE_INVALID', `${path}: cannot parse: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!validate(doc)) {
    // Name the offending property: "must NOT have additional properties" alone does not say which one.
    const extra = (er: ErrorObject) => ('additionalProperty' in er.params ? `: ${String(er.params.additionalProperty)}` : '');
    const first = validate.errors!.slice(0, 3).map((er) => `${er.instancePath || '/'} ${er.message}${extra(er)}`).join('; ');
    throw new DeidError('DEID_ERR_PROFILE_INVALID', `${path}: ${first}`);
  }
  return doc as RawProfile;
}

function loadChain(nameOrPath: string, relativeTo: string, seen: Set<string>): Array<{ raw: RawProfile; dir: string }> {
  const path = resolveProfilePath(nameOrPath, relativeTo);
  if (seen.has(path)) throw new DeidError('DEID_ERR_PROFILE_INVALID', `extends cycle at ${nameOrPath}`);
  seen.add(path);
  const raw = readProfileFile(path);
  const dir = dirname(path);
  return [{ raw, dir }, ...(raw.extends ? loadChain(raw.extends, dir, seen) : [])];
}

/** Reads and validates a profile and everything it extends (the part that needs the parser and schema). */
export function readProfileChain(nameOrPath: string, cwd = process.cwd()): ProfileChain {
  return loadChain(nameOrPath, cwd, new Set());
}

const cache = new Map<string, CompiledProfile>();

/**
 * Loads a built-in profile by name or a profile file by path, resolves `extends`, validates every
 * file against the schema and compiles the rules for the selected options. Errors are coded and
 * raised at load time, never on the first object.
 */
export function loadProfile(nameOrPath: string, extraOptions: readonly string[] = [], cwd = process.cwd()): CompiledProfile {
  const key = `${resolve(cwd, nameOrPath)}|${[...extraOptions].sort().join(',')}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const compiled = compileProfile(readProfileChain(nameOrPath, cwd), extraOptions);
  cache.set(key, compiled);
  return compiled;
}


/**
 * The profile with the attributes it keeps against PS3.15 Table E.1-1 listed (keptIdentifiers): the table
 * is the built-in basic profile, compiled with the same options. Commands list them at start-up, and the
 * header stage records the ones each object has.
 */
export function withKeptIdentifiers(profile: CompiledProfile): CompiledProfile {
  if (profile.keptIdentifiers) return profile;
  const basic = join(BUILTIN_DIR, 'basic.yaml');
  // The built-in basic profile is the table: nothing to compare (and no second compilation at start-up).
  if (profile.fingerprint === fingerprintOf(readProfileChain(basic), [...profile.options].sort())) return { ...profile, keptIdentifiers: [] };
  const table = loadProfile(basic, [...profile.options]);
  return { ...profile, keptIdentifiers: keptIdentifiers(profile, table) };
}
