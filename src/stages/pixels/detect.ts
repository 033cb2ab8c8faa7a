import { createHash } from 'node:crypto';
import sharp from 'sharp';
import type { OcrPool } from './ocr-pool.js';
import type { TextWord } from './phi-boxes.js';
import { crop, toPgm, type Gray8 } from './render.js';
import { boxArea, findTextRegions, mergeBoxes, type Box } from './text-regions.js';

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
 *    packed with the others into a few pages that the pool's workers read in parallel.
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
const GAP = 24;

interface Piece {
  readonly frame: number;
  /** Source rectangle in frame pixels. */
  readonly src: Box;
  readonly scale: number;
  /** The normalised, scaled and padded image. */
  readonly img: Gray8;
}

function median(values: Uint8Array): number {
  const hist = new Uint32Array(256);
  for (const v of values) hist[v]++;
  let acc = 0;
  for (let i = 0; i < 256; i++) {
    acc += hist[i];
    if (acc * 2 >= values.length) return i;
  }
  return 255;
}

/** Typical height of the text lines in a crop: runs of rows holding strong horizontal steps. */
function lineHeight(g: Gray8): number {
  const runs: number[] = [];
  let run = 0;
  for (let y = 0; y < g.height; y++) {
    let active = false;
    const row = y * g.width;
    for (let x = 1; x < g.width - 1 && !active; x++) if (Math.abs(g.data[row + x + 1] - g.data[row + x - 1]) >= 40) active = true;
    if (active) run++;
    else if (run > 0) {
      runs.push(run);
      run = 0;
    }
  }
  if (run > 0) runs.push(run);
  const real = runs.filter((r) => r >= 4).sort((a, b) => a - b);
  return real.length ? real[real.length >> 1] : 0;
}

async function makePiece(g: Gray8, frame: number, src: Box): Promise<Piece> {
  const c = crop(g, src.x0, src.y0, src.x1, src.y1);
  // Dark text on a light background reads best (and fastest): invert regions whose background is dark.
  const bg = median(c.data);
  const invert = bg < 128;
  const data = invert ? c.data.map((v) => 255 - v) : c.data;
  const h = lineHeight({ ...c, data });
  const scale = h > 0 && h < 12 ? 3 : h > 0 && h < 20 ? 2 : 1;
  let img: Gray8 = { width: c.width, height: c.height, data };
  if (scale > 1) {
    const buf = await sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width: c.width, height: c.height, channels: 1 } })
      .resize(c.width * scale, c.height * scale, { kernel: 'cubic' })
      .toColourspace('b-w')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (buf.info.channels !== 1 || buf.data.length !== c.width * scale * c.height * scale) throw new Error('unexpected resize output');
    img = { width: c.width * scale, height: c.height * scale, data: new Uint8Array(buf.data.buffer, buf.data.byteOffset, buf.data.byteLength) };
  }
  // Pad with the background so that no text touches the border.
  const fill = invert ? 255 - bg : bg;
  const padded = new Uint8Array((img.width + 2 * PAD) * (img.height + 2 * PAD)).fill(fill);
  const pw = img.width + 2 * PAD;
  for (let y = 0; y < img.height; y++) padded.set(img.data.subarray(y * img.width, (y + 1) * img.width), (y + PAD) * pw + PAD);
  return { frame, src, scale, img: { width: pw, height: img.height + 2 * PAD, data: padded } };
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

interface Placed {
  readonly piece: Piece;
  readonly x: number;
  readonly y: number;
}

/** Stacks pieces into pages of at most `maxArea` pixels each. */
function pack(pieces: Piece[], maxArea: number): Array<{ width: number; height: number; placed: Placed[] }> {
  const pages: Array<{ width: number; height: number; placed: Placed[] }> = [];
  let cur: { width: number; height: number; placed: Placed[] } | undefined;
  for (const p of [...pieces].sort((a, b) => b.img.width - a.img.width)) {
    const area = (cur ? Math.max(cur.width, p.img.width) * (cur.height + GAP + p.img.height) : 0);
    if (!cur || (cur.placed.length > 0 && area > maxArea)) {
      cur = { width: 0, height: 0, placed: [] };
      pages.push(cur);
    }
    const y = cur.height === 0 ? 0 : cur.height + GAP;
    cur.placed.push({ piece: p, x: 0, y });
    cur.width = Math.max(cur.width, p.img.width);
    cur.height = y + p.img.height;
  }
  return pages;
}

function render(page: { width: number; height: number; placed: Placed[] }): Gray8 {
  const data = new Uint8Array(page.width * page.height).fill(255);
  for (const { piece, x, y } of page.placed) {
    const { img } = piece;
    for (let r = 0; r < img.height; r++) data.set(img.data.subarray(r * img.width, (r + 1) * img.width), (y + r) * page.width + x);
  }
  return { width: page.width, height: page.height, data };
}

function hashCrop(g: Gray8, b: Box): string {
  const h = createHash('sha1');
  for (let y = b.y0; y < b.y1; y++) h.update(g.data.subarray(y * g.width + b.x0, y * g.width + b.x1));
  return h.digest('hex');
}

/** Reads the text of every frame; boxes are in frame pixels. */
export async function readText(frames: FrameSource, pool: OcrPool): Promise<ReadResult> {
  const frameArea = frames.width * frames.height;
  const found: Box[] = [];
  for (let i = 0; i < frames.count; i++) found.push(...findTextRegions(frames.gray(i)));
  let regions = mergeBoxes(found, 2);
  if (regions.length === 0) return { words: [], perFrame: [], regions, ocrCalls: 0, cropsRead: 0 };
  if (regions.reduce((s, b) => s + boxArea(b), 0) > WHOLE_FRAME_SHARE * frameArea) regions = [{ x0: 0, y0: 0, x1: frames.width, y1: frames.height }];
  const parts = regions.flatMap((r) => (r.x1 - r.x0 > MAX_TILE || r.y1 - r.y0 > MAX_TILE ? tiles(r) : [r]));

  // One piece per distinct content of each region part.
  const seen = new Set<string>();
  const pieces: Piece[] = [];
  for (let i = 0; i < frames.count; i++) {
    const g = frames.gray(i);
    for (const [k, b] of parts.entries()) {
      if (frames.count > 1) {
        const key = `${k}:${hashCrop(g, b)}`;
        if (seen.has(key)) continue;
        seen.add(key);
      }
      pieces.push(await makePiece(g, i, b));
    }
  }

  const totalArea = pieces.reduce((s, p) => s + p.img.width * p.img.height, 0);
  const pages = pack(pieces, Math.max(300_000, Math.ceil(totalArea / pool.size)));
  const results = await Promise.all(pages.map((page) => pool.recognize(toPgm(render(page)), { psm: 11 })));

  const perFrame: Array<{ frame: number; word: TextWord }> = [];
  results.forEach((words, pi) => {
    const page = pages[pi];
    for (const w of words) {
      const cx = (w.bbox.x0 + w.bbox.x1) / 2;
      const cy = (w.bbox.y0 + w.bbox.y1) / 2;
      const hit = page.placed.find((p) => cx >= p.x && cx < p.x + p.piece.img.width && cy >= p.y && cy < p.y + p.piece.img.height);
      if (!hit) continue;
      const { piece } = hit;
      const map = (v: number, o: number, s0: number, s1: number) => Math.min(s1, Math.max(s0, s0 + (v - o - PAD) / piece.scale));
      const box: Box = {
        x0: Math.floor(map(w.bbox.x0, hit.x, piece.src.x0, piece.src.x1)),
        y0: Math.floor(map(w.bbox.y0, hit.y, piece.src.y0, piece.src.y1)),
        x1: Math.ceil(map(w.bbox.x1, hit.x, piece.src.x0, piece.src.x1)),
        y1: Math.ceil(map(w.bbox.y1, hit.y, piece.src.y0, piece.src.y1)),
      };
      if (box.x1 <= box.x0 || box.y1 <= box.y0) continue;
      perFrame.push({ frame: piece.frame, word: { text: w.text, confidence: w.confidence, box } });
    }
  });
  return { words: perFrame.map((p) => p.word), perFrame, regions, ocrCalls: pages.length, cropsRead: pieces.length };
}
