import { encodeText, type CharacterSet } from '../dicom/charset.js';
import { findElement, withElements, type Dataset, type DicomFile, type Element, type Item } from '../dicom/element.js';
import { isUidAttribute } from '../dicom/dictionary.js';
import { TAG, formatTag, isGroupLengthTag, isPrivateCreatorTag, isPrivateTag, privateBlock, tagElement, tagGroup, type Tag } from '../dicom/tag.js';
import { isValidUidList } from '../dicom/uid.js';
import { withDictionaryVRsOf } from '../dicom/unknown-vr.js';
import { asciiBytes, encodeValue, padEven, rawString, textValue, uidBytes } from '../dicom/values.js';
import { MAX_LENGTH, isTextVR, usesCharset } from '../dicom/vr.js';
import { DeidError } from '../errors.js';
import { dateOffsetDays, isRegistryUid, keyedHash, remapUid } from '../keyed.js';
import type { Action, CompiledProfile } from '../profiles/compile.js';
import { keptTagsOf } from '../profiles/kept-identifiers.js';
import { isSafePrivate } from '../profiles/safe-private.js';
import type { PathEntry } from '../profiles/selector.js';
import { matcherFor } from './identifier-matcher.js';
import { charsetOf, type Identifier } from './identifiers.js';
import { RuleLookup, keepsValue } from './rule-lookup.js';
import { FactsCollector, remappedUidsOf, sequenceFate } from './source-facts.js';

export interface HeaderContext {
  readonly profile: CompiledProfile;
  readonly secret: Uint8Array;
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
  dateOffsetDays?: number;
  /** Attributes of this object that the profile kept although Table E.1-1 removes or replaces them. */
  keptIdentifiers?: string[];
}

export interface HeaderResult {
  readonly file: DicomFile;
  /** Identifying values of the source and the values of every attribute replaced, for the quality check. */
  readonly identifiers: readonly Identifier[];
  /** Source UIDs that were remapped and so must not appear in the output. */
  readonly remappedUids: ReadonlySet<string>;
  readonly report: HeaderReport;
}

const DICOMDIR_SOP_CLASS = '1.2.840.10008.1.3.10';

/** VR-valid dummy values for D. */
const DUMMY: Record<string, string> = {
  AE: 'ANONYMOUS', AS: '000Y', CS: 'ANONYMIZED', DA: '19000101', DT: '19000101000000', TM: '000000', DS: '0', IS: '0',
  LO: 'ANONYMIZED', LT: 'ANONYMIZED', SH: 'ANONYMIZED', ST: 'ANONYMIZED', UC: 'ANONYMIZED', UT: 'ANONYMIZED',
  PN: 'ANONYMOUS', UR: 'urn:anonymized',
};
export const DUMMY_VALUES: ReadonlySet<string> = new Set(Object.values(DUMMY));

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
  readonly report: HeaderReport = { removed: 0, emptied: 0, dummied: 0, remapped: 0, cleaned: 0, shifted: 0, hashed: 0, set: 0, privateKept: 0, privateRemoved: 0 };
  private readonly modifiedDates: boolean;
  private readonly lookup: RuleLookup;
  /** Tags of the attributes this profile keeps against Table E.1-1, for the report of each object. */
  private readonly keptAgainstTable: ReadonlyMap<Tag, string>;

  /** The source's identifiers, gathered as the walk goes (FactsCollector) for the quality check and for cleaning. */
  readonly facts: FactsCollector;
  /** Text to clean, once the walk has gathered every identifier: cleaned then, in place (finishCleaning). */
  private toClean?: Map<Element, CharacterSet>;

  constructor(
    private readonly profile: CompiledProfile,
    private readonly secret: Uint8Array,
    private readonly remapSet: Set<string>,
    /** The patient's date offset, derived only when a date is shifted (an HMAC per object otherwise). */
    private readonly dateOffset: () => number,
  ) {
    this.facts = new FactsCollector(profile);
    this.modifiedDates = profile.options.has('retain-long-modified-dates');
    this.lookup = new RuleLookup(profile);
    this.keptAgainstTable = keptTagsOf(profile);
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
    (this.toClean ??= new Map()).set(placeholder, cs);
    return placeholder;
  }

  /** Cleans the text set aside during the walk, in the output; returns the identifiers (and their matcher). */
  finishCleaning(dataset: Element[]): Identifier[] {
    const identifiers = this.facts.identifiers();
    if (!this.toClean) return identifiers;
    const matcher = matcherFor(identifiers);
    const cleaned = new Map<Element, Element>();
    for (const [el, cs] of this.toClean) {
      const before = textValue(el, cs);
      const after = matcher.clean(before);
      if (after === before) continue;
      this.report.cleaned++;
      cleaned.set(el, this.text(el, after, cs));
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
    const creators = new Map<number, string>();
    for (const el of elements) if (isPrivateCreatorTag(el.tag)) creators.set((tagGroup(el.tag) << 8) | tagElement(el.tag), textValue(el, cs).trim());
    const keptBlocks = new Set<number>();
    const droppedOverlays = new Set<number>();
    const out: Element[] = [];
    const needPath = this.profile.paths.length > 0;
    for (const el of elements) {
      // Group lengths would be stale after any change, and are retired: drop them.
      if (isGroupLengthTag(el.tag)) continue;
      if (isPrivateCreatorTag(el.tag)) {
        out.push(el); // decided once the block's elements are known
        continue;
      }
      const priv = isPrivateTag(el.tag);
      const blockKey = priv ? (tagGroup(el.tag) << 8) | privateBlock(el.tag) : 0;
      const creator = priv ? creators.get(blockKey) : undefined;
      const entry: PathEntry = { tag: el.tag, creator };
      if (!priv) checkUid(el);
      let action = this.lookup.resolve(el.tag, needPath ? [...ancestors, entry] : undefined, creator);
      if (!action) action = this.lookup.unlisted(el.tag);
      else if (priv && action.kind === 'X') this.report.privateRemoved++;
      if (this.keptAgainstTable.size && el.value?.length && this.keptAgainstTable.has(el.tag) && keepsValue(action, el.tag, el.vr, creator, false)) {
        const kept = (this.report.keptIdentifiers ??= []);
        const name = this.keptAgainstTable.get(el.tag)!;
        if (!kept.includes(name)) kept.push(name);
      }
      if (!el.items) this.facts.element(el, action, creator, cs);
      else this.facts.sequence(el, sequenceFate(action, el.tag, creator), cs);
      const result = this.apply(el, action, ancestors, entry, cs, clean);
      if (result) {
        out.push(result);
        if (priv) keptBlocks.add(blockKey);
      } else if (((el.tag & 0xff01ffff) >>> 0) === 0x60003000) droppedOverlays.add(tagGroup(el.tag));
    }
    if (creators.size === 0 && droppedOverlays.size === 0) return out;
    return out.filter(
      (el) =>
        (!isPrivateCreatorTag(el.tag) || keptBlocks.has((tagGroup(el.tag) << 8) | tagElement(el.tag))) &&
        // An overlay without its Overlay Data (60xx,3000) is an invalid Overlay Plane: its whole group goes.
        !droppedOverlays.has(tagGroup(el.tag)),
    );
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
    elements: [marker(0x00080100, 'SH', value), marker(0x00080102, 'SH', scheme), marker(0x00080104, 'LO', meaning)],
  };
}

/** PS3.15 E.1.1 (Annex E) marking: identity removed, by which method and options, and what happened to dates. */
function markDeidentified(ds: Element[], profile: CompiledProfile, datesShifted: boolean): Element[] {
  const options = [...profile.options].sort();
  const method = [`DEID ${profile.name}`, ...options].map((s) => s.slice(0, 64)).join('\\');
  const longitudinal = profile.options.has('retain-long-full-dates') ? 'UNMODIFIED' : datesShifted ? 'MODIFIED' : 'REMOVED';
  return withElements(ds, [
    marker(0x00120062, 'CS', 'YES'),
    marker(0x00120063, 'LO', method),
    { tag: 0x00120064, vr: 'SQ', undefinedLength: false, items: profile.methodCodes.map((c) => codeItem(c.value, c.scheme, c.meaning)) },
    marker(0x00280303, 'CS', longitudinal),
  ]);
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
  // Fail closed: an image that says it has text burned into its pixels never leaves uncleaned by accident.
  const p = ctx.profile;
  if (!p.options.has('clean-pixel-data') && !p.passBurnedInAnnotation && rawString(findElement(src.dataset, 0x00280301)?.value).trim().toUpperCase() === 'YES') {
    throw new DeidError('DEID_ERR_BURNED_IN');
  }

  const remappedUids = remappedUidsOf(src, ctx.profile);
  const cs = charsetOf(src.dataset);
  let offset: number | undefined;
  const dateOffset = () => {
    if (offset === undefined) {
      const patientEl = findElement(src.dataset, TAG.PatientID);
      const { minDays, maxDays } = ctx.profile.dateShift;
      offset = dateOffsetDays(ctx.secret, patientEl ? textValue(patientEl, cs) : '', minDays, maxDays);
    }
    return offset;
  };

  const run = new HeaderRun(ctx.profile, ctx.secret, remappedUids, dateOffset);
  let dataset = run.level(src.dataset, [], cs, false);
  const identifiers = run.finishCleaning(dataset);
  const modified = ctx.profile.options.has('retain-long-modified-dates');
  if (modified) run.report.dateOffsetDays = dateOffset();
  dataset = markDeidentified(dataset, ctx.profile, modified);
  return {
    file: { meta: [], dataset, transferSyntaxUID: src.transferSyntaxUID, encoding: src.encoding },
    identifiers,
    remappedUids,
    report: run.report,
  };
}
