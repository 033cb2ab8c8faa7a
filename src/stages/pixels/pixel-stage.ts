import { Part10 } from '../../dicom/part10.js';
import { readDicom } from '../../dicom/reader.js';
import { writeDicom } from '../../dicom/writer.js';
import type { CompiledProfile } from '../../profiles/compile.js';
import { collectIdentifiers } from '../identifiers.js';
import type { Stage } from '../stage.js';
import { cleanPixels, type PixelReport } from './clean-pixels.js';
import type { OcrPool } from './ocr-pool.js';
import type { Box } from './text-regions.js';
import { assertNoPixelLeak, textLeftUnmasked, verifyPixels, type PixelVerifyReport } from './verify-pixels.js';

export interface PixelContext {
  readonly profile: CompiledProfile;
  /** Defaults to the process-wide pool. */
  readonly ocrPool?: OcrPool;
  /** Make the before/after preview PNGs of masked images. */
  readonly previews?: boolean;
  /** Regions a reviewer drew (the console), masked in every frame besides what the stage finds. */
  readonly manualRegions?: readonly Box[];
}

/**
 * The pixel stage (Clean Pixel Data): the header stage's output in, its pixels cleaned, written and
 * verified by re-reading the written bytes out. An image it skips passes unchanged. Throws a coded
 * DeidError (DEID_ERR_PIXEL_*, DEID_ERR_OCR_UNAVAILABLE) for anything that must be quarantined.
 * Deterministic for the same inputs and profile, so a retried job gives the same bytes.
 */
export const pixelStage: Stage<PixelContext> = async (object, ctx) => {
  if (!ctx.profile.pixels) return { facts: { pixels: { report: { action: 'skipped', reason: 'the profile does not have clean-pixel-data' } } } };
  const identifiers = object.facts.identifiers ?? collectIdentifiers(object.source.dataset);
  const settings = ctx.profile.pixels;
  const clean = (verified?: readonly Box[]) => cleanPixels(object.source, object.current.file, identifiers, { settings, pool: ctx.ocrPool, previews: ctx.previews, manual: ctx.manualRegions, verified });
  let r = await clean();
  const report = withoutPreviews(r.report);
  if (report.action === 'skipped') return { facts: { pixels: { report } } };
  // Nothing masked, and either the first pass found no text-like strokes or the detector found nothing
  // that could be read in any render (no box at all, or only specks under a legible height and blobs
  // too short for a line): the pixels leave unchanged, already examined, and there is nothing masked to
  // re-read. Only the header changed (BurnedInAnnotation, the method code): written once, by whichever stage needs the bytes.
  if (!report.pixelsMasked && report.text?.possibleLines === 0) {
    return { output: Part10.ofFile(r.file), facts: { pixels: { report } } };
  }
  // Verified on what leaves: the written bytes, decoded again.
  const writeAndVerify = async (file: typeof r.file) => {
    const bytes = writeDicom(file);
    const written = readDicom(bytes);
    return { bytes, written, verify: await verifyPixels(written, identifiers, { pool: ctx.ocrPool, reviewed: !!ctx.manualRegions?.length }) };
  };
  let { bytes, written, verify } = await writeAndVerify(r.file);
  // A second look, once: text that verification found and no mask covers is masked too, and verified
  // again. It is text finding: a profile without OCR (signatures only) gets none.
  const rest = settings.ocr ? textLeftUnmasked(verify, r.report.boxes ?? [], settings.mode === 'all-text') : [];
  if (rest.length) {
    r = await clean(rest);
    ({ bytes, written, verify } = await writeAndVerify(r.file));
  }
  assertNoPixelLeak(verify);
  const previews = r.report.previews;
  const identity = object.facts.identity && { ...object.facts.identity, transferSyntaxUid: written.transferSyntaxUID };
  return { output: Part10.of(written, bytes), facts: { pixels: { report: withoutPreviews(r.report), verify }, ...(previews ? { previews } : {}), ...(identity ? { identity } : {}) } };
};

/** The report without its preview PNGs, which travel apart (facts.previews). */
function withoutPreviews({ previews: _previews, ...report }: PixelReport): Omit<PixelReport, 'previews'> {
  return report;
}

export interface PixelStageOutput {
  /** The header stage's output with its pixels cleaned, verified by re-OCR; or the input unchanged when skipped. */
  readonly output: Buffer;
  readonly report: Omit<PixelReport, 'previews'>;
  readonly verify?: PixelVerifyReport;
  /** Before/after PNGs of masked images (when asked for), for the report and the console. */
  readonly previews?: { readonly before: Buffer; readonly after: Buffer };
}

/** The pixel stage on bytes (for tools and tests): the original object and the header stage's output in. */
export async function runPixelStage(
  source: Uint8Array,
  headerOutput: Uint8Array,
  profile: CompiledProfile,
  opts: { pool?: OcrPool; previews?: boolean } = {},
): Promise<PixelStageOutput> {
  const current = Part10.ofBytes(headerOutput);
  const r = await pixelStage({ source: readDicom(source), current, facts: {}, origin: {} }, { profile, ocrPool: opts.pool, previews: opts.previews });
  const pixels = r.facts!.pixels!;
  return { output: (r.output ?? current).encode(), report: pixels.report, verify: pixels.verify, previews: r.facts!.previews };
}
