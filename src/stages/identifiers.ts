import { parseCharacterSet, type CharacterSet } from '../dicom/charset.js';
import { findElement, type Dataset } from '../dicom/element.js';
import { TAG, type Tag } from '../dicom/tag.js';
import { textValue } from '../dicom/values.js';

/**
 * The identifying values of a source data set, and one matcher used both to clean free text (C) and
 * to prove, after de-identification, that none of them is left (verify). Using the same matcher for
 * both means whatever cleaning removes, verification looks for.
 */
export type IdentifierKind = 'name' | 'id' | 'date' | 'address' | 'phone' | 'institution';

export interface Identifier {
  readonly kind: IdentifierKind;
  readonly value: string;
  /** The attribute it came from, so a profile that deliberately keeps that attribute can exclude it. */
  readonly tag: Tag;
}

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

/** Words that are never identifying on their own, so a name made of them cannot match everywhere. */
const NEUTRAL = new Set(['ANONYMOUS', 'ANONYMIZED', 'ANON', 'UNKNOWN', 'NONE', 'NA', 'MR', 'MRS', 'MS', 'DR', 'JR', 'SR', 'II', 'III', 'PHD', 'MD', 'PATIENT', 'TEST',
  // Placeholder names such as "Last Name^First Name"
  'NAME', 'LAST', 'FIRST', 'MIDDLE', 'FAMILY', 'GIVEN']);

export function charsetOf(ds: Dataset): CharacterSet {
  const el = findElement(ds, TAG.SpecificCharacterSet);
  return parseCharacterSet(el ? textValue(el, parseCharacterSet(undefined)) : undefined);
}

/** Collects identifying values from the whole data set (every depth: OtherPatientIDsSequence etc.). */
export function collectIdentifiers(ds: Dataset): Identifier[] {
  const out: Identifier[] = [];
  const seen = new Set<string>();
  const add = (kind: IdentifierKind, value: string, tag: Tag) => {
    const v = value.trim().replace(/\s+/g, ' ');
    const key = `${kind}|${v.toUpperCase()}|${tag}`;
    if (v && !seen.has(key)) {
      seen.add(key);
      out.push({ kind, value: v, tag });
    }
  };
  const walk = (elements: Dataset, cs: CharacterSet) => {
    const levelCs = findElement(elements, TAG.SpecificCharacterSet) ? charsetOf(elements) : cs;
    for (const el of elements) {
      if (el.items) {
        for (const item of el.items) walk(item.elements, levelCs);
        continue;
      }
      if (!el.value || el.value.length === 0) continue;
      if (el.vr === 'PN') {
        for (const part of textValue(el, levelCs).split(/[\^=\\]/)) for (const word of part.split(/[\s,.]+/)) add('name', word, el.tag);
        continue;
      }
      const kind = KIND_OF.get(el.tag);
      if (kind === undefined) continue;
      // IDs and phone numbers are multi-valued; a date, an address or an institution is taken whole.
      if (kind === 'id' || kind === 'phone') for (const v of textValue(el, levelCs).split('\\')) add(kind, v, el.tag);
      else add(kind, textValue(el, levelCs), el.tag);
    }
  };
  walk(ds, charsetOf(ds));
  return out;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
// Underscore joins words in codes such as OB_GENERAL or SIEMENS_RIS, so it counts as a word character.
const B = '(?<![\\p{L}\\p{N}_])';
const E = '(?![\\p{L}\\p{N}_])';

/** Spellings of a DA value people type into free text. */
function dateSpellings(da: string): string[] {
  const m = /^(\d{4})\.?(\d{2})\.?(\d{2})$/.exec(da);
  if (!m) return [];
  const [, y, mo, d] = m;
  // A set: when day and month are equal, the day-first and month-first spellings are the same string.
  return [...new Set([`${y}${mo}${d}`, `${y}-${mo}-${d}`, `${y}/${mo}/${d}`, `${y}.${mo}.${d}`, `${mo}/${d}/${y}`, `${d}/${mo}/${y}`, `${d}.${mo}.${y}`, `${mo}-${d}-${y}`, `${d}-${mo}-${y}`])];
}

/** Whether a value is specific enough to look for: short names and IDs would match everywhere. */
function usable(id: Identifier): boolean {
  const v = id.value;
  switch (id.kind) {
    case 'name': {
      const u = v.toUpperCase();
      return [...u].length >= 2 && !NEUTRAL.has(u) && !/^\d+$/.test(u);
    }
    case 'id':
      return v.length >= 3;
    case 'date':
      return dateSpellings(v).length > 0;
    case 'phone':
      return v.replace(/\D/g, '').length >= 7;
    case 'address':
    case 'institution':
      return v.length >= 6;
  }
}

/** The regular expression source that finds a usable identifier in free text (for cleaning). */
function patternFor(id: Identifier): string {
  const v = id.value;
  switch (id.kind) {
    case 'name':
      return `${B}${escape(v)}${E}`;
    case 'id':
      // Digit-only IDs match as whole numbers (digits occur everywhere); others anywhere, once long enough.
      if (/^\d+$/.test(v)) return `${B}${v}${E}`;
      return v.length >= 5 ? escape(v) : `${B}${escape(v)}${E}`;
    case 'date':
      return dateSpellings(v).map(escape).join('|');
    case 'phone':
      return [...v.replace(/\D/g, '')].map(escape).join('[^\\p{L}\\p{N}]{0,3}');
    case 'address':
    case 'institution':
      return v.split(/\s+/).map(escape).join('\\s+');
  }
}

export interface Hit {
  readonly kind: IdentifierKind;
  readonly index: number;
  readonly length: number;
}

const WORD_EXTRA = /[\p{L}\p{N}]/u;
/** Letters, digits and underscore (which joins words in codes such as OB_GENERAL). */
function isWordChar(c: number): boolean {
  if (c < 128) return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
  if (c >= 0xd800 && c <= 0xdfff) return true;
  return WORD_EXTRA.test(String.fromCharCode(c));
}

/**
 * Finds identifying values in text, case-insensitively. Whole words (name parts, short and numeric
 * IDs) are looked up token by token; longer values (IDs, date spellings, addresses) as substrings;
 * phone numbers on the digits alone. No regular expression is built per object: this runs on every
 * text element of every output.
 */
export class IdentifierMatcher {
  private readonly tokens = new Map<string, IdentifierKind>();
  private readonly bounded: Array<{ kind: IdentifierKind; s: string }> = [];
  private readonly substrings: Array<{ kind: IdentifierKind; s: string }> = [];
  private readonly phones: string[] = [];
  /** The usable identifiers; their regular expression is built only when text is cleaned. */
  private readonly usable: Identifier[] = [];
  private cleaner?: RegExp;

  constructor(identifiers: readonly Identifier[]) {
    for (const id of identifiers) {
      if (!usable(id)) continue;
      this.usable.push(id);
      const u = id.value.toUpperCase();
      switch (id.kind) {
        case 'name':
        case 'id': {
          const wholeWord = id.kind === 'name' || /^\d+$/.test(u) || u.length < 5;
          if (!wholeWord) this.substrings.push({ kind: id.kind, s: u });
          else if ([...u].every((ch) => isWordChar(ch.charCodeAt(0)))) this.tokens.set(u, id.kind);
          else this.bounded.push({ kind: id.kind, s: u });
          break;
        }
        case 'date':
          for (const d of dateSpellings(id.value)) this.substrings.push({ kind: 'date', s: d });
          break;
        case 'phone':
          this.phones.push(u.replace(/\D/g, ''));
          break;
        case 'address':
        case 'institution':
          this.substrings.push({ kind: id.kind, s: u.replace(/\s+/g, ' ') });
      }
    }
  }

  get empty(): boolean {
    return this.usable.length === 0;
  }

  find(text: string, kinds?: ReadonlySet<IdentifierKind>): Hit[] {
    const hits: Hit[] = [];
    if (this.empty || text.length === 0) return hits;
    const want = (k: IdentifierKind) => !kinds || kinds.has(k);
    const upper = text.toUpperCase();
    if (this.tokens.size) {
      let start = -1;
      for (let i = 0; i <= upper.length; i++) {
        const word = i < upper.length && isWordChar(upper.charCodeAt(i));
        if (word && start < 0) start = i;
        else if (!word && start >= 0) {
          const kind = this.tokens.get(upper.slice(start, i));
          if (kind && want(kind)) hits.push({ kind, index: start, length: i - start });
          start = -1;
        }
      }
    }
    for (const { kind, s } of this.bounded) {
      if (!want(kind)) continue;
      for (let i = upper.indexOf(s); i >= 0; i = upper.indexOf(s, i + 1)) {
        const before = i > 0 && isWordChar(upper.charCodeAt(i - 1));
        const after = i + s.length < upper.length && isWordChar(upper.charCodeAt(i + s.length));
        if (!before && !after) hits.push({ kind, index: i, length: s.length });
      }
    }
    if (this.substrings.length) {
      const spaced = upper.replace(/\s+/g, ' ');
      for (const { kind, s } of this.substrings) {
        const i = spaced.indexOf(s);
        if (i >= 0 && want(kind)) hits.push({ kind, index: i, length: s.length });
      }
    }
    if (this.phones.length && want('phone')) {
      const digits = upper.replace(/\D/g, '');
      for (const p of this.phones) if (digits.includes(p)) hits.push({ kind: 'phone', index: 0, length: p.length });
    }
    return hits;
  }

  /** Replaces every identifying value in the text with a neutral marker. */
  clean(text: string, marker = '***'): string {
    if (this.empty) return text;
    // Longest first so that a full value is replaced before its parts. Built once, and only when cleaning.
    this.cleaner ??= new RegExp(this.usable.map(patternFor).sort((a, b) => b.length - a.length).join('|'), 'giu');
    return text.replace(this.cleaner, marker);
  }
}
