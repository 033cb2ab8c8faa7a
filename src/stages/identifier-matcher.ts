import type { Tag } from '../dicom/tag.js';

/**
 * What the quality check and text cleaning look for, and how: the kinds of identifying values, the skip
 * rule for values too short or too common to search, and one matcher used both to clean free text (C)
 * and to prove, after de-identification, that none of them is left (verify). Using the same matcher for
 * both means whatever cleaning removes, verification looks for.
 */
export type IdentifierKind =
  | 'name'
  | 'id'
  | 'date'
  | 'address'
  | 'phone'
  | 'institution'
  | 'time'
  | 'device'
  | 'description'
  | 'private'
  | 'other';

/**
 * Replaced values the quality check does not report inside an element the profile keeps as the source
 * had it (a code meaning that repeats a removed description). Device identity and times are reported
 * wherever they are, like the identifiers proper.
 */
export const EXCUSABLE_KINDS: ReadonlySet<IdentifierKind> = new Set(['description', 'private', 'other']);

export interface Identifier {
  readonly kind: IdentifierKind;
  readonly value: string;
  /** The attribute it came from, so a profile that deliberately keeps that attribute can exclude it. */
  readonly tag: Tag;
  /** A replaced value the profile keeps in another element of the object: text cleaning leaves it. */
  readonly keptElsewhere?: boolean;
}

/** Words that are never identifying on their own, so a name made of them cannot match everywhere (burned-in text too). */
export const NEUTRAL: ReadonlySet<string> = new Set(['ANONYMOUS', 'ANONYMIZED', 'ANON', 'UNKNOWN', 'NONE', 'NA', 'MR', 'MRS', 'MS', 'DR', 'JR', 'SR', 'II', 'III', 'PHD', 'MD', 'PATIENT', 'TEST',
  // Placeholder names such as "Last Name^First Name"
  'NAME', 'LAST', 'FIRST', 'MIDDLE', 'FAMILY', 'GIVEN']);

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
// Underscore joins words in codes such as OB_GENERAL or SIEMENS_RIS, so it counts as a word character.
const B = '(?<![\\p{L}\\p{N}_])';
const E = '(?![\\p{L}\\p{N}_])';

const spellings = new Map<string, string[]>();

/** Spellings of a DA value people type into free text (memoised: a study's dates recur in every object). */
function dateSpellings(da: string): string[] {
  let out = spellings.get(da);
  if (out) return out;
  const m = /^(\d{4})\.?(\d{2})\.?(\d{2})$/.exec(da);
  if (!m) out = [];
  else {
    const [, y, mo, d] = m;
    // A set: when day and month are equal, the day-first and month-first spellings are the same string.
    out = [...new Set([`${y}${mo}${d}`, `${y}-${mo}-${d}`, `${y}/${mo}/${d}`, `${y}.${mo}.${d}`, `${mo}/${d}/${y}`, `${d}/${mo}/${y}`, `${d}.${mo}.${y}`, `${mo}-${d}-${y}`, `${d}-${mo}-${y}`])];
  }
  if (spellings.size >= 10_000) spellings.clear();
  spellings.set(da, out);
  return out;
}

/** A long value is looked for by its first words: enough to be specific, and bounded for a whole document. */
const MAX_PHRASE_WORDS = 16;

/** The words of a value (runs of letters, digits and underscore), upper case; at most MAX_PHRASE_WORDS. */
function wordsOf(upper: string): string[] {
  const out: string[] = [];
  let start = -1;
  for (let i = 0; i <= upper.length && out.length < MAX_PHRASE_WORDS; i++) {
    const word = i < upper.length && isWordChar(upper.charCodeAt(i));
    if (word && start < 0) start = i;
    else if (!word && start >= 0) {
      out.push(upper.slice(start, i));
      start = -1;
    }
  }
  return out;
}

/**
 * Whether a value is specific enough to look for without false alarms. This is the documented skip rule:
 * - names: at least 2 characters, not digits only, not a placeholder or title (ANONYMOUS, DR, NAME);
 * - IDs: at least 3 characters; dates: a full YYYYMMDD; phone numbers: at least 7 digits;
 *   addresses and the institution: at least 6 characters;
 * - times: HHMMSS at least, and not midnight (000000, the dummy);
 * - other replaced values (device identity, descriptions, removed private elements, the rest), after
 *   code strings, ages, numbers and UIDs were left out by VR (addReplacedValueOf):
 *   - shorter than 4 characters: skipped ("MR1", "T2");
 *   - no letter and fewer than 6 digits: skipped, numbers occur everywhere ("0.5", "512", "1.375:1");
 *   - a single word without a digit: skipped, it is vocabulary ("CHEST", "ROUTINE", "RADIOLOGY", "YES");
 *     people and institutions are found as names and institutions instead.
 */
export function searchable(id: Pick<Identifier, 'kind' | 'value'>): boolean {
  return searchableValue(id.kind, id.value);
}

/** searchable, for a kind and a value apart. */
export function searchableValue(kind: IdentifierKind, v: string): boolean {
  switch (kind) {
    case 'name': {
      const u = v.toUpperCase();
      return u.length >= 2 && !NEUTRAL.has(u) && !/^\d+$/.test(u);
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
    case 'time':
      return /^\d{6}$/.test(v) && v !== '000000';
    default:
      return wholeValueSearchable(v);
  }
}

/**
 * The skip rule for replaced values, in one pass over the characters (it runs on every replaced value
 * of every object): at least 4 characters besides spaces; without a letter, at least 6 digits; with
 * letters, a digit or more than one word.
 */
function wholeValueSearchable(v: string): boolean {
  let chars = 0;
  let digits = 0;
  let letters = false;
  let words = 0;
  let inWord = false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c !== 0x20) chars++;
    if (c >= 0x30 && c <= 0x39) digits++;
    else if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x80 && /\p{L}/u.test(v[i]))) letters = true;
    const word = isWordChar(c);
    if (word && !inWord) words++;
    inWord = word;
  }
  if (chars < 4) return false;
  if (!letters) return digits >= 6;
  return digits > 0 || words > 1;
}

/** The spellings of a time people write (HHMMSS as stored, and HH:MM:SS), as word sequences. */
const timeSpellings = (t: string): string[][] => [[t], [t.slice(0, 2), t.slice(2, 4), t.slice(4, 6)]];

/** The regular expression source that finds a searchable identifier in free text (for cleaning). */
function patternFor(id: Identifier): string {
  const v = id.value;
  const words = (ws: string[]) => `${B}${ws.map(escape).join('[^\\p{L}\\p{N}_]+')}${E}`;
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
    case 'time':
      return timeSpellings(v).map(words).join('|');
    default:
      return words(wordsOf(v.toUpperCase()));
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

/** A value of several words, found where the same words follow each other in the text. */
interface Phrase {
  readonly kind: IdentifierKind;
  /** The words after the first (which is the key it is filed under). */
  readonly rest: readonly string[];
}

const CLEANER_ALTERNATIVES = 64;

/** What the matcher derives from a value, kept from object to object: a study's values recur in each of its objects. */
interface Prepared {
  readonly upper: string;
  readonly words?: readonly string[];
  readonly searchable: boolean;
  /** The last matcher that took it in (its serial): repeats within one object are taken once. */
  takenBy: number;
}
let matchers = 0;
const preparedValues = new Map<IdentifierKind, Map<string, Prepared>>();
let preparedCount = 0;

function prepare(id: Identifier): Prepared {
  let byValue = preparedValues.get(id.kind);
  if (!byValue) preparedValues.set(id.kind, (byValue = new Map()));
  let p = byValue.get(id.value);
  if (!p) {
    const upper = id.value.toUpperCase();
    const words = WORD_KINDS.has(id.kind) ? wordsOf(upper) : undefined;
    p = { upper, words, searchable: searchableValue(id.kind, id.value), takenBy: 0 };
    // Bounded: values of a hostile or endless stream could vary without end.
    if (++preparedCount > 20_000) {
      preparedValues.clear();
      preparedCount = 0;
    }
    byValue.set(id.value, p);
  }
  return p;
}
/** Kinds matched as words: their words are split once, for the skip rule and the matcher alike. */
const WORD_KINDS = new Set<IdentifierKind>(['address', 'institution', 'device', 'description', 'private', 'other']);

let lastIdentifiers: readonly Identifier[] | undefined;
let lastMatcher: IdentifierMatcher | undefined;

/** The matcher of a list of identifiers: the header stage's serves again the quality check of the same object. */
export function matcherFor(identifiers: readonly Identifier[]): IdentifierMatcher {
  if (identifiers !== lastIdentifiers || !lastMatcher) {
    lastMatcher = new IdentifierMatcher(identifiers);
    lastIdentifiers = identifiers;
  }
  return lastMatcher;
}

const NO_HITS: Hit[] = [];
const withHit = (hits: Hit[], h: Hit): Hit[] => {
  if (hits === NO_HITS) return [h];
  hits.push(h);
  return hits;
};

/** Word boundaries of the text being searched, reused from call to call. */
const wordStarts: number[] = [];
const wordEnds: number[] = [];

/**
 * Finds identifying values in text, case-insensitively. Whole words (name parts, short and numeric
 * IDs, one-word values) are looked up word by word, and values of several words by their first word;
 * addresses and institutions as whole words too; longer IDs and date spellings as substrings; phone numbers on the digits
 * alone. No regular expression is built per object: this runs on every text element of every output.
 */
export class IdentifierMatcher {
  private readonly tokens = new Map<string, IdentifierKind>();
  private readonly phrases = new Map<string, Phrase[]>();
  private readonly bounded: Array<{ kind: IdentifierKind; s: string }> = [];
  /** Substrings filed under a shorter one the text must contain first (a date's year), or under themselves. */
  private readonly substrings = new Map<string, Array<{ kind: IdentifierKind; s: string }>>();
  private readonly phones: string[] = [];
  /** Bit n set: some word looked up has n letters (31: 31 or more). Other words are not even sliced. */
  private wordLengths = 0;
  /** Likewise the first character of the words looked up (ASCII; other characters are always looked up). */
  private readonly firstChars = new Uint8Array(128);
  /** The searchable identifiers; their regular expression is built only when text is cleaned. */
  private readonly usable: Identifier[] = [];
  private cleaners?: RegExp[];

  constructor(identifiers: readonly Identifier[]) {
    // The same value from several attributes (StudyDate, SeriesDate...) is looked for once.
    const serial = ++matchers;
    for (const id of identifiers) {
      const p = prepare(id);
      if (!p.searchable || p.takenBy === serial) continue;
      p.takenBy = serial;
      const u = p.upper;
      const words = p.words;
      this.usable.push(id);
      switch (id.kind) {
        case 'name':
        case 'id': {
          const wholeWord = id.kind === 'name' || /^\d+$/.test(u) || u.length < 5;
          if (!wholeWord) this.substring(id.kind, u, u);
          else if ([...u].every((ch) => isWordChar(ch.charCodeAt(0)))) this.token(u, id.kind);
          else this.bounded.push({ kind: id.kind, s: u });
          break;
        }
        case 'date':
          // Every spelling holds the year: text without it is not searched for the rest.
          for (const d of dateSpellings(id.value)) this.substring('date', d, id.value.slice(0, 4));
          break;
        case 'phone':
          this.phones.push(u.replace(/\D/g, ''));
          break;
        case 'time':
          for (const ws of timeSpellings(u)) this.words(ws, 'time');
          break;
        default:
          // Addresses, institutions and the other replaced values, as whole words: "TOSHIBA" is not in "TOSHIBA_MEC".
          this.words(words!, id.kind);
      }
    }
  }

  /** A kind whose finding is never excused wins a shared word over one that may be. */
  private token(word: string, kind: IdentifierKind): void {
    this.wordLengths |= 1 << Math.min(word.length, 31);
    this.firstChars[word.charCodeAt(0) & 0x7f] = 1;
    const had = this.tokens.get(word);
    if (had === undefined || (EXCUSABLE_KINDS.has(had) && !EXCUSABLE_KINDS.has(kind))) this.tokens.set(word, kind);
  }

  private words(ws: readonly string[], kind: IdentifierKind): void {
    if (ws.length === 1) return this.token(ws[0], kind);
    this.wordLengths |= 1 << Math.min(ws[0].length, 31);
    this.firstChars[ws[0].charCodeAt(0) & 0x7f] = 1;
    let list = this.phrases.get(ws[0]);
    if (!list) this.phrases.set(ws[0], (list = []));
    list.push({ kind, rest: ws.slice(1) });
  }

  private substring(kind: IdentifierKind, s: string, gate: string): void {
    let list = this.substrings.get(gate);
    if (!list) this.substrings.set(gate, (list = []));
    list.push({ kind, s });
  }

  get empty(): boolean {
    return this.usable.length === 0;
  }

  /** How many values it looks for (after the skip rule). */
  get size(): number {
    return this.usable.length;
  }

  find(text: string, kinds?: ReadonlySet<IdentifierKind>): Hit[] {
    // Most text holds nothing: the list is made on the first hit.
    let hits: Hit[] = NO_HITS;
    if (this.empty || text.length === 0) return hits;
    const upper = text.toUpperCase();
    if (this.tokens.size || this.phrases.size) {
      let n = 0;
      let start = -1;
      for (let i = 0; i <= upper.length; i++) {
        const word = i < upper.length && isWordChar(upper.charCodeAt(i));
        if (word && start < 0) start = i;
        else if (!word && start >= 0) {
          wordStarts[n] = start;
          wordEnds[n++] = i;
          start = -1;
        }
      }
      for (let w = 0; w < n; w++) {
        if ((this.wordLengths & (1 << Math.min(wordEnds[w] - wordStarts[w], 31))) === 0) continue;
        const first = upper.charCodeAt(wordStarts[w]);
        if (first < 128 && this.firstChars[first] === 0) continue;
        const word = upper.slice(wordStarts[w], wordEnds[w]);
        const kind = this.tokens.get(word);
        if (kind && (!kinds || kinds.has(kind))) hits = withHit(hits, { kind, index: wordStarts[w], length: wordEnds[w] - wordStarts[w] });
        const candidates = this.phrases.get(word);
        if (!candidates) continue;
        for (const p of candidates) {
          if ((kinds && !kinds.has(p.kind)) || w + p.rest.length >= n) continue;
          let k = 0;
          while (k < p.rest.length && upper.slice(wordStarts[w + 1 + k], wordEnds[w + 1 + k]) === p.rest[k]) k++;
          if (k === p.rest.length) hits = withHit(hits, { kind: p.kind, index: wordStarts[w], length: wordEnds[w + k] - wordStarts[w] });
        }
      }
    }
    for (const { kind, s } of this.bounded) {
      if (kinds && !kinds.has(kind)) continue;
      for (let i = upper.indexOf(s); i >= 0; i = upper.indexOf(s, i + 1)) {
        const before = i > 0 && isWordChar(upper.charCodeAt(i - 1));
        const after = i + s.length < upper.length && isWordChar(upper.charCodeAt(i + s.length));
        if (!before && !after) hits = withHit(hits, { kind, index: i, length: s.length });
      }
    }
    if (this.substrings.size) {
      // Whitespace runs count as one space; a value without a space is found the same in the text as it is.
      let spaced: string | undefined;
      for (const [gate, list] of this.substrings) {
        if (!gate.includes(' ') && !upper.includes(gate)) continue;
        for (const { kind, s } of list) {
          const i = s.includes(' ') ? (spaced ??= upper.replace(/\s+/g, ' ')).indexOf(s) : upper.indexOf(s);
          if (i >= 0 && (!kinds || kinds.has(kind))) hits = withHit(hits, { kind, index: i, length: s.length });
        }
      }
    }
    if (this.phones.length && (!kinds || kinds.has('phone'))) {
      const digits = upper.replace(/\D/g, '');
      for (const p of this.phones) if (digits.includes(p)) hits = withHit(hits, { kind: 'phone', index: 0, length: p.length });
    }
    return hits;
  }

  /** Replaces every identifying value in the text with a neutral marker. */
  clean(text: string, marker = '***'): string {
    if (this.empty) return text;
    // Longest first so that a full value is replaced before its parts. Built once, and only when cleaning;
    // in expressions of at most CLEANER_ALTERNATIVES each, which V8 compiles whatever the object holds.
    if (!this.cleaners) {
      const patterns = this.usable.filter((id) => !id.keptElsewhere).map(patternFor).sort((a, b) => b.length - a.length);
      this.cleaners = [];
      for (let i = 0; i < patterns.length; i += CLEANER_ALTERNATIVES) this.cleaners.push(new RegExp(patterns.slice(i, i + CLEANER_ALTERNATIVES).join('|'), 'giu'));
    }
    for (const re of this.cleaners) text = text.replace(re, marker);
    return text;
  }
}
