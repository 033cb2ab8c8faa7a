import type { CharacterSet } from '../../dicom/charset.js';
import { findElement, type Dataset } from '../../dicom/element.js';
import { textValue } from '../../dicom/values.js';
import type { PixelSignature, SignatureCondition, SignatureRect } from '../../profiles/pixel-settings.js';
import { charsetOf } from '../identifiers.js';
import type { Box } from './text-regions.js';

/**
 * Signature regions in the style of CTP's DicomPixelAnonymizer: a signature's conditions on the
 * source's attributes (Manufacturer, ManufacturerModelName, Rows, Columns, …) select rectangles that
 * are always blanked, whatever OCR reads. Conditions are tested on the source data set (before the
 * header stage removed or replaced anything).
 */

const NUMERIC_VR = new Set(['US', 'SS', 'UL', 'SL', 'FL', 'FD', 'UV', 'SV']);

/**
 * An attribute's value as text: numbers for binary numeric VRs (first value), the decoded string
 * otherwise. File meta attributes (group 0002, e.g. ImplementationVersionName) are read from `meta`.
 */
export function attributeText(ds: Dataset, tag: number, cs: CharacterSet, meta?: Dataset): string | undefined {
  const el = findElement(tag >>> 16 === 0x0002 ? (meta ?? []) : ds, tag);
  if (!el) return undefined;
  if (!el.value || el.value.length === 0) return '';
  if (NUMERIC_VR.has(el.vr)) {
    const dv = new DataView(el.value.buffer, el.value.byteOffset, el.value.byteLength);
    const n = el.value.length;
    switch (el.vr) {
      case 'US':
        return n >= 2 ? String(dv.getUint16(0, true)) : '';
      case 'SS':
        return n >= 2 ? String(dv.getInt16(0, true)) : '';
      case 'UL':
        return n >= 4 ? String(dv.getUint32(0, true)) : '';
      case 'SL':
        return n >= 4 ? String(dv.getInt32(0, true)) : '';
      case 'FL':
        return n >= 4 ? String(dv.getFloat32(0, true)) : '';
      case 'FD':
        return n >= 8 ? String(dv.getFloat64(0, true)) : '';
      default:
        return n >= 8 ? String(dv.getBigUint64(0, true)) : '';
    }
  }
  return textValue(el, cs).trim();
}

/** The test of a condition, before its `not`. A missing attribute fails every test but `present: false`. */
function test(c: SignatureCondition, v: string | undefined): boolean {
  if (c.op === 'present') return (v !== undefined && v !== '') === (c.value === 'true');
  if (v === undefined) return false;
  const fold = (s: string) => (c.caseSensitive ? s : s.toUpperCase());
  switch (c.op) {
    case 'equals': {
      const a = Number(v);
      const b = Number(c.value);
      if (v !== '' && c.value !== '' && Number.isFinite(a) && Number.isFinite(b)) return a === b;
      return fold(v) === fold(c.value);
    }
    case 'contains':
      return fold(v).includes(fold(c.value));
    case 'startsWith':
      return fold(v).startsWith(fold(c.value));
    case 'endsWith':
      return fold(v).endsWith(fold(c.value));
    case 'matches':
      return c.regex!.test(v);
    case 'like':
      // Each value of a multi-valued attribute, as the filter stage matches its wildcards.
      return v.split('\\').some((x) => c.regex!.test(x.trim()));
    case 'lessThan':
    case 'greaterThan': {
      const n = Number.parseFloat(v.split('\\')[0]);
      if (!Number.isFinite(n)) return false;
      return c.op === 'lessThan' ? n < c.number! : n > c.number!;
    }
  }
}

function holds(c: SignatureCondition, ds: Dataset, cs: CharacterSet, meta: Dataset | undefined): boolean {
  return test(c, attributeText(ds, c.tag, cs, meta)) !== !!c.negate;
}

/** Whether a signature's conditions hold on a source data set (and its file meta information, for group 0002). */
export function signatureMatches(sig: PixelSignature, ds: Dataset, cs: CharacterSet = charsetOf(ds), meta?: Dataset): boolean {
  return sig.groups.some((g) => g.every((c) => holds(c, ds, cs, meta)));
}

/** A signature rectangle in frame pixels: negative x or y count from the right or bottom edge. */
export function resolveRect(r: SignatureRect, columns: number, rows: number): Box {
  const x0 = r.x < 0 ? columns + r.x : r.x;
  const y0 = r.y < 0 ? rows + r.y : r.y;
  return { x0: Math.max(0, x0), y0: Math.max(0, y0), x1: Math.min(columns, x0 + r.width), y1: Math.min(rows, y0 + r.height) };
}

export interface SignatureHit {
  readonly name: string;
  readonly boxes: readonly Box[];
}

/** Every matching signature with its rectangles resolved for the image size. */
export function matchSignatures(signatures: readonly PixelSignature[], ds: Dataset, columns: number, rows: number, meta?: Dataset): SignatureHit[] {
  const cs = charsetOf(ds);
  return signatures
    .filter((s) => signatureMatches(s, ds, cs, meta))
    .map((s) => ({ name: s.name, boxes: s.regions.map((r) => resolveRect(r, columns, rows)).filter((b) => b.x1 > b.x0 && b.y1 > b.y0) }));
}
