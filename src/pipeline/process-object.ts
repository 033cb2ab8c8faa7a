import { findElement } from '../dicom/element.js';
import { readDicom } from '../dicom/reader.js';
import { TAG } from '../dicom/tag.js';
import { rawString } from '../dicom/values.js';
import { writeDicom } from '../dicom/writer.js';
import { DeidError } from '../errors.js';
import type { CompiledProfile } from '../profiles/compile.js';
import { deidentifyHeader, type HeaderReport } from '../stages/header.js';
import { verifyOutput, type VerifyReport } from '../stages/verify.js';

export interface ProcessContext {
  readonly profile: CompiledProfile;
  readonly secret: Uint8Array;
  /** Objects larger than this are refused (hostile sizes). */
  readonly maxBytes?: number;
}

export interface ProcessedObject {
  readonly output: Buffer;
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid: string;
  readonly sopInstanceUid: string;
  readonly header: HeaderReport;
  readonly verify: VerifyReport;
}

/**
 * The in-memory pipeline for one object: parse completely, de-identify the header, write, then
 * re-parse and verify the written bytes. Anything wrong throws a coded DeidError (fail closed).
 */
export function processObject(input: Uint8Array, ctx: ProcessContext): ProcessedObject {
  const file = readDicom(input, { maxBytes: ctx.maxBytes });
  const header = deidentifyHeader(file, ctx);
  const output = writeDicom(header.file);
  const verify = verifyOutput(output, { identifiers: header.identifiers, remappedUids: header.remappedUids, profile: ctx.profile });
  if (!verify.ok) {
    const first = verify.findings[0];
    throw new DeidError(first.code, `${verify.findings.length} finding(s), first at ${first.path} (${first.kind})`);
  }
  const ds = header.file.dataset;
  return {
    output,
    studyInstanceUid: rawString(findElement(ds, TAG.StudyInstanceUID)?.value),
    seriesInstanceUid: rawString(findElement(ds, TAG.SeriesInstanceUID)?.value),
    sopInstanceUid: rawString(findElement(ds, TAG.SOPInstanceUID)?.value),
    header: header.report,
    verify,
  };
}
