import type { OcrPool } from './ocr-pool.js';
import type { TextWord } from './phi-boxes.js';
import { BACKGROUND, type Piece } from './ocr-pieces.js';
import { toPgm, type Gray8 } from './render.js';
import type { Box } from './text-regions.js';

/**
 * Sending prepared crops (pieces, see ocr-pieces.ts) to the OCR pool and mapping the words back to frame pixels.
 *
 * - Pieces of text regions are read one per recognition, largest first, so that the pool's workers
 *   share them evenly. Read alone, tesseract's layout analysis works on each crop only, and a crop
 *   without text returns in about a millisecond: less work than the same crops stacked into a page.
 * - When any piece is dense (a large part of the frame, dominated by image texture: whole echo
 *   frames and their composites), all pieces are stacked into a page per worker. Tesseract's reading
 *   of texture depends on what shares its page: read alone, such crops were measured to lose small
 *   text (a date line on a JPEG cine) and to yield more false words, which costs over-masking.
 */

const GAP = 24;
/** Below about this many pixels a stacked page is not worth another worker's round trip. */
const PAGE_PIXELS = 150_000;

interface Placed {
  readonly piece: Piece;
  readonly y: number;
}

interface Page {
  width: number;
  height: number;
  area: number;
  readonly placed: Placed[];
}

/** Stacks pieces into `count` pages of about equal area (largest first onto the lightest page). */
function stack(pieces: readonly Piece[], count: number): Page[] {
  const pages: Page[] = Array.from({ length: Math.max(1, Math.min(count, pieces.length)) }, () => ({ width: 0, height: 0, area: 0, placed: [] }));
  for (const p of [...pieces].sort((a, b) => b.img.width * b.img.height - a.img.width * a.img.height)) {
    const page = pages.reduce((a, b) => (b.area < a.area ? b : a));
    const y = page.height === 0 ? 0 : page.height + GAP;
    page.placed.push({ piece: p, y });
    page.width = Math.max(page.width, p.img.width);
    page.height = y + p.img.height;
    page.area += p.img.width * p.img.height;
  }
  return pages;
}

function renderPage(page: Page): Gray8 {
  if (page.placed.length === 1) return page.placed[0].piece.img;
  const data = new Uint8Array(page.width * page.height).fill(BACKGROUND);
  for (const { piece, y } of page.placed) {
    const { img } = piece;
    for (let r = 0; r < img.height; r++) data.set(img.data.subarray(r * img.width, (r + 1) * img.width), (y + r) * page.width);
  }
  return { width: page.width, height: page.height, data };
}

export interface PieceWords {
  /** Words with boxes in frame pixels, and the frame they were read in. */
  readonly perFrame: Array<{ frame: number; word: TextWord }>;
  readonly ocrCalls: number;
}

export async function readPieces(pieces: readonly Piece[], pool: OcrPool): Promise<PieceWords> {
  const area = (p: Piece) => p.img.width * p.img.height;
  const pages = pieces.some((p) => p.dense)
    ? stack(pieces, Math.min(pool.size, Math.ceil(pieces.reduce((s, p) => s + area(p), 0) / PAGE_PIXELS)))
    : [...pieces].sort((a, b) => area(b) - area(a)).map((p) => ({ width: p.img.width, height: p.img.height, area: area(p), placed: [{ piece: p, y: 0 }] }));
  const results = await Promise.all(pages.map((page) => pool.recognize(toPgm(renderPage(page)), { psm: 11 })));

  const perFrame: Array<{ frame: number; word: TextWord }> = [];
  results.forEach((words, i) => {
    const page = pages[i];
    for (const w of words) {
      const cx = (w.bbox.x0 + w.bbox.x1) / 2;
      const cy = (w.bbox.y0 + w.bbox.y1) / 2;
      const hit = page.placed.find((p) => cx < p.piece.img.width && cy >= p.y && cy < p.y + p.piece.img.height);
      if (!hit) continue;
      const { piece } = hit;
      const map = (v: number, o: number, s0: number, s1: number) => Math.min(s1, Math.max(s0, s0 + (v - o - piece.pad) / piece.scale));
      const box: Box = {
        x0: Math.floor(map(w.bbox.x0, 0, piece.src.x0, piece.src.x1)),
        y0: Math.floor(map(w.bbox.y0, hit.y, piece.src.y0, piece.src.y1)),
        x1: Math.ceil(map(w.bbox.x1, 0, piece.src.x0, piece.src.x1)),
        y1: Math.ceil(map(w.bbox.y1, hit.y, piece.src.y0, piece.src.y1)),
      };
      if (box.x1 <= box.x0 || box.y1 <= box.y0) continue;
      perFrame.push({ frame: piece.frame, word: { text: w.text, confidence: w.confidence, box, dense: piece.dense } });
    }
  });
  return { perFrame, ocrCalls: pages.length };
}
