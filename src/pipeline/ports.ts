/* Ports the pipeline exposes to ingest adapters (SCP, STOW-RS, folder) and export adapters (folder, C-STORE, STOW-RS). */
import { DeidError, type ErrorCode } from '../errors.js';
import type { NewIdentity } from '../stages/stage.js';

/** Where an object came from; recorded with the job (never with PHI). `spool`: found in the spool without a job at start-up. */
export interface IngestSource {
  readonly kind: 'dimse' | 'stow' | 'folder' | 'spool';
  readonly callingAE?: string;
  readonly calledAE?: string;
  readonly remote?: string;
}

export type IngestOutcome =
  | { readonly ok: true; readonly key: string; readonly sopInstanceUid: string; readonly sopClassUid: string }
  | { readonly ok: false; readonly code: ErrorCode; readonly detail?: string; readonly sopInstanceUid?: string; readonly sopClassUid?: string };

/**
 * Accepts one received object as Part 10 bytes. Resolves ok only once the object is durable in the
 * spool and its first job is queued; only then may the sender be told Success.
 */
export type Ingest = (part10: Uint8Array, source: IngestSource) => Promise<IngestOutcome>;

/** An export destination: a folder, a PACS over C-STORE, or a DICOMweb server over STOW-RS. */
export interface Destination {
  /** A PHI-free description for logs and status, e.g. "dicom://ORTHANC@127.0.0.1:4242". */
  readonly name: string;
  send(part10: Uint8Array, info: ExportInfo): Promise<void>;
  close(): Promise<void>;
}

/** What a destination files an object under: the new identity the header stage found (its facts). */
export type ExportInfo = Pick<NewIdentity, 'sopClassUid' | 'sopInstanceUid' | 'studyInstanceUid' | 'seriesInstanceUid' | 'patientId' | 'transferSyntaxUid'>;

/**
 * A failed send, as a destination throws it: DEID_ERR_EXPORT_FAILED when a later attempt may succeed
 * (connection refused, timeouts, busy: retried with backoff), DEID_ERR_EXPORT_REFUSED when not. The
 * detail names statuses and destinations, never a value of the object.
 */
export function exportFailure(retryable: boolean, detail: string): DeidError {
  return new DeidError(retryable ? 'DEID_ERR_EXPORT_FAILED' : 'DEID_ERR_EXPORT_REFUSED', detail);
}
