import type { CharacterSet } from '../dicom/charset.js';
import { findElement, type Dataset, type DicomFile, type Element } from '../dicom/element.js';
import { TAG, isGroupLengthTag, isPrivateCreatorTag, isPrivateTag, privateBlock, tagElement, tagGroup } from '../dicom/tag.js';
import { withDictionaryVRs } from '../dicom/unknown-vr.js';
import { rawString, textValue } from '../dicom/values.js';
import { isRegistryUid } from '../keyed.js';
import type { CompiledProfile } from '../profiles/compile.js';
import type { PathEntry } from '../profiles/selector.js';
import { isTextVR } from '../dicom/vr.js';
import { EXCUSABLE_KINDS, IdentifierList, addIdentifiersOf, addReplacedValueOf, charsetOf, type Identifier } from './identifiers.js';
import { RuleLookup, keepsValue } from './rule-lookup.js';

/** What the header stage and the quality check need to know about a source before it is changed. */
export interface SourceFacts {
  /**
   * The identifiers proper of the source (names, IDs, birth date, address, phone, institution) and the
   * values of every attribute the profile removes or replaces: text cleaning removes them, and the
   * quality check proves that none is left.
   */
  readonly identifiers: readonly Identifier[];
  /** Source UIDs the profile remaps: every other reference to them is remapped too, and none may remain. */
  readonly remappedUids: Set<string>;
}

/** The private creators of a level, by (group << 8 | block). */
function creatorsOf(elements: Dataset, cs: CharacterSet): Map<number, string> | undefined {
  let creators: Map<number, string> | undefined;
  for (const el of elements) if (isPrivateCreatorTag(el.tag)) (creators ??= new Map()).set((tagGroup(el.tag) << 8) | tagElement(el.tag), textValue(el, cs).trim());
  return creators;
}

/**
 * Marks the replaced descriptions, private values and other values that the profile outputs anyway,
 * because the same object holds the same value in an element the profile keeps (a removed private copy
 * of BodyPartExamined's WHOLE BODY): cleaning leaves them in kept text, and the quality check reports
 * them only where the header stage removed or wrote them.
 */
function markKeptElsewhere(identifiers: Identifier[], kept: ReadonlyArray<readonly [Element, CharacterSet]>): Identifier[] {
  if (kept.length === 0) return identifiers;
  const candidates = new Set<string>();
  for (const id of identifiers) if (EXCUSABLE_KINDS.has(id.kind)) candidates.add(id.value.toUpperCase());
  if (candidates.size === 0) return identifiers;
  const longest = Math.max(...[...candidates].map((c) => c.length));
  const found = new Set<string>();
  for (const [el, cs] of kept) {
    // Decoded only when short enough to equal a candidate: most kept text is not.
    if (el.value!.length > longest * 4 + 2) continue;
    for (const v of textValue(el, cs).split('\\')) {
      const u = v.trim().replace(/\s+/g, ' ').toUpperCase();
      if (candidates.has(u)) found.add(u);
    }
  }
  if (found.size === 0) return identifiers;
  return identifiers.map((id) => (EXCUSABLE_KINDS.has(id.kind) && found.has(id.value.toUpperCase()) ? { ...id, keptElsewhere: true } : id));
}

const cleaning = new WeakMap<CompiledProfile, boolean>();

/** Whether any rule of the profile cleans text (C): the Basic Profile alone has none. */
function cleansText(profile: CompiledProfile): boolean {
  let c = cleaning.get(profile);
  if (c === undefined) {
    const rules = [...profile.byTag.values(), ...profile.byPrivate.values(), ...profile.masks, ...profile.paths, ...(profile.anyPrivate ? [profile.anyPrivate] : [])];
    cleaning.set(profile, (c = rules.some((r) => r.action.kind === 'C')));
  }
  return c;
}

/**
 * Walks the source once, resolving every element's action as the header stage will, and gathers the
 * identifiers and the remapped UIDs. Values inside a removed or emptied sequence count as replaced.
 */
export function sourceFacts(src: DicomFile, profile: CompiledProfile): SourceFacts {
  return factsOf({ ...src, dataset: withDictionaryVRs(src.dataset, src.encoding.littleEndian) }, profile);
}

/** sourceFacts of a file whose standard elements sent as UN were already read with their dictionary VR. */
export function factsOf(src: DicomFile, profile: CompiledProfile): SourceFacts {
  const lookup = new RuleLookup(profile);
  const needPath = profile.paths.length > 0;
  const datesShifted = profile.options.has('retain-long-modified-dates');
  const keepUids = profile.options.has('retain-uids');
  const identifiers = new IdentifierList();
  const uids = new Set<string>();
  const kept: Array<readonly [Element, CharacterSet]> = [];

  // Kept text is gathered only for a profile that cleans text (markKeptElsewhere serves the cleaning).
  const cleans = cleansText(profile);
  const walk = (elements: Dataset, ancestors: readonly PathEntry[], inherited: CharacterSet, removed: boolean) => {
    const cs = findElement(elements, TAG.SpecificCharacterSet) ? charsetOf(elements) : inherited;
    const creators = creatorsOf(elements, cs);
    for (const el of elements) {
      if (isGroupLengthTag(el.tag) || isPrivateCreatorTag(el.tag)) continue;
      const priv = isPrivateTag(el.tag);
      const creator = priv ? creators?.get((tagGroup(el.tag) << 8) | privateBlock(el.tag)) : undefined;
      const path = needPath ? [...ancestors, { tag: el.tag, creator }] : undefined;
      const action = lookup.effective(el.tag, path, creator);
      if (el.items) {
        const gone = removed || action.kind === 'X' || action.kind === 'Z' || (action.kind === 'safePrivate' && !keepsValue(action, el.tag, el.vr, creator, false));
        for (const item of el.items) walk(item.elements, path ?? ancestors, cs, gone);
        continue;
      }
      if (!el.value || el.value.length === 0) continue;
      addIdentifiersOf(el, cs, identifiers);
      if (el.vr === 'UI') {
        if (!keepUids && !priv && (action.kind === 'U' || action.kind === 'D' || action.kind === 'hash')) {
          for (const v of rawString(el.value).split('\\')) if (v.trim() && !isRegistryUid(v.trim())) uids.add(v.trim());
        }
      } else if (removed || !keepsValue(action, el.tag, el.vr, creator, datesShifted)) {
        // A date the profile shifts is replaced, and a date-time's time is kept.
        addReplacedValueOf(el, cs, identifiers, !removed && keepsValue(action, el.tag, el.vr, creator, false));
      }
      else if (cleans && isTextVR(el.vr)) kept.push([el, cs]);
    }
  };
  walk(src.dataset, [], charsetOf(src.dataset), false);
  if (!keepUids) {
    const metaUid = rawString(src.meta.find((e) => e.tag === TAG.MediaStorageSOPInstanceUID)?.value);
    if (metaUid && !isRegistryUid(metaUid)) uids.add(metaUid);
  }
  return { identifiers: markKeptElsewhere(identifiers.list, kept), remappedUids: uids };
}
