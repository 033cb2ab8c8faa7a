import type { Dataset } from '../dicom/element.js';
import { DeidError } from '../errors.js';
import { identityOf } from '../stages/header-stage.js';
import type { ObjectFacts, ObjectIdentity } from '../stages/stage.js';
import type { MapRowInput } from './id-map.js';
import type { MapField } from './row.js';

/** The map's identifiers of an identity, as the header stage reads them ('' where absent). */
function fieldsOf(id: ObjectIdentity): Record<MapField, string> {
  return {
    PatientID: id.patientId,
    PatientName: id.patientName,
    StudyInstanceUID: id.studyInstanceUid,
    SeriesInstanceUID: id.seriesInstanceUid,
    SOPInstanceUID: id.sopInstanceUid,
    AccessionNumber: id.accessionNumber,
  };
}

/** The map's identifiers of one data set, decoded in its own character set ('' where absent). */
export function mapFieldsOf(ds: Dataset): Record<MapField, string> {
  return fieldsOf(identityOf(ds));
}

/** A row's facts with every field present ('' where the data set has no such element). */
export interface IdentityFacts extends MapRowInput {
  readonly original: Readonly<Record<MapField, string>>;
  readonly new: Readonly<Record<MapField, string>>;
}

/**
 * The row for one object, from the source data set and the de-identified one (the header stage's
 * output), with the date offset the header stage applied (`HeaderReport.dateOffsetDays`):
 *
 * ```ts
 * await idMap.record(identityFacts(file.dataset, header.file.dataset, header.report.dateOffsetDays));
 * ```
 */
export function identityFacts(source: Dataset, output: Dataset, dateOffsetDays?: number): IdentityFacts {
  return { original: mapFieldsOf(source), new: mapFieldsOf(output), ...(dateOffsetDays !== undefined ? { dateOffsetDays } : {}) };
}

/**
 * The row for one object from what the stages learned: the header stage's original and new identity
 * and its date offset. The same values as `identityFacts` of the source and output, so an object
 * recorded by `deid run` and by the service is one row.
 */
export function identityFactsOf(facts: ObjectFacts): IdentityFacts {
  if (!facts.original || !facts.identity) throw new DeidError('DEID_ERR_INTERNAL', 'a map row without the header stage\'s facts');
  return {
    original: fieldsOf(facts.original),
    new: fieldsOf(facts.identity),
    ...(facts.dateOffsetDays !== undefined ? { dateOffsetDays: facts.dateOffsetDays } : {}),
  };
}
