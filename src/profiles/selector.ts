import { repeatingForKeyword, tagForKeyword } from '../dicom/dictionary.js';
import { parseTag, type Tag } from '../dicom/tag.js';

/**
 * One step of a selector. A selector is a path of steps through sequence items:
 *   PatientName                         a keyword, at any depth
 *   (0010,0010)  (60xx,3000)            a tag, or a repeating-group mask, at any depth
 *   (0029,"SIEMENS CSA HEADER",10)      a private element by creator name, not block number
 *   (0029,"SIEMENS CSA HEADER",xx)      every element of that creator in that group
 *   private                             every private data element
 *   RequestAttributesSequence/ScheduledProcedureStepID   a path from the root
 *   **\/CodeMeaning   * (one level)      wildcards
 */
export type Step =
  | { readonly kind: 'tag'; readonly tag: Tag }
  | { readonly kind: 'mask'; readonly mask: number; readonly value: number }
  | { readonly kind: 'private'; readonly group: number; readonly creator: string; readonly element?: number }
  | { readonly kind: 'anyPrivate' }
  | { readonly kind: 'any' }
  | { readonly kind: 'deep' };

/** What a step is tested against: an element's tag and, for private elements, its creator. */
export interface PathEntry {
  readonly tag: Tag;
  readonly creator?: string;
}

export class SelectorError extends Error {}

function parseStep(s: string): Step {
  const t = s.trim();
  if (t === '*') return { kind: 'any' };
  if (t === '**') return { kind: 'deep' };
  if (t === 'private') return { kind: 'anyPrivate' };
  const priv = /^\(([0-9a-fA-F]{4}),\s*"([^"]+)"\s*,\s*([0-9a-fA-F]{2}|xx)\)$/.exec(t);
  if (priv) {
    const group = parseInt(priv[1], 16);
    if ((group & 1) === 0) throw new SelectorError(`private selector needs an odd group: ${t}`);
    return { kind: 'private', group, creator: priv[2].trim(), element: priv[3].toLowerCase() === 'xx' ? undefined : parseInt(priv[3], 16) };
  }
  const tag = parseTag(t);
  if (tag !== undefined) return { kind: 'tag', tag };
  const rep = /^\(?([0-9a-fA-Fx]{4}),?([0-9a-fA-Fx]{4})\)?$/i.exec(t);
  if (rep) {
    const hex = (rep[1] + rep[2]).toUpperCase();
    const mask = parseInt(hex.replace(/[0-9A-F]/g, 'F').replace(/X/g, '0'), 16) >>> 0;
    return { kind: 'mask', mask, value: parseInt(hex.replace(/X/g, '0'), 16) >>> 0 };
  }
  const kw = tagForKeyword(t);
  if (kw !== undefined) return { kind: 'tag', tag: kw };
  const r = repeatingForKeyword(t);
  if (r) return { kind: 'mask', ...r };
  throw new SelectorError(`unknown keyword or tag: ${t}`);
}

/** Splits on '/' outside of quoted creator names. */
function splitPath(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const c of s) {
    if (c === '"') quoted = !quoted;
    if (c === '/' && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

export function parseSelector(s: string): Step[] {
  const steps = splitPath(s).map(parseStep);
  if (steps.length === 0) throw new SelectorError('empty selector');
  return steps;
}

export function stepMatches(step: Step, e: PathEntry): boolean {
  switch (step.kind) {
    case 'tag':
      return e.tag === step.tag;
    case 'mask':
      return ((e.tag & step.mask) >>> 0) === step.value;
    case 'private':
      return e.creator === step.creator && e.tag >>> 16 === step.group && (step.element === undefined || (e.tag & 0xff) === step.element);
    case 'anyPrivate':
      return e.creator !== undefined || ((e.tag >>> 16) & 1) === 1;
    case 'any':
      return true;
    case 'deep':
      return true;
  }
}

/** Whether a path selector matches the full path (root first, the element itself last). */
export function pathMatches(steps: readonly Step[], path: readonly PathEntry[], si = 0, pi = 0): boolean {
  if (si === steps.length) return pi === path.length;
  const step = steps[si];
  if (step.kind === 'deep') {
    for (let k = pi; k <= path.length; k++) if (pathMatches(steps, path, si + 1, k)) return true;
    return false;
  }
  return pi < path.length && stepMatches(step, path[pi]) && pathMatches(steps, path, si + 1, pi + 1);
}
