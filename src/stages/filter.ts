import type { CharacterSet } from '../dicom/charset.js';
import { findElement, type Dataset } from '../dicom/element.js';
import { tagForKeyword } from '../dicom/dictionary.js';
import { parseTag } from '../dicom/tag.js';
import { textValue } from '../dicom/values.js';
import { DeidError } from '../errors.js';
import { charsetOf } from './identifiers.js';
import type { Stage } from './stage.js';

/** Attribute conditions, CTP DicomFilter style: `{ Modality: [CT, MR], CallingAE: PACS1 }`. */
export type Condition = Readonly<Record<string, string | readonly string[]>>;

export interface FilterConfig {
  /** The object passes if it matches any accept condition (no accept list: everything passes). */
  readonly accept?: readonly Condition[];
  /** ...and matches no reject condition. */
  readonly reject?: readonly Condition[];
}

export interface FilterSubject {
  readonly dataset: Dataset;
  readonly callingAE?: string;
}

export type FilterDecision = { readonly accept: true } | { readonly accept: false; readonly rule: string };

/** A value matches a pattern exactly, or by `*` wildcards (e.g. `1.2.840.10008.5.1.4.1.1.*`). */
function matches(value: string, pattern: string): boolean {
  if (!pattern.includes('*')) return value === pattern;
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return re.test(value);
}

function attributeValue(s: FilterSubject, key: string, cs: CharacterSet): string | undefined {
  if (key === 'CallingAE') return s.callingAE;
  const tag = parseTag(key) ?? tagForKeyword(key);
  if (tag === undefined) return undefined;
  const el = findElement(s.dataset, tag);
  return el ? textValue(el, cs).trim() : undefined;
}

function conditionHolds(s: FilterSubject, c: Condition, cs: CharacterSet): boolean {
  return Object.entries(c).every(([key, allowed]) => {
    const v = attributeValue(s, key, cs);
    if (v === undefined) return false;
    const values = v.split('\\');
    return (typeof allowed === 'string' ? [allowed] : allowed).some((p) => values.some((x) => matches(x, p)));
  });
}

/** The filter stage: a pure decision on top-level attributes and the calling AE. */
export function filterObject(subject: FilterSubject, cfg: FilterConfig): FilterDecision {
  const cs = charsetOf(subject.dataset);
  if (cfg.accept?.length && !cfg.accept.some((c) => conditionHolds(subject, c, cs))) return { accept: false, rule: 'no accept condition matched' };
  const hit = cfg.reject?.findIndex((c) => conditionHolds(subject, c, cs)) ?? -1;
  if (hit >= 0) return { accept: false, rule: `reject condition ${hit + 1} matched` };
  return { accept: true };
}

export interface FilterContext {
  readonly filter?: FilterConfig;
}

/** The filter stage: an object that does not pass is quarantined (DEID_ERR_FILTERED); nothing changes otherwise. */
export const filterStage: Stage<FilterContext> = (object, ctx) => {
  const cfg = ctx.filter;
  if (!cfg?.accept?.length && !cfg?.reject?.length) return {};
  const decision = filterObject({ dataset: object.source.dataset, callingAE: object.origin.callingAE }, cfg);
  if (!decision.accept) throw new DeidError('DEID_ERR_FILTERED', decision.rule);
  return {};
};
