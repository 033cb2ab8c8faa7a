import type { TextLine } from './find-text.js';
import type { Gray8 } from './render.js';
import { boxHistogram, histogramMedian, INK_STEP, type Box } from './text-regions.js';

/**
 * Text drawn in the same value as the anatomy behind it: white letters over bone that is saturated in
 * the stored values. There the letters are invisible in every render, and no detector finds them;
 * where the anatomy ends, the rest of the word shows (the last digit of a birth date, the tops of a
 * year's digits above a saturated rib). The detector boxes the visible part alone, or nothing on that
 * line, and those remnants stay readable.
 *
 * A block of lines (a corner's label column) tells where its text runs:
 * - a line of the block is masked on through the runs of hiding pixels beside it, up to the block's edges;
 * - in the rows where the block's next lines would be (one line pitch on, at most MAX_HIDDEN_LINES), a
 *   row that hides text from the block's left edge on, and where letters' strokes come out at the end of
 *   the hiding run, is masked to a line height past that end (reported as an unread line).
 * Hiding pixels are those within HIDE_TOLERANCE of the extreme value the block's letters are drawn in.
 * A block whose letters are not drawn in an extreme value of the stored range hides nothing, and a row
 * hidden whole shows nothing, and is left as it is.
 */

/** Stored-range levels (of 255) within which a pixel is as bright (or dark) as letters drawn at the extreme. */
const HIDE_TOLERANCE = 6;
/** A column hides text on a line when at least this share of the line's rows does. */
const HIDING_ROWS = 0.4;
/** A slot is a hidden line when its hiding run from the block's left edge is at least this many line heights long. */
const MIN_HIDDEN_RUN = 2;
/** Hidden lines taken beyond a block's first or last line: blocks end, and further down it would be masking anatomy on a guess. */
const MAX_HIDDEN_LINES = 2;

type Ink = 'bright' | 'dark';

interface Block {
  readonly ink: Ink;
  readonly lines: number[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Whether a stored-range level is as bright (or dark) as letters drawn at the ink's extreme. */
const isInk = (ink: Ink, v: number) => (ink === 'bright' ? v >= 255 - HIDE_TOLERANCE : v <= HIDE_TOLERANCE);

/** The extreme a line's letters are drawn in, when they are drawn in one: 255 over a darker box, 0 over a brighter one. */
function inkOf(g: Gray8, b: Box): Ink | undefined {
  const hist = boxHistogram(g, b);
  const n = hist.reduce((s, c) => s + c, 0);
  if (!n) return undefined;
  const mid = histogramMedian(hist, n);
  const has = (ink: Ink) => hist.some((c, v) => c > 0 && isInk(ink, v));
  // Over a bright box with white in it, the dark pixels may be the letters' outline or the background's
  // black: which extreme the letters are is not known, and nothing is taken to hide.
  if (has('bright') && mid < 128) return 'bright';
  if (has('dark') && mid >= 128 && !has('bright')) return 'dark';
  return undefined;
}

const hidesAt = (g: Gray8, ink: Ink) => (x: number, y: number) => isInk(ink, g.data[y * g.width + x]);

/** Whether column x hides text in rows [y0, y1). */
function columnHides(hides: (x: number, y: number) => boolean, x: number, y0: number, y1: number): boolean {
  let n = 0;
  for (let y = y0; y < y1; y++) if (hides(x, y)) n++;
  return n >= HIDING_ROWS * (y1 - y0);
}

/**
 * Whether a box holds strokes of letters drawn in the ink's extreme: along some row, a pixel of the
 * ink, then one darker (or brighter) by INK_STEP, then the ink again within half a line height. The
 * edge of saturated anatomy falls away from the ink and does not come back.
 */
function strokesIn(g: Gray8, ink: Ink, b: Box): boolean {
  const h = b.y1 - b.y0;
  const awayAt = (v: number) => (ink === 'bright' ? v <= 255 - HIDE_TOLERANCE - INK_STEP : v >= HIDE_TOLERANCE + INK_STEP);
  for (let y = b.y0; y < b.y1; y++) {
    let lastInk = -Infinity;
    let away = false;
    for (let x = b.x0; x < b.x1; x++) {
      const v = g.data[y * g.width + x];
      if (isInk(ink, v)) {
        if (away && x - lastInk <= h / 2) return true;
        lastInk = x;
        away = false;
      } else if (awayAt(v) && x - lastInk <= h / 2) away = true;
    }
  }
  return false;
}

/** Lines of one ink, of like height, stacked at most a line height apart and overlapping along x, are one block. */
function blocksOf(lines: readonly TextLine[], inks: ReadonlyArray<Ink | undefined>): Block[] {
  const parent = lines.map((_, i) => i);
  const root = (i: number): number => (parent[i] === i ? i : (parent[i] = root(parent[i])));
  for (let i = 0; i < lines.length; i++) {
    for (let j = i + 1; j < lines.length; j++) {
      const a = lines[i].box, b = lines[j].box;
      if (!inks[i] || inks[i] !== inks[j]) continue;
      const ha = a.y1 - a.y0, hb = b.y1 - b.y0;
      if (Math.max(ha, hb) > 1.5 * Math.min(ha, hb)) continue;
      const gapY = Math.max(a.y0, b.y0) - Math.min(a.y1, b.y1);
      const overlapX = Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0);
      if (gapY <= Math.min(ha, hb) && overlapX > 0) parent[root(i)] = root(j);
    }
  }
  const groups = new Map<number, number[]>();
  lines.forEach((_, i) => { if (inks[i]) groups.set(root(i), [...(groups.get(root(i)) ?? []), i]); });
  return [...groups.values()].filter((ls) => ls.length >= 2).map((ls) => ({ ink: inks[ls[0]]!, lines: ls }));
}

/** Lines found, with those of a block masked on through hiding runs beside them, and the block's hidden lines added (unread). */
export function withHiddenText(lines: readonly TextLine[], g: Gray8): TextLine[] {
  const flat = lines.filter((l) => !l.vertical);
  const inks = flat.map((l) => inkOf(g, l.box));
  const out = new Map<TextLine, TextLine>();
  const added: TextLine[] = [];
  for (const block of blocksOf(flat, inks)) {
    const members = block.lines.map((i) => flat[i]);
    const hides = hidesAt(g, block.ink);
    const left = Math.min(...members.map((l) => l.box.x0));
    const right = Math.max(...members.map((l) => l.box.x1));
    const h = median(members.map((l) => l.box.y1 - l.box.y0));
    for (const l of members) {
      const b = l.box;
      let x0 = b.x0;
      while (x0 > left && columnHides(hides, x0 - 1, b.y0, b.y1)) x0--;
      let x1 = b.x1;
      while (x1 < right && columnHides(hides, x1, b.y0, b.y1)) x1++;
      if (x0 !== b.x0 || x1 !== b.x1) out.set(l, { ...l, box: { ...b, x0, x1 } });
    }
    // The rows of the block, by their middles (the detector's boxes are looser than its lines are
    // regular): lines side by side (a label and its value found apart) are one row.
    const mids: number[] = [];
    for (const y of members.map((l) => (l.box.y0 + l.box.y1) / 2).sort((a, b) => a - b)) if (!mids.length || y - mids[mids.length - 1] >= 0.5 * h) mids.push(y);
    if (mids.length < 2) continue;
    const pitch = median(mids.slice(1).map((y, i) => y - mids[i]));
    for (const step of [pitch, -pitch]) {
      let mid = (step > 0 ? mids[mids.length - 1] : mids[0]) + step;
      for (let k = 0; k < MAX_HIDDEN_LINES; k++, mid += step) {
        const slot = { x0: left, y0: Math.round(mid - h / 2), x1: right, y1: Math.round(mid + h / 2) };
        if (slot.y0 < 0 || slot.y1 > g.height) break;
        // A line found in that row: the block is not hidden there.
        if (flat.some((l) => Math.min(l.box.y1, slot.y1) - Math.max(l.box.y0, slot.y0) >= 0.5 * h && l.box.x0 < slot.x1 && l.box.x1 > slot.x0)) break;
        let x = left;
        while (x < right && columnHides(hides, x, slot.y0, slot.y1)) x++;
        if (x - left < MIN_HIDDEN_RUN * h) break;
        // A row hidden whole shows nothing; one whose letters come out where the hiding ends is masked.
        const end = Math.min(right, x + h);
        if (strokesIn(g, block.ink, { ...slot, x0: Math.max(left, x - 1), x1: end })) added.push({ box: { ...slot, x1: end }, text: '', confidence: 0, read: false });
      }
    }
  }
  return [...lines.map((l) => out.get(l) ?? l), ...added];
}
