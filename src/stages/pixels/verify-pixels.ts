import type { DicomFile } from '../../dicom/element.js';
import { initCodecs } from '../../dicom/pixels/codecs.js';
import { decodePixelData, hasPixelData } from '../../dicom/pixels/pixel-data.js';
import { DeidError } from '../../errors.js';
import type { Identifier } from '../identifiers.js';
import { frameSource, paletteOf, voiWindowOf } from './clean-pixels.js';
import { readText } from './detect.js';
import { detectorScale } from './find-text.js';
import { sharedOcrPool, type OcrPool } from './ocr-pool.js';
import { PhiMatcher, sensitiveLine, type SensitiveKind } from './phi-boxes.js';
import type { Box } from './text-regions.js';

/**
 * Verification of cleaned pixels, fail closed. The written output is decoded again (so the check sees
 * exactly what leaves, after any re-encoding) and searched for text again with a different
 * segmentation than the one that chose the masks: wherever the stroke gate still finds text-like
 * strokes in the output, in the local-contrast render only (either polarity, any grey level), with the
 * detector at another scale (its receptive field then meets the text at another size). Any line that
 * holds an identifying token (a name part, an ID, a date, a time, an MRN-like number, the
 * institution) fails the object with DEID_ERR_PIXEL_LEAK. Findings name frames and boxes by
 * coordinates, never the text.
 */
export interface PixelLeak {
  readonly frame: number;
  readonly box: Box;
  readonly kind: SensitiveKind;
}

export interface PixelVerifyReport {
  readonly ok: boolean;
  readonly linesRead: number;
  readonly recognitions: number;
  readonly leaks: readonly PixelLeak[];
}

/** The verifier's detector scale: a quarter larger than the cleaner's, or, for frames the cleaner already enlarged, three quarters of it. */
export function verifierScale(width: number, height: number): number {
  const s = detectorScale(width, height);
  return s >= 1.5 ? 0.75 * s : 1.25 * s;
}

/**
 * `reviewed`: a reviewer drew the regions to mask. Texture that stops the re-reading (find-text.ts)
 * then leaves the lines read so far to check; without a reviewer it fails the object (DEID_ERR_PIXEL_TEXTURE):
 * what was not read was not verified.
 */
export async function verifyPixels(output: DicomFile, identifiers: readonly Identifier[], opts: { pool?: OcrPool; reviewed?: boolean } = {}): Promise<PixelVerifyReport> {
  if (!hasPixelData(output.dataset)) return { ok: true, linesRead: 0, recognitions: 0, leaks: [] };
  await initCodecs();
  const image = decodePixelData(output.dataset, output.transferSyntaxUID);
  const d = image.desc;
  const frames = frameSource(image, paletteOf(output.dataset, d), voiWindowOf(output.dataset));
  const read = await readText(frames, opts.pool ?? sharedOcrPool(), {
    minConfidence: 0.4,
    renders: 'local',
    firstPass: 'regions',
    scale: verifierScale(d.columns, d.rows),
    edgeFill: 'edge',
  });
  if (read.unreadCandidates > 0 && !opts.reviewed) throw new DeidError('DEID_ERR_PIXEL_TEXTURE', `verification left ${read.unreadCandidates} text candidates unread: the first read as texture`);
  const matcher = new PhiMatcher(identifiers);
  const leaks: PixelLeak[] = [];
  for (const { frame, line } of read.perFrame) {
    const kind = sensitiveLine(line.text, 100 * line.confidence, matcher);
    if (kind) leaks.push({ frame, box: line.box, kind });
  }
  return { ok: leaks.length === 0, linesRead: read.lines.length, recognitions: read.recognitions, leaks };
}

/** Throws DEID_ERR_PIXEL_LEAK naming the first findings by frame and coordinates. */
export function assertNoPixelLeak(r: PixelVerifyReport): void {
  if (r.ok) return;
  const first = r.leaks
    .slice(0, 3)
    .map((l) => `frame ${l.frame} box (${l.box.x0},${l.box.y0})-(${l.box.x1},${l.box.y1}) ${l.kind}`)
    .join('; ');
  throw new DeidError('DEID_ERR_PIXEL_LEAK', `${r.leaks.length} identifying line(s) still readable: ${first}`);
}
