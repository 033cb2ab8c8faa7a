/**
 * What happened to one object, PHI-free: where it came from (by path or ingest route) and its content
 * hash, its outcome, where it went and under which new UIDs, and for a written object what the
 * report needs (modality, what the profile did to each element, the pixel outcome, warnings, the kept
 * quasi-identifiers). One record is one manifest row and one object of a report, for `deid run` and
 * the service alike.
 */
import type { Dataset } from '../dicom/element.js';
import { findElement } from '../dicom/element.js';
import { TAG } from '../dicom/tag.js';
import { rawString } from '../dicom/values.js';
import type { ErrorCode } from '../errors.js';
import { subjectKey } from '../keyed.js';
import type { ElementDispositions } from '../stages/element-dispositions.js';
import type { ObjectFacts, StageWarning } from '../stages/stage.js';
import { quasiIdentifiersOf, type QuasiIdentifierValues } from './k-anonymity.js';

export type Outcome = 'written' | 'quarantined' | 'unreadable';

export interface ObjectRecord {
  /** Where it came from: the input path (`deid run`), or the ingest route (`dimse PACS1`, `stow`, `folder`). */
  readonly source: string;
  /** SHA-256 of the bytes as received. */
  readonly sha256: string;
  /** written (exported), quarantined (with its code), or unreadable (`deid run`: left where it is). */
  readonly outcome: Outcome;
  readonly code?: ErrorCode;
  /** The stage that stopped it. */
  readonly stage?: string;
  /** Where it went: the output file (`deid run`) or the destinations (the service). */
  readonly output?: string;
  readonly studyInstanceUid?: string;
  readonly seriesInstanceUid?: string;
  readonly sopInstanceUid?: string;
  /** The service's keyed hash of the original study (never the UID). */
  readonly study?: string;
  /** ISO time of the outcome. */
  readonly at: string;
  /** A written object's part of the report. */
  readonly details?: ObjectDetails;
}

export interface ObjectDetails {
  /** As the output holds it ('' when it has none). */
  readonly modality: string;
  /** What the profile did to each element (the header stage's dispositions), when recorded. */
  readonly elements?: ElementDispositions;
  /** Absent when the pixel stage did not run (the profile does not clean pixel data). */
  readonly pixels?: PixelOutcome;
  readonly warnings?: readonly StageWarning[];
  /** Who the object is about, for k-anonymity: a keyed hash of the original PatientID (the output's may be a dummy shared by all). */
  readonly subject: string;
  readonly quasiIdentifiers: QuasiIdentifierValues;
}

/** What the pixel stage did to one image, in the report's words. */
export interface PixelOutcome {
  /** The stage looked at the pixels (cleaned), as against skipping the image by policy. */
  readonly examined: boolean;
  /** Something was blanked. */
  readonly masked: boolean;
  readonly boxes: number;
  readonly pixelsMasked: number;
  /** Text masked without being read (low-confidence lines masked from their shape). */
  readonly unreadMasked: number;
  /** Why it was cleaned or skipped (never a patient value). */
  readonly reason: string;
  /** The re-reading of the written pixels passed (absent when nothing was written). */
  readonly verified?: boolean;
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' ? (v as Record<string, unknown>) : {});

/**
 * The pixel stage's report as the report shows it: the one place that reads its shape, and read
 * defensively (fields that are missing count as none), as that shape is still changing.
 */
export function pixelOutcomeOf(pixels: ObjectFacts['pixels'] | undefined): PixelOutcome | undefined {
  if (!pixels) return undefined;
  const report = obj(pixels.report);
  const text = obj(report.text);
  const verify = obj(pixels.verify);
  const examined = report.action === 'cleaned';
  const boxes = Array.isArray(report.boxes) ? report.boxes.length : 0;
  const pixelsMasked = num(report.pixelsMasked);
  return {
    examined,
    masked: examined && (pixelsMasked > 0 || boxes > 0),
    boxes,
    pixelsMasked,
    unreadMasked: num(text.linesUnread) + num(report.unreadMasked),
    reason: typeof report.reason === 'string' ? report.reason : '',
    ...(typeof verify.ok === 'boolean' ? { verified: verify.ok } : {}),
  };
}

/** A written object's report details, from its facts and the output's data set (the secret keys the subject). */
export function objectDetails(facts: ObjectFacts, output: Dataset, secret: Uint8Array): ObjectDetails {
  const pixels = pixelOutcomeOf(facts.pixels);
  return {
    modality: rawString(findElement(output, TAG.Modality)?.value),
    ...(facts.dispositions ? { elements: facts.dispositions } : {}),
    ...(pixels ? { pixels } : {}),
    ...(facts.warnings?.length ? { warnings: facts.warnings } : {}),
    subject: subjectKey(secret, facts.original?.patientId ?? ''),
    quasiIdentifiers: quasiIdentifiersOf(output),
  };
}
