import { DICTIONARY_ENTRIES, REPEATING_ENTRIES } from './dictionary.generated.js';
import { isPrivateCreatorTag, isPrivateTag, tagElement, type Tag } from './tag.js';

export interface DictEntry {
  readonly vr: string;
  readonly keyword: string;
  readonly vm: string;
}

const byTag = new Map<Tag, DictEntry>();
const byKeyword = new Map<string, Tag>();
for (const [tag, vr, keyword, vm] of DICTIONARY_ENTRIES) {
  byTag.set(tag, { vr, keyword, vm });
  byKeyword.set(keyword, tag);
}
const repeating = REPEATING_ENTRIES.map(([mask, value, vr, keyword, vm]) => ({ mask, value, entry: { vr, keyword, vm } }));
const repeatingByKeyword = new Map(repeating.map((r) => [r.entry.keyword, r]));

const PRIVATE_CREATOR: DictEntry = { vr: 'LO', keyword: 'PrivateCreator', vm: '1' };
const GROUP_LENGTH: DictEntry = { vr: 'UL', keyword: 'GroupLength', vm: '1' };

export function lookupTag(tag: Tag): DictEntry | undefined {
  const hit = byTag.get(tag);
  if (hit) return hit;
  if (isPrivateTag(tag)) return isPrivateCreatorTag(tag) ? PRIVATE_CREATOR : undefined;
  if (tagElement(tag) === 0) return GROUP_LENGTH;
  for (const r of repeating) if (((tag & r.mask) >>> 0) === r.value) return r.entry;
  return undefined;
}

/** The single VR to use when a file does not say (implicit VR): the first of "OB or OW" style alternatives. */
export function implicitVR(tag: Tag): string {
  const e = lookupTag(tag);
  if (!e) return 'UN';
  if (tag === 0x7fe00010) return 'OW';
  return e.vr.length === 2 ? e.vr : e.vr.slice(0, 2);
}

export function tagForKeyword(keyword: string): Tag | undefined {
  return byKeyword.get(keyword);
}

/** For repeating-group keywords (e.g. OverlayData) returns the mask/value pair. */
export function repeatingForKeyword(keyword: string): { mask: number; value: number } | undefined {
  const r = repeatingByKeyword.get(keyword);
  return r ? { mask: r.mask, value: r.value } : undefined;
}

export function keywordOf(tag: Tag): string | undefined {
  return lookupTag(tag)?.keyword;
}
