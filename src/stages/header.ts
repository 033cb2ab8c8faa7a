import { encodeText, type CharacterSet } from '../dicom/charset.js';
import { repeatingForKeyword } from '../dicom/dictionary.js';
import { findElement, withElements, type Dataset, type DicomFile, type Element, type Item } from '../dicom/element.js';
import { isUidAttribute } from '../dicom/dictionary.js';
import { TAG, formatTag, isGroupLengthTag, isPrivateCreatorTag, isPrivateTag, privateBlock, tagElement, tagGroup, type Tag } from '../dicom/tag.js';
import { isValidUidList } from '../dicom/uid.js';
import { withDictionaryVRsOf } from '../dicom/unknown-vr.js';
import { asciiBytes, encodeValue, padEven, rawString, textValue, uidBytes } from '../dicom/values.js';
import { MAX_LENGTH, isTextVR, usesCharset } from '../dicom/vr.js';
import { burnedInPolicy } from './burned-in.js';
import { DeidError } from '../errors.js';
import { dateOffsetDays, isRegistryUid, keyedHash, remapUid } from '../keyed.js';
import type { Action, CompiledProfile } from '../profiles/compile.js';
import { keptTagsOf } from '../profiles/kept-identifiers.js';
import { isSafePrivate, safePrivateSource } from '../profiles/safe-private.js';
import type { PathEntry } from '../profiles/selector.js';
import { generalizeElement, isGeneralized } from './generalize.js';
import { matcherFor } from './identifier-matcher.js';
import { charsetOf, type Identifier } from './identifiers.js';
import { RuleLookup, keepsValue } from './rule-lookup.js';
import { DispositionLog, type Disposition, type ElementDispositions, type KeptBy } from './element-dispositions.js';
import { ValueCollector, creatorsOf, remappedUidsOf, sequenceFate } from './source-values.js';

export interface HeaderContext {
  readonly profile: CompiledProfile;
  readonly secret: Uint8Array;
  /** Also return what happened to every element (for a tag inventory); off by default, as it costs a record per element. */
  readonly dispositions?: boolean;
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
  /** Without clean-pixel-data: that the image's pixels were not examined, and why they may pass. */
  pixels?: string;
}

export interface HeaderResult {
  readonly file: DicomFile;
  /** Identifying values of the source and the values of every attribute replaced, for the quality check. */
  readonly identifiers: readonly Identifier[];
  /** Source UIDs that were remapped and so must not appear in the output. */
  readonly remappedUids: ReadonlySet<string>;
  readonly report: HeaderReport;
  /** What the profile did to every element of the source at every depth (private creators aside), when the context asks. */
  readonly dispositions?: ElementDispositions;
  /** Attributes of this object that the profile kept although Table E.1-1 removes or replaces them ("(0010,0030) Patient's Birth Date"). */
  readonly keptIdentifiers?: readonly string[];
}

const DICOMDIR_SOP_CLASS = '1.2.840.10008.1.3.10';

/** VR-valid dummy values for D. */
const DUMMY: Record<string, string> = {
  AE: 'ANONYMOUS', AS: '000Y', CS: 'ANONYMIZED', DA: '19000101', DT: '19000101000000', TM: '000000', DS: '0', IS: '0',
  LO: 'ANONYMIZED', LT: 'ANONYMIZED', SH: 'ANONYMIZED', ST: 'ANONYMIZED', UC: 'ANONYMIZED', UT: 'ANONYMIZED',
  PN: 'ANONYMOUS', UR: 'urn:anonymized',
};
export const DUMMY_VALUES: ReadonlySet<string> = new Set(Object.values(DUMMY));

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

class HeaderRun {
  readonly report: HeaderReport = { removed: 0, emptied: 0, dummied: 0, remapped: 0, cleaned: 0, shifted: 0, hashed: 0, set: 0, privateKept: 0, privateRemoved: 0, generalized: 0 };
  /** Filled only when the context asks for dispositions. */
  readonly dispositions?: DispositionLog;
  private readonly modifiedDates: boolean;
  private readonly lookup: RuleLookup;
  /** Tags of the attributes this profile keeps against Table E.1-1, for the report of each object. */
  private readonly keptAgainstTable: ReadonlyMap<Tag, string>;
  /** The kept attributes this object holds (keptAgainstTable's names), in the order met. */
  keptIdentifiers?: string[];

  /** The source's values the output must not hold, gathered as the walk goes: for the quality check and for cleaning. */
  readonly values: ValueCollector;
  /**
   * Text to clean, once the walk has gathered every identifier: cleaned then, in place (finishCleaning),
   * with the index of its disposition when they are recorded.
   */
  private toClean?: Map<Element, { readonly cs: CharacterSet; disposition?: number }>;

  constructor(
    private readonly profile: CompiledProfile,
    private readonly secret: Uint8Array,
    private readonly remapSet: Set<string>,
    /** The patient's date offset, derived only when a date is shifted (an HMAC per object otherwise). */
    private readonly dateOffset: () => number,
    recordDispositions = false,
  ) {
    this.values = new ValueCollector(profile);
    this.modifiedDates = profile.options.has('retain-long-modified-dates');
    this.lookup = new RuleLookup(profile);
    this.keptAgainstTable = keptTagsOf(profile);
    if (recordDispositions) this.dispositions = new DispositionLog();
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

  /**
   * Text is cleaned of every identifying value of the object, so only after the walk has seen them all:
   * the element goes into the output as a copy of its own, which finishCleaning finds and replaces.
   */
  private cleanText(el: Element, cs: CharacterSet): Element {
    if (!el.value?.length || !isTextVR(el.vr) || el.vr === 'UI') return el;
    const placeholder: Element = { tag: el.tag, vr: el.vr, value: el.value };
    (this.toClean ??= new Map()).set(placeholder, { cs });
    return placeholder;
  }

  /** Cleans the text set aside during the walk, in the output; returns the identifiers (and their matcher). */
  finishCleaning(dataset: Element[]): Identifier[] {
    const identifiers = this.values.identifiers();
    if (!this.toClean) return identifiers;
    const matcher = matcherFor(identifiers);
    const cleaned = new Map<Element, Element>();
    for (const [el, { cs, disposition }] of this.toClean) {
      const before = textValue(el, cs);
      const after = matcher.clean(before);
      if (after === before) continue;
      this.report.cleaned++;
      cleaned.set(el, this.text(el, after, cs));
      if (disposition !== undefined) this.dispositions!.redispose(disposition, 'cleaned');
    }
    if (cleaned.size) replaceElements(dataset, cleaned);
    return identifiers;
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
        this.dispositions?.add(el.tag, undefined, ancestors.length, 'removed');
        continue;
      }
      if (isPrivateCreatorTag(el.tag)) {
        out.push(el); // decided once the block's elements are known
        continue;
      }
      const priv = isPrivateTag(el.tag);
      const blockKey = priv ? (tagGroup(el.tag) << 8) | privateBlock(el.tag) : 0;
      const creator = priv ? creators?.get(blockKey) : undefined;
      const entry: PathEntry = { tag: el.tag, creator };
      if (!priv) checkUid(el);
      let action = this.lookup.resolve(el.tag, needPath ? [...ancestors, entry] : undefined, creator);
      if (!action) action = this.lookup.unlisted(el.tag);
      else if (priv && action.kind === 'X') this.report.privateRemoved++;
      if (this.keptAgainstTable.size && el.value?.length && this.keptAgainstTable.has(el.tag) && keepsValue(action, el.tag, el.vr, creator, false)) {
        const kept = (this.keptIdentifiers ??= []);
        const name = this.keptAgainstTable.get(el.tag)!;
        if (!kept.includes(name)) kept.push(name);
      }
      if (!el.items) this.values.element(el, action, creator, cs);
      else this.values.sequence(el, sequenceFate(action, el.tag, creator), cs);
      let result = this.apply(el, action, ancestors, entry, cs, clean);
      let generalized = false;
      if (gen && result && isGeneralized(el.tag, gen)) {
        const g = generalizeElement(result, gen);
        if ((generalized = g !== result)) this.report.generalized++;
        result = g;
      }
      if (this.dispositions) {
        // Text set aside for cleaning counts as kept until finishCleaning knows whether it changed.
        // (A placeholder is a copy of the element with its value: nothing else need be looked up.)
        const pending = result && result !== el && result.value === el.value ? this.toClean?.get(result) : undefined;
        const became = pending ? el : result;
        const i = this.dispositions.add(el.tag, creator, ancestors.length, dispositionOf(el, action, became, generalized), creator === undefined ? undefined : whyKept(el, action, became, creator));
        if (pending) pending.disposition = i;
        // What a removed or emptied sequence held was seen, and went with it.
        if (el.items?.length && !result?.items?.length) this.recordRemoved(el.items, ancestors.length + 1, cs);
      }
      if (result) {
        out.push(result);
        if (priv) keptBlocks.add(blockKey);
      } else if (((el.tag & OVERLAY_DATA.mask) >>> 0) === OVERLAY_DATA.value) droppedOverlays.add(tagGroup(el.tag));
    }
    if (!creators && droppedOverlays.size === 0) return out;
    if (droppedOverlays.size) this.dispositions?.removeGroups(recorded, ancestors.length, droppedOverlays);
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
        const creator = isPrivateTag(el.tag) ? creators?.get((tagGroup(el.tag) << 8) | privateBlock(el.tag)) : undefined;
        this.dispositions!.add(el.tag, creator, depth, 'removed');
        if (el.items) this.recordRemoved(el.items, depth + 1, cs);
      }
    }
  }
}

/** Replaces elements by identity, at any depth, in a data set the header stage built (its arrays are its own). */
function replaceElements(dataset: Element[], by: ReadonlyMap<Element, Element>): void {
  for (let i = 0; i < dataset.length; i++) {
    const el = dataset[i];
    const replacement = by.get(el);
    if (replacement) dataset[i] = replacement;
    else if (el.items) for (const item of el.items) replaceElements(item.elements as Element[], by);
  }
}

const isDate = (vr: string) => vr === 'DA' || vr === 'DT';

/** An element's disposition, from the action taken and the element it became (undefined: removed). */
function dispositionOf(el: Element, action: Action, result: Element | undefined, generalized: boolean): Disposition {
  let disposition: Disposition;
  if (!result) disposition = 'removed';
  else if (generalized) disposition = 'replaced';
  else if (el.items) disposition = action.kind === 'Z' ? 'replaced' : action.kind === 'C' || action.kind === 'D' ? 'cleaned' : 'kept';
  else if (action.kind === 'K' || action.kind === 'C' || action.kind === 'safePrivate' || action.kind === 'dateShift') {
    // Keep and clean still remap references, shift dates and clean text inside cleaned content.
    if (result === el) disposition = action.kind === 'C' && isTextVR(el.vr) && el.vr !== 'UI' && !isDate(el.vr) ? 'cleaned' : 'kept';
    else disposition = el.vr === 'UI' ? 'remapped' : isDate(el.vr) ? 'replaced' : 'cleaned';
  } else disposition = el.vr === 'UI' && (action.kind === 'U' || action.kind === 'D' || action.kind === 'hash') ? 'remapped' : 'replaced';
  return disposition;
}

/** Why a private element was kept (undefined: it was not). */
function whyKept(el: Element, action: Action, result: Element | undefined, creator: string): KeptBy | undefined {
  if (!result) return undefined;
  return action.kind === 'safePrivate' ? safePrivateSource(tagGroup(el.tag), creator, el.tag & 0xff) : 'rule';
}

/**
 * A UID attribute must be a UI element whose values are UIDs: anything else would pass through a remap
 * as opaque bytes (a SOP Instance UID coded US came out as zeros). Empty values are Type 2 blanks.
 */
function checkUid(el: Element): void {
  if (el.items) return;
  if (el.vr !== 'UI') {
    if (isUidAttribute(el.tag)) throw new DeidError('DEID_ERR_BAD_UID', `${formatTag(el.tag)} has VR ${el.vr.replace(/[^A-Z]/g, '?')}`);
    return;
  }
  if (el.value?.length && !isValidUidList(el.value)) throw new DeidError('DEID_ERR_BAD_UID', `${formatTag(el.tag)} value is not a UID`);
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
export function deidentifyHeader(input: DicomFile, ctx: HeaderContext): HeaderResult {
  const src = withDictionaryVRsOf(input);
  // The two UIDs the output is identified and filed by are checked before anything reads them.
  const sopClassEl = findElement(src.dataset, TAG.SOPClassUID);
  if (sopClassEl) checkUid(sopClassEl);
  const sopClass = rawString(sopClassEl?.value) || rawString(src.meta.find((e) => e.tag === TAG.MediaStorageSOPClassUID)?.value);
  if (sopClass === DICOMDIR_SOP_CLASS) throw new DeidError('DEID_ERR_DICOMDIR');
  const sopInstanceEl = findElement(src.dataset, TAG.SOPInstanceUID);
  if (!sopInstanceEl) throw new DeidError('DEID_ERR_MISSING_SOP_INSTANCE_UID');
  checkUid(sopInstanceEl);
  if (!rawString(sopInstanceEl.value)) throw new DeidError('DEID_ERR_BAD_UID', `${formatTag(TAG.SOPInstanceUID)} is empty`);
  // Fail closed: an image that has, or is likely to have, text burned into its pixels never leaves uncleaned by accident.
  const pixelNote = burnedInPolicy(src.dataset, ctx.profile);

  const remappedUids = remappedUidsOf(src, ctx.profile);
  const cs = charsetOf(src.dataset);
  let offset: number | undefined;
  const dateOffset = () => (offset ??= patientDateOffset(src, ctx));

  const run = new HeaderRun(ctx.profile, ctx.secret, remappedUids, dateOffset, ctx.dispositions);
  let dataset = run.level(src.dataset, [], cs, false);
  const identifiers = run.finishCleaning(dataset);
  const modified = ctx.profile.options.has('retain-long-modified-dates');
  if (modified) run.report.dateOffsetDays = dateOffset();
  if (pixelNote) run.report.pixels = pixelNote;
  dataset = markDeidentified(dataset, ctx.profile, modified);
  return {
    file: { meta: [], dataset, transferSyntaxUID: src.transferSyntaxUID, encoding: src.encoding },
    identifiers,
    remappedUids,
    report: run.report,
    ...(run.dispositions ? { dispositions: run.dispositions.packed() } : {}),
    ...(run.keptIdentifiers ? { keptIdentifiers: run.keptIdentifiers } : {}),
  };
}
