import { findElement, type Dataset } from '../dicom/element.js';
import { readDicom } from '../dicom/reader.js';
import type { ScratchBuffer } from '../dicom/scratch-buffer.js';
import { TAG } from '../dicom/tag.js';
import { rawString } from '../dicom/values.js';
import { writeDicom } from '../dicom/writer.js';
import { DeidError } from '../errors.js';
import type { CompiledProfile } from '../profiles/compile.js';
import { deidentifyHeader, type HeaderReport } from '../stages/header.js';
// Types only: the pixel stage (codecs, sharp, the text engine) loads on demand, so header-only runs never pay for it.
import type { PixelReport } from '../stages/pixels/clean-pixels.js';
import type { OcrPool } from '../stages/pixels/ocr-pool.js';
import type { PixelVerifyReport } from '../stages/pixels/verify-pixels.js';
import { assertVerified, verifyOutput, type VerifyReport } from '../stages/verify.js';

/** The new UIDs an output is filed under. */
function identityOf(ds: Dataset): { studyInstanceUid: string; seriesInstanceUid: string; sopInstanceUid: string } {
  const uid = (tag: number) => rawString(findElement(ds, tag)?.value);
  return { studyInstanceUid: uid(TAG.StudyInstanceUID), seriesInstanceUid: uid(TAG.SeriesInstanceUID), sopInstanceUid: uid(TAG.SOPInstanceUID) };
}

export interface ProcessContext {
  readonly profile: CompiledProfile;
  readonly secret: Uint8Array;
  /** Objects larger than this are refused (hostile sizes). */
  readonly maxBytes?: number;
  /** Pixel stage (clean-pixel-data): the OCR pool (default: the process-wide one) and whether to make previews. */
  readonly ocrPool?: OcrPool;
  readonly previews?: boolean;
  /** Encode the output into this reused area (a caller that writes each output out before the next). */
  readonly scratch?: ScratchBuffer;
}

export interface ProcessedObject {
  readonly output: Buffer;
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid: string;
  readonly sopInstanceUid: string;
  readonly header: HeaderReport;
  readonly verify: VerifyReport;
  /** Present when the profile has clean-pixel-data (processObjectAsync). */
  readonly pixels?: PixelReport;
  readonly pixelVerify?: PixelVerifyReport;
}

/**
 * The in-memory pipeline for one object: parse completely, de-identify the header, write, then
 * re-parse and verify the written bytes. Anything wrong throws a coded DeidError (fail closed).
 */
export function processObject(input: Uint8Array, ctx: ProcessContext): ProcessedObject {
  // The pixel stage is asynchronous (OCR): never pass an object on with its pixels unexamined.
  if (ctx.profile.pixels) throw new DeidError('DEID_ERR_INTERNAL', 'clean-pixel-data needs processObjectAsync');
  const file = readDicom(input, { maxBytes: ctx.maxBytes });
  const header = deidentifyHeader(file, ctx);
  const output = writeDicom(header.file, { scratch: ctx.scratch });
  const verify = verifyOutput(output, { identifiers: header.identifiers, remappedUids: header.remappedUids, profile: ctx.profile });
  assertVerified(verify);
  const ds = header.file.dataset;
  return {
    output,
    ...identityOf(ds),
    header: header.report,
    verify,
  };
}

/**
 * The same pipeline with the pixel stage between header and write when the profile has
 * clean-pixel-data: parse, de-identify the header, clean the pixels, write, verify the header text,
 * then decode the written pixels again and re-read them with OCR (fail closed: DEID_ERR_PIXEL_LEAK).
 */
export async function processObjectAsync(input: Uint8Array, ctx: ProcessContext): Promise<ProcessedObject & { previews?: { before: Buffer; after: Buffer } }> {
  if (!ctx.profile.pixels) return processObject(input, ctx);
  const [{ cleanPixels }, { assertNoPixelLeak, verifyPixels }] = await Promise.all([import('../stages/pixels/clean-pixels.js'), import('../stages/pixels/verify-pixels.js')]);
  const file = readDicom(input, { maxBytes: ctx.maxBytes });
  const header = deidentifyHeader(file, ctx);
  const pixels = await cleanPixels(file, header.file, header.identifiers, { settings: ctx.profile.pixels, pool: ctx.ocrPool, previews: ctx.previews });
  const output = writeDicom(pixels.file);
  const verify = verifyOutput(output, { identifiers: header.identifiers, remappedUids: header.remappedUids, profile: ctx.profile });
  assertVerified(verify);
  let pixelVerify: PixelVerifyReport | undefined;
  if (pixels.report.action === 'cleaned') {
    pixelVerify = await verifyPixels(readDicom(output), header.identifiers, { pool: ctx.ocrPool });
    assertNoPixelLeak(pixelVerify);
  }
  const ds = pixels.file.dataset;
  const { previews, ...report } = pixels.report;
  return {
    output,
    ...identityOf(ds),
    header: header.report,
    verify,
    pixels: report,
    pixelVerify,
    previews,
  };
}
