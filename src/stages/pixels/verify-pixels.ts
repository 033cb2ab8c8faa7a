import type { DicomFile } from '../../dicom/element.js';
import { initCodecs } from '../../dicom/pixels/codecs.js';
import { decodePixelData, hasPixelData } from '../../dicom/pixels/pixel-data.js';
import { DeidError } from '../../errors.js';
import type { Identifier } from '../identifiers.js';
import { frameSource, paletteOf } from './clean-pixels.js';
import { readText } from './detect.js';
import { sharedOcrPool, type OcrPool } from './ocr-pool.js';
import { PhiMatcher, type SensitiveKind, type TextWord } from './phi-boxes.js';

/**
 * Verification of cleaned pixels, fail closed: the written output is decoded again (so the check
 * sees exactly what leaves, after any re-encoding), every frame is read again with OCR, and any word
 * that is an identifying token (a name part, an ID, a date, a time, an MRN-like number, the
 * institution) fails the object with DEID_ERR_PIXEL_LEAK. Findings name frames and boxes by
 * coordinates, never the text.
 */
export interface PixelLeak {
  readonly frame: number;
  readonly box: TextWord['box'];
  readonly kind: SensitiveKind;
}

export interface PixelVerifyReport {
  readonly ok: boolean;
  readonly wordsRead: number;
  readonly ocrCalls: number;
  readonly leaks: readonly PixelLeak[];
}

export async function verifyPixels(output: DicomFile, identifiers: readonly Identifier[], opts: { pool?: OcrPool } = {}): Promise<PixelVerifyReport> {
  if (!hasPixelData(output.dataset)) return { ok: true, wordsRead: 0, ocrCalls: 0, leaks: [] };
  await initCodecs();
  const image = decodePixelData(output.dataset, output.transferSyntaxUID);
  const read = await readText(frameSource(image, paletteOf(output.dataset, image.desc)), opts.pool ?? sharedOcrPool());
  const matcher = new PhiMatcher(identifiers);
  const leaks: PixelLeak[] = [];
  for (const { frame, word } of read.perFrame) {
    const kind = matcher.sensitive(word.text, word.confidence);
    if (kind) leaks.push({ frame, box: word.box, kind });
  }
  return { ok: leaks.length === 0, wordsRead: read.words.length, ocrCalls: read.ocrCalls, leaks };
}

/** Throws DEID_ERR_PIXEL_LEAK naming the first findings by frame and coordinates. */
export function assertNoPixelLeak(r: PixelVerifyReport): void {
  if (r.ok) return;
  const first = r.leaks
    .slice(0, 3)
    .map((l) => `frame ${l.frame} box (${l.box.x0},${l.box.y0})-(${l.box.x1},${l.box.y1}) ${l.kind}`)
    .join('; ');
  throw new DeidError('DEID_ERR_PIXEL_LEAK', `${r.leaks.length} identifying word(s) still readable: ${first}`);
}
