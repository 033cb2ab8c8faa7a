import { createHash } from 'node:crypto';
import { findText, type FindOptions, type NamedRender, type TextLine } from './find-text.js';
import { withHiddenText } from './hidden-text.js';
import type { OcrPool } from './ocr-pool.js';
import { crop, renderLocalContrast, type Gray8 } from './render.js';
import { clampBox, grow, intersects, mergeBoxes, type Box } from './text-regions.js';

/**
 * Finding the text lines of an image's frames (find-text.ts does one image):
 *
 * - A single frame is read in its renders (the stored range, the window, local contrast).
 * - A multi-frame object is read once on its static layer, built from the frames' stored-range
 *   renders. Small areas that change between frames (a clock, a frame counter) are read in every
 *   frame where their content differs. The lines found in any frame are masked in every frame.
 */
export interface FrameSource {
  readonly count: number;
  readonly width: number;
  readonly height: number;
  /** The stored-range 8-bit render of a frame (may be computed on demand). */
  gray(index: number): Gray8;
  /** The global renders of a frame: the stored range (gray(index)), the data set's window where it shows something else, and a colour frame's brightest channel. */
  renders(index: number): NamedRender[];
  /** The local-contrast render of a frame (computed only when the frame may hold text). */
  local(index: number): NamedRender;
}

export interface FrameLine {
  readonly frame: number;
  readonly line: TextLine;
}

export interface ReadResult {
  readonly lines: TextLine[];
  /** Whether the first pass found somewhere text may be in any frame. */
  readonly candidates: boolean;
  /** Lines with the frame they were found in. */
  readonly perFrame: readonly FrameLine[];
  readonly regions: readonly Box[];
  readonly dropped: number;
  readonly detections: number;
  /** Detections that may hold text; 0: nothing the detector found could be read. */
  readonly possibleLines: number;
  readonly recognitions: number;
  /** Candidates left unread in any frame because those read first were texture (find-text.ts). */
  readonly unreadCandidates: number;
}

function hashCrop(g: Gray8, b: Box): string {
  const h = createHash('sha1');
  for (let y = b.y0; y < b.y1; y++) h.update(g.data.subarray(y * g.width + b.x0, y * g.width + b.x1));
  return h.digest('hex');
}

/** Changed pixels that make an 8×8 cell a changing one: a digit of a clock changes about half a dozen. */
const MIN_CHANGED = 6;

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
function temporalLayers(frames: FrameSource): { composites: Gray8[]; small: Box[]; changing: Uint8Array } {
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
    if (count[i] < MIN_CHANGED || label[i] >= 0) continue;
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
        if (count[k] >= MIN_CHANGED && label[k] < 0) {
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
  return { composites, small: mergeBoxes(small), changing: dyn };
}

const compositeLocal = (g: Gray8): NamedRender => ({ name: 'local', gray: renderLocalContrast(g.data, g.width, g.height) });

/** Reads the text lines of every frame; boxes are in frame pixels. */
/** Context read around a small changing area, at least. */
const CONTEXT = 24;

/**
 * A changing area on a text line (the seconds of a clock, a frame counter after its label) is part
 * of that line: the line is extended over it, in every frame, whatever was read in it.
 */
function joinChangingAreas(perFrame: FrameLine[], areas: readonly Box[]): void {
  for (const [i, { frame, line }] of perFrame.entries()) {
    const b = { ...line.box };
    const h = b.y1 - b.y0;
    for (const a of areas) {
      const overlapY = Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0);
      const gap = Math.max(a.x0 - b.x1, b.x0 - a.x1);
      if (overlapY < 0.5 * Math.min(h, a.y1 - a.y0) || gap > h) continue;
      b.x0 = Math.min(b.x0, a.x0);
      b.x1 = Math.max(b.x1, a.x1);
    }
    perFrame[i] = { frame, line: { ...line, box: b } };
  }
}

/**
 * Pixels that change between frames right at the end of a text line (a clock's seconds, which the
 * static layer cannot show whole) belong to the line: it is extended over them, a character or two at most.
 */
function extendOverChanges(perFrame: FrameLine[], changing: Uint8Array, width: number): void {
  const changed = (x: number, y0: number, y1: number) => {
    for (let y = y0; y < y1; y++) if (changing[y * width + x]) return true;
    return false;
  };
  for (const [i, { frame, line }] of perFrame.entries()) {
    const b = { ...line.box };
    const h = b.y1 - b.y0;
    const reach = Math.ceil(1.5 * h);
    let x1 = b.x1;
    for (let x = b.x1; x < Math.min(width, b.x1 + reach); x++) if (changed(x, b.y0, b.y1)) x1 = x + 1;
    let x0 = b.x0;
    for (let x = b.x0 - 1; x >= Math.max(0, b.x0 - reach); x--) if (changed(x, b.y0, b.y1)) x0 = x;
    perFrame[i] = { frame, line: { ...line, box: { ...b, x0, x1 } } };
  }
}

export async function readText(frames: FrameSource, pool: OcrPool, opts: FindOptions): Promise<ReadResult> {
  const perFrame: FrameLine[] = [];
  const regions: Box[] = [];
  let dropped = 0;
  let detections = 0;
  let possibleLines = 0;
  let recognitions = 0;
  let unreadCandidates = 0;
  let candidates = false;
  const take = (frame: number, r: Awaited<ReturnType<typeof findText>>, offset?: Box) => {
    candidates ||= r.candidates;
    for (const line of r.lines) {
      const box = offset ? { x0: line.box.x0 + offset.x0, y0: line.box.y0 + offset.y0, x1: line.box.x1 + offset.x0, y1: line.box.y1 + offset.y0 } : line.box;
      perFrame.push({ frame, line: { ...line, box } });
    }
    regions.push(...r.regions.map((b) => (offset ? { x0: b.x0 + offset.x0, y0: b.y0 + offset.y0, x1: b.x1 + offset.x0, y1: b.y1 + offset.y0 } : b)));
    dropped += r.dropped;
    detections += r.detections;
    possibleLines += r.possibleLines;
    recognitions += r.recognitions;
    unreadCandidates += r.unreadCandidates;
  };
  if (frames.count === 1) {
    const found = await findText(frames.renders(0), () => frames.local(0), pool, opts);
    take(0, { ...found, lines: withHiddenText(found.lines, frames.gray(0)) });
  } else {
    const layers = temporalLayers(frames);
    for (const composite of layers.composites) {
      const found = await findText([{ name: 'stored', gray: composite }], () => compositeLocal(composite), pool, opts);
      take(0, { ...found, lines: withHiddenText(found.lines, composite) });
    }
    // Changing areas: once per distinct content, read with the text around them (a clock's last
    // digit alone is too little for the detector), keeping what touches the area.
    const seen = new Set<string>();
    for (let i = 0; i < frames.count && layers.small.length; i++) {
      const g = frames.gray(i);
      for (const [k, b] of layers.small.entries()) {
        const key = `${k}:${hashCrop(g, b)}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const context = clampBox(grow(b, Math.max(CONTEXT, 2 * (b.y1 - b.y0))), frames.width, frames.height);
        const part = (r: NamedRender) => ({ name: r.name, gray: crop(r.gray, context.x0, context.y0, context.x1, context.y1) });
        const found = await findText(frames.renders(i).map(part), () => part(frames.local(i)), pool, opts);
        const near = grow({ x0: b.x0 - context.x0, y0: b.y0 - context.y0, x1: b.x1 - context.x0, y1: b.y1 - context.y0 }, 2);
        take(i, { ...found, lines: found.lines.filter((l) => intersects(l.box, near)) }, context);
      }
    }
    joinChangingAreas(perFrame, layers.small);
    extendOverChanges(perFrame, layers.changing, frames.width);
  }
  return { lines: perFrame.map((p) => p.line), candidates, perFrame, regions: mergeBoxes(regions), dropped, detections, possibleLines, recognitions, unreadCandidates };
}
