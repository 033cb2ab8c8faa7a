import type { Element } from '../dicom/element.js';
import type { Tag } from '../dicom/tag.js';
import { asciiBytes, rawString } from '../dicom/values.js';
import type { GeneralizeSettings } from '../profiles/generalize.js';

/**
 * Generalising kept quasi-identifiers (the profile's `generalize` settings): pure functions of a value.
 * A value that cannot be read is emptied rather than kept, since nothing then shows it is not over 89.
 */

export const PATIENT_AGE: Tag = 0x00101010;
export const PATIENT_SIZE: Tag = 0x00101020;
export const PATIENT_WEIGHT: Tag = 0x00101030;

/** Years per unit of an Age String (nnnD, nnnW, nnnM, nnnY). */
const PER_YEAR: Record<string, number> = { D: 365.25, W: 365.25 / 7, M: 12, Y: 1 };

const pad3 = (n: number) => String(n).padStart(3, '0');

/** PatientAge under the settings: 090Y from 90 years on (1080M, 4697W, 32873D…), or the lower end of its bin. */
export function generalizeAge(value: string, s: GeneralizeSettings): string {
  const v = value.trim();
  if (!v || (!s.ageOver89 && s.ageBins === undefined)) return value;
  // A value without its unit is read as years, as the wild writes it.
  const m = /^(\d{1,6})\s*([DWMY]?)$/i.exec(v);
  if (!m) return '';
  const years = Number(m[1]) / PER_YEAR[(m[2] || 'Y').toUpperCase()];
  if (s.ageOver89 && years >= 90) return '090Y';
  if (s.ageBins !== undefined) return `${pad3(Math.min(Math.floor(years / s.ageBins) * s.ageBins, 999))}Y`;
  return value;
}

/** A decimal string rounded to the nearest multiple of `step` (in the value's unit times `scale`). */
export function roundDecimal(value: string, step: number, scale = 1): string {
  const v = value.trim();
  if (!v) return value;
  const n = Number(v);
  if (!Number.isFinite(n)) return '';
  const rounded = (Math.round((n * scale) / step) * step) / scale;
  // toPrecision trims the float noise of the division (0.1 * 3); a DS holds at most 16 characters.
  return String(Number(rounded.toPrecision(12))).slice(0, 16);
}

/** Whether the settings change this attribute at all (one comparison per element on the hot path). */
export function isGeneralized(tag: Tag, s: GeneralizeSettings): boolean {
  if (tag === PATIENT_AGE) return s.ageOver89 || s.ageBins !== undefined;
  if (tag === PATIENT_WEIGHT) return s.weightRoundKg !== undefined;
  if (tag === PATIENT_SIZE) return s.sizeRoundCm !== undefined;
  return false;
}

/** The element with its value generalised; the same element when nothing changes. */
export function generalizeElement(el: Element, s: GeneralizeSettings): Element {
  if (!el.value?.length || el.items) return el;
  const before = rawString(el.value);
  let after = before;
  if (el.tag === PATIENT_AGE) after = generalizeAge(before, s);
  else if (el.tag === PATIENT_WEIGHT && s.weightRoundKg !== undefined) after = roundDecimal(before, s.weightRoundKg);
  else if (el.tag === PATIENT_SIZE && s.sizeRoundCm !== undefined) after = roundDecimal(before, s.sizeRoundCm, 100);
  if (after === before) return el;
  return { tag: el.tag, vr: el.vr, value: asciiBytes(after, el.vr) };
}
