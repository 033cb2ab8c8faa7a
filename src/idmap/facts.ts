import { findElement, type Dataset } from '../dicom/element.js';
import { TAG } from '../dicom/tag.js';
import { textValue } from '../dicom/values.js';
import { charsetOf } from '../stages/identifiers.js';
import type { MapRowInput } from './id-map.js';
import { MAP_FIELDS, type MapField } from './row.js';

const FIELD_TAGS: Record<MapField, number> = {
  PatientID: TAG.PatientID,
  PatientName: TAG.PatientName,
  StudyInstanceUID: TAG.StudyInstanceUID,
  SeriesInstanceUID: TAG.SeriesInstanceUID,
  SOPInstanceUID: TAG.SOPInstanceUID,
  AccessionNumber: 0x00080050,
};

/** The map's identifiers of one data set, decoded in its own character set ('' where absent). */
export function mapFieldsOf(ds: Dataset): Record<MapField, string> {
  const cs = charsetOf(ds);
  return Object.fromEntries(
    MAP_FIELDS.map((f) => {
      const el = findElement(ds, FIELD_TAGS[f]);
      return [f, el ? textValue(el, cs) : ''];
    }),
  ) as Record<MapField, string>;
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
