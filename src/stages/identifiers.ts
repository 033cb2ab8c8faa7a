import { latin1, parseCharacterSet, type CharacterSet } from '../dicom/charset.js';
import { lookupTag } from '../dicom/dictionary.js';
import { findElement, type Dataset, type Element } from '../dicom/element.js';
import { TAG, isPrivateTag, type Tag } from '../dicom/tag.js';
import { rawString, textValue } from '../dicom/values.js';
import { isTextVR } from '../dicom/vr.js';
import { searchableValue, type Identifier, type IdentifierKind } from './identifier-matcher.js';

/**
 * The identifying values of a source data set, gathered element by element: the identifiers proper
 * (names, IDs, the birth date, addresses, phone numbers, the institution), always collected, and the
 * values of every attribute the profile removes or replaces (dates, times, device identity, descriptions,
 * removed private elements, everything else). What is looked for, and how, is identifier-matcher.ts.
 */
export type { Identifier, IdentifierKind } from './identifier-matcher.js';

/** The attributes (other than PN, which are all names) whose values identify, and as what; one lookup per element. */
const KIND_OF = new Map<Tag, IdentifierKind>([
  [TAG.PatientID, 'id'],
  [TAG.OtherPatientIDs, 'id'],
  [TAG.AccessionNumber, 'id'],
  [TAG.MedicalRecordLocator, 'id'],
  [TAG.PatientBirthDate, 'date'],
  [TAG.PatientAddress, 'address'],
  [TAG.PatientTelephoneNumbers, 'phone'],
  [TAG.InstitutionName, 'institution'],
  [TAG.InstitutionAddress, 'institution'],
]);
export function charsetOf(ds: Dataset): CharacterSet {
  const el = findElement(ds, TAG.SpecificCharacterSet);
  return parseCharacterSet(el ? textValue(el, parseCharacterSet(undefined)) : undefined);
}

/** A list of identifiers, with whitespace runs in values made single spaces (the matcher drops repeats). */
export class IdentifierList {
  readonly list: Identifier[] = [];

  add(kind: IdentifierKind, value: string, tag: Tag): void {
    let v = value.trim();
    if (!v) return;
    if (/\s\s|[\t\n\r\f\v]/.test(v)) v = v.replace(/\s+/g, ' ');
    this.list.push({ kind, value: v, tag });
  }
}

/** Whether an element can hold identifiers proper: a PN, or an attribute of KIND_OF. */
export const holdsIdentifiers = (el: Element): boolean => el.vr === 'PN' || KIND_OF.has(el.tag);

/** The identifiers proper of one element: the name parts of a PN, or the value of an attribute of KIND_OF. */
export function addIdentifiersOf(el: Element, cs: CharacterSet, into: IdentifierList): void {
  if (!el.value || el.value.length === 0) return;
  if (el.vr === 'PN') {
    for (const part of textValue(el, cs).split(/[\^=\\]/)) for (const word of part.split(/[\s,.]+/)) into.add('name', word, el.tag);
    return;
  }
  const kind = KIND_OF.get(el.tag);
  if (kind === undefined) return;
  // IDs and phone numbers are multi-valued; a date, an address or an institution is taken whole.
  if (kind === 'id' || kind === 'phone') for (const v of textValue(el, cs).split('\\')) into.add(kind, v, el.tag);
  else into.add(kind, textValue(el, cs), el.tag);
}

/** Collects the identifiers proper from the whole data set (every depth: OtherPatientIDsSequence etc.). */
export function collectIdentifiers(ds: Dataset): Identifier[] {
  const out = new IdentifierList();
  const walk = (elements: Dataset, cs: CharacterSet) => {
    const levelCs = findElement(elements, TAG.SpecificCharacterSet) ? charsetOf(elements) : cs;
    for (const el of elements) {
      if (el.items) for (const item of el.items) walk(item.elements, levelCs);
      else addIdentifiersOf(el, levelCs, out);
    }
  };
  walk(ds, charsetOf(ds));
  return out.list;
}

/** The label of a replaced value, from its attribute (the finding names it; it never holds the value). */
const KIND_BY_KEYWORD: ReadonlyArray<readonly [RegExp, IdentifierKind]> = [
  [/Description|Comment|Text|Remark|Note|History|Reason|Label|Protocol|Diagnos|Occupation|Allerg|Indication/, 'description'],
  [/Station|Device|Serial|DetectorID|GantryID|CassetteID|PlateID|GeneratorID|SourceManufacturer|Scanner/, 'device'],
];
const kindCache = new Map<Tag, IdentifierKind>();

export function replacedKindOf(tag: Tag, vr: string): IdentifierKind {
  if (isPrivateTag(tag)) return 'private';
  if (vr === 'DA' || vr === 'DT') return 'date';
  if (vr === 'TM') return 'time';
  let kind = kindCache.get(tag);
  if (kind === undefined) {
    const keyword = lookupTag(tag)?.keyword ?? '';
    kind = KIND_BY_KEYWORD.find(([re]) => re.test(keyword))?.[1] ?? 'other';
    if (kindCache.size < 10_000) kindCache.set(tag, kind);
  }
  return kind;
}

/** VRs whose values are defined terms or numbers, not free text: never searched as replaced values. */
const CODED_OR_NUMERIC = new Set(['CS', 'AS', 'DS', 'IS', 'UI', 'PN']);
/** Opaque VRs that may hold text (private elements, unknown attributes); read only when printable. */
const OPAQUE = new Set(['UN', 'OB', 'OW']);

/** Printable single-byte text (trailing NUL or space padding aside): opaque bytes worth reading as text. */
function printableText(bytes: Uint8Array): string | undefined {
  let end = bytes.length;
  while (end > 0 && (bytes[end - 1] === 0 || bytes[end - 1] === 0x20)) end--;
  for (let i = 0; i < end; i++) {
    const c = bytes[i];
    if (c < 0x20 || c > 0x7e) return undefined;
  }
  return end ? latin1(bytes, end) : undefined;
}

/**
 * Whether the bytes of a value may hold a searchable whole value at all: 4 characters besides padding,
 * and a letter (or a byte of another character set) or 6 digits. Most removed values are short numbers,
 * which this settles without decoding them.
 */
function mayBeSearchable(bytes: Uint8Array): boolean {
  let end = bytes.length;
  while (end > 0 && (bytes[end - 1] === 0 || bytes[end - 1] === 0x20)) end--;
  if (end < 4) return false;
  let digits = 0;
  for (let i = 0; i < end; i++) {
    const c = bytes[i] | 0x20; // ASCII letters in lower case
    if ((c >= 0x61 && c <= 0x7a) || bytes[i] >= 0x80) return true;
    if (c >= 0x30 && c <= 0x39) digits++;
  }
  return digits >= 6;
}

/** HHMMSS of a TM value (or of the time part of a DT), if it has seconds. */
const timeOf = (tm: string): string | undefined => /^(\d{6})/.exec(tm.trim())?.[1];

/**
 * The value of an element that the profile removes or replaces, as identifiers to look for: each value
 * of a multi-valued element on its own, a DT as its date and its time (only its date when a date shift
 * is what replaces it), and opaque bytes only when they are printable text. Names and the identifiers
 * proper come from addIdentifiersOf.
 */
export function addReplacedValueOf(el: Element, cs: CharacterSet, into: IdentifierList, onlyShifted = false): void {
  // The identifiers proper (KIND_OF) are collected as such, and searched their own way.
  if (!el.value || el.value.length === 0 || CODED_OR_NUMERIC.has(el.vr) || KIND_OF.has(el.tag)) return;
  if (el.vr === 'DA' || el.vr === 'DT' || el.vr === 'TM') {
    for (const v of rawString(el.value).split('\\')) {
      if (el.vr === 'DA') for (const d of v.split('-')) into.add('date', d, el.tag);
      if (el.vr === 'DT') into.add('date', v.slice(0, 8), el.tag);
      const t = el.vr === 'DA' || onlyShifted ? undefined : timeOf(el.vr === 'DT' ? v.slice(8) : v);
      if (t) into.add('time', t, el.tag);
    }
    return;
  }
  if (!mayBeSearchable(el.value)) return;
  let text: string | undefined;
  if (isTextVR(el.vr)) text = textValue(el, cs);
  else if (OPAQUE.has(el.vr)) text = printableText(el.value);
  if (!text) return;
  const kind = replacedKindOf(el.tag, el.vr);
  // LT, ST and UT hold one value, in which a backslash is text.
  const single = el.vr === 'LT' || el.vr === 'ST' || el.vr === 'UT' || el.vr === 'UR';
  for (const v of single ? [text] : text.split('\\')) if (searchableValue(kind, v.trim())) into.add(kind, v, el.tag);
}
