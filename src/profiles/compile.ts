import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { lookupTag } from '../dicom/dictionary.js';
import type { Tag } from '../dicom/tag.js';
import { DeidError } from '../errors.js';
import { parseLookupTable } from './ctp/anonymizer-script.js';
import { BASIC_PROFILE_CODE, checkOptions, optionCode, type MethodCode, type OptionName } from './options.js';
import { compileGeneralize, type GeneralizeSettings, type RawGeneralize } from './generalize.js';
import { compilePixelSettings, type PixelSettings, type RawPixelSettings } from './pixel-settings.js';
import { SelectorError, parseSelector, type Step } from './selector.js';

/**
 * Compiling validated profile files into lookup maps. Kept apart from loading (YAML, JSON Schema) so
 * that worker threads, which receive already-validated profiles, never load the parser or validator.
 */

/** The closed union of actions a rule can take. */
export type Action =
  | { readonly kind: 'X' | 'Z' | 'D' | 'K' | 'C' | 'U' }
  | { readonly kind: 'hash'; readonly length: number; readonly prefix: string }
  | { readonly kind: 'set'; readonly value: string }
  | { readonly kind: 'lookup'; readonly table: ReadonlyMap<string, string> }
  | { readonly kind: 'dateShift' }
  /** Retain Safe Private: keep the element if E.3.10-1 or the TCIA list marks it safe, else remove it. */
  | { readonly kind: 'safePrivate' };

export interface Rule {
  readonly steps: readonly Step[];
  readonly action: Action;
  /** The selector as written, and the action code as written when it is one (Table E.1-1's, in basic). */
  readonly select: string;
  readonly code?: string;
  /** The profile the rule came from, and the attribute name it records (for reports). */
  readonly from: string;
  readonly name?: string;
}

export interface CompiledProfile {
  readonly name: string;
  readonly description: string;
  readonly options: ReadonlySet<OptionName>;
  readonly removeUnlisted: boolean;
  /** Let images that declare burned-in annotation through when the profile does not clean pixels. */
  readonly passBurnedInAnnotation: boolean;
  readonly dateShift: { readonly minDays: number; readonly maxDays: number };
  /** Single-step rules, first one (the most derived profile's) wins. */
  readonly byTag: ReadonlyMap<Tag, Rule>;
  readonly byPrivate: ReadonlyMap<string, Rule>;
  readonly masks: readonly Rule[];
  readonly anyPrivate?: Rule;
  /** Multi-step rules, tried before the single-step ones. */
  readonly paths: readonly Rule[];
  /** CID 7050 codes for DeidentificationMethodCodeSequence. */
  readonly methodCodes: readonly MethodCode[];
  /** Settings of the pixel stage; present when the clean-pixel-data option is selected. */
  readonly pixels?: PixelSettings;
  /** Generalisation of kept PatientAge, PatientWeight and PatientSize; absent when nothing is generalised. */
  readonly generalize?: GeneralizeSettings;
  /** A hash of everything that changes the output, for job keys. */
  readonly fingerprint: string;
  /** Attributes this profile keeps although Table E.1-1 removes or replaces them (withKeptIdentifiers). */
  readonly keptIdentifiers?: readonly KeptIdentifier[];
}

/** An attribute a profile keeps (or cleans, or date-shifts) where Table E.1-1, with the same options, does not. */
export interface KeptIdentifier {
  /** The selector, e.g. "(0010,0030)", "(0029,\"SIEMENS CSA HEADER\",10)" or "private". */
  readonly select: string;
  readonly tag?: Tag;
  /** The attribute's name in Table E.1-1. */
  readonly name: string;
  /** Its action code in Table E.1-1 (the Basic Profile column), and what the profile does instead. */
  readonly tableAction: string;
  readonly action: 'keep' | 'clean' | 'dateshift';
}

export interface RawRule {
  select: string;
  action: string | Record<string, any>;
  options?: Record<string, string>;
  /** Where the code writes a value (D, or Z's optional dummy), a keyed pseudonym of the source value. */
  pseudonym?: { length?: number; prefix?: string };
  name?: string;
}

export interface RawProfile {
  name: string;
  description?: string;
  extends?: string;
  options?: string[];
  removeUnlisted?: boolean;
  passBurnedInAnnotation?: boolean;
  dateShift?: { minDays?: number; maxDays?: number };
  rules?: RawRule[];
  pixels?: RawPixelSettings;
  generalize?: RawGeneralize;
}

/** A validated profile and the profiles it extends, most derived first, each with its folder. */
export type ProfileChain = ReadonlyArray<{ readonly raw: RawProfile; readonly dir: string }>;

export const privateKey = (group: number, creator: string, element: number | undefined): string =>
  `${group.toString(16).padStart(4, '0')}|${creator}|${element === undefined ? 'xx' : element.toString(16).padStart(2, '0')}`;

export const DEFAULT_DATE_SHIFT = { minDays: -3650, maxDays: -1 };

/**
 * PS3.15 compound codes resolve to the least destructive choice that keeps the IOD conformant. X/Z
 * empties a value (Type 2 attributes stay present) but removes a sequence: a sequence with zero items
 * is invalid where the sequence is Type 3, which is the common case.
 */
function resolveCode(code: string, isSequence: boolean): 'X' | 'Z' | 'D' | 'K' | 'C' | 'U' {
  switch (code) {
    case 'X/Z':
      return isSequence ? 'X' : 'Z';
    case 'X/D':
    case 'X/Z/D':
    case 'Z/D':
      return 'D';
    case 'X/Z/U*':
      return 'U';
    default:
      if (/^[XZDKCU]$/.test(code)) return code as 'X';
      throw new Error(`unexpected action code ${code}`);
  }
}

const NAMED: Record<string, Action['kind']> = {
  keep: 'K', remove: 'X', clean: 'C', remap: 'U', empty: 'Z', dummy: 'D', dateshift: 'dateShift',
};

function readLookupTable(file: string, baseDir: string, keyType: string | undefined): ReadonlyMap<string, string> {
  const path = resolve(baseDir, file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new DeidError('DEID_ERR_PROFILE_INVALID', `lookup table not readable: ${file}`);
  }
  if (keyType !== undefined) {
    const table = parseLookupTable(text).get(keyType);
    if (!table) throw new DeidError('DEID_ERR_PROFILE_INVALID', `lookup table ${file} has no entries of key type "${keyType.slice(0, 40)}"`);
    return table;
  }
  const table = new Map<string, string>();
  for (const line of text.replace(/^\uFEFF/, '').split(/\r?\n/)) {
    if (!line.trim() || line.startsWith('#')) continue;
    const i = line.indexOf(',');
    if (i < 0) throw new DeidError('DEID_ERR_PROFILE_INVALID', `lookup table ${file}: a line has no comma`);
    table.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return table;
}

function compileAction(raw: RawRule, options: ReadonlySet<OptionName>, baseDir: string, isSequence: boolean): Action {
  const a = raw.action;
  if (typeof a === 'string') {
    if (a in NAMED) return { kind: NAMED[a] } as Action;
    if (a === 'hash') return { kind: 'hash', length: 16, prefix: '' };
    let code = resolveCode(a, isSequence);
    // Option columns: a clean option's C applies first, a retain option's K or C overrides it.
    const opts = Object.entries(raw.options ?? {}).filter(([o]) => options.has(o as OptionName));
    for (const [o, c] of opts) if (o.startsWith('clean-')) code = resolveCode(c, isSequence);
    for (const [o, c] of opts) if (o.startsWith('retain-')) code = resolveCode(c, isSequence);
    if (raw.select === 'private' && code === 'C') return { kind: 'safePrivate' };
    if (raw.pseudonym && (code === 'D' || code === 'Z') && !isSequence) return { kind: 'hash', length: raw.pseudonym.length ?? 16, prefix: raw.pseudonym.prefix ?? '' };
    return { kind: code };
  }
  if ('hash' in a) return { kind: 'hash', length: a.hash?.length ?? 16, prefix: a.hash?.prefix ?? '' };
  if ('set' in a) return { kind: 'set', value: a.set };
  if ('lookup' in a) return { kind: 'lookup', table: readLookupTable(a.lookup.file, baseDir, a.lookup.keyType) };
  return { kind: 'dateShift' };
}

/** A hash of everything that changes what a compiled profile does: its files and the options, sorted. */
export function fingerprintOf(chain: ProfileChain, sortedOptions: readonly string[], site?: unknown): string {
  return createHash('sha256').update(JSON.stringify({ chain: chain.map((r) => r.raw), options: sortedOptions, site })).digest('hex');
}

/** Compiles a validated chain for the selected options into the maps the header stage looks rules up in. */
export function compileProfile(chain: ProfileChain, extraOptions: readonly string[] = []): CompiledProfile {
  const options = new Set(checkOptions([...chain.flatMap((r) => r.raw.options ?? []), ...extraOptions]));

  const byTag = new Map<Tag, Rule>();
  const byPrivate = new Map<string, Rule>();
  const masks: Rule[] = [];
  const paths: Rule[] = [];
  let anyPrivate: Rule | undefined;
  for (const { raw, dir } of chain) {
    for (const [i, r] of (raw.rules ?? []).entries()) {
      let steps: Step[];
      try {
        steps = parseSelector(r.select);
      } catch (e) {
        if (e instanceof SelectorError) throw new DeidError('DEID_ERR_PROFILE_INVALID', `${raw.name} rule ${i + 1}: ${e.message}`);
        throw e;
      }
      let action: Action;
      try {
        action = compileAction(r, options, dir, steps.length === 1 && steps[0].kind === 'tag' && lookupTag(steps[0].tag)?.vr === 'SQ');
      } catch (e) {
        if (e instanceof DeidError) throw e;
        throw new DeidError('DEID_ERR_PROFILE_INVALID', `${raw.name} rule ${i + 1}: ${(e as Error).message}`);
      }
      const rule: Rule = { steps, action, select: r.select, code: typeof r.action === 'string' ? r.action : undefined, from: raw.name, name: r.name };
      const s = steps[0];
      if (steps.length > 1) paths.push(rule);
      else if (s.kind === 'tag') {
        if (!byTag.has(s.tag)) byTag.set(s.tag, rule);
      } else if (s.kind === 'private') {
        const k = privateKey(s.group, s.creator, s.element);
        if (!byPrivate.has(k)) byPrivate.set(k, rule);
      } else if (s.kind === 'anyPrivate') anyPrivate ??= rule;
      else if (s.kind === 'mask') masks.push(rule);
      else paths.push(rule);
    }
  }
  const top = chain[0].raw;
  const shift = chain.map((r) => r.raw.dateShift).find(Boolean) ?? {};
  const dateShift = { minDays: shift.minDays ?? DEFAULT_DATE_SHIFT.minDays, maxDays: shift.maxDays ?? DEFAULT_DATE_SHIFT.maxDays };
  if (dateShift.minDays > dateShift.maxDays) throw new DeidError('DEID_ERR_PROFILE_INVALID', `${top.name}: dateShift.minDays > maxDays`);
  const sortedOptions = [...options].sort();
  const pixels = options.has('clean-pixel-data') ? compilePixelSettings(chain) : undefined;
  const compiled: CompiledProfile = {
    name: top.name,
    description: top.description ?? '',
    options,
    removeUnlisted: chain.map((r) => r.raw.removeUnlisted).find((v) => v !== undefined) ?? false,
    passBurnedInAnnotation: chain.map((r) => r.raw.passBurnedInAnnotation).find((v) => v !== undefined) ?? false,
    dateShift,
    byTag,
    byPrivate,
    masks,
    anyPrivate,
    paths,
    // 113101 (Clean Pixel Data) is added by the pixel stage, and only to images it cleaned and verified.
    methodCodes: [BASIC_PROFILE_CODE, ...sortedOptions.filter((o) => o !== 'clean-pixel-data').map(optionCode)],
    pixels,
    generalize: compileGeneralize(chain),
    // The service's signature file counts too: a signature saved from the console makes a new configuration.
    fingerprint: fingerprintOf(chain, sortedOptions, pixels?.siteSignatures),
  };
  return compiled;
}
