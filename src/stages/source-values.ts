import type { CharacterSet } from '../dicom/charset.js';
import { findElement, type Dataset, type DicomFile, type Element } from '../dicom/element.js';
import { TAG, isGroupLengthTag, isPrivateCreatorTag, isPrivateTag, privateBlock, tagElement, tagGroup } from '../dicom/tag.js';
import { withDictionaryVRsOf } from '../dicom/unknown-vr.js';
import { rawString, textValue } from '../dicom/values.js';
import { isTextVR } from '../dicom/vr.js';
import { isRegistryUid } from '../keyed.js';
import type { Action, CompiledProfile } from '../profiles/compile.js';
import type { PathEntry } from '../profiles/selector.js';
import { EXCUSABLE_KINDS } from './identifier-matcher.js';
import { IdentifierList, addIdentifiersOf, addReplacedValueOf, charsetOf, holdsIdentifiers, type Identifier } from './identifiers.js';
import { RuleLookup, keepsValue } from './rule-lookup.js';

/** What the header stage and the quality check need to know about a source before it is changed. */
export interface SourceValues {
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
export function creatorsOf(elements: Dataset, cs: CharacterSet): Map<number, string> | undefined {
  let creators: Map<number, string> | undefined;
  for (const el of elements) if (isPrivateCreatorTag(el.tag)) (creators ??= new Map()).set((tagGroup(el.tag) << 8) | tagElement(el.tag), textValue(el, cs).trim());
  return creators;
}

/** Binary numbers hold nothing to look for, and tell nothing about kept text. */
const BINARY_NUMBERS = new Set(['US', 'SS', 'UL', 'SL', 'FL', 'FD', 'AT', 'OF', 'OD', 'OL', 'OV', 'SV', 'UV']);

/**
 * What the header stage does with a sequence: removes its content (X, Z, an unsafe private sequence),
 * walks its items applying the rules (K, D, U, C, a safe private sequence), or leaves it as it is.
 */
export function sequenceFate(action: Action, tag: number, creator: string | undefined): 'removed' | 'walked' | 'kept' {
  switch (action.kind) {
    case 'X':
    case 'Z':
      return 'removed';
    case 'safePrivate':
      return keepsValue(action, tag, 'SQ', creator, false) ? 'walked' : 'removed';
    case 'K':
    case 'D':
    case 'U':
    case 'C':
      return 'walked';
    default:
      return 'kept';
  }
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
 * What each element of a source contributes to the identifiers, given the action the header stage
 * takes on it: one definition for the header stage, which collects while it works, and for sourceValues,
 * which walks a source on its own (the quality check of `deid verify` and of the verify stage).
 */
export class ValueCollector {
  private readonly list = new IdentifierList();
  private readonly datesShifted: boolean;
  /** Kept text, gathered only for a profile with C rules (markKeptElsewhere serves its cleaning). */
  private readonly kept: Array<readonly [Element, CharacterSet]> | undefined;

  constructor(profile: CompiledProfile) {
    this.datesShifted = profile.options.has('retain-long-modified-dates');
    this.kept = cleansText(profile) ? [] : undefined;
  }

  /** A non-sequence element and the action taken on it. */
  element(el: Element, action: Action, creator: string | undefined, cs: CharacterSet): void {
    const value = el.value;
    if (!value || value.length === 0) return;
    const vr = el.vr;
    if (vr === 'PN' || holdsIdentifiers(el)) addIdentifiersOf(el, cs, this.list);
    // Most elements are kept as they are (K, or no rule): only their identifiers proper count.
    if (action.kind === 'K' && vr !== 'DA' && vr !== 'DT') {
      if (this.kept && isTextVR(vr)) this.kept.push([el, cs]);
      return;
    }
    if (vr === 'UI' || BINARY_NUMBERS.has(vr)) return;
    if (!keepsValue(action, el.tag, vr, creator, this.datesShifted)) {
      // A date the profile shifts is replaced, and a date-time's time is kept.
      addReplacedValueOf(el, cs, this.list, keepsValue(action, el.tag, vr, creator, false));
    } else if (this.kept && isTextVR(vr)) this.kept.push([el, cs]);
  }

  /** A sequence and its fate: removed content is all replaced; content left as it is holds only identifiers proper. */
  sequence(el: Element, fate: 'removed' | 'walked' | 'kept', cs: CharacterSet): void {
    if (fate === 'walked') return; // its elements come one by one
    const walk = (elements: Dataset, inherited: CharacterSet) => {
      const levelCs = findElement(elements, TAG.SpecificCharacterSet) ? charsetOf(elements) : inherited;
      for (const e of elements) {
        // Private creators name a block, not anyone; group lengths are numbers.
        if (isPrivateCreatorTag(e.tag) || isGroupLengthTag(e.tag)) continue;
        if (e.items) for (const item of e.items) walk(item.elements, levelCs);
        else if (e.value?.length && !BINARY_NUMBERS.has(e.vr)) {
          addIdentifiersOf(e, levelCs, this.list);
          if (fate === 'removed') addReplacedValueOf(e, levelCs, this.list);
        }
      }
    };
    for (const item of el.items ?? []) walk(item.elements, cs);
  }

  /**
   * The identifiers, with the replaced descriptions, private values and other values that the profile
   * outputs anyway marked keptElsewhere: the same object holds them in an element the profile keeps (a
   * removed private copy of BodyPartExamined's WHOLE BODY). Cleaning leaves them in kept text, and the
   * quality check reports them only where the header stage removed or wrote them.
   */
  identifiers(): Identifier[] {
    const identifiers = this.list.list;
    if (!this.kept?.length) return identifiers;
    const candidates = new Set<string>();
    for (const id of identifiers) if (EXCUSABLE_KINDS.has(id.kind)) candidates.add(id.value.toUpperCase());
    if (candidates.size === 0) return identifiers;
    const longest = Math.max(...[...candidates].map((c) => c.length));
    const found = new Set<string>();
    for (const [el, cs] of this.kept) {
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
}

/**
 * The source UIDs a profile remaps (U, D or hash on a UI element), which every other reference to them
 * must follow: gathered before the header stage starts, from the UI elements alone.
 */
export function remappedUidsOf(src: DicomFile, profile: CompiledProfile): Set<string> {
  const uids = new Set<string>();
  if (profile.options.has('retain-uids')) return uids;
  const lookup = new RuleLookup(profile);
  const needPath = profile.paths.length > 0;
  const walk = (elements: Dataset, ancestors: readonly PathEntry[]) => {
    for (const el of elements) {
      if (el.items) {
        for (const item of el.items) walk(item.elements, needPath ? [...ancestors, { tag: el.tag }] : ancestors);
        continue;
      }
      if (el.vr !== 'UI' || !el.value?.length || isPrivateTag(el.tag)) continue;
      const a = lookup.effective(el.tag, needPath ? [...ancestors, { tag: el.tag }] : undefined, undefined);
      if (a.kind === 'U' || a.kind === 'D' || a.kind === 'hash') {
        for (const v of rawString(el.value).split('\\')) if (v.trim() && !isRegistryUid(v.trim())) uids.add(v.trim());
      }
    }
  };
  walk(src.dataset, []);
  const metaUid = rawString(src.meta.find((e) => e.tag === TAG.MediaStorageSOPInstanceUID)?.value);
  if (metaUid && !isRegistryUid(metaUid)) uids.add(metaUid);
  return uids;
}

/**
 * What the header stage would gather, for a source on its own: every element's action resolved as the
 * header stage resolves it, and each passed to the same ValueCollector.
 */
export function sourceValues(input: DicomFile, profile: CompiledProfile): SourceValues {
  const src = withDictionaryVRsOf(input);
  const lookup = new RuleLookup(profile);
  const needPath = profile.paths.length > 0;
  const values = new ValueCollector(profile);
  const walk = (elements: Dataset, ancestors: readonly PathEntry[], inherited: CharacterSet) => {
    const cs = findElement(elements, TAG.SpecificCharacterSet) ? charsetOf(elements) : inherited;
    const creators = creatorsOf(elements, cs);
    for (const el of elements) {
      if (BINARY_NUMBERS.has(el.vr) || isGroupLengthTag(el.tag) || isPrivateCreatorTag(el.tag)) continue;
      const creator = isPrivateTag(el.tag) ? creators?.get((tagGroup(el.tag) << 8) | privateBlock(el.tag)) : undefined;
      const path = needPath ? [...ancestors, { tag: el.tag, creator }] : undefined;
      const action = lookup.effective(el.tag, path, creator);
      if (!el.items) values.element(el, action, creator, cs);
      else {
        const fate = sequenceFate(action, el.tag, creator);
        if (fate === 'walked') for (const item of el.items) walk(item.elements, path ?? ancestors, cs);
        else values.sequence(el, fate, cs);
      }
    }
  };
  walk(src.dataset, [], charsetOf(src.dataset));
  return { identifiers: values.identifiers(), remappedUids: remappedUidsOf(src, profile) };
}
