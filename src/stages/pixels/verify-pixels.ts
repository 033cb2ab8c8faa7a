import type { DicomFile } from '../../dicom/element.js';
import { initCodecs } from '../../dicom/pixels/codecs.js';
import { decodePixelData, hasPixelData } from '../../dicom/pixels/pixel-data.js';
import { DeidError } from '../../errors.js';
import type { Identifier } from '../identifiers.js';
import { frameSource, paletteOf, voiWindowOf } from './clean-pixels.js';
import { readText } from './detect.js';
import { alnumCount, besideOnLine, detectorScale, SURE_LETTERS } from './find-text.js';
import { sharedOcrPool, type OcrPool } from './ocr-pool.js';
import { PhiMatcher, sensitiveLine, type SensitiveKind } from './phi-boxes.js';
import type { Gray8 } from './render.js';
import { boxHistogram, clampBox, coveredShare, histogramMedian, INK_STEP, type Box } from './text-regions.js';

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
  /** Lines read surely (three letters or digits and more), by frame and box. */
  readonly sureLines: readonly { readonly frame: number; readonly box: Box }[];
  /** Lines taken as text from their shape and strokes, read with low confidence. */
  readonly unreadLines: readonly { readonly frame: number; readonly box: Box }[];
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
  if (!hasPixelData(output.dataset)) return { ok: true, linesRead: 0, sureLines: [], unreadLines: [], recognitions: 0, leaks: [] };
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
  const taken = ({ frame, line }: { frame: number; line: { box: Box } }) => ({ frame, box: alongInk(line.box, frames.gray(frame)) });
  const sureLines = read.perFrame.filter(({ line }) => line.read && alnumCount(line.text) >= SURE_LETTERS).map(taken);
  const unreadLines = read.perFrame.filter(({ line }) => !line.read).map(taken);
  return { ok: leaks.length === 0, linesRead: read.lines.length, sureLines, unreadLines, recognitions: read.recognitions, leaks };
}

/** Past a line's ends, ink that continues it is taken on for at most this many line heights. */
const INK_REACH = 4;

/**
 * A line's box taken on along its rows while ink continues it, with gaps under half a line height
 * (ink: a pixel 40 levels from the box's median, its background): the detector boxed part of a small
 * line ("HOSPITAL" of "ST ELSEWHERE HOSPITAL", 6 px high), and the rest is as plain to a reader.
 */
function alongInk(b: Box, g: Gray8): Box {
  const { x0, y0, x1, y1 } = clampBox(b, g.width, g.height);
  if (x1 <= x0 || y1 <= y0) return b;
  const h = y1 - y0;
  const background = histogramMedian(boxHistogram(g, { x0, y0, x1, y1 }), (x1 - x0) * h);
  const inked = (x: number) => {
    for (let y = y0; y < y1; y++) if (Math.abs(g.data[y * g.width + x] - background) >= INK_STEP) return true;
    return false;
  };
  const gap = Math.max(2, Math.ceil(h / 2));
  const reach = INK_REACH * h;
  let left = x0;
  for (let x = x0 - 1; x >= Math.max(0, x0 - reach) && left - x <= gap; x--) if (inked(x)) left = x;
  let right = x1;
  for (let x = x1; x < Math.min(g.width, x1 + reach) && x - right < gap; x++) if (inked(x)) right = x + 1;
  return { ...b, x0: Math.min(b.x0, left), x1: Math.max(b.x1, right) };
}

/**
 * What verification found as text that no mask covers, to be masked by a second look:
 * - in all-text mode, every line it takes as text (read surely, or from its shape and strokes): the
 *   cleaner's detector missed it, and verification's other scale and render found it (a 6 px line at
 *   a frame's bottom edge);
 * - in sensitive-text mode, lines read surely on the rows of a masked line and within two line
 *   heights of it: the rest of that line. Half a masked line is not a masked line.
 * Each is given half a line height more at both ends, a character that its own box may have cut off.
 */
export function textLeftUnmasked(r: PixelVerifyReport, masks: readonly Box[], allText: boolean): Box[] {
  const lines = allText ? [...r.sureLines, ...r.unreadLines] : r.sureLines.filter(({ box }) => masks.some((m) => besideOnLine(m, box)));
  return lines
    .filter(({ box }) => coveredShare(masks, box) < 0.9)
    .map(({ box }) => {
      const half = Math.ceil((box.y1 - box.y0) / 2);
      return { ...box, x0: box.x0 - half, x1: box.x1 + half };
    });
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
