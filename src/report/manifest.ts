/**
 * Manifests: one CSV row per object (per input file of `deid run`, per received object of a study in
 * the service): where it came from and its SHA-256, what became of it (written, quarantined with the
 * code, or unreadable), where it went and its new study, series and SOP instance UIDs.
 */
import { csvLine } from '../csv.js';
import type { ObjectRecord } from './object-record.js';

export const MANIFEST_COLUMNS = ['source_path', 'source_sha256', 'outcome', 'code', 'output_path', 'study_instance_uid', 'series_instance_uid', 'sop_instance_uid'] as const;

export const manifestHeader = (): string => csvLine(MANIFEST_COLUMNS);

export function manifestRow(r: ObjectRecord): string {
  return csvLine([r.source, r.sha256, r.outcome, r.code ?? '', r.output ?? '', r.studyInstanceUid ?? '', r.seriesInstanceUid ?? '', r.sopInstanceUid ?? '']);
}
