import { createHash } from 'node:crypto';
import type { OcrPool } from './ocr-pool.js';
import type { TextWord } from './phi-boxes.js';
import { BACKGROUND, readPieces, type Piece } from './ocr-pages.js';
import { crop, type Gray8 } from './render.js';
import { upscale } from './upscale.js';
import { analyseText, boxArea, clampBox, grow, mergeBoxes, type Box } from './text-regions.js';

/**
 * Reading the text of an image's frames with OCR, restricted to the regions that can hold text:
 *
 * 1. Candidate regions are found on every frame (cheap; see text-regions.ts) and merged across
 *    frames. No region anywhere: the image is free of text and OCR is skipped.
 * 2. Multi-frame: each region is read once per distinct content. Text that stays put (the usual
 *    case) is read once; text that changes from frame to frame (a clock, a frame counter) is read in
 *    every frame where it differs. The boxes found in any frame are then masked in every frame.
 * 3. Each region is cut out, turned to dark text on a light background (both polarities are handled
 *    by looking at the region's background), upscaled when its text is small, tiled when large, and
 *    read as its own recognition; the pool's workers share the pieces.
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
/** Largest side of one OCR tile, in source pixels (before upscaling). */
const MAX_TILE = 1600;
const TILE_OVERLAP = 96;
const PAD = 12;
/** Pieces from a region larger than this share of the frame are dominated by image texture. */
const DENSE_SHARE = 0.25;


/**
 * Typical glyph height in a normalised crop (dark ink on light): the median length of the vertical
 * ink runs of at least 3 pixels. Vertical strokes run the height of a capital; horizontal strokes and
 * horizontal lines (tables, rulers) give short runs and are left out.
 */
function glyphHeight(g: Gray8): number {
  const runs: number[] = [];
  for (let x = 0; x < g.width; x++) {
    let run = 0;
    for (let y = 0; y <= g.height; y++) {
      const ink = y < g.height && g.data[y * g.width + x] < 140;
      if (ink) run++;
      else {
        if (run >= 3) runs.push(run);
        run = 0;
      }
    }
  }
  if (runs.length < 8) return 0;
  runs.sort((a, b) => a - b);
  return runs[Math.floor(runs.length * 0.85)];
}

/**
 * The versions of a crop to read. Text of either polarity becomes dark ink on a near-white
 * background by subtracting the local background (a box mean around each pixel): one version keeps
 * what is darker than its surroundings, the other what is brighter. This copes with text on uneven
 * backgrounds and with both polarities in one crop (a light banner beside white text on black), and
 * makes every crop look alike, which matters because tesseract binarises a page of stacked crops as
 * a whole. The weaker polarity is read too unless its contrast is clearly only the gaps between the
 * strokes of the stronger one.
 */
function versions(c: Gray8): Uint8Array[] {
  const { width: W, height: H, data } = c;
  const r = Math.max(6, Math.min(16, Math.round(Math.min(W, H) / 3)));
  // Integral image for box means.
  const I = new Float64Array((W + 1) * (H + 1));
  for (let y = 0; y < H; y++) {
    let row = 0;
    for (let x = 0; x < W; x++) {
      row += data[y * W + x];
      I[(y + 1) * (W + 1) + x + 1] = I[y * (W + 1) + x + 1] + row;
    }
  }
  const dark = new Int16Array(W * H);
  const bright = new Int16Array(W * H);
  const hd = new Uint32Array(256);
  const hb = new Uint32Array(256);
  for (let y = 0; y < H; y++) {
    const y0 = Math.max(0, y - r);
    const y1 = Math.min(H, y + r + 1);
    for (let x = 0; x < W; x++) {
      const x0 = Math.max(0, x - r);
      const x1 = Math.min(W, x + r + 1);
      const sum = I[y1 * (W + 1) + x1] - I[y0 * (W + 1) + x1] - I[y1 * (W + 1) + x0] + I[y0 * (W + 1) + x0];
      const d = data[y * W + x] - sum / ((y1 - y0) * (x1 - x0));
      const i = y * W + x;
      if (d < 0) {
        dark[i] = -d;
        hd[Math.min(255, Math.round(-d))]++;
      } else {
        bright[i] = d;
        hb[Math.min(255, Math.round(d))]++;
      }
    }
  }
  const top = (h: Uint32Array) => {
    // The contrast of the strongest ink: the 99.7th percentile of the positive differences.
    let total = 0;
    for (let i = 1; i < 256; i++) total += h[i];
    let acc = 0;
    for (let i = 255; i > 0; i--) {
      acc += h[i];
      if (acc >= 0.003 * W * H || acc >= total) return i;
    }
    return 0;
  };
  const kd = top(hd);
  const kb = top(hb);
  const render = (diff: Int16Array, k: number) => {
    const out = new Uint8Array(W * H);
    const scale = 235 / Math.max(k * 0.8, 24);
    for (let i = 0; i < out.length; i++) {
      const v = 235 - diff[i] * scale;
      out[i] = v <= 0 ? 0 : v;
    }
    return out;
  };
  const strong = Math.max(kd, kb);
  const out: Uint8Array[] = [];
  if (kd >= 24 && kd >= 0.6 * strong) out.push(render(dark, kd));
  if (kb >= 24 && kb >= 0.6 * strong) out.push(render(bright, kb));
  if (out.length === 0) out.push(render(kd >= kb ? dark : bright, strong));
  return out;
}

function makePieces(g: Gray8, frame: number, src: Box): Piece[] {
  const c = crop(g, src.x0, src.y0, src.x1, src.y1);
  const pieces: Piece[] = [];
  const dense = boxArea(src) > DENSE_SHARE * g.width * g.height;
  for (const data of versions(c)) {
    // Tesseract reads best with text 20-40 px high. A crop of a line or two: from its line height. A
    // tall crop (a block, a whole frame of texture) has no reliable line height: small ones are
    // upscaled within a pixel budget.
    const h = glyphHeight({ ...c, data });
    const budget = Math.max(1, Math.floor(Math.sqrt(1_200_000 / (c.width * c.height))));
    const scale = Math.min(3, budget, h > 0 ? Math.max(1, Math.round(16 / h)) : c.height > 80 ? 2 : 1);
    const img = upscale({ width: c.width, height: c.height, data }, scale);
    // Pad with the (now light) background so that no text touches the border.
    const pw = img.width + 2 * PAD;
    const padded = new Uint8Array(pw * (img.height + 2 * PAD)).fill(BACKGROUND);
    for (let y = 0; y < img.height; y++) padded.set(img.data.subarray(y * img.width, (y + 1) * img.width), (y + PAD) * pw + PAD);
    pieces.push({ frame, src, scale, img: { width: pw, height: img.height + 2 * PAD, data: padded }, pad: PAD, dense });
  }
  return pieces;
}

/** Splits a large region into overlapping tiles. */
function tiles(b: Box): Box[] {
  const out: Box[] = [];
  const w = b.x1 - b.x0;
  const h = b.y1 - b.y0;
  const nx = Math.max(1, Math.ceil((w - TILE_OVERLAP) / (MAX_TILE - TILE_OVERLAP)));
  const ny = Math.max(1, Math.ceil((h - TILE_OVERLAP) / (MAX_TILE - TILE_OVERLAP)));
  const tw = Math.ceil((w + (nx - 1) * TILE_OVERLAP) / nx);
  const th = Math.ceil((h + (ny - 1) * TILE_OVERLAP) / ny);
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      const x0 = b.x0 + i * (tw - TILE_OVERLAP);
      const y0 = b.y0 + j * (th - TILE_OVERLAP);
      out.push({ x0, y0, x1: Math.min(b.x1, x0 + tw), y1: Math.min(b.y1, y0 + th) });
    }
  }
  return out;
}

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
  const split = (r: Box) => (r.x1 - r.x0 > MAX_TILE || r.y1 - r.y0 > MAX_TILE ? tiles(r) : [r]);
  for (const composite of layers.composites) {
    const a = analyseText(composite);
    let found = a.regions;
    blockList.push(...a.blocks);
    if (found.reduce((s, b) => s + boxArea(b), 0) > WHOLE_FRAME_SHARE * frameArea) found = [{ x0: 0, y0: 0, x1: frames.width, y1: frames.height }];
    for (const b of found.flatMap(split)) pieces.push(...(makePieces(composite, 0, b)));
    regions.push(...found);
  }
  const blocks = mergeBoxes(blockList);
  if (pieces.length === 0 && layers.small.length === 0) return { words: [], perFrame: [], regions, blocks, ocrCalls: 0, cropsRead: 0 };
  // Changing areas: once per distinct content.
  const seen = new Set<string>();
  const parts = layers.small.flatMap(split);
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
