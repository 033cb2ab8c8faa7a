import { createHash } from 'node:crypto';
import type { OcrPool } from './ocr-pool.js';
import type { TextWord } from './phi-boxes.js';
import { readPieces } from './ocr-pages.js';
import { makePieces, tiles, type Piece } from './ocr-pieces.js';
import type { Gray8 } from './render.js';
import { analyseText, boxArea, clampBox, grow, mergeBoxes, type Box } from './text-regions.js';

/**
 * Reading the text of an image's frames with OCR, restricted to the regions that can hold text:
 *
 * 1. Candidate regions are found on every frame (cheap; see text-regions.ts) and merged across
 *    frames. No region anywhere: the image is free of text and OCR is skipped.
 * 2. Multi-frame: each region is read once per distinct content. Text that stays put (the usual
 *    case) is read once; text that changes from frame to frame (a clock, a frame counter) is read in
 *    every frame where it differs. The boxes found in any frame are then masked in every frame.
 * 3. Each region is cut out, turned to dark text on a light background, upscaled when its text is
 *    small and tiled when large (ocr-pieces.ts); the pool's workers read the pieces (ocr-pages.ts).
 */
export interface FrameSource {
  readonly count: number;
  readonly width: number;
  readonly height: number;
  /** The 8-bit grey render of a frame (may be computed on demand). */
  gray(index: number): Gray8;
}

export interface ReadResult {
  readonly words: TextWord[];
  /** Words with the frame they were read in. */
  readonly perFrame: Array<{ frame: number; word: TextWord }>;
  readonly regions: readonly Box[];
  /** Text-like blocks found in any frame (see text-regions.ts). */
  readonly blocks: readonly Box[];
  readonly ocrCalls: number;
  /** Region crops read (after removing repeats across frames). */
  readonly cropsRead: number;
}

/** Above this share of the frame, candidate regions are read as the whole frame. */
const WHOLE_FRAME_SHARE = 0.6;

function hashCrop(g: Gray8, b: Box): string {
  const h = createHash('sha1');
  for (let y = b.y0; y < b.y1; y++) h.update(g.data.subarray(y * g.width + b.x0, y * g.width + b.x1));
  return h.digest('hex');
}

/** Pixels differing by more than this between frames count as changing (compression noise stays below). */
const TEMPORAL_TOLERANCE = 6;

/**
 * Multi-frame objects: splits the frames into what stays put and what changes. Burned-in text is an
 * overlay: it stays put, or changes in small places (a clock, a frame counter). The moving picture
 * (an echo, colour flow) changes over large areas. Returns
 * - composites to read once: frame 0 with the large moving areas replaced by the per-pixel minimum
 *   over all frames (bright text drawn over the moving picture stays bright while the picture goes
 *   dark), and those areas alone as the per-pixel maximum (the same for dark text): the union of the
 *   frames' text, without reading every frame of the picture;
 * - the small changing areas, to be read in every frame where their content differs.
 */
function temporalLayers(frames: FrameSource): { composites: Gray8[]; small: Box[] } {
  const g0 = frames.gray(0);
  const { width: W, height: H } = g0;
  const n = W * H;
  const dyn = new Uint8Array(n);
  const lo = new Uint8Array(g0.data);
  const hi = new Uint8Array(g0.data);
  for (let i = 1; i < frames.count; i++) {
    const gi = frames.gray(i).data;
    for (let p = 0; p < n; p++) {
      const v = gi[p];
      if (Math.abs(v - g0.data[p]) > TEMPORAL_TOLERANCE) dyn[p] = 1;
      if (v < lo[p]) lo[p] = v;
      if (v > hi[p]) hi[p] = v;
    }
  }
  const C = 8;
  const cw = Math.ceil(W / C);
  const ch = Math.ceil(H / C);
  const count = new Uint16Array(cw * ch);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) if (dyn[y * W + x]) count[((y / C) | 0) * cw + ((x / C) | 0)]++;
  const label = new Int32Array(cw * ch).fill(-1);
  const comps: Array<{ cells: number[]; box: Box }> = [];
  for (let i = 0; i < count.length; i++) {
    if (count[i] < 16 || label[i] >= 0) continue;
    const cells: number[] = [];
    const stack = [i];
    label[i] = comps.length;
    while (stack.length) {
      const j = stack.pop()!;
      cells.push(j);
      const x = j % cw;
      const y = (j / cw) | 0;
      for (const [nx, ny] of [[x - 1, y], [x + 1, y], [x, y - 1], [x, y + 1]]) {
        if (nx < 0 || ny < 0 || nx >= cw || ny >= ch) continue;
        const k = ny * cw + nx;
        if (count[k] >= 16 && label[k] < 0) {
          label[k] = comps.length;
          stack.push(k);
        }
      }
    }
    const xs = cells.map((c) => c % cw);
    const ys = cells.map((c) => (c / cw) | 0);
    comps.push({ cells, box: { x0: Math.min(...xs) * C, y0: Math.min(...ys) * C, x1: Math.min(W, (Math.max(...xs) + 1) * C), y1: Math.min(H, (Math.max(...ys) + 1) * C) } });
  }
  const largeArea = Math.max(0.02 * W * H, 4096);
  const withMin = new Uint8Array(g0.data);
  const onlyMax = new Uint8Array(n);
  let anyLarge = false;
  const small: Box[] = [];
  for (const c of comps) {
    if (c.cells.length * C * C < largeArea) {
      small.push(clampBox(grow(c.box, C), W, H));
      continue;
    }
    anyLarge = true;
    for (const cell of c.cells) {
      const cx = (cell % cw) * C;
      const cy = ((cell / cw) | 0) * C;
      for (let y = cy; y < Math.min(H, cy + C); y++) {
        for (let x = cx; x < Math.min(W, cx + C); x++) {
          withMin[y * W + x] = lo[y * W + x];
          onlyMax[y * W + x] = hi[y * W + x];
        }
      }
    }
  }
  const composites = [{ width: W, height: H, data: withMin }];
  if (anyLarge) composites.push({ width: W, height: H, data: onlyMax });
  return { composites, small: mergeBoxes(small) };
}

/**
 * Reads the text of every frame; boxes are in frame pixels. Single frames are read where text may
 * be. Multi-frame objects are read once on their static layer, and their small changing areas in
 * every frame where those differ; large moving areas (the picture) are read only where something
 * stays put over them.
 */
export async function readText(frames: FrameSource, pool: OcrPool): Promise<ReadResult> {
  const frameArea = frames.width * frames.height;
  const layers = frames.count > 1 ? temporalLayers(frames) : { composites: [frames.gray(0)], small: [] as Box[] };
  let regions: Box[] = [];
  const blockList: Box[] = [...layers.small];
  const pieces: Piece[] = [];
  for (const composite of layers.composites) {
    const a = analyseText(composite);
    let found = a.regions;
    blockList.push(...a.blocks);
    if (found.reduce((s, b) => s + boxArea(b), 0) > WHOLE_FRAME_SHARE * frameArea) found = [{ x0: 0, y0: 0, x1: frames.width, y1: frames.height }];
    for (const b of found.flatMap(tiles)) pieces.push(...(makePieces(composite, 0, b)));
    regions.push(...found);
  }
  const blocks = mergeBoxes(blockList);
  if (pieces.length === 0 && layers.small.length === 0) return { words: [], perFrame: [], regions, blocks, ocrCalls: 0, cropsRead: 0 };
  // Changing areas: once per distinct content.
  const seen = new Set<string>();
  const parts = layers.small.flatMap(tiles);
  for (let i = 0; i < frames.count && parts.length; i++) {
    const g = frames.gray(i);
    for (const [k, b] of parts.entries()) {
      const key = `${k}:${hashCrop(g, b)}`;
      if (seen.has(key)) continue;
      seen.add(key);
      pieces.push(...(makePieces(g, i, b)));
    }
  }
  regions = [...regions, ...layers.small];

  const tRead = performance.now();
  const { perFrame, ocrCalls } = await readPieces(pieces, pool);
  if (process.env.DEID_DEBUG_OCR_TIME) process.stderr.write(`ocr: ${pieces.length} pieces, ${ocrCalls} calls, ${(performance.now() - tRead).toFixed(0)} ms\n`);
  return { words: perFrame.map((p) => p.word), perFrame, regions, blocks, ocrCalls, cropsRead: pieces.length };
}
