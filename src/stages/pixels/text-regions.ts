import { halve, type Gray8 } from './render.js';

/** A rectangle in frame pixels, end-exclusive. */
export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export const boxArea = (b: Box): number => Math.max(0, b.x1 - b.x0) * Math.max(0, b.y1 - b.y0);
export const intersects = (a: Box, b: Box): boolean => a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
export const union = (a: Box, b: Box): Box => ({ x0: Math.min(a.x0, b.x0), y0: Math.min(a.y0, b.y0), x1: Math.max(a.x1, b.x1), y1: Math.max(a.y1, b.y1) });
export const clampBox = (b: Box, w: number, h: number): Box => ({ x0: Math.max(0, b.x0), y0: Math.max(0, b.y0), x1: Math.min(w, b.x1), y1: Math.min(h, b.y1) });
export const grow = (b: Box, m: number): Box => ({ x0: b.x0 - m, y0: b.y0 - m, x1: b.x1 + m, y1: b.y1 + m });

/** The share of `area` that the boxes cover, their overlaps counted once. */
export function coveredShare(boxes: readonly Box[], area: Box): number {
  const w = area.x1 - area.x0;
  const h = area.y1 - area.y0;
  if (w <= 0 || h <= 0) return 1;
  const covered = new Uint8Array(w * h);
  for (const b of boxes) {
    const x0 = Math.max(b.x0, area.x0) - area.x0;
    const x1 = Math.min(b.x1, area.x1) - area.x0;
    if (x1 <= x0) continue;
    for (let y = Math.max(b.y0, area.y0); y < Math.min(b.y1, area.y1); y++) covered.fill(1, (y - area.y0) * w + x0, (y - area.y0) * w + x1);
  }
  return covered.reduce((n, v) => n + v, 0) / (w * h);
}

/** Grey-level distance (of 255) from a region's background at which a pixel counts as ink: above JPEG noise and film grain. */
export const INK_STEP = 40;

/** The grey levels of a box of a render (clamped to it), counted. */
export function boxHistogram(g: Gray8, b: Box): Uint32Array {
  const { x0, y0, x1, y1 } = clampBox(b, g.width, g.height);
  const hist = new Uint32Array(256);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) hist[g.data[y * g.width + x]]++;
  return hist;
}

/** The median grey level of a histogram of `n` pixels: a region's background, which text covers less of. */
export function histogramMedian(hist: Uint32Array, n: number): number {
  let v = 0;
  for (let seen = 0; v < 255 && (seen += hist[v]) < n / 2; v++);
  return v;
}

/**
 * Whether anything is drawn in a region of a render: some of its pixels are ink against the region's
 * background (glyph tops, an edge). A flat strip of background holds nothing.
 */
export function drawnIn(g: Gray8, b: Box): boolean {
  const { x0, y0, x1, y1 } = clampBox(b, g.width, g.height);
  if (x1 <= x0 || y1 <= y0) return false;
  const hist = boxHistogram(g, b);
  const n = (x1 - x0) * (y1 - y0);
  const background = histogramMedian(hist, n);
  let ink = 0;
  for (let v = 0; v < 256; v++) if (Math.abs(v - background) >= INK_STEP) ink += hist[v];
  return ink >= Math.max(3, 0.005 * n);
}

/** Merges overlapping (or, with `gap`, nearly touching) boxes until none overlap. */
export function mergeBoxes(boxes: readonly Box[], gap = 0): Box[] {
  let out = boxes.map((b) => ({ ...b }));
  let changed = true;
  while (changed) {
    changed = false;
    const next: Box[] = [];
    for (const b of out) {
      const i = next.findIndex((n) => intersects(grow(n, gap), b));
      if (i >= 0) {
        next[i] = union(next[i], b);
        changed = true;
      } else next.push(b);
    }
    out = next;
  }
  return out;
}

export interface TextRegionOptions {
  /** Minimum grey-level step of a text edge (on the 8-bit render). */
  readonly threshold?: number;
  /** Widest stroke, in pixels, counted as text. */
  readonly maxStroke?: number;
  /** Cell size of the density grid. */
  readonly cell?: number;
}

/**
 * Proposes where text may be, cheaply, so that OCR runs on those regions only and images without
 * text skip OCR. Text is made of strokes: short runs brighter (or darker) than both neighbours,
 * bounded by strong edges on both sides, in both the horizontal and the vertical direction. Single
 * edges (organ and body outlines) and smooth texture are not strokes. Cells holding strokes of both
 * directions are grouped into lines (neighbouring cells along a row join), and each group's bounding
 * box, padded, is a region to read.
 *
 * This step only decides where OCR looks, so it is biased towards proposing too much: a missed
 * region is missed text, an extra one is only time.
 */
export function findTextRegions(g: Gray8, opts: TextRegionOptions = {}): Box[] {
  return analyseText(g, opts).regions;
}

export interface TextAnalysis {
  /** Padded, merged regions to read with OCR. */
  readonly regions: Box[];
  /** The text-like blocks themselves (groups of lines), unpadded. */
  readonly blocks: Box[];
  /**
   * The most stroke events in one cell of a region: an 8×8 cell of letters holds twenty and more
   * (both directions, every row and column crossing a stem or a bar); edges of anatomy far fewer.
   */
  readonly peak: number;
}

/**
 * The first pass's test for text: some cell of a region as dense in strokes as letters are. Measured
 * on the real and generated images of the pixel evaluation: the sparsest text reached 22 (coloured
 * text over a photograph), the densest text-free medical image 22 too (a brain CT's sulci), most
 * text-free slices under 16. Below this, an image is taken as text-free and not read; images of a
 * kind that commonly carries text (ultrasound, screen captures) are always read.
 */
export const TEXT_PEAK = 18;

export function analyseText(g: Gray8, opts: TextRegionOptions = {}): TextAnalysis {
  const T = opts.threshold ?? 28;
  const S = opts.maxStroke ?? 8;
  const C = opts.cell ?? 8;
  const { width: W, height: H, data } = g;
  const cw = Math.ceil(W / C);
  const ch = Math.ceil(H / C);
  const hCells = new Uint16Array(cw * ch);
  const vCells = new Uint16Array(cw * ch);

  // Horizontal strokes, row by row: edge events from the central difference, paired opposite signs close together.
  for (let y = 0; y < H; y++) {
    const row = y * W;
    let lastPos = -1000;
    let lastSign = 0;
    let inEdge = 0;
    for (let x = 1; x < W - 1; x++) {
      const d = data[row + x + 1] - data[row + x - 1];
      const sign = d >= T ? 1 : d <= -T ? -1 : 0;
      if (sign !== 0 && sign !== inEdge) {
        if (lastSign === -sign && x - lastPos <= S) {
          const cy = ((y / C) | 0) * cw;
          hCells[cy + ((((lastPos + x) >> 1) / C) | 0)]++;
        }
        lastPos = x;
        lastSign = sign;
      }
      inEdge = sign;
    }
  }
  // Vertical strokes, column by column.
  for (let x = 0; x < W; x++) {
    let lastPos = -1000;
    let lastSign = 0;
    let inEdge = 0;
    const cx = (x / C) | 0;
    for (let y = 1; y < H - 1; y++) {
      const d = data[(y + 1) * W + x] - data[(y - 1) * W + x];
      const sign = d >= T ? 1 : d <= -T ? -1 : 0;
      if (sign !== 0 && sign !== inEdge) {
        if (lastSign === -sign && y - lastPos <= S) vCells[((((lastPos + y) >> 1) / C) | 0) * cw + cx]++;
        lastPos = y;
        lastSign = sign;
      }
      inEdge = sign;
    }
  }

  // A cell is text-like when it, with its neighbours, holds strokes of both directions.
  const active = new Uint8Array(cw * ch);
  for (let cy = 0; cy < ch; cy++) {
    for (let cx = 0; cx < cw; cx++) {
      const i = cy * cw + cx;
      if (hCells[i] + vCells[i] === 0) continue;
      let h = 0;
      let v = 0;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = cy + dy;
        if (yy < 0 || yy >= ch) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = cx + dx;
          if (xx < 0 || xx >= cw) continue;
          h += hCells[yy * cw + xx];
          v += vCells[yy * cw + xx];
        }
      }
      if (h >= 1 && v >= 1 && h + v >= 3) active[i] = 1;
    }
  }

  // Group active cells: join along rows across gaps of up to two cells (letters, words), then label.
  const joined = new Uint8Array(active);
  for (let cy = 0; cy < ch; cy++) {
    let last = -100;
    for (let cx = 0; cx < cw; cx++) {
      if (!active[cy * cw + cx]) continue;
      if (cx - last > 1 && cx - last <= 3) for (let k = last + 1; k < cx; k++) joined[cy * cw + k] = 1;
      last = cx;
    }
  }
  const label = new Int32Array(cw * ch).fill(-1);
  const boxes: Box[] = [];
  /** Stroke events inside each group's own cells. */
  const strokes: number[] = [];
  const stack: number[] = [];
  for (let i = 0; i < joined.length; i++) {
    if (!joined[i] || label[i] >= 0) continue;
    const id = boxes.length;
    const b = { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
    let n = 0;
    label[i] = id;
    stack.push(i);
    while (stack.length) {
      const j = stack.pop()!;
      n += hCells[j] + vCells[j];
      const x = j % cw;
      const y = (j / cw) | 0;
      if (x < b.x0) b.x0 = x;
      if (y < b.y0) b.y0 = y;
      if (x > b.x1) b.x1 = x;
      if (y > b.y1) b.y1 = y;
      for (const [nx, ny] of [[x - 1, y], [x + 1, y], [x, y - 1], [x, y + 1]]) {
        if (nx < 0 || ny < 0 || nx >= cw || ny >= ch) continue;
        const k = ny * cw + nx;
        if (joined[k] && label[k] < 0) {
          label[k] = id;
          stack.push(k);
        }
      }
    }
    boxes.push(b);
    strokes.push(n);
  }
  const pad = C;
  const blocks = boxes.map((b) => clampBox({ x0: b.x0 * C, y0: b.y0 * C, x1: (b.x1 + 1) * C, y1: (b.y1 + 1) * C }, W, H));
  const merged = mergeBoxes(
    boxes.map((b) => clampBox({ x0: b.x0 * C - pad, y0: b.y0 * C - pad, x1: (b.x1 + 1) * C + pad, y1: (b.y1 + 1) * C + pad }, W, H)),
    2,
  );
  // A region is read when it holds at least one group dense enough to be a word (whole: sparse
  // groups beside a word stay in its crop), and is not made of horizontal lines only.
  const words = blocks.filter((_, i) => strokes[i] >= MIN_GROUP_STROKES);
  const regions = merged.filter((r) => words.some((b) => intersects(r, b)) && mayHoldText(strokesIn(r, hCells, vCells, C, cw)));
  let peak = 0;
  for (const r of regions) {
    for (let cy = Math.floor(r.y0 / C); cy < Math.ceil(r.y1 / C); cy++) {
      for (let cx = Math.floor(r.x0 / C); cx < Math.ceil(r.x1 / C); cx++) {
        const i = cy * cw + cx;
        if (active[i] && hCells[i] + vCells[i] > peak) peak = hCells[i] + vCells[i];
      }
    }
  }
  return { regions, blocks, peak };
}

/**
 * The frame's shortest side, in multiples of this, for each smaller scale the analysis also runs at:
 * a halved or quartered render still holds a few lines of text.
 */
const MIN_SCALED_SIDE = 64;

/**
 * analyseText at the frame's own scale, and halved and quartered where the frame is large enough.
 * Strokes are counted up to 8 pixels wide in 8-pixel cells: letters taller than about 40 pixels (a
 * name burned in as a banner, a digitised film's label) have strokes too wide and too sparse to count
 * at full size, and were taken for no text at all. Shrunk, they are letters of the usual size. The
 * smaller scales' regions and blocks are given in frame pixels.
 */
export function analyseTextAtScales(g: Gray8, opts: TextRegionOptions = {}): TextAnalysis {
  const own = analyseText(g, opts);
  const regions = [...own.regions];
  const blocks = [...own.blocks];
  let peak = own.peak;
  let shrunk = g;
  for (const f of [2, 4]) {
    if (Math.min(g.width, g.height) < MIN_SCALED_SIDE * f) break;
    shrunk = halve(shrunk);
    const a = analyseText(shrunk, opts);
    const up = (b: Box) => clampBox({ x0: b.x0 * f, y0: b.y0 * f, x1: b.x1 * f, y1: b.y1 * f }, g.width, g.height);
    regions.push(...a.regions.map(up));
    blocks.push(...a.blocks.map(up));
    peak = Math.max(peak, a.peak);
  }
  return { regions, blocks, peak };
}

/**
 * A group of cells with fewer stroke events than this is a speck of edge (a curved bone cortex), not
 * a word: measured on 20 short words ("LI", "il", "II", "Ng", "17", …) in six fonts at 8 to 20 px and
 * at every position within the cell grid, no word that forms a group forms one this sparse (stem-only
 * pairs at 8 px come closest). A region holding only such groups is not read; they stay in `blocks`.
 */
const MIN_GROUP_STROKES = 8;

/**
 * Letters and digits cross vertical stems about as often as horizontal bars: measured on words of
 * five fonts at 8 to 48 px, at most 3.4 times as many vertical runs as horizontal ones for words
 * ("EE", "ZZ") and 4.3 for a lone "E". A region with more than six times as many is made of
 * horizontal lines and edges (a table top, a ruler, "="), not of characters.
 */
const MAX_VERTICAL_SHARE = 6;

/** Whether OCR should look at a region, from its stroke counts; biased towards yes. */
function mayHoldText({ h, v }: { h: number; v: number }): boolean {
  return v <= MAX_VERTICAL_SHARE * h;
}

/** Stroke events of each direction in the cells a region covers. */
function strokesIn(r: Box, hCells: Uint16Array, vCells: Uint16Array, C: number, cw: number): { h: number; v: number } {
  let h = 0;
  let v = 0;
  for (let cy = Math.floor(r.y0 / C); cy < Math.ceil(r.y1 / C); cy++) {
    for (let cx = Math.floor(r.x0 / C); cx < Math.ceil(r.x1 / C); cx++) {
      h += hCells[cy * cw + cx];
      v += vCells[cy * cw + cx];
    }
  }
  return { h, v };
}
