import { DICTIONARY_TEXT, REPEATING_TEXT } from './dictionary.generated.js';
import { TAG, isPrivateCreatorTag, isPrivateTag, tagElement, type Tag } from './tag.js';

export interface DictEntry {
  readonly vr: string;
  readonly keyword: string;
  readonly vm: string;
}

/**
 * The data dictionary is kept as its generated text and read on demand: a run looks up a few hundred
 * tags, and building maps of all 5,000 entries cost every thread about 10 ms of its start-up.
 */
const decoded = new Map<Tag, DictEntry | null>();
let tags: Uint32Array | undefined;
let lineStarts: Uint32Array | undefined;

function indexLines(): void {
  const starts: number[] = [];
  for (let pos = 0; pos < DICTIONARY_TEXT.length; ) {
    const end = DICTIONARY_TEXT.indexOf('\n', pos);
    const lineEnd = end < 0 ? DICTIONARY_TEXT.length : end;
    if (lineEnd > pos) starts.push(pos);
    pos = lineEnd + 1;
  }
  lineStarts = Uint32Array.from(starts);
  tags = Uint32Array.from(starts, (p) => parseInt(DICTIONARY_TEXT.slice(p, p + 8), 16));
}

function entryAt(start: number): DictEntry {
  const end = DICTIONARY_TEXT.indexOf('\n', start);
  const [, vr, keyword, vm] = DICTIONARY_TEXT.slice(start, end < 0 ? undefined : end).split('|');
  return { vr, keyword, vm };
}

/** The exact (non-repeating) entry for a tag: a binary search over the sorted text's tags. */
function exactEntry(tag: Tag): DictEntry | undefined {
  const known = decoded.get(tag);
  if (known !== undefined) return known ?? undefined;
  if (!tags) indexLines();
  let lo = 0;
  let hi = tags!.length - 1;
  let found: DictEntry | null = null;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const t = tags![mid];
    if (t === tag) {
      found = entryAt(lineStarts![mid]);
      break;
    }
    if (t < tag) lo = mid + 1;
    else hi = mid - 1;
  }
  // Bounded: only tags of the dictionary, plus misses, which a hostile file could vary without end.
  if (found || decoded.size < 20_000) decoded.set(tag, found);
  return found ?? undefined;
}

let repeatingEntries: Array<{ mask: number; value: number; entry: DictEntry }> | undefined;
function repeating(): Array<{ mask: number; value: number; entry: DictEntry }> {
  repeatingEntries ??= REPEATING_TEXT.split('\n')
    .filter(Boolean)
    .map((line) => {
      const [mask, value, vr, keyword, vm] = line.split('|');
      return { mask: parseInt(mask, 16) >>> 0, value: parseInt(value, 16) >>> 0, entry: { vr, keyword, vm } };
    });
  return repeatingEntries;
}

const PRIVATE_CREATOR: DictEntry = { vr: 'LO', keyword: 'PrivateCreator', vm: '1' };
const GROUP_LENGTH: DictEntry = { vr: 'UL', keyword: 'GroupLength', vm: '1' };

export function lookupTag(tag: Tag): DictEntry | undefined {
  const hit = exactEntry(tag);
  if (hit) return hit;
  if (isPrivateTag(tag)) return isPrivateCreatorTag(tag) ? PRIVATE_CREATOR : undefined;
  if (tagElement(tag) === 0) return GROUP_LENGTH;
  for (const r of repeating()) if (((tag & r.mask) >>> 0) === r.value) return r.entry;
  return undefined;
}

/** The single VR to use when a file does not say (implicit VR): the first of "OB or OW" style alternatives. */
export function implicitVR(tag: Tag): string {
  const e = lookupTag(tag);
  if (!e) return 'UN';
  if (tag === TAG.PixelData) return 'OW';
  return e.vr.length === 2 ? e.vr : e.vr.slice(0, 2);
}

const byKeyword = new Map<string, Tag | null>();

export function tagForKeyword(keyword: string): Tag | undefined {
  let tag = byKeyword.get(keyword);
  if (tag === undefined) {
    tag = null;
    // The keyword column is the third: a match elsewhere on a line (a VR, a VM) is not a hit.
    for (let i = DICTIONARY_TEXT.indexOf(`|${keyword}|`); i >= 0 && keyword; i = DICTIONARY_TEXT.indexOf(`|${keyword}|`, i + 1)) {
      const start = DICTIONARY_TEXT.lastIndexOf('\n', i) + 1;
      if (entryAt(start).keyword === keyword) {
        tag = parseInt(DICTIONARY_TEXT.slice(start, start + 8), 16);
        break;
      }
    }
    if (byKeyword.size < 20_000) byKeyword.set(keyword, tag);
  }
  return tag ?? undefined;
}

/** For repeating-group keywords (e.g. OverlayData) returns the mask/value pair. */
export function repeatingForKeyword(keyword: string): { mask: number; value: number } | undefined {
  const r = repeating().find((e) => e.entry.keyword === keyword);
  return r ? { mask: r.mask, value: r.value } : undefined;
}

export function keywordOf(tag: Tag): string | undefined {
  return lookupTag(tag)?.keyword;
}
