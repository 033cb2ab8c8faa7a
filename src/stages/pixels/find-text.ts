import type { OcrPool } from './ocr-pool.js';
import type { ReadLine } from './ocr/ctc.js';
import type { DetectedBox, EdgeFill } from './ocr/db-postprocess.js';
import type { Gray8 } from './render.js';
import { crop } from './render.js';
import { analyseTextAtScales, boxArea, boxHistogram, clampBox, grow, histogramMedian, INK_STEP, intersects, mergeBoxes, TEXT_PEAK, type Box } from './text-regions.js';

/**
 * Finding the text lines of one image (a frame, or a multi-frame object's composite), in three steps:
 *
 * 1. **Where text may be**, cheaply: the stroke analysis of text-regions.ts on the stored-range and
 *    the windowed renders. No candidate region: no text, and nothing else runs.
 * 2. **Detection** with a scene-text detector (PP-OCRv4 DB) on every render of the candidate regions
 *    (or the whole frame when they cover most of it): the stored range, the data set's window and a
 *    local-contrast render, so that bright text on black, dark text on bright anatomy and grey text on
 *    grey all reach it. The boxes of all renders are pooled; one line found in several renders is one
 *    candidate.
 * 3. **Reading** each candidate once (PP-OCRv4 recognition), on the render it was found in best. A
 *    candidate read with confidence is a text line. One read with low confidence is still a text line
 *    when it is shaped like one and its strokes look like text (fail closed: masked, reported unread).
 *    Anything else (texture the detector took for text) is dropped.
 */

export type RenderName = 'stored' | 'window' | 'brightest' | 'local';

export interface NamedRender {
  readonly name: RenderName;
  readonly gray: Gray8;
}

export interface TextLine {
  readonly box: Box;
  readonly text: string;
  /** 0-1 */
  readonly confidence: number;
  /** false: read with low confidence, taken as text from its shape and strokes (masked-unread). */
  readonly read: boolean;
  /** Written top to bottom or bottom to top (a label along a radiograph's side): its box is a column. */
  readonly vertical?: boolean;
}

export interface FindOptions {
  /** A line read at or above this confidence (0-1) is text. */
  readonly minConfidence: number;
  /** Below this, a reading is noise whatever the strokes say. */
  readonly unreadFloor?: number;
  /** Detector input scale; defaults to one chosen from the frame size. */
  readonly scale?: number;
  /** What fills the detector's context around the frame (db-postprocess.ts); the frame's background by default. */
  readonly edgeFill?: EdgeFill;
  /** Which renders the detector reads: all (the default), or only the local-contrast one. */
  readonly renders?: 'all' | 'local';
  /**
   * The first pass: 'strict' reads an image only when its strokes are as dense as letters somewhere
   * (TEXT_PEAK), 'regions' wherever text-like strokes are, 'none' reads the whole frame.
   */
  readonly firstPass?: 'strict' | 'regions' | 'none';
}

export interface FindResult {
  readonly lines: TextLine[];
  /** Whether the first pass found somewhere text may be (false: nothing else ran). */
  readonly candidates: boolean;
  /** Candidates dropped as not text. */
  readonly dropped: number;
  /** Regions the stroke gate proposed (frame pixels). */
  readonly regions: readonly Box[];
  readonly detections: number;
  /** Detections that may hold text (mayHoldText); 0: the detector found nothing that could be read. */
  readonly possibleLines: number;
  readonly recognitions: number;
  /** Candidates left unread because the first ones read as texture, or past MAX_CANDIDATES (0: all were read). */
  readonly unreadCandidates: number;
}

/** Above this share of the frame the candidate regions are detected as one whole frame. */
const WHOLE_FRAME_SHARE = 0.4;
/** Context kept around a candidate region: the detector needs some background around a line. */
const REGION_PAD = 24;

/**
 * The detector was trained on text a dozen or more pixels high; small frames carry small fonts
 * (a 256² MR with 7 px text), so they are enlarged, at most twice: the smallest burned-in fonts are
 * then as large as the detector wants, and a tiny frame (a 64² thumbnail) costs no more than a 256²
 * one. Large frames are read at their own size.
 */
export function detectorScale(width: number, height: number): number {
  return Math.min(2, Math.max(1, 512 / Math.max(width, height)));
}

interface Candidate {
  readonly members: Array<DetectedBox & { render: number }>;
  best: DetectedBox & { render: number };
}

const overlapShare = (a: Box, b: Box) => {
  const w = Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0);
  const h = Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0);
  if (w <= 0 || h <= 0) return 0;
  return (w * h) / Math.min(boxArea(a), boxArea(b));
};

/** Confidence a reading of one or two characters needs to be text. */
const SHORT_READING = 0.8;

/** Overlap of the bands a region is cut into: more than a line of the largest text burned into images. */
const BAND_OVERLAP = 48;
/** Regions below this many pixels are not cut. */
const BAND_MIN_AREA = 128 * 1024;

/** Cuts a large region into `n` horizontal bands that overlap by BAND_OVERLAP (a line lies whole in one of them). */
const bands = (n: number) => (r: Box): Box[] => {
  const h = r.y1 - r.y0;
  if (n < 2 || boxArea(r) < BAND_MIN_AREA || h < 4 * BAND_OVERLAP) return [r];
  const step = Math.ceil(h / n);
  return Array.from({ length: n }, (_, i) => ({ x0: r.x0, x1: r.x1, y0: r.y0 + Math.max(0, i * step - BAND_OVERLAP / 2), y1: Math.min(r.y1, r.y0 + (i + 1) * step + BAND_OVERLAP / 2) }));
};

/** Below this height (frame pixels, the detector's padding included) no glyph is legible. */
const MIN_LINE_HEIGHT = 4;

/**
 * Whether a detector box may hold text at all: tall enough to be legible, and, in a small frame (a
 * thumbnail, a banner), when over half its height, long enough for a few characters (the detector
 * takes a thumbnail's whole anatomy for one big word). A block of lines boxed as one may.
 */
function mayHoldText(b: Box, frameHeight: number): boolean {
  const h = b.y1 - b.y0;
  return h >= MIN_LINE_HEIGHT && (h <= 0.5 * frameHeight || b.x1 - b.x0 >= 2 * h);
}

/** A box over 0.12 of the frame's height is a line when it is at least this many times as long as it is high (a banner's few large words). */
const BANNER_LENGTH = 3;

/**
 * Lines of text: boxes that may hold text, taller than wide only for a character or two, and not a
 * large part of the frame unless long like a line of large letters.
 */
function lineShaped(b: Box, frameHeight: number): boolean {
  const h = b.y1 - b.y0;
  const w = b.x1 - b.x0;
  return mayHoldText(b, frameHeight) && (h <= Math.max(48, 0.12 * frameHeight) || w >= BANNER_LENGTH * h) && w >= 0.6 * h;
}

/** A column of text (a line turned a quarter): as thick as a line is high, and long enough for a few characters. */
function columnShaped(b: Box, frameWidth: number): boolean {
  const w = b.x1 - b.x0;
  const h = b.y1 - b.y0;
  return w >= MIN_LINE_HEIGHT && w <= Math.max(48, 0.12 * frameWidth) && h >= 2.5 * w;
}

/** A box of a render turned a quarter, clockwise or counter-clockwise, so that a column reads as a line. */
function turned(g: Gray8, b: Box, clockwise: boolean): Gray8 {
  const w = b.x1 - b.x0;
  const h = b.y1 - b.y0;
  const out = new Uint8Array(w * h);
  // The turned image is h wide and w high.
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = g.data[(b.y0 + y) * g.width + b.x0 + x];
      if (clockwise) out[x * h + (h - 1 - y)] = v;
      else out[(w - 1 - x) * h + y] = v;
    }
  }
  return { width: h, height: w, data: out };
}

/** Where any render found a candidate: the union of its members' boxes. */
const membersBox = (c: Candidate): Box =>
  c.members.reduce((u, m) => ({ x0: Math.min(u.x0, m.x0), y0: Math.min(u.y0, m.y0), x1: Math.max(u.x1, m.x1), y1: Math.max(u.y1, m.y1) }), { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity });

export const alnumCount = (s: string): number => (s.match(/[\p{L}\p{N}]/gu) ?? []).length;

/** Letters or digits that make a confident reading sure text: not texture, not a speck. */
export const SURE_LETTERS = 3;

/**
 * `global` are the renders the stroke gate looks at (the stored range first); `local` gives the
 * local-contrast render, made only when the gate finds somewhere text may be.
 */
export async function findText(global: readonly NamedRender[], local: () => NamedRender, pool: OcrPool, opts: FindOptions): Promise<FindResult> {
  const { width: W, height: H } = global[0].gray;
  const analyses = global.map((r) => analyseTextAtScales(r.gray));
  const strokeBlocks = analyses.flatMap((a) => a.blocks);
  const firstPass = opts.firstPass ?? 'regions';
  let regions = firstPass === 'none' ? [{ x0: 0, y0: 0, x1: W, y1: H }] : mergeBoxes(analyses.flatMap((a) => a.regions).map((b) => clampBox(grow(b, REGION_PAD), W, H)));
  const dense = analyses.some((a) => a.peak >= TEXT_PEAK);
  if (regions.length === 0 || (firstPass === 'strict' && !dense)) return { lines: [], candidates: false, dropped: 0, regions: [], detections: 0, possibleLines: 0, recognitions: 0, unreadCandidates: 0 };
  if (regions.reduce((s, b) => s + boxArea(b), 0) > WHOLE_FRAME_SHARE * W * H) regions = [{ x0: 0, y0: 0, x1: W, y1: H }];
  const localRender = local();
  const renders = opts.renders === 'local' ? [localRender] : [...global, localRender];
  const scale = opts.scale ?? detectorScale(W, H);

  // 2. Detection on every render of every region, in parallel over the pool: a large region is cut
  //    into overlapping bands, one per thread, so that one image at a time still uses every core.
  //    The local-contrast render goes first: it shows text of either polarity at any grey level, so
  //    where it holds nothing that may be text the other renders are not asked (most images that pass
  //    the stroke gate with texture alone stop here, at a third of the cost).
  const pieces = regions.flatMap(bands(pool.size));
  const detectIn = async (which: readonly number[]) =>
    (
      await Promise.all(
        pieces.flatMap((region) =>
          which.map(async (render) => {
            const r = renders[render];
            const whole = region.x0 === 0 && region.y0 === 0 && region.x1 === W && region.y1 === H;
            const g = whole ? r.gray : crop(r.gray, region.x0, region.y0, region.x1, region.y1);
            const boxes = await pool.detect(g, scale, { fill: opts.edgeFill });
            return boxes.map((b) => ({ x0: b.x0 + region.x0, y0: b.y0 + region.y0, x1: b.x1 + region.x0, y1: b.y1 + region.y0, score: b.score, render }));
          }),
        ),
      )
    ).flat();
  const t0 = performance.now();
  const localIndex = renders.length - 1;
  let found = await detectIn([localIndex]);
  if (found.some((b) => mayHoldText(b, H)) && localIndex > 0) found = found.concat(await detectIn(renders.slice(0, localIndex).map((_, i) => i)));
  const possibleLines = found.filter((b) => mayHoldText(b, H)).length;
  const tDetect = performance.now() - t0;
  const grouped: Candidate[] = [];
  for (const b of found.sort((a, c) => c.score - a.score)) {
    const same = grouped.find((c) => c.members.some((m) => overlapShare(m, b) > 0.6 && Math.abs((m.y1 - m.y0) - (b.y1 - b.y0)) <= 0.5 * Math.max(m.y1 - m.y0, b.y1 - b.y0)));
    if (same) same.members.push(b);
    else grouped.push({ members: [b], best: b });
  }
  // A candidate whose best box is not shaped like a line (or a column) is not text whatever it reads: not read.
  const lineCandidates = grouped.filter((c) => lineShaped(c.best, H));
  const columnCandidates = grouped.filter((c) => !lineShaped(c.best, H) && columnShaped(c.best, W));

  // 3. One reading per candidate, grouped by render so that each render travels once. Each is read
  //    with some room on both sides: a line the detector cut short reads on past its box. Past
  //    READ_WHOLE candidates the best-scored are read first, and the rest only when those read as text.
  const budget = await readWithinBudget(lineCandidates, columnCandidates.length, renders, pool, W, opts.minConfidence);
  const { candidates, readings } = budget;
  const columns = budget.texture ? [] : columnCandidates;
  const unreadCandidates = lineCandidates.length + columnCandidates.length - candidates.length - columns.length;
  let recognitions = readings.length;
  recognitions += await readOn(candidates.map((c) => c.best), readings, renders, pool, W);
  const lines: TextLine[] = [];
  let dropped = grouped.length - lineCandidates.length - columnCandidates.length;
  const unreadFloor = opts.unreadFloor ?? 0.3;
  // Columns are read turned both ways, with a little room around them; the surer reading counts.
  for (const c of columns) {
    const b = clampBox(grow(c.best, 2), W, H);
    const g = renders[c.best.render].gray;
    const [cw, ccw] = await Promise.all([true, false].map((clockwise) => { const t = turned(g, b, clockwise); return pool.recognize(t, [{ x0: 0, y0: 0, x1: t.width, y1: t.height }]); }));
    recognitions += 2;
    const r = cw[0].confidence >= ccw[0].confidence ? cw[0] : ccw[0];
    const letters = alnumCount(r.text);
    const sure = letters >= 3 ? opts.minConfidence : Math.max(opts.minConfidence, SHORT_READING);
    const box = membersBox(c);
    if (letters >= 2 && r.confidence >= sure) lines.push({ box, text: r.text, confidence: r.confidence, read: true, vertical: true });
    else dropped++;
  }
  for (const [i, c] of candidates.entries()) {
    let r = readings[i];
    // Read with doubt in its best render: another render may read it (dark text over bright anatomy
    // can read better in the local-contrast render than in the one the detector scored highest).
    if (!(alnumCount(r.text) >= 1 && r.confidence >= opts.minConfidence)) {
      const others = c.members.filter((m) => m.render !== c.best.render);
      const seenRenders = new Set<number>();
      const distinct = others.filter((m) => !seenRenders.has(m.render) && seenRenders.add(m.render));
      if (distinct.length) {
        const more = await readCandidates(distinct, renders, pool, W);
        recognitions += more.length;
        for (const m of more) if (alnumCount(m.text) >= 1 && m.confidence > r.confidence) r = m;
      }
    }
    const detected = membersBox(c);
    const box = { ...detected, x0: Math.min(detected.x0, r.span.x0), x1: Math.max(detected.x1, r.span.x1) };
    const letters = alnumCount(r.text);
    // One or two characters are weak evidence (a checkerboard reads as "00"): they need a sure reading.
    const sure = letters >= 3 ? opts.minConfidence : Math.max(opts.minConfidence, SHORT_READING);
    if (letters >= 1 && r.confidence >= sure) {
      lines.push({ box, text: r.text, confidence: r.confidence, read: true });
    } else if (letters >= 2 && letters >= 0.6 * r.text.replace(/\s/g, '').length && r.confidence >= unreadFloor && strokeSupported(c.best, strokeBlocks)) {
      lines.push({ box, text: r.text, confidence: r.confidence, read: false });
    } else dropped++;
  }
  const tight = lines.map((line) => ({ ...line, box: line.vertical ? tightenToInk(line.box, renders) : extendAlongLine(tightenToInk(line.box, renders), found) }));
  // A single character with no other text beside it identifies nobody (a test pattern's checker reads
  // as "8"); next to other text it may be the end of a date, and stays.
  const kept = tight.filter((l) => alnumCount(l.text) >= 2 || tight.some((o) => o !== l && besideOnLine(l.box, o.box)));
  dropped += tight.length - kept.length;
  if (process.env.DEID_DEBUG_OCR_TIME) {
    process.stderr.write(`text: ${W}x${H} ${renders.map((r) => r.name).join('+')} scale ${scale.toFixed(2)} regions ${regions.length} detect ${tDetect.toFixed(0)} ms (${found.length} boxes), read ${(performance.now() - t0 - tDetect).toFixed(0)} ms (${recognitions}), lines ${kept.length}, dropped ${dropped}\n`);
  }
  return { lines: kept, candidates: true, dropped, regions, detections: found.length, possibleLines, recognitions, unreadCandidates };
}

/**
 * Candidates read whole. Past this many, the READ_FIRST best-scored are read first: a frame of text
 * (a document, a worklist) reads mostly with confidence, and the rest is read too; texture the
 * detector took for text (noise enlarged into blobs, in a large frame) reads as garbage, and the rest
 * is left unread (FindResult.unreadCandidates), as it would be blanked or quarantined anyway. Reading
 * 4,000 such boxes took half a minute of CPU per frame.
 */
const READ_WHOLE = 400;
const READ_FIRST = 200;
/** Share of the first readings that must be sure text (three letters or more) for the rest to be read. */
const TEXT_SHARE = 0.5;
/** Candidates of one image read at most, text or not: a bound on the CPU any one image can take. */
const MAX_CANDIDATES = 2000;

async function readWithinBudget(candidates: Candidate[], columns: number, renders: readonly NamedRender[], pool: OcrPool, width: number, minConfidence: number) {
  const read = (cs: readonly Candidate[]) => readCandidates(cs.map((c) => c.best), renders, pool, width);
  if (candidates.length + columns <= READ_WHOLE) return { candidates, readings: await read(candidates), texture: false };
  const first = candidates.slice(0, READ_FIRST);
  const readings = await read(first);
  const sure = readings.filter((r) => alnumCount(r.text) >= SURE_LETTERS && r.confidence >= minConfidence).length;
  if (candidates.length + columns > MAX_CANDIDATES || sure < TEXT_SHARE * first.length) return { candidates: first, readings, texture: true };
  return { candidates, readings: readings.concat(await read(candidates.slice(READ_FIRST))), texture: false };
}

/** Whether `b` is on the line of `a` (their heights mostly shared) and within two line heights of it. */
export function besideOnLine(a: Box, b: Box): boolean {
  const h = Math.max(a.y1 - a.y0, b.y1 - b.y0);
  const sharedY = Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0);
  const gapX = Math.max(a.x0, b.x0) - Math.min(a.x1, b.x1);
  return sharedY >= 0.5 * Math.min(a.y1 - a.y0, b.y1 - b.y0) && gapX <= 2 * h;
}

/** At most this share of a box's height is trimmed from each side: the detector's own padding. */
const MAX_TRIM = 0.3;

/**
 * The detector pads each line (it grows its text kernel back by a fixed distance). Rows and columns
 * at the edges of the box where no render shows ink (a pixel far from the box's background, which
 * is its median) are padding, and are trimmed, up to the detector's padding; the mask's margin is
 * then added to the text itself. Over texture every row holds "ink", and nothing is trimmed.
 */
function tightenToInk(b: Box, renders: readonly NamedRender[]): Box {
  const h = b.y1 - b.y0;
  const maxTrim = Math.floor(MAX_TRIM * h);
  if (maxTrim < 1) return b;
  const w = b.x1 - b.x0;
  const rowInk = new Uint8Array(h);
  const colInk = new Uint8Array(w);
  for (const r of renders) {
    const g = r.gray;
    const bg = histogramMedian(boxHistogram(g, b), w * h);
    for (let y = b.y0; y < b.y1; y++) {
      for (let x = b.x0; x < b.x1; x++) {
        if (Math.abs(g.data[y * g.width + x] - bg) >= INK_STEP) {
          rowInk[y - b.y0] = 1;
          colInk[x - b.x0] = 1;
        }
      }
    }
  }
  let top = 0;
  while (top < maxTrim && !rowInk[top]) top++;
  let bottom = 0;
  while (bottom < maxTrim && !rowInk[h - 1 - bottom]) bottom++;
  let left = 0;
  while (left < maxTrim && !colInk[left]) left++;
  let right = 0;
  while (right < maxTrim && !colInk[w - 1 - right]) right++;
  // A box with no ink at all keeps its size (the reading said it was text).
  if (top + bottom >= h || left + right >= w) return b;
  return { x0: b.x0 + left, y0: b.y0 + top, x1: b.x1 - right, y1: b.y1 - bottom };
}

/** A detector box at most this share of a line's height, within its rows, is a piece of it (see extendAlongLine). */
const PIECE_HEIGHT = 0.6;

/**
 * A line takes in the detector's thin boxes that continue it to the right within its rows, each within
 * two line heights of the last: the pieces of a value that the detector boxed a few rows high (small
 * text blurred by lossy compression), too thin to be read on their own. A label masked without the
 * value after it is not a masked line. Boxes as high as the line were read as candidates of their
 * own, and stay as their reading left them; to the left of a line, thin boxes were anatomy's edges
 * more often than text on the real images.
 */
function extendAlongLine(line: Box, found: readonly Box[]): Box {
  const h = line.y1 - line.y0;
  // Within the line's rows (a pixel either way): a thin box across two lines is not a piece of either.
  // From left to right, one pass: the line only grows to the right.
  const pieces = found.filter((d) => d.x0 >= line.x0 && d.y0 >= line.y0 - 1 && d.y1 <= line.y1 + 1 && d.y1 - d.y0 <= PIECE_HEIGHT * h).sort((a, c) => a.x0 - c.x0);
  let b = line;
  for (const d of pieces) if (d.x1 > b.x1 && besideOnLine(b, d)) b = { ...b, x1: d.x1 };
  return b;
}

/** Whether the stroke analysis found text-like strokes over a good part of the box. */
function strokeSupported(b: Box, blocks: readonly Box[]): boolean {
  let covered = 0;
  for (const k of blocks) {
    if (!intersects(k, b)) continue;
    covered += (Math.min(k.x1, b.x1) - Math.max(k.x0, b.x0)) * (Math.min(k.y1, b.y1) - Math.max(k.y0, b.y0));
  }
  return covered >= 0.3 * boxArea(b);
}

/** How far past its box (or its last reading) a line is read, in line heights; a line that reads on to the end of that is read further. */
const READ_ON = 1.2;
/** A line that reads on is read further in probes this many line heights long past its end, with two heights of it before for context. */
const PROBE_REACH = 4;
/** Rounds of reading on. */
const READ_ON_ROUNDS = 4;
/** A letter or digit read at least this surely, next to the line, continues it. */
const CONTINUES = 0.8;
const isAlnum = (c: string) => /[\p{L}\p{N}]/u.test(c);

interface Reading {
  readonly text: string;
  /** Of the characters inside the detector's box. */
  readonly confidence: number;
  /** The line's extent along x, where it reads on past the box. */
  readonly span: { x0: number; x1: number };
  /** How far reading has looked on each side (set once a line reads on). */
  readonly reachedRight?: number;
  readonly reachedLeft?: number;
}

/**
 * The reading of a box read with room on both sides: its text and confidence are those of the
 * characters inside the box; the line is taken on past the box over characters read surely, each
 * within about a character of the last.
 */
function readingOf(box: Box, line: ReadLine): Reading {
  const inside = line.chars.filter((c) => c.x >= box.x0 && c.x <= box.x1);
  const h = box.y1 - box.y0;
  let x0 = box.x0;
  let x1 = box.x1;
  const step = 1.2 * h;
  for (const c of [...line.chars].filter((c) => c.x > box.x1).sort((a, b) => a.x - b.x)) {
    if (c.x - x1 > step) break;
    if (c.p < CONTINUES || !isAlnum(c.char)) continue;
    x1 = Math.ceil(c.x + 0.5 * h);
  }
  for (const c of [...line.chars].filter((c) => c.x < box.x0).sort((a, b) => b.x - a.x)) {
    if (x0 - c.x > step) break;
    if (c.p < CONTINUES || !isAlnum(c.char)) continue;
    x0 = Math.floor(c.x - 0.5 * h);
  }
  return {
    text: inside.map((c) => c.char).join(''),
    confidence: inside.length ? inside.reduce((s, c) => s + c.p, 0) / inside.length : 0,
    span: { x0, x1 },
  };
}

/**
 * Lines that read on to the end of their strip are read further, from where they stopped, until
 * they stop or READ_ON_ROUNDS is reached. Returns the recognitions made.
 */
async function readOn(boxes: ReadonlyArray<Box & { render: number }>, readings: Reading[], renders: readonly NamedRender[], pool: OcrPool, width: number): Promise<number> {
  let made = 0;
  for (let round = 0; round < READ_ON_ROUNDS; round++) {
    const more: Array<{ i: number; side: 'left' | 'right'; probe: Box & { render: number } }> = [];
    for (const [i, b] of boxes.entries()) {
      const h = b.y1 - b.y0;
      const reach = READ_ON * h;
      const span = readings[i].span;
      // Still reading at the end of what was read: a probe box of one line height at that end.
      if (span.x1 > b.x1 && span.x1 < width - 1 && span.x1 >= (readings[i].reachedRight ?? b.x1 + reach) - 1.5 * h) more.push({ i, side: 'right', probe: { ...b, x0: Math.max(0, span.x1 - 2 * h), x1: span.x1 } });
      if (span.x0 < b.x0 && span.x0 > 0 && span.x0 <= (readings[i].reachedLeft ?? b.x0 - reach) + 1.5 * h) more.push({ i, side: 'left', probe: { ...b, x0: span.x0, x1: Math.min(width, span.x0 + 2 * h) } });
    }
    if (!more.length) return made;
    // A probe reads on only on its own side: the context before it is inside the probe.
    const sideOf = new Map<Box, string>(more.map((m) => [m.probe, m.side]));
    const got = await readCandidates(more.map((m) => m.probe), renders, pool, width, (p) => {
      const reach = PROBE_REACH * (p.y1 - p.y0);
      return sideOf.get(p) === 'right' ? { x0: p.x0, x1: p.x1 + reach } : { x0: p.x0 - reach, x1: p.x1 };
    });
    made += got.length;
    for (const [k, m] of more.entries()) {
      const r = readings[m.i];
      const reach = PROBE_REACH * (m.probe.y1 - m.probe.y0);
      readings[m.i] =
        m.side === 'right'
          ? { ...r, span: { ...r.span, x1: Math.max(r.span.x1, got[k].span.x1) }, reachedRight: Math.min(width, m.probe.x1 + reach), reachedLeft: r.reachedLeft }
          : { ...r, span: { ...r.span, x0: Math.min(r.span.x0, got[k].span.x0) }, reachedLeft: Math.max(0, m.probe.x0 - reach), reachedRight: r.reachedRight };
      // Nothing more read on that side: done with it.
      if ((m.side === 'right' && got[k].span.x1 <= m.probe.x1) || (m.side === 'left' && got[k].span.x0 >= m.probe.x0)) {
        readings[m.i] = m.side === 'right' ? { ...readings[m.i], reachedRight: Infinity } : { ...readings[m.i], reachedLeft: -Infinity };
      }
    }
  }
  return made;
}

/**
 * Reads boxes of the renders. Boxes of one render on one line (a label and its value found apart)
 * are read as one strip, with room on both sides: one reading instead of several, and the text
 * between them read too. Each box then takes the characters that fall inside it.
 */
async function readCandidates(
  boxes: ReadonlyArray<Box & { render: number }>,
  renders: readonly NamedRender[],
  pool: OcrPool,
  width: number,
  reachOf: (b: Box) => { x0: number; x1: number } = (b) => ({ x0: b.x0 - READ_ON * (b.y1 - b.y0), x1: b.x1 + READ_ON * (b.y1 - b.y0) }),
): Promise<Reading[]> {
  const out = new Array<Reading>(boxes.length);
  const strips: Array<{ box: Box; reach: { x0: number; x1: number }; render: number; members: number[] }> = [];
  for (const i of [...boxes.keys()].sort((a, b) => boxes[a].x0 - boxes[b].x0)) {
    const b = boxes[i];
    const h = b.y1 - b.y0;
    const line = strips.find((s) => {
      if (s.render !== b.render) return false;
      const sh = s.box.y1 - s.box.y0;
      const overlapY = Math.min(s.box.y1, b.y1) - Math.max(s.box.y0, b.y0);
      return overlapY >= 0.6 * Math.max(h, sh) && b.x0 - s.box.x1 <= 1.5 * Math.min(h, sh);
    });
    const reach = reachOf(b);
    if (line) {
      line.box = { x0: Math.min(line.box.x0, b.x0), y0: Math.min(line.box.y0, b.y0), x1: Math.max(line.box.x1, b.x1), y1: Math.max(line.box.y1, b.y1) };
      line.reach = { x0: Math.min(line.reach.x0, reach.x0), x1: Math.max(line.reach.x1, reach.x1) };
      line.members.push(i);
    } else strips.push({ box: { ...b }, reach, render: b.render, members: [i] });
  }
  const padded = (s: { box: Box; reach: { x0: number; x1: number } }) => ({ x0: Math.max(0, s.reach.x0), y0: s.box.y0, x1: Math.min(width, s.reach.x1), y1: s.box.y1 });
  await Promise.all(
    renders.map(async (r, render) => {
      const mineAll = strips.filter((s) => s.render === render);
      if (!mineAll.length) return;
      // Split a render's strips over the pool's threads.
      const parts = Math.min(pool.size, mineAll.length);
      await Promise.all(
        Array.from({ length: parts }, async (_, k) => {
          const mine = mineAll.filter((_, j) => j % parts === k);
          const lines = await pool.recognize(r.gray, mine.map(padded));
          mine.forEach((s, j) => {
            for (const i of s.members) out[i] = readingOf(boxes[i], lines[j]);
          });
        }),
      );
    }),
  );
  return out;
}
