import { latin1, type CharacterSet } from '../dicom/charset.js';
import { findElement, type Dataset, type DicomFile } from '../dicom/element.js';
import { readDicom } from '../dicom/reader.js';
import { TAG, formatTag, isPrivateTag, type Tag } from '../dicom/tag.js';
import { rawString, textValue } from '../dicom/values.js';
import { isTextVR } from '../dicom/vr.js';
import { DeidError } from '../errors.js';
import type { CompiledProfile } from '../profiles/compile.js';
import { DUMMY_VALUES } from './header.js';
import { IdentifierMatcher, charsetOf, type Identifier, type IdentifierKind } from './identifiers.js';

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
const KINDS_FOR_TEXT = new Set<IdentifierKind>(['name', 'id', 'date', 'address', 'phone']);
const KINDS_FOR_CS = new Set<IdentifierKind>(['id']);
const KINDS_FOR_DATES = new Set<IdentifierKind>(['date']);
const NUMERIC_TEXT = new Set(['DS', 'IS']);
/** Our own marking elements: their text is fixed and not from the source. */
const MARKING = new Set<Tag>([TAG.PatientIdentityRemoved, TAG.DeidentificationMethod, TAG.DeidentificationMethodCodeSequence, TAG.LongitudinalTemporalInformationModified]);

/** The values a profile sets (upper case), per profile: gathered once, not for every object. */
const setValuesOf = new WeakMap<CompiledProfile, ReadonlySet<string>>();
function setValues(p: CompiledProfile): ReadonlySet<string> {
  let values = setValuesOf.get(p);
  if (!values) {
    const found = new Set<string>();
    for (const r of p.byTag.values()) if (r.action.kind === 'set') found.add(r.action.value.toUpperCase());
    setValuesOf.set(p, (values = found));
  }
  return values;
}

/** Identifiers a profile deliberately outputs (kept attributes, set values, dummies) are not leaks. */
function identifiersToCheck(input: VerifyInput): Identifier[] {
  const p = input.profile;
  const set = setValues(p);
  return input.identifiers.filter((id) => {
    const rule = p.byTag.get(id.tag);
    if (rule && rule.action.kind === 'K') return false;
    const u = id.value.toUpperCase();
    return !DUMMY_VALUES.has(u) && !set.has(u);
  });
}

/**
 * The quality check, fail closed: re-parses the output bytes and scans every text-like element at
 * every depth (kept private elements and UN included) for the source's identifying values, and every
 * element for the source UIDs that were remapped.
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

export function verifyDataset(dataset: Dataset, input: VerifyInput, meta: Dataset = []): VerifyReport {
  const ids = identifiersToCheck(input);
  const matcher = new IdentifierMatcher(ids);
  const uids = input.remappedUids;
  const findings: Finding[] = [];
  let scanned = 0;

  // Paths are built only for findings: the walk visits every element of every output.
  // Source UIDs almost always have a dot; then text without one cannot hold any, and is not split.
  const dotted = [...uids].every((u) => u.includes('.'));
  const checkUidText = (text: string, path: () => string) => {
    if (uids.size === 0 || (dotted && !text.includes('.'))) return;
    for (const v of text.split(/[\\\s]+/)) if (uids.has(v.replace(/\0/g, ''))) findings.push({ code: 'DEID_ERR_VERIFY_UID', path: path(), kind: 'uid' });
  };

  const walk = (elements: Dataset, prefix: string, inherited: CharacterSet) => {
    const cs = findElement(elements, TAG.SpecificCharacterSet) ? charsetOf(elements) : inherited;
    for (const el of elements) {
      if (MARKING.has(el.tag) && prefix === '') continue;
      const path = () => prefix + formatTag(el.tag);
      scanned++;
      if (el.items) {
        el.items.forEach((item, i) => walk(item.elements, `${path()}[${i}]/`, cs));
        continue;
      }
      if (!el.value || el.value.length === 0) continue;
      let text: string;
      let kinds: ReadonlySet<IdentifierKind> | undefined;
      if (el.vr === 'UI') {
        checkUidText(rawString(el.value), path);
        continue;
      } else if (el.vr === 'CS' || el.vr === 'AE' || el.vr === 'AS') {
        text = textValue(el, cs);
        kinds = KINDS_FOR_CS;
      } else if (el.vr === 'DA' || el.vr === 'DT' || el.vr === 'TM') {
        text = textValue(el, cs);
        kinds = KINDS_FOR_DATES;
      } else if (NUMERIC_TEXT.has(el.vr)) {
        continue;
      } else if (isTextVR(el.vr)) {
        text = textValue(el, cs);
        kinds = KINDS_FOR_TEXT;
      } else if (el.vr === 'UN' || (isPrivateTag(el.tag) && (el.vr === 'OB' || el.vr === 'OW'))) {
        // Opaque bytes that a kept private element or an unknown VR may hide text in.
        text = latin1(el.value);
        kinds = KINDS_FOR_TEXT;
      } else {
        continue;
      }
      if (!matcher.empty) for (const hit of matcher.find(text, kinds)) findings.push({ code: 'DEID_ERR_VERIFY_LEAK', path: path(), kind: hit.kind });
      checkUidText(text, path);
    }
  };
  for (const el of meta) if (el.vr === 'UI' && el.value) checkUidText(rawString(el.value), () => formatTag(el.tag));
  walk(dataset, '', charsetOf(dataset));
  return { ok: findings.length === 0, findings, elementsScanned: scanned, identifiersChecked: ids.length, uidsChecked: uids.size };
}

/** Fails closed: a report with findings becomes a coded error naming the first place (never the value). */
export function assertVerified(report: VerifyReport): void {
  if (report.ok) return;
  const first = report.findings[0];
  throw new DeidError(first.code, `${report.findings.length} finding(s), first at ${first.path} (${first.kind})`);
}
