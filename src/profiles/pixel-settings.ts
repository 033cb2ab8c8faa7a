import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tagForKeyword } from '../dicom/dictionary.js';
import { parseTag, type Tag } from '../dicom/tag.js';
import { DeidError } from '../errors.js';
import { parseYaml } from './yaml.js';
import { KNOWN_TEXT_SOP_CLASSES } from './text-prone.js';

/**
 * Settings of the pixel stage (the Clean Pixel Data option), as data in the profile:
 *
 * ```yaml
 * pixels:
 *   mode: all-text            # or sensitive-text
 *   scope: known              # or all: clean every image, whatever its modality
 *   modalities: [US, XA, ...] # which images carry text (default: the list)
 *   ultrasoundRegions: false  # true: blank everything outside SequenceOfUltrasoundRegions
 *   margin: 2                 # pixels added around every OCR box
 *   signatures: [...]         # CTP DicomPixelAnonymizer-style regions (see profiles/pixel/signatures.yaml)
 *   signatureFiles: [my-devices.yaml]
 * ```
 */
export type PixelMode = 'all-text' | 'sensitive-text';

/** A rectangle as CTP writes it: x, y, width, height; negative x or y count from the right or bottom edge. */
export interface SignatureRect {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** The operators of a signature condition (the `when` language). */
export const CONDITION_OPS = ['equals', 'contains', 'startsWith', 'endsWith', 'like', 'matches', 'present', 'lessThan', 'greaterThan'] as const;
export type ConditionOp = (typeof CONDITION_OPS)[number];

export interface SignatureCondition {
  readonly tag: Tag;
  /** The attribute as the profile named it (for reports). */
  readonly name: string;
  readonly op: ConditionOp;
  readonly value: string;
  /** For matches and like (a `*`/`?` wildcard pattern, anchored). */
  readonly regex?: RegExp;
  /** For lessThan and greaterThan. */
  readonly number?: number;
  /** Text comparisons ignore case unless this is set. */
  readonly caseSensitive?: boolean;
  /** The condition holds when the test does not. */
  readonly negate?: boolean;
}

export interface PixelSignature {
  readonly name: string;
  /** Every condition of one of the groups must hold (OR of ANDs); an empty list of groups matches every image. */
  readonly groups: ReadonlyArray<readonly SignatureCondition[]>;
  readonly regions: readonly SignatureRect[];
}

export interface PixelSettings {
  readonly mode: PixelMode;
  readonly scope: 'known' | 'all';
  readonly modalities: ReadonlySet<string>;
  readonly sopClasses: ReadonlySet<string>;
  /** false: signature regions only (CTP's behaviour), no OCR; verification still re-reads the output. */
  readonly ocr: boolean;
  readonly ultrasoundRegions: boolean;
  readonly margin: number;
  /** OCR words below this confidence (0-100) are treated as noise in all-text mode. */
  readonly minConfidence: number;
  readonly signatures: readonly PixelSignature[];
  /** A digest of the service's signature file when it has one (part of the profile's fingerprint). */
  readonly siteSignatures?: string;
}

export type RawConditionObject = { [K in ConditionOp]?: K extends 'present' ? boolean : string | number } & { not?: boolean; caseSensitive?: boolean };
export type RawCondition = string | number | RawConditionObject;
/** Attribute → condition, all of which must hold; a list of such maps when one attribute is tested twice. */
export type RawConditionGroup = Record<string, RawCondition> | Array<Record<string, RawCondition>>;

export interface RawSignature {
  name: string;
  description?: string;
  when?: RawConditionGroup;
  anyOf?: RawConditionGroup[];
  regions: number[][];
}

export interface RawPixelSettings {
  mode?: PixelMode;
  scope?: 'known' | 'all';
  modalities?: string[];
  sopClasses?: string[];
  ocr?: boolean;
  ultrasoundRegions?: boolean;
  margin?: number;
  minConfidence?: number;
  signatures?: RawSignature[];
  signatureFiles?: string[];
  builtinSignatures?: boolean;
}

/** Modalities whose images are known to carry burned-in text (issue 4, part 1). */
export const DEFAULT_MODALITIES = ['US', 'SC', 'XA', 'RF', 'DX', 'CR', 'MG', 'ES', 'OT'];

/** SOP classes known to carry burned-in text (the secondary captures, ultrasound, angiography and fluoroscopy). */
export const DEFAULT_SOP_CLASSES = KNOWN_TEXT_SOP_CLASSES;

const here = dirname(fileURLToPath(import.meta.url));
/** The built-in signature list, beside the built-in profiles. */
export const BUILTIN_SIGNATURES = resolve(here, '../../profiles/pixel/signatures.yaml');

function invalid(where: string, msg: string): never {
  throw new DeidError('DEID_ERR_PROFILE_INVALID', `${where}: ${msg}`);
}

function conditionTag(name: string, where: string): Tag {
  const t = parseTag(name) ?? tagForKeyword(name);
  if (t === undefined) invalid(where, `unknown attribute "${name}"`);
  return t;
}

const escapeRegex = (s: string) => s.replace(/[.+^${}()|[\]\\]/g, '\\$&');

/** A `*`/`?` wildcard pattern as an anchored regular expression (the filter stage's wildcards). */
export const wildcardRegex = (pattern: string, caseSensitive: boolean): RegExp =>
  new RegExp(`^${pattern.split('*').map((p) => escapeRegex(p).replace(/\?/g, '.')).join('.*')}$`, caseSensitive ? '' : 'i');

function compileCondition(name: string, raw: RawCondition, where: string): SignatureCondition {
  const tag = conditionTag(name, where);
  if (typeof raw === 'number') return { tag, name, op: 'equals', value: String(raw) };
  // A bare value: equals, or a wildcard pattern when it holds a `*`.
  if (typeof raw === 'string') return raw.includes('*') ? { tag, name, op: 'like', value: raw, regex: wildcardRegex(raw, false) } : { tag, name, op: 'equals', value: raw };
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) invalid(where, `condition on ${name} must be a value or an object`);
  const keys = Object.keys(raw);
  const ops = keys.filter((k) => (CONDITION_OPS as readonly string[]).includes(k)) as ConditionOp[];
  const unknown = keys.filter((k) => !ops.includes(k as ConditionOp) && k !== 'not' && k !== 'caseSensitive');
  if (unknown.length) invalid(where, `unknown operator "${unknown[0].slice(0, 20)}" on ${name}`);
  if (ops.length !== 1) invalid(where, `condition on ${name} needs exactly one of ${CONDITION_OPS.join(', ')}`);
  for (const m of ['not', 'caseSensitive'] as const) if (raw[m] !== undefined && typeof raw[m] !== 'boolean') invalid(where, `${name}.${m} must be true or false`);
  const op = ops[0];
  const v = (raw as Record<string, unknown>)[op];
  const mods = { ...(raw.caseSensitive ? { caseSensitive: true } : {}), ...(raw.not ? { negate: true } : {}) };
  switch (op) {
    case 'equals':
    case 'contains':
    case 'startsWith':
    case 'endsWith':
      if (typeof v !== 'string' && typeof v !== 'number') invalid(where, `${name}.${op} needs a string`);
      return { tag, name, op, value: String(v), ...mods };
    case 'like':
      if (typeof v !== 'string') invalid(where, `${name}.like needs a wildcard pattern`);
      return { tag, name, op, value: v, regex: wildcardRegex(v, !!raw.caseSensitive), ...mods };
    case 'matches':
      if (typeof v !== 'string') invalid(where, `${name}.matches needs a regular expression`);
      try {
        return { tag, name, op, value: v, regex: new RegExp(v, raw.caseSensitive ? '' : 'i'), ...mods };
      } catch {
        invalid(where, `${name}.matches is not a valid regular expression`);
      }
    // eslint-disable-next-line no-fallthrough
    case 'lessThan':
    case 'greaterThan': {
      const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
      if (!Number.isFinite(n)) invalid(where, `${name}.${op} needs a number`);
      return { tag, name, op, value: String(v), number: n, ...mods };
    }
    case 'present':
      if (typeof v !== 'boolean') invalid(where, `${name}.present needs true or false`);
      return { tag, name, op, value: v ? 'true' : 'false', ...mods };
  }
}

function compileGroup(group: RawConditionGroup | undefined, where: string): SignatureCondition[] {
  if (group === undefined) return [];
  const maps = Array.isArray(group) ? group : [group];
  if (maps.length === 0) invalid(where, 'a list of conditions must not be empty');
  return maps.flatMap((m) => {
    if (!m || typeof m !== 'object' || Array.isArray(m)) invalid(where, 'conditions must be a map of attribute → condition, or a list of such maps');
    return Object.entries(m).map(([k, v]) => compileCondition(k, v, where));
  });
}

/** Compiles (and checks, field by field) one signature. Used for inline signatures and signature files alike. */
export function compileSignature(raw: RawSignature, where: string): PixelSignature {
  if (!raw || typeof raw !== 'object') invalid(where, 'a signature must be an object');
  const name = typeof raw.name === 'string' && raw.name ? raw.name : invalid(where, 'a signature needs a name');
  const w = `${where} signature "${name.slice(0, 40)}"`;
  const extra = Object.keys(raw).filter((k) => !['name', 'when', 'anyOf', 'regions', 'description'].includes(k));
  if (extra.length) invalid(w, `unknown field "${extra[0].slice(0, 20)}"`);
  const base = compileGroup(raw.when, w);
  let groups: SignatureCondition[][];
  if (raw.anyOf !== undefined) {
    if (!Array.isArray(raw.anyOf) || raw.anyOf.length === 0) invalid(w, 'anyOf must be a non-empty list');
    groups = raw.anyOf.map((g) => [...base, ...compileGroup(g, w)]);
  } else groups = [base];
  if (!Array.isArray(raw.regions) || raw.regions.length === 0) invalid(w, 'regions must be a non-empty list of [x, y, width, height]');
  const regions = raw.regions.map((r) => {
    if (!Array.isArray(r) || r.length !== 4 || !r.every((n) => Number.isInteger(n))) invalid(w, 'each region is [x, y, width, height] in whole pixels');
    if (r[2] <= 0 || r[3] <= 0) invalid(w, 'region width and height must be positive');
    return { x: r[0], y: r[1], width: r[2], height: r[3] };
  });
  return { name, groups, regions };
}

const fileCache = new Map<string, PixelSignature[]>();

let siteFile: string | undefined;

/**
 * The service's own signature file (`<dataDir>/signatures.yaml`), which the console grows ("save as
 * signature"): every profile with clean-pixel-data that this process compiles reads it, afresh, after
 * its own signatures and before the built-in list.
 */
export function setSiteSignatureFile(path: string | undefined): void {
  siteFile = path;
}

export function siteSignatureFile(): string | undefined {
  return siteFile;
}

function siteSignatures(): { list: PixelSignature[]; digest?: string } {
  if (!siteFile || !existsSync(siteFile)) return { list: [] };
  fileCache.delete(siteFile);
  const list = readSignatureFile(siteFile);
  return { list, digest: createHash('sha256').update(readFileSync(siteFile)).digest('hex').slice(0, 16) };
}

/** Reads a signature file (YAML or JSON: `signatures: [...]`). Errors are coded and raised when the profile loads. */
export function readSignatureFile(path: string): PixelSignature[] {
  const hit = fileCache.get(path);
  if (hit) return hit;
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (e) {
    invalid(path, `cannot read signatures: ${(e as Error).message.split('\n')[0]}`);
  }
  const list = (doc as { signatures?: unknown } | null)?.signatures;
  if (!Array.isArray(list)) invalid(path, 'a signature file needs a top-level "signatures" list');
  const out = list.map((s, i) => compileSignature(s as RawSignature, `${path} #${i + 1}`));
  fileCache.set(path, out);
  return out;
}

/**
 * Merges the pixel settings of a profile chain (most derived first: the first profile that sets a
 * value wins) and compiles the signatures: the profiles' own, their signature files, then the
 * built-in list unless a profile turns it off.
 */
export function compilePixelSettings(chain: ReadonlyArray<{ readonly raw: { name: string; pixels?: RawPixelSettings }; readonly dir: string }>): PixelSettings {
  const first = <K extends keyof RawPixelSettings>(k: K): RawPixelSettings[K] | undefined => chain.map((c) => c.raw.pixels?.[k]).find((v) => v !== undefined);
  const signatures: PixelSignature[] = [];
  for (const { raw, dir } of chain) {
    const p = raw.pixels;
    if (!p) continue;
    (p.signatures ?? []).forEach((s, i) => signatures.push(compileSignature(s, `${raw.name} pixels.signatures #${i + 1}`)));
    for (const f of p.signatureFiles ?? []) signatures.push(...readSignatureFile(resolve(dir, f)));
  }
  const site = siteSignatures();
  signatures.push(...site.list);
  if (first('builtinSignatures') !== false) signatures.push(...readSignatureFile(BUILTIN_SIGNATURES));
  const margin = first('margin') ?? 2;
  const minConfidence = first('minConfidence') ?? 50;
  if (!Number.isInteger(margin) || margin < 0 || margin > 64) invalid(chain[0].raw.name, 'pixels.margin must be 0-64');
  if (!(minConfidence >= 0 && minConfidence <= 100)) invalid(chain[0].raw.name, 'pixels.minConfidence must be 0-100');
  return {
    mode: first('mode') ?? 'all-text',
    scope: first('scope') ?? 'all',
    modalities: new Set((first('modalities') ?? DEFAULT_MODALITIES).map((m) => m.toUpperCase())),
    sopClasses: new Set(first('sopClasses') ?? DEFAULT_SOP_CLASSES),
    ocr: first('ocr') ?? true,
    ultrasoundRegions: first('ultrasoundRegions') ?? false,
    margin,
    minConfidence,
    signatures,
    ...(site.digest ? { siteSignatures: site.digest } : {}),
  };
}

/** The JSON Schema fragment of `pixels` in a profile (referenced from schema.ts). */
export const PIXELS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    mode: { enum: ['all-text', 'sensitive-text'] },
    scope: { enum: ['known', 'all'] },
    modalities: { type: 'array', items: { type: 'string', pattern: '^[A-Z0-9]{1,16}$' } },
    sopClasses: { type: 'array', items: { type: 'string', pattern: '^[0-9.]{1,64}$' } },
    ocr: { type: 'boolean' },
    ultrasoundRegions: { type: 'boolean' },
    margin: { type: 'integer', minimum: 0, maximum: 64 },
    minConfidence: { type: 'number', minimum: 0, maximum: 100 },
    builtinSignatures: { type: 'boolean' },
    signatureFiles: { type: 'array', items: { type: 'string', minLength: 1 } },
    signatures: { type: 'array', items: { $ref: '#/$defs/pixelSignature' } },
  },
} as const;

const OPERATOR_SCHEMAS = {
  equals: { type: ['string', 'number'] },
  contains: { type: ['string', 'number'] },
  startsWith: { type: ['string', 'number'] },
  endsWith: { type: ['string', 'number'] },
  like: { type: 'string' },
  matches: { type: 'string' },
  present: { type: 'boolean' },
  lessThan: { type: ['number', 'string'] },
  greaterThan: { type: ['number', 'string'] },
} as const;

const CONDITION_SCHEMA = {
  oneOf: [
    { type: 'string' },
    { type: 'number' },
    {
      type: 'object',
      additionalProperties: false,
      properties: { ...OPERATOR_SCHEMAS, not: { type: 'boolean' }, caseSensitive: { type: 'boolean' } },
      // Exactly one operator, with the modifiers beside it.
      oneOf: CONDITION_OPS.map((op) => ({ required: [op] })),
    },
  ],
} as const;

const CONDITION_GROUP_SCHEMA = {
  oneOf: [
    { type: 'object', additionalProperties: CONDITION_SCHEMA },
    { type: 'array', minItems: 1, items: { type: 'object', additionalProperties: CONDITION_SCHEMA } },
  ],
} as const;

export const SIGNATURE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'regions'],
  properties: {
    name: { type: 'string', minLength: 1 },
    description: { type: 'string' },
    when: CONDITION_GROUP_SCHEMA,
    anyOf: { type: 'array', minItems: 1, items: CONDITION_GROUP_SCHEMA },
    regions: { type: 'array', minItems: 1, items: { type: 'array', minItems: 4, maxItems: 4, items: { type: 'integer' } } },
  },
} as const;
