/**
 * The header stage as a stage: the profile applied to every element (header.ts), and the facts the
 * later stages and the export need: the source's identifying values and remapped UIDs, its own
 * identity and date offset, and the new identity the output is filed under.
 */
import { findElement, type Dataset, type DicomFile } from '../dicom/element.js';
import { Part10 } from '../dicom/part10.js';
import { TAG } from '../dicom/tag.js';
import { outputSyntaxFor } from '../dicom/transfer-syntax.js';
import { rawString, textValue } from '../dicom/values.js';
import { deidentifyHeader, patientDateOffset, type HeaderContext } from './header.js';
import { charsetOf } from './identifiers.js';
import { sourceValues } from './source-values.js';
import type { NewIdentity, ObjectFacts, ObjectIdentity, OriginalIdentity, Stage, StageWarning } from './stage.js';

export type { HeaderContext };

/** Who a data set is about: its patient, study, series, instance and accession number, as it holds them. */
export function identityOf(ds: Dataset): ObjectIdentity {
  const uid = (tag: number) => rawString(findElement(ds, tag)?.value);
  const cs = charsetOf(ds);
  const text = (tag: number) => {
    const el = findElement(ds, tag);
    return el ? textValue(el, cs) : '';
  };
  return {
    patientId: text(TAG.PatientID),
    patientName: text(TAG.PatientName),
    studyInstanceUid: uid(TAG.StudyInstanceUID),
    seriesInstanceUid: uid(TAG.SeriesInstanceUID),
    sopInstanceUid: uid(TAG.SOPInstanceUID),
    sopClassUid: uid(TAG.SOPClassUID),
    accessionNumber: text(TAG.AccessionNumber),
  };
}

/** The identity an output is filed and exported under, read from the output itself. */
export function newIdentityOf(output: DicomFile): NewIdentity {
  return { ...identityOf(output.dataset), transferSyntaxUid: outputSyntaxFor(output.transferSyntaxUID) };
}

const originalOf = (source: DicomFile): OriginalIdentity => identityOf(source.dataset);

/**
 * The facts of the header stage that come from the source alone, derived again after a durable stage
 * boundary (they hold source values, so they never travel with a job): what the header stage would
 * have found, for the same source, profile and secret.
 */
export function sourceFacts(source: DicomFile, ctx: HeaderContext): ObjectFacts {
  return {
    ...sourceValues(source, ctx.profile),
    original: originalOf(source),
    ...(ctx.profile.options.has('retain-long-modified-dates') ? { dateOffsetDays: patientDateOffset(source, ctx) } : {}),
  };
}

/** An attribute the profile keeps although Table E.1-1 removes or replaces it (its tag and name, never its value). */
export const KEPT_IDENTIFIER = 'kept-identifier';

/** The warnings of one object: each attribute it held that the profile kept against the table. */
export const keptIdentifierWarnings = (kept: readonly string[] | undefined): StageWarning[] | undefined => kept?.map((detail) => ({ kind: KEPT_IDENTIFIER, detail }));

export const headerStage: Stage<HeaderContext> = (object, ctx) => {
  const r = deidentifyHeader(object.current.file, ctx);
  const warnings = keptIdentifierWarnings(r.keptIdentifiers);
  return {
    output: Part10.ofFile(r.file),
    facts: {
      identifiers: r.identifiers,
      remappedUids: r.remappedUids,
      original: originalOf(object.source),
      ...(r.report.dateOffsetDays !== undefined ? { dateOffsetDays: r.report.dateOffsetDays } : {}),
      identity: newIdentityOf(r.file),
      header: r.report,
      ...(r.dispositions ? { dispositions: r.dispositions } : {}),
      ...(warnings ? { warnings } : {}),
    },
  };
};
