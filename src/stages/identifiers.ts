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

const ID_TAGS: readonly Tag[] = [TAG.PatientID, 0x00101000 /* OtherPatientIDs */, 0x00080050 /* AccessionNumber */, 0x00101090 /* MedicalRecordLocator */];
const ADDRESS_TAGS: readonly Tag[] = [0x00101040 /* PatientAddress */];
const PHONE_TAGS: readonly Tag[] = [0x00102154 /* PatientTelephoneNumbers */];
const INSTITUTION_TAGS: readonly Tag[] = [0x00080080 /* InstitutionName */, 0x00080081 /* InstitutionAddress */];
const BIRTH_DATE = 0x00100030;

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
      } else if (ID_TAGS.includes(el.tag)) {
        for (const v of textValue(el, levelCs).split('\\')) add('id', v, el.tag);
      } else if (el.tag === BIRTH_DATE) add('date', textValue(el, levelCs), el.tag);
      else if (ADDRESS_TAGS.includes(el.tag)) add('address', textValue(el, levelCs), el.tag);
      else if (PHONE_TAGS.includes(el.tag)) for (const v of textValue(el, levelCs).split('\\')) add('phone', v, el.tag);
      else if (INSTITUTION_TAGS.includes(el.tag)) add('institution', textValue(el, levelCs), el.tag);
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
  return [`${y}${mo}${d}`, `${y}-${mo}-${d}`, `${y}/${mo}/${d}`, `${y}.${mo}.${d}`, `${mo}/${d}/${y}`, `${d}/${mo}/${y}`, `${d}.${mo}.${y}`, `${mo}-${d}-${y}`, `${d}-${mo}-${y}`];
}

function patternFor(id: Identifier): string | undefined {
  const v = id.value;
  switch (id.kind) {
    case 'name': {
      const u = v.toUpperCase();
      if ([...u].length < 2 || NEUTRAL.has(u) || /^\d+$/.test(u)) return undefined;
      return `${B}${escape(v)}${E}`;
    }
    case 'id':
      // Digit-only IDs match as whole numbers (digits occur everywhere); others anywhere, once long enough.
      if (/^\d+$/.test(v)) return v.length >= 3 ? `${B}${v}${E}` : undefined;
      if (v.length < 3) return undefined;
      return v.length >= 5 ? escape(v) : `${B}${escape(v)}${E}`;
    case 'date':
      return dateSpellings(v).map(escape).join('|') || undefined;
    case 'phone': {
      const digits = v.replace(/\D/g, '');
      return digits.length >= 7 ? [...digits].map(escape).join('[^\\p{L}\\p{N}]{0,3}') : undefined;
    }
    case 'address':
    case 'institution':
      return v.length >= 6 ? v.split(/\s+/).map(escape).join('\\s+') : undefined;
  }
}

export interface Hit {
  readonly kind: IdentifierKind;
  readonly index: number;
  readonly length: number;
}

/** Finds identifying values in text. Case-insensitive, Unicode-aware word boundaries. */
export class IdentifierMatcher {
  private readonly patterns: Array<{ kind: IdentifierKind; re: RegExp }>;

  constructor(identifiers: readonly Identifier[]) {
    const byKind = new Map<IdentifierKind, string[]>();
    for (const id of identifiers) {
      const p = patternFor(id);
      if (p) byKind.set(id.kind, [...(byKind.get(id.kind) ?? []), p]);
    }
    // Longest first so that a full name is replaced before its parts.
    this.patterns = [...byKind].map(([kind, ps]) => ({ kind, re: new RegExp(ps.sort((a, b) => b.length - a.length).join('|'), 'giu') }));
  }

  get empty(): boolean {
    return this.patterns.length === 0;
  }

  find(text: string, kinds?: ReadonlySet<IdentifierKind>): Hit[] {
    const hits: Hit[] = [];
    for (const { kind, re } of this.patterns) {
      if (kinds && !kinds.has(kind)) continue;
      re.lastIndex = 0;
      for (let m = re.exec(text); m; m = re.exec(text)) {
        if (m[0].length === 0) {
          re.lastIndex++;
          continue;
        }
        hits.push({ kind, index: m.index, length: m[0].length });
      }
    }
    return hits;
  }

  /** Replaces every identifying value in the text with a neutral marker. */
  clean(text: string, marker = '***'): string {
    let out = text;
    for (const { re } of this.patterns) out = out.replace(re, marker);
    return out;
  }
}
