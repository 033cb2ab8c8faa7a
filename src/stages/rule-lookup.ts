import { TAG, isPrivateTag, tagGroup, type Tag } from '../dicom/tag.js';
import { isTextVR } from '../dicom/vr.js';
import { type Action, type CompiledProfile, privateKey } from '../profiles/compile.js';
import { isSafePrivate } from '../profiles/safe-private.js';
import { pathMatches, type PathEntry } from '../profiles/selector.js';

/**
 * Which action a profile takes on an element. One definition for the header stage, which applies it,
 * and for the walks that must know what the header stage did (the values the quality check looks for,
 * the elements it may find a kept value in).
 */

export const REMOVE: Action = { kind: 'X' };
const KEEP: Action = { kind: 'K' };
const REMAP: Action = { kind: 'U' };

/** In allow-list mode these stay even when no rule names them, so the object remains an image. */
const STRUCTURAL = (tag: Tag) => tag === TAG.SpecificCharacterSet || tag === TAG.SOPClassUID || tagGroup(tag) === 0x0028 || tag === TAG.PixelData;
/** ...and these identify it, so they stay too, but remapped. */
const STRUCTURAL_UIDS = new Set<Tag>([TAG.SOPInstanceUID, TAG.StudyInstanceUID, TAG.SeriesInstanceUID, TAG.FrameOfReferenceUID]);

function resolveTag(p: CompiledProfile, tag: Tag, creator: string | undefined): Action | undefined {
  if (isPrivateTag(tag)) {
    if (creator !== undefined) {
      const r = p.byPrivate.get(privateKey(tagGroup(tag), creator, tag & 0xff)) ?? p.byPrivate.get(privateKey(tagGroup(tag), creator, undefined));
      if (r) return r.action;
    }
    const r = p.byTag.get(tag);
    if (r) return r.action;
    // Private elements are removed unless a rule or Retain Safe Private keeps them.
    return p.anyPrivate?.action ?? REMOVE;
  }
  const r = p.byTag.get(tag);
  if (r) return r.action;
  for (const m of p.masks) {
    const s = m.steps[0];
    if (s.kind === 'mask' && ((tag & s.mask) >>> 0) === s.value) return m.action;
  }
  // Odd groups 0001-0007 are neither standard nor private (PS3.5 7.1): their content is unknown, so remove them.
  if ((tagGroup(tag) & 1) === 1) return REMOVE;
  return undefined;
}

const MEMO_LIMIT = 100_000;

/**
 * Tag and (creator, tag) lookups memoised per profile: the same few hundred tags recur in every object,
 * and building the private-rule keys was the header stage's largest cost. Bounded against hostile input.
 */
class ActionMemo {
  private size = 0;
  private readonly standard = new Map<Tag, Action | null>();
  private readonly byCreator = new Map<string | undefined, Map<Tag, Action | null>>();

  constructor(private readonly profile: CompiledProfile) {}

  action(tag: Tag, creator: string | undefined): Action | undefined {
    const priv = isPrivateTag(tag);
    let byTag = this.standard;
    if (priv) {
      byTag = this.byCreator.get(creator)!;
      if (!byTag) this.byCreator.set(creator, (byTag = new Map()));
    }
    const hit = byTag.get(tag);
    if (hit !== undefined) return hit ?? undefined;
    const action = resolveTag(this.profile, tag, creator);
    if (++this.size > MEMO_LIMIT) {
      this.standard.clear();
      this.byCreator.clear();
      this.size = 0;
    } else byTag.set(tag, action ?? null);
    return action;
  }
}

const memos = new WeakMap<CompiledProfile, ActionMemo>();

export class RuleLookup {
  private readonly memo: ActionMemo;

  constructor(readonly profile: CompiledProfile) {
    let memo = memos.get(profile);
    if (!memo) memos.set(profile, (memo = new ActionMemo(profile)));
    this.memo = memo;
  }

  /** The action for an element, most specific rule first; undefined means no rule names it. */
  resolve(tag: Tag, path: readonly PathEntry[] | undefined, creator: string | undefined): Action | undefined {
    if (path) for (const r of this.profile.paths) if (pathMatches(r.steps, path)) return r.action;
    return this.memo.action(tag, creator);
  }

  /** What happens to an element no rule names: kept, or in allow-list mode removed (structural ones aside). */
  unlisted(tag: Tag): Action {
    if (!this.profile.removeUnlisted || STRUCTURAL(tag)) return KEEP;
    return STRUCTURAL_UIDS.has(tag) ? REMAP : REMOVE;
  }

  /** The action the header stage takes: a rule's, or the default for elements no rule names. */
  effective(tag: Tag, path: readonly PathEntry[] | undefined, creator: string | undefined): Action {
    return this.resolve(tag, path, creator) ?? this.unlisted(tag);
  }
}

/**
 * Whether the header stage writes an element's source value out as it is: K, a safe private element, C
 * (which keeps the text, less the identifying values of others) and a date shift of a non-date. Dates
 * are not kept when the profile shifts them; UIDs are judged apart, by the UIDs the profile remaps.
 */
export function keepsValue(action: Action, tag: Tag, vr: string, creator: string | undefined, datesShifted: boolean): boolean {
  const isDate = vr === 'DA' || vr === 'DT';
  switch (action.kind) {
    case 'K':
      return !(isDate && datesShifted);
    case 'C':
      // Binary content cannot be cleaned, so C removes it.
      return (isTextVR(vr) || vr === 'UI') && !(isDate && datesShifted);
    case 'dateShift':
      return !isDate;
    case 'safePrivate':
      return creator !== undefined && isSafePrivate(tagGroup(tag), creator, tag & 0xff) && !(isDate && datesShifted);
    default:
      return false;
  }
}
