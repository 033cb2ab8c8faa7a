import { readDicom } from '../../dicom/reader.js';
import { writeDicom } from '../../dicom/writer.js';
import type { CompiledProfile } from '../../profiles/compile.js';
import { collectIdentifiers } from '../identifiers.js';
import { cleanPixels, type PixelReport } from './clean-pixels.js';
import type { OcrPool } from './ocr-pool.js';
import { assertNoPixelLeak, verifyPixels, type PixelVerifyReport } from './verify-pixels.js';

export interface PixelStageOutput {
  /** The header stage's output with its pixels cleaned, verified by re-OCR; or the input unchanged when skipped. */
  readonly output: Buffer;
  readonly report: Omit<PixelReport, 'previews'>;
  readonly verify?: PixelVerifyReport;
  /** Before/after PNGs of masked images (when asked for), for the report and the console. */
  readonly previews?: { readonly before: Buffer; readonly after: Buffer };
}

/**
 * The pixel stage as one step on bytes, for a staged pipeline (the service): the original object and
 * the header stage's output in, the cleaned and verified output out. Throws a coded DeidError
 * (DEID_ERR_PIXEL_*, DEID_ERR_OCR_UNAVAILABLE) for anything that must be quarantined. Deterministic
 * for the same inputs and profile, so a retried job gives the same bytes.
 */
export async function runPixelStage(
  source: Uint8Array,
  headerOutput: Uint8Array,
  profile: CompiledProfile,
  opts: { pool?: OcrPool; previews?: boolean } = {},
): Promise<PixelStageOutput> {
  const src = readDicom(source);
  const deidentified = readDicom(headerOutput);
  if (!profile.pixels) return { output: Buffer.from(headerOutput), report: { action: 'skipped', reason: 'the profile does not have clean-pixel-data' } };
  const identifiers = collectIdentifiers(src.dataset);
  const r = await cleanPixels(src, deidentified, identifiers, { settings: profile.pixels, pool: opts.pool, previews: opts.previews });
  if (r.report.action === 'skipped') return { output: Buffer.from(headerOutput), report: r.report };
  const output = writeDicom(r.file);
  const verify = await verifyPixels(readDicom(output), identifiers, { pool: opts.pool });
  assertNoPixelLeak(verify);
  const { previews, ...report } = r.report;
  return { output, report, verify, previews };
}
