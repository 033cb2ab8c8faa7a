import { encodeText, type CharacterSet } from '../dicom/charset.js';
import { repeatingForKeyword } from '../dicom/dictionary.js';
import { findElement, withElements, type Dataset, type DicomFile, type Element, type Item } from '../dicom/element.js';
import { TAG, isGroupLengthTag, isPrivateCreatorTag, isPrivateTag, privateBlock, tagElement, tagGroup, type Tag } from '../dicom/tag.js';
import { asciiBytes, encodeValue, padEven, rawString, textValue, uidBytes } from '../dicom/values.js';
import { MAX_LENGTH, isTextVR, usesCharset } from '../dicom/vr.js';
import { DeidError } from '../errors.js';
import { dateOffsetDays, isRegistryUid, keyedHash, remapUid } from '../keyed.js';
import { type Action, type CompiledProfile, privateKey } from '../profiles/compile.js';
import { isSafePrivate, safePrivateSource } from '../profiles/safe-private.js';
import { pathMatches, type PathEntry } from '../profiles/selector.js';
import { generalizeElement, isGeneralized } from './generalize.js';
import { IdentifierMatcher, charsetOf, collectIdentifiers, type Identifier } from './identifiers.js';

export interface HeaderContext {
  readonly profile: CompiledProfile;
  readonly secret: Uint8Array;
  /** Also return what happened to every element (for a tag inventory); off by default, as it costs a record per element. */
  readonly dispositions?: boolean;
}

/** What the profile did to an element of the source, in the words of a tag inventory. */
export type Disposition = 'kept' | 'removed' | 'replaced' | 'cleaned' | 'remapped';

export interface ElementDisposition {
  readonly tag: Tag;
  /** The private creator of a private element. */
  readonly creator?: string;
  /** 0 at the top level, 1 inside the items of a top-level sequence, and so on. */
  readonly depth: number;
  readonly disposition: Disposition;
  /** Why a kept private element was kept: Retain Safe Private's lists, or a rule of the profile. */
  readonly keptBy?: 'E.3.10-1' | 'TCIA' | 'rule';
}

export interface HeaderReport {
  removed: number;
  emptied: number;
  dummied: number;
  remapped: number;
  cleaned: number;
  shifted: number;
  hashed: number;
  set: number;
  privateKept: number;
  privateRemoved: number;
  /** Values made coarser by the profile's `generalize` settings. */
  generalized: number;
  dateOffsetDays?: number;
}

export interface HeaderResult {
  readonly file: DicomFile;
  /** Identifying values of the source, for the quality check. */
  readonly identifiers: readonly Identifier[];
  /** Source UIDs that were remapped and so must not appear in the output. */
  readonly remappedUids: ReadonlySet<string>;
  readonly report: HeaderReport;
  /** Every element of the source at every depth (private creators aside), when the context asks. */
  readonly dispositions?: readonly ElementDisposition[];
  /** With dispositions: the identifying attributes the profile kept with a value, and why (`CompiledProfile.keptIdentifiers`). */
  readonly keptIdentifiers?: ReadonlyArray<{ readonly tag: Tag; readonly why: string }>;
}

const DICOMDIR_SOP_CLASS = '1.2.840.10008.1.3.10';

/** VR-valid dummy values for D. */
const DUMMY: Record<string, string> = {
  AE: 'ANONYMOUS', AS: '000Y', CS: 'ANONYMIZED', DA: '19000101', DT: '19000101000000', TM: '000000', DS: '0', IS: '0',
  LO: 'ANONYMIZED', LT: 'ANONYMIZED', SH: 'ANONYMIZED', ST: 'ANONYMIZED', UC: 'ANONYMIZED', UT: 'ANONYMIZED',
  PN: 'ANONYMOUS', UR: 'urn:anonymized',
};
export const DUMMY_VALUES: ReadonlySet<string> = new Set(Object.values(DUMMY));

/** In allow-list mode these stay even when no rule names them, so the object remains an image. */
const STRUCTURAL = (tag: Tag) => tag === TAG.SpecificCharacterSet || tag === TAG.SOPClassUID || tagGroup(tag) === 0x0028 || tag === TAG.PixelData;
/** ...and these identify it, so they stay too, but remapped. */
const STRUCTURAL_UIDS = new Set<Tag>([TAG.SOPInstanceUID, TAG.StudyInstanceUID, TAG.SeriesInstanceUID, TAG.FrameOfReferenceUID]);

/** OverlayData (60xx,3000): a repeating group of the dictionary, matched by mask. */
const OVERLAY_DATA = repeatingForKeyword('OverlayData')!;

/** YYYYMMDD of a UTC date. */
function formatDA(d: Date): string {
  return `${d.getUTCFullYear().toString().padStart(4, '0')}${(d.getUTCMonth() + 1).toString().padStart(2, '0')}${d.getUTCDate().toString().padStart(2, '0')}`;
}

/** Shifts the leading date of a DA or DT value by whole days, keeping its precision and the rest. */
export function shiftDateString(value: string, days: number): string | undefined {
  const m = /^(\d{4})(?:\.?(\d{2})(?:\.?(\d{2}))?)?(.*)$/.exec(value.trim());
  if (!m) return undefined;
  const [, y, mo, d, rest] = m;
  const date = new Date(Date.UTC(Number(y), Number(mo ?? '01') - 1, Number(d ?? '01')));
  if (Number.isNaN(date.getTime())) return undefined;
  date.setUTCDate(date.getUTCDate() + days);
  const full = formatDA(date);
  return full.slice(0, d ? 8 : mo ? 6 : 4) + rest;
}

const REMOVE: Action = { kind: 'X' };

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
const MEMO_LIMIT = 100_000;

function actionMemo(p: CompiledProfile): ActionMemo {
  let memo = memos.get(p);
  if (!memo) memos.set(p, (memo = new ActionMemo(p)));
  return memo;
}

class HeaderRun {
  readonly report: HeaderReport = { removed: 0, emptied: 0, dummied: 0, remapped: 0, cleaned: 0, shifted: 0, hashed: 0, set: 0, privateKept: 0, privateRemoved: 0, generalized: 0 };
  /** Filled only when the context asks for dispositions. */
  readonly dispositions?: ElementDisposition[];
  /** With dispositions: identifying attributes kept with a value, each once. */
  readonly keptIdentifiers = new Set<Tag>();
  private readonly modifiedDates: boolean;
  private readonly memo: ActionMemo;

  constructor(
    private readonly profile: CompiledProfile,
    private readonly secret: Uint8Array,
    private readonly matcher: IdentifierMatcher,
    private readonly remapSet: Set<string>,
    /** The patient's date offset, derived only when a date is shifted (an HMAC per object otherwise). */
    private readonly dateOffset: () => number,
    recordDispositions = false,
  ) {
    this.modifiedDates = profile.options.has('retain-long-modified-dates');
    this.memo = actionMemo(profile);
    if (recordDispositions) this.dispositions = [];
  }

  /** The action for an element, most specific rule first; undefined means no rule names it. */
  resolve(tag: Tag, path: readonly PathEntry[] | undefined, creator: string | undefined): Action | undefined {
    if (path) for (const r of this.profile.paths) if (pathMatches(r.steps, path)) return r.action;
    return this.memo.action(tag, creator);
  }

  private uid(value: string): string {
    return !value || isRegistryUid(value) ? value : remapUid(this.secret, value);
  }

  private remapUidElement(el: Element): Element {
    const values = rawString(el.value).split('\\').map((v) => v.trim());
    const mapped = values.map((v) => this.uid(v));
    this.report.remapped++;
    return { tag: el.tag, vr: el.vr, value: uidBytes(mapped.join('\\')) };
  }

  private text(el: Element, s: string, cs: CharacterSet): Element {
    const max = MAX_LENGTH[el.vr];
    let bytes = usesCharset(el.vr) ? encodeText(s, cs, el.vr) : Buffer.from(s, 'latin1');
    if (max !== undefined && el.vr !== 'PN' && !s.includes('\\') && bytes.length > max) bytes = bytes.subarray(0, max);
    return { tag: el.tag, vr: el.vr, value: padEven(bytes, el.vr) };
  }

  private shiftDates(el: Element): Element {
    const values = rawString(el.value).split('\\');
    const days = this.dateOffset();
    const shifted = values.map((v) => {
      if (!v.trim()) return v;
      // A DA range "A-B" shifts both ends; anything unparseable is dropped rather than kept unshifted.
      if (el.vr === 'DA' && v.includes('-')) return v.split('-').map((p) => (p ? (shiftDateString(p, days) ?? '') : '')).join('-');
      return shiftDateString(v, days) ?? '';
    });
    this.report.shifted++;
    return { tag: el.tag, vr: el.vr, value: asciiBytes(shifted.join('\\'), el.vr) };
  }

  private cleanText(el: Element, cs: CharacterSet): Element {
    if (this.matcher.empty || !el.value?.length || !isTextVR(el.vr) || el.vr === 'UI') return el;
    const before = textValue(el, cs);
    const after = this.matcher.clean(before);
    if (after === before) return el;
    this.report.cleaned++;
    return this.text(el, after, cs);
  }

  private dummy(el: Element, cs: CharacterSet): Element {
    this.report.dummied++;
    const d = DUMMY[el.vr];
    if (d !== undefined) return this.text(el, d, cs);
    // Binary VRs: zeros of the same length (at least one value wide).
    return { tag: el.tag, vr: el.vr, value: new Uint8Array(Math.max(el.value?.length ?? 0, 2)) };
  }

  /** Keep: still remap references to remapped UIDs, shift dates, and clean text inside cleaned content. */
  private keep(el: Element, ancestors: readonly PathEntry[], entry: PathEntry, cs: CharacterSet, clean: boolean): Element {
    if (el.items) return this.recurse(el, ancestors, entry, cs, clean);
    if (!el.value || el.value.length === 0) return el;
    if (el.vr === 'UI') {
      const vals = rawString(el.value).split('\\');
      return vals.some((v) => this.remapSet.has(v.trim())) ? this.remapUidElement(el) : el;
    }
    if ((el.vr === 'DA' || el.vr === 'DT') && this.modifiedDates) return this.shiftDates(el);
    return clean ? this.cleanText(el, cs) : el;
  }

  private recurse(el: Element, ancestors: readonly PathEntry[], entry: PathEntry, cs: CharacterSet, clean: boolean): Element {
    const path = [...ancestors, entry];
    const items: Item[] = el.items!.map((item) => ({ elements: this.level(item.elements, path, cs, clean), undefinedLength: item.undefinedLength }));
    return { ...el, items };
  }

  private apply(el: Element, action: Action, ancestors: readonly PathEntry[], entry: PathEntry, cs: CharacterSet, clean: boolean): Element | undefined {
    switch (action.kind) {
      case 'X':
        this.report.removed++;
        return undefined;
      case 'K':
        return this.keep(el, ancestors, entry, cs, clean);
      case 'Z':
        this.report.emptied++;
        if (el.items) return { ...el, items: [] };
        return { tag: el.tag, vr: el.vr, value: new Uint8Array(0) };
      case 'D':
        // A sequence has no dummy value: keep its structure, apply the rules inside, and clean its text.
        if (el.items) return this.recurse(el, ancestors, entry, cs, true);
        if (el.vr === 'UI') return this.remapUidElement(el);
        return this.dummy(el, cs);
      case 'U':
        if (el.items) return this.recurse(el, ancestors, entry, cs, clean);
        if (el.vr === 'UI') return this.remapUidElement(el);
        return this.dummy(el, cs);
      case 'C':
        if (el.items) return this.recurse(el, ancestors, entry, cs, true);
        if ((el.vr === 'DA' || el.vr === 'DT') && this.modifiedDates) return this.shiftDates(el);
        if (el.vr === 'UI') return this.keep(el, ancestors, entry, cs, clean);
        if (isTextVR(el.vr)) return this.cleanText(el, cs);
        // Binary content (overlay or curve data) cannot be cleaned here: remove it rather than pass it on.
        this.report.removed++;
        return undefined;
      case 'safePrivate':
        if (entry.creator !== undefined && isSafePrivate(tagGroup(el.tag), entry.creator, el.tag & 0xff)) {
          this.report.privateKept++;
          if (el.vr === 'UI' && el.value?.length) return this.remapUidElement(el);
          return this.keep(el, ancestors, entry, cs, clean);
        }
        this.report.privateRemoved++;
        return undefined;
      case 'hash': {
        if (el.items) throw new DeidError('DEID_ERR_RULE_FAILED', 'hash on a sequence');
        if (el.vr === 'UI') return this.remapUidElement(el);
        const src = textValue(el, cs);
        if (!src) return el;
        this.report.hashed++;
        const max = MAX_LENGTH[el.vr] ?? 64;
        return this.text(el, (action.prefix + keyedHash(this.secret, src, action.length)).slice(0, Math.min(max, 64)), cs);
      }
      case 'set':
        if (el.items) throw new DeidError('DEID_ERR_RULE_FAILED', 'set on a sequence');
        this.report.set++;
        return { tag: el.tag, vr: el.vr, value: encodeValue(action.value, el.vr, cs) };
      case 'lookup': {
        const src = textValue(el, cs);
        const hit = action.table.get(src);
        if (hit === undefined) throw new DeidError('DEID_ERR_LOOKUP_MISS', `element ${entry.tag.toString(16).padStart(8, '0')}`);
        this.report.set++;
        return { tag: el.tag, vr: el.vr, value: encodeValue(hit, el.vr, cs) };
      }
      case 'dateShift':
        if (el.vr === 'DA' || el.vr === 'DT') return this.shiftDates(el);
        return el;
    }
  }

  /** De-identifies one data set level: every element, at every depth, gets exactly one action. */
  level(elements: Dataset, ancestors: readonly PathEntry[], inheritedCs: CharacterSet, clean: boolean): Element[] {
    const cs = findElement(elements, TAG.SpecificCharacterSet) ? charsetOf(elements) : inheritedCs;
    const creators = creatorsOf(elements, cs);
    const keptBlocks = new Set<number>();
    const droppedOverlays = new Set<number>();
    const out: Element[] = [];
    const needPath = this.profile.paths.length > 0;
    const gen = this.profile.generalize;
    const recorded = this.dispositions?.length ?? 0;
    for (const el of elements) {
      // Group lengths would be stale after any change, and are retired: drop them.
      if (isGroupLengthTag(el.tag)) {
        this.dispositions?.push({ tag: el.tag, depth: ancestors.length, disposition: 'removed' });
        continue;
      }
      if (isPrivateCreatorTag(el.tag)) {
        out.push(el); // decided once the block's elements are known
        continue;
      }
      const priv = isPrivateTag(el.tag);
      const blockKey = priv ? (tagGroup(el.tag) << 8) | privateBlock(el.tag) : 0;
      const creator = priv ? creators.get(blockKey) : undefined;
      const entry: PathEntry = { tag: el.tag, creator };
      let action = this.resolve(el.tag, needPath ? [...ancestors, entry] : undefined, creator);
      if (!action) action = this.unlisted(el.tag);
      else if (priv && action.kind === 'X') this.report.privateRemoved++;
      let result = this.apply(el, action, ancestors, entry, cs, clean);
      let generalized = false;
      if (gen && result && isGeneralized(el.tag, gen)) {
        const g = generalizeElement(result, gen);
        if ((generalized = g !== result)) this.report.generalized++;
        result = g;
      }
      if (this.dispositions) {
        this.dispositions.push(dispositionOf(el, action, result, creator, ancestors.length, generalized));
        if (action.kind === 'K' && result && (result.value?.length || result.items?.length) && this.profile.keptIdentifiers.has(el.tag)) this.keptIdentifiers.add(el.tag);
        // What a removed or emptied sequence held was seen, and went with it.
        if (el.items?.length && !result?.items?.length) this.recordRemoved(el.items, ancestors.length + 1, cs);
      }
      if (result) {
        out.push(result);
        if (priv) keptBlocks.add(blockKey);
      } else if (((el.tag & OVERLAY_DATA.mask) >>> 0) === OVERLAY_DATA.value) droppedOverlays.add(tagGroup(el.tag));
    }
    if (creators.size === 0 && droppedOverlays.size === 0) return out;
    if (this.dispositions && droppedOverlays.size) {
      for (let i = recorded; i < this.dispositions.length; i++) {
        const d = this.dispositions[i];
        if (d.depth === ancestors.length && droppedOverlays.has(tagGroup(d.tag))) this.dispositions[i] = { ...d, disposition: 'removed' };
      }
    }
    return out.filter(
      (el) =>
        (!isPrivateCreatorTag(el.tag) || keptBlocks.has((tagGroup(el.tag) << 8) | tagElement(el.tag))) &&
        // An overlay without its Overlay Data (60xx,3000) is an invalid Overlay Plane: its whole group goes.
        !droppedOverlays.has(tagGroup(el.tag)),
    );
  }

  private recordRemoved(items: readonly Item[], depth: number, inheritedCs: CharacterSet): void {
    for (const item of items) {
      const cs = findElement(item.elements, TAG.SpecificCharacterSet) ? charsetOf(item.elements) : inheritedCs;
      const creators = creatorsOf(item.elements, cs);
      for (const el of item.elements) {
        if (isPrivateCreatorTag(el.tag)) continue;
        const creator = isPrivateTag(el.tag) ? creators.get((tagGroup(el.tag) << 8) | privateBlock(el.tag)) : undefined;
        this.dispositions!.push({ tag: el.tag, ...(creator !== undefined ? { creator } : {}), depth, disposition: 'removed' });
        if (el.items) this.recordRemoved(el.items, depth + 1, cs);
      }
    }
  }

  private unlisted(tag: Tag): Action {
    if (!this.profile.removeUnlisted || STRUCTURAL(tag)) return { kind: 'K' };
    return STRUCTURAL_UIDS.has(tag) ? { kind: 'U' } : { kind: 'X' };
  }

  /** UIDs that some rule remaps, collected first so that every other reference to them is remapped too. */
  collectRemapped(elements: Dataset, ancestors: readonly PathEntry[], into: Set<string>): void {
    const needPath = this.profile.paths.length > 0;
    for (const el of elements) {
      if (el.items) {
        const path = [...ancestors, { tag: el.tag }];
        for (const item of el.items) this.collectRemapped(item.elements, path, into);
        continue;
      }
      if (el.vr !== 'UI' || !el.value?.length || isPrivateTag(el.tag)) continue;
      const a = this.resolve(el.tag, needPath ? [...ancestors, { tag: el.tag }] : undefined, undefined) ?? this.unlisted(el.tag);
      if ( (a.kind === 'U' || a.kind === 'D' || a.kind === 'hash')) {
        for (const v of rawString(el.value).split('\\')) if (v.trim() && !isRegistryUid(v.trim())) into.add(v.trim());
      }
    }
  }
}

/** The private creators of one data set level, by (group << 8 | block). */
function creatorsOf(elements: Dataset, cs: CharacterSet): Map<number, string> {
  const creators = new Map<number, string>();
  for (const el of elements) if (isPrivateCreatorTag(el.tag)) creators.set((tagGroup(el.tag) << 8) | tagElement(el.tag), textValue(el, cs).trim());
  return creators;
}

const isDate = (vr: string) => vr === 'DA' || vr === 'DT';

/** An element's disposition, from the action taken and the element it became (undefined: removed). */
function dispositionOf(el: Element, action: Action, result: Element | undefined, creator: string | undefined, depth: number, generalized: boolean): ElementDisposition {
  let disposition: Disposition;
  if (!result) disposition = 'removed';
  else if (generalized) disposition = 'replaced';
  else if (el.items) disposition = action.kind === 'Z' ? 'replaced' : action.kind === 'C' || action.kind === 'D' ? 'cleaned' : 'kept';
  else if (action.kind === 'K' || action.kind === 'C' || action.kind === 'safePrivate' || action.kind === 'dateShift') {
    // Keep and clean still remap references, shift dates and clean text inside cleaned content.
    if (result === el) disposition = action.kind === 'C' && isTextVR(el.vr) && el.vr !== 'UI' && !isDate(el.vr) ? 'cleaned' : 'kept';
    else disposition = el.vr === 'UI' ? 'remapped' : isDate(el.vr) ? 'replaced' : 'cleaned';
  } else disposition = el.vr === 'UI' && (action.kind === 'U' || action.kind === 'D' || action.kind === 'hash') ? 'remapped' : 'replaced';
  if (creator === undefined) return { tag: el.tag, depth, disposition };
  const keptBy = !result ? undefined : action.kind === 'safePrivate' ? safePrivateSource(tagGroup(el.tag), creator, el.tag & 0xff) : 'rule';
  return { tag: el.tag, creator, depth, disposition, ...(keptBy ? { keptBy } : {}) };
}

/** The source UIDs a profile remaps (what `deid verify` checks for when it has only the two files). */
export function uidsRemappedBy(src: DicomFile, profile: CompiledProfile): Set<string> {
  const out = new Set<string>();
  if (profile.options.has('retain-uids')) return out;
  new HeaderRun(profile, new Uint8Array(0), new IdentifierMatcher([]), out, () => 0).collectRemapped(src.dataset, [], out);
  const metaUid = rawString(src.meta.find((e) => e.tag === TAG.MediaStorageSOPInstanceUID)?.value);
  if (metaUid && !isRegistryUid(metaUid)) out.add(metaUid);
  return out;
}

function marker(tag: Tag, vr: string, s: string): Element {
  return { tag, vr, value: asciiBytes(s, vr) };
}

function codeItem(value: string, scheme: string, meaning: string): Item {
  return {
    undefinedLength: false,
    elements: [marker(TAG.CodeValue, 'SH', value), marker(TAG.CodingSchemeDesignator, 'SH', scheme), marker(TAG.CodeMeaning, 'LO', meaning)],
  };
}

/** PS3.15 E.1.1 (Annex E) marking: identity removed, by which method and options, and what happened to dates. */
function markDeidentified(ds: Element[], profile: CompiledProfile, datesShifted: boolean): Element[] {
  const options = [...profile.options].sort();
  const method = [`DEID ${profile.name}`, ...options].map((s) => s.slice(0, 64)).join('\\');
  const longitudinal = profile.options.has('retain-long-full-dates') ? 'UNMODIFIED' : datesShifted ? 'MODIFIED' : 'REMOVED';
  return withElements(ds, [
    marker(TAG.PatientIdentityRemoved, 'CS', 'YES'),
    marker(TAG.DeidentificationMethod, 'LO', method),
    { tag: TAG.DeidentificationMethodCodeSequence, vr: 'SQ', undefinedLength: false, items: profile.methodCodes.map((c) => codeItem(c.value, c.scheme, c.meaning)) },
    marker(TAG.LongitudinalTemporalInformationModified, 'CS', longitudinal),
  ]);
}

/** The patient's date offset in days (keyed by PatientID, within the profile's range). */
export function patientDateOffset(src: DicomFile, ctx: HeaderContext): number {
  const patientEl = findElement(src.dataset, TAG.PatientID);
  const { minDays, maxDays } = ctx.profile.dateShift;
  return dateOffsetDays(ctx.secret, patientEl ? textValue(patientEl, charsetOf(src.dataset)) : '', minDays, maxDays);
}

/**
 * The header stage: applies the profile to every element at every depth and returns a new file
 * (the input is never changed). Throws a coded DeidError for anything it cannot handle safely.
 */
export function deidentifyHeader(src: DicomFile, ctx: HeaderContext): HeaderResult {
  const sopClass = rawString(findElement(src.dataset, TAG.SOPClassUID)?.value) || rawString(src.meta.find((e) => e.tag === TAG.MediaStorageSOPClassUID)?.value);
  if (sopClass === DICOMDIR_SOP_CLASS) throw new DeidError('DEID_ERR_DICOMDIR');
  const sopInstance = rawString(findElement(src.dataset, TAG.SOPInstanceUID)?.value);
  if (!sopInstance) throw new DeidError('DEID_ERR_MISSING_SOP_INSTANCE_UID');
  // Fail closed: an image that says it has text burned into its pixels never leaves uncleaned by accident.
  const p = ctx.profile;
  if (!p.options.has('clean-pixel-data') && !p.passBurnedInAnnotation && rawString(findElement(src.dataset, TAG.BurnedInAnnotation)?.value).trim().toUpperCase() === 'YES') {
    throw new DeidError('DEID_ERR_BURNED_IN');
  }

  const identifiers = collectIdentifiers(src.dataset);
  const cs = charsetOf(src.dataset);
  let offset: number | undefined;
  const dateOffset = () => (offset ??= patientDateOffset(src, ctx));

  const remapSet = uidsRemappedBy(src, ctx.profile);
  const run = new HeaderRun(ctx.profile, ctx.secret, new IdentifierMatcher(identifiers), remapSet, dateOffset, ctx.dispositions);
  let dataset = run.level(src.dataset, [], cs, false);
  const modified = ctx.profile.options.has('retain-long-modified-dates');
  if (modified) run.report.dateOffsetDays = dateOffset();
  dataset = markDeidentified(dataset, ctx.profile, modified);
  return {
    file: { meta: [], dataset, transferSyntaxUID: src.transferSyntaxUID, encoding: src.encoding },
    identifiers,
    remappedUids: remapSet,
    report: run.report,
    ...(run.dispositions ? { dispositions: run.dispositions } : {}),
    ...(run.keptIdentifiers.size ? { keptIdentifiers: [...run.keptIdentifiers].map((tag) => ({ tag, why: ctx.profile.keptIdentifiers.get(tag)! })) } : {}),
  };
}
