import { latin1, type CharacterSet } from '../dicom/charset.js';
import { findElement, type Dataset, type DicomFile, type Element } from '../dicom/element.js';
import { readDicom } from '../dicom/reader.js';
import { TAG, formatTag, isPrivateCreatorTag, isPrivateTag, privateBlock, tagGroup, type Tag } from '../dicom/tag.js';
import { rawString, textValue } from '../dicom/values.js';
import { isTextVR } from '../dicom/vr.js';
import { DeidError } from '../errors.js';
import type { CompiledProfile } from '../profiles/compile.js';
import type { PathEntry } from '../profiles/selector.js';
import { DUMMY_VALUES } from './header.js';
import { EXCUSABLE_KINDS, matcherFor, type Hit, type Identifier, type IdentifierKind } from './identifier-matcher.js';
import { charsetOf } from './identifiers.js';
import { RuleLookup, keepsValue } from './rule-lookup.js';
import { sourceValues } from './source-values.js';

/** A finding of the quality check. It names where and what kind, never the value itself. */
export interface Finding {
  readonly code: 'DEID_ERR_VERIFY_LEAK' | 'DEID_ERR_VERIFY_UID';
  readonly path: string;
  readonly kind: IdentifierKind | 'uid';
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly findings: readonly Finding[];
  readonly elementsScanned: number;
  /** Values looked for: identifiers proper and replaced values, within the skip rule. */
  readonly identifiersChecked: number;
  readonly uidsChecked: number;
}

export interface VerifyInput {
  /** Identifying values of the source (from the header stage, or collected again by `deid verify`). */
  readonly identifiers: readonly Identifier[];
  /** Source UIDs that must not remain (empty when retain-uids is on). */
  readonly remappedUids: ReadonlySet<string>;
  readonly profile: CompiledProfile;
}

/** Kinds looked for per VR family: names are never in code strings, IDs never in numbers. */
const KINDS_FOR_CS = new Set<IdentifierKind>(['id']);
const KINDS_FOR_DATES = new Set<IdentifierKind>(['date', 'time']);
const NUMERIC_TEXT = new Set(['DS', 'IS']);
/**
 * Replaced values (never identifiers proper) that a kept element may hold as its own whole value: a
 * kept ContentTime that a removed InstanceCreationTime shares, a kept GantryID equal to a removed
 * serial number. The profile writes that element out on purpose, so the value is not a leak there.
 */
const OWN_VALUE_KINDS: ReadonlySet<IdentifierKind> = new Set(['time', 'device']);
/** Our own marking elements: their text is fixed and not from the source. */
const MARKING = new Set<Tag>([TAG.PatientIdentityRemoved, TAG.DeidentificationMethod, TAG.DeidentificationMethodCodeSequence, TAG.LongitudinalTemporalInformationModified]);

interface OutputValues {
  /** The values the profile writes itself (upper case): the values it sets, and our dummies. */
  readonly values: ReadonlySet<string>;
  readonly lengths: ReadonlySet<number>;
  /** Attributes a rule keeps (K): their identifiers are output on purpose. */
  readonly keptTags: ReadonlySet<number>;
}

/** Per profile, not per object. */
const outputValuesOf = new WeakMap<CompiledProfile, OutputValues>();
function outputValues(p: CompiledProfile): OutputValues {
  let out = outputValuesOf.get(p);
  if (!out) {
    const values = new Set<string>(DUMMY_VALUES);
    const keptTags = new Set<number>();
    for (const [tag, r] of p.byTag) {
      if (r.action.kind === 'set') values.add(r.action.value.toUpperCase());
      if (r.action.kind === 'K') keptTags.add(tag);
    }
    outputValuesOf.set(p, (out = { values, lengths: new Set([...values].map((v) => v.length)), keptTags }));
  }
  return out;
}

/** Identifiers a profile deliberately outputs (kept attributes, set values, dummies) are not leaks. */
function identifiersToCheck(input: VerifyInput): readonly Identifier[] {
  const p = input.profile;
  const own = outputValues(p);
  const wanted = (id: Identifier) =>
    (own.keptTags.size === 0 || !own.keptTags.has(id.tag)) && (!own.lengths.has(id.value.length) || !own.values.has(id.value.toUpperCase()));
  // The same array when nothing is left out, so that the header stage's matcher serves again.
  return input.identifiers.every(wanted) ? input.identifiers : input.identifiers.filter(wanted);
}

/** Where a sequence item sits, for the path rules of an excuse: built into a path only for a finding. */
interface Ancestor {
  readonly tag: Tag;
  readonly level: Dataset;
  readonly cs: CharacterSet;
  readonly parent?: Ancestor;
}

function pathOf(a: Ancestor | undefined): PathEntry[] {
  const out: PathEntry[] = [];
  for (; a; a = a.parent) out.unshift({ tag: a.tag, creator: isPrivateTag(a.tag) ? creatorOf(a.level, a.tag, a.cs) : undefined });
  return out;
}

/**
 * The quality check, fail closed: re-parses the output bytes and scans every text-like element at
 * every depth (kept private elements and UN included) for the source's identifying values and the values
 * of every attribute the profile removed or replaced, and every element for the source UIDs that were
 * remapped.
 */
export function verifyOutput(output: Uint8Array, input: VerifyInput): VerifyReport {
  let file: DicomFile;
  try {
    file = readDicom(output);
  } catch (e) {
    throw new DeidError('DEID_ERR_VERIFY_REPARSE', e instanceof DeidError ? e.code : 'parse failed');
  }
  return verifyDataset(file.dataset, input, file.meta);
}

/** The quality check of an output against its source, when only the two are at hand (`deid verify`, the verify stage). */
export function verifyAgainstSource(source: DicomFile, output: Uint8Array, profile: CompiledProfile): VerifyReport {
  return verifyOutput(output, { ...sourceValues(source, profile), profile });
}

/** The creator of a private element's block at its level (looked up only for a finding). */
function creatorOf(elements: Dataset, tag: Tag, cs: CharacterSet): string | undefined {
  const creatorTag = ((tagGroup(tag) << 16) | privateBlock(tag)) >>> 0;
  const el = elements.find((e) => e.tag === creatorTag && isPrivateCreatorTag(e.tag));
  return el ? textValue(el, cs).trim() : undefined;
}

export function verifyDataset(dataset: Dataset, input: VerifyInput, meta: Dataset = []): VerifyReport {
  const ids = identifiersToCheck(input);
  const matcher = matcherFor(ids);
  const uids = input.remappedUids;
  const findings: Finding[] = [];
  const lookup = new RuleLookup(input.profile);
  const datesShifted = input.profile.options.has('retain-long-modified-dates');
  let scanned = 0;

  /**
   * A replaced description, removed private value or other replaced value is not reported inside an
   * element the profile keeps (a code meaning that quotes a removed description is there because the
   * standard keeps that element; cleaned text had these very values removed, or keeps them because the
   * object holds them in a kept element). Identifiers proper, dates, times and device identity are
   * reported wherever they are, except times and device identity as the whole own value of an element
   * the profile writes out as the source had it (OWN_VALUE_KINDS); everything is reported in the
   * elements the header stage removed or wrote.
   */
  const excused = (hit: Hit, text: string, el: Element, level: Dataset, ancestors: Ancestor | undefined, cs: CharacterSet): boolean => {
    const excusable = EXCUSABLE_KINDS.has(hit.kind);
    if (!excusable && !(OWN_VALUE_KINDS.has(hit.kind) && isOwnValue(el, text, hit))) return false;
    const creator = isPrivateTag(el.tag) ? creatorOf(level, el.tag, cs) : undefined;
    const path = input.profile.paths.length ? [...pathOf(ancestors), { tag: el.tag, creator }] : undefined;
    const action = lookup.effective(el.tag, path, creator);
    // A date shift (or a kept date-time under retain-long-modified-dates) writes a date-time's time as the source had it.
    if (hit.kind === 'time' && el.vr === 'DT') return action.kind === 'dateShift' || keepsValue(action, el.tag, el.vr, creator, false);
    return keepsValue(action, el.tag, el.vr, creator, datesShifted);
  };

  // Paths are built only for findings: the walk visits every element of every output.
  // Source UIDs almost always have a dot; then text without one cannot hold any, and is not split.
  const dotted = [...uids].every((u) => u.includes('.'));
  const checkUidText = (text: string, path: () => string) => {
    if (uids.size === 0 || (dotted && !text.includes('.'))) return;
    for (const v of text.split(/[\\\s]+/)) if (uids.has(v.replace(/\0/g, ''))) findings.push({ code: 'DEID_ERR_VERIFY_UID', path: path(), kind: 'uid' });
  };

  const walk = (elements: Dataset, prefix: string, inherited: CharacterSet, ancestors: Ancestor | undefined) => {
    const cs = findElement(elements, TAG.SpecificCharacterSet) ? charsetOf(elements) : inherited;
    for (const el of elements) {
      if (MARKING.has(el.tag) && prefix === '') continue;
      const path = () => prefix + formatTag(el.tag);
      scanned++;
      if (el.items) {
        const here: Ancestor = { tag: el.tag, level: elements, cs, parent: ancestors };
        el.items.forEach((item, i) => walk(item.elements, `${path()}[${i}]/`, cs, here));
        continue;
      }
      if (!el.value || el.value.length === 0) continue;
      let text: string;
      let kinds: ReadonlySet<IdentifierKind> | undefined;
      if (el.vr === 'UI') {
        checkUidText(rawString(el.value), path);
        continue;
      } else if (el.vr === 'CS' || el.vr === 'AS') {
        text = textValue(el, cs);
        kinds = KINDS_FOR_CS;
      } else if (el.vr === 'DA' || el.vr === 'DT' || el.vr === 'TM') {
        text = textValue(el, cs);
        // A date-time is searched as its date and its time.
        if (el.vr === 'DT') text = text.split('\\').map((v) => `${v.slice(0, 8)} ${v.slice(8)}`).join('\\');
        kinds = KINDS_FOR_DATES;
      } else if (NUMERIC_TEXT.has(el.vr)) {
        continue;
      } else if (isTextVR(el.vr)) {
        text = textValue(el, cs);
      } else if (el.vr === 'UN' || (isPrivateTag(el.tag) && (el.vr === 'OB' || el.vr === 'OW'))) {
        // Opaque bytes that a kept private element or an unknown VR may hide text in.
        text = latin1(el.value);
      } else {
        continue;
      }
      if (!matcher.empty) {
        for (const hit of matcher.find(text, kinds)) {
          if (!excused(hit, text, el, elements, ancestors, cs)) findings.push({ code: 'DEID_ERR_VERIFY_LEAK', path: path(), kind: hit.kind });
        }
      }
      checkUidText(text, path);
    }
  };
  for (const el of meta) if (el.vr === 'UI' && el.value) checkUidText(rawString(el.value), () => formatTag(el.tag));
  walk(dataset, '', charsetOf(dataset), undefined);
  return { ok: findings.length === 0, findings, elementsScanned: scanned, identifiersChecked: matcher.size, uidsChecked: uids.size };
}

/**
 * Whether a hit is one whole value of the element it was found in (a date-time's date or time, a
 * time's hhmmss): the element's own value, which another attribute of the source happened to share.
 */
function isOwnValue(el: Element, text: string, hit: Hit): boolean {
  const found = text.slice(hit.index, hit.index + hit.length).toUpperCase();
  for (const v of text.split('\\')) {
    const own = v.trim().toUpperCase();
    if (own === found) return true;
    if (el.vr === 'TM' && own.slice(0, 6) === found) return true;
    if (el.vr === 'DT') {
      // Searched as "date time" (see the walk).
      const [date, time = ''] = own.split(' ');
      if (date === found || time.slice(0, 6) === found) return true;
    }
  }
  return false;
}

/** Fails closed: a report with findings becomes a coded error naming the first place (never the value). */
export function assertVerified(report: VerifyReport): void {
  if (report.ok) return;
  const first = report.findings[0];
  throw new DeidError(first.code, `${report.findings.length} finding(s), first at ${first.path} (${first.kind})`);
}
