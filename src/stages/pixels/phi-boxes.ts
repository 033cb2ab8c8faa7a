import { NEUTRAL } from '../identifier-matcher.js';
import type { Identifier } from '../identifiers.js';
import { grow, type Box } from './text-regions.js';

/**
 * Which OCR words are PHI, and the boxes to mask: a pure step, apart from OCR (which only proposes).
 *
 * - all-text (the default, the safe choice): every word OCR reads with some confidence is masked;
 *   words on one line close together are joined so the gaps (and characters OCR split off) go too.
 * - sensitive-text: only words that match the data set's identifying values (name parts, IDs, dates
 *   in common spellings, the institution) or PHI patterns (dates, times, MRN-like digit runs);
 *   everything else (L, 5 cm, kV 120) is kept.
 *
 * The same matcher proves the output clean: verification fails on any word it calls sensitive.
 */
export interface TextWord {
  readonly text: string;
  readonly confidence: number;
  readonly box: Box;
  /** Read in a large region dominated by image texture (a whole frame of echo, colour flow): judged strictly. */
  readonly dense?: boolean;
}

const DATE_PATTERNS = [
  /\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b/, // 08/29/1951, 29.08.51
  /\b\d{4}[/.-]\d{1,2}[/.-]\d{1,2}\b/, // 1951-08-29
  /\b(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])\b/, // 19510829
  /\b\d{1,2}[-\s]?(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)[A-Z]*[-\s,]*\d{2,4}\b/i, // 29-AUG-1951
  /\b(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)[A-Z]*[-\s]\d{1,2},?[-\s]\d{2,4}\b/i, // Aug 29, 1951
];
const TIME_PATTERN = /\b\d{1,2}:\d{2}(:\d{2})?\s*(AM|PM)?\b/i;
/** Six or more digits in a row: medical record, accession and phone numbers. */
const DIGIT_RUN = /\d{6,}/;

const alnum = (s: string) => s.toUpperCase().replace(/[^\p{L}\p{N}]/gu, '');

/** Levenshtein distance, stopping early above `max`. */
function within(a: string, b: string, max: number): boolean {
  if (Math.abs(a.length - b.length) > max) return false;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (cur[j] < best) best = cur[j];
    }
    if (best > max) return false;
    prev = cur;
  }
  return prev[b.length] <= max;
}

export type SensitiveKind = 'name' | 'id' | 'date' | 'time' | 'digits' | 'institution' | 'address' | 'phone';

export class PhiMatcher {
  private readonly names: string[] = [];
  private readonly ids: string[] = [];
  private readonly words: string[] = [];

  constructor(identifiers: readonly Identifier[]) {
    for (const id of identifiers) {
      const v = id.value.toUpperCase();
      if (id.kind === 'name') {
        const a = alnum(v);
        if (a.length >= 2 && !NEUTRAL.has(a) && !/^\d+$/.test(a)) this.names.push(a);
      } else if (id.kind === 'id' || id.kind === 'phone') {
        const a = alnum(v);
        if (a.length >= 3) this.ids.push(a);
      } else if (id.kind === 'institution' || id.kind === 'address') {
        for (const w of v.split(/[\s,;^]+/)) {
          const a = alnum(w);
          if (a.length >= 4) this.words.push(a);
        }
      }
      // Dates (birth date) are covered by the date patterns, in every spelling.
    }
  }

  /** The kind of identifying content in an OCR word (or a run of words), or undefined. */
  sensitive(text: string, confidence = 100): SensitiveKind | undefined {
    const t = alnum(text);
    if (t.length === 0) return undefined;
    for (const n of this.names) {
      if (t === n) return 'name';
      // Truncated on screen ("PATIENTFI…") or read with one error: long enough to be specific.
      if (t.length >= 4 && n.length >= 4 && (n.startsWith(t) || t.startsWith(n))) return 'name';
      if (t.length >= 5 && within(t, n, 1)) return 'name';
      if (n.length >= 4 && t.length > n.length && t.includes(n)) return 'name';
    }
    for (const id of this.ids) {
      if (t === id) return 'id';
      if (id.length >= 5 && (t.includes(id) || (t.length >= 5 && id.includes(t)))) return 'id';
      if (t.length >= 6 && within(t, id, 1)) return 'id';
    }
    for (const w of this.words) if (t === w || (t.length >= 5 && within(t, w, 1)) || (t.length >= 4 && w.startsWith(t) && t.length >= w.length - 3)) return 'institution';
    // Patterns are judged only on words read with some confidence: noise can look like digits.
    if (confidence >= 40) {
      if (DATE_PATTERNS.some((p) => p.test(text))) return 'date';
      if (TIME_PATTERN.test(text)) return 'time';
      if (DIGIT_RUN.test(text.replace(/[\s-]/g, ''))) return 'digits';
    }
    return undefined;
  }
}

export interface MaskDecision {
  readonly boxes: Box[];
  /** Words masked, by why (counts only: never the text). */
  readonly masked: number;
  readonly kept: number;
}

const hasAlnum = (s: string) => /[\p{L}\p{N}]/u.test(s);

/** Lines: words whose vertical extents overlap, sorted left to right. */
function lines(words: readonly TextWord[]): TextWord[][] {
  const sorted = [...words].sort((a, b) => a.box.y0 - b.box.y0 || a.box.x0 - b.box.x0);
  const out: TextWord[][] = [];
  for (const w of sorted) {
    const h = w.box.y1 - w.box.y0;
    const line = out.find((l) => {
      const r = l[0].box;
      const overlap = Math.min(r.y1, w.box.y1) - Math.max(r.y0, w.box.y0);
      return overlap > 0.5 * Math.min(h, r.y1 - r.y0);
    });
    if (line) line.push(w);
    else out.push([w]);
  }
  for (const l of out) l.sort((a, b) => a.box.x0 - b.box.x0);
  return out;
}

/**
 * Decides which words to mask and returns the boxes, grown by the margin (plus a fifth of the text
 * height, for anti-aliasing and for characters OCR's box clips).
 */
export function decideMasks(
  words: readonly TextWord[],
  mode: 'all-text' | 'sensitive-text',
  matcher: PhiMatcher,
  opts: { margin: number; minConfidence: number; blocks?: readonly Box[] },
): MaskDecision {
  const chosen: TextWord[] = [];
  let kept = 0;
  const height = (w: TextWord) => w.box.y1 - w.box.y0;
  const len = (w: TextWord) => alnum(w.text).length;
  // The size of the text read with confidence. OCR on image texture (speckle, colour flow, bone,
  // test patterns) returns "words" of any size, mostly short and at lower confidence.
  const median = (v: number[]) => (v.sort((a, b) => a - b), v[v.length >> 1]);
  const best = words.filter((w) => w.confidence >= 80 && len(w) >= 3).map(height);
  const good = words.filter((w) => w.confidence >= 60 && len(w) >= 2).map(height);
  const typical = best.length ? median(best) : good.length ? median(good) : 16;
  const sized = (w: TextWord) => height(w) >= 0.5 * typical && height(w) <= 1.8 * typical;
  const anchor = (w: TextWord) => len(w) >= 2 && w.confidence >= 70 && sized(w);
  const anchors = words.filter(anchor);
  // Blocks shaped like text (a line or two high) that hold a confident word.
  const centre = (b: Box) => ({ x: (b.x0 + b.x1) / 2, y: (b.y0 + b.y1) / 2 });
  const inside = (p: { x: number; y: number }, b: Box) => p.x >= b.x0 && p.x < b.x1 && p.y >= b.y0 && p.y < b.y1;
  const textBlocks = (opts.blocks ?? []).filter((b) => b.y1 - b.y0 <= 5 * typical && anchors.some((a) => inside(centre(a.box), b)));
  const supported = (w: TextWord) => {
    if (len(w) < 2 || !sized(w)) return false;
    const h = height(w);
    const sameRow = anchors.some((a) => {
      const overlap = Math.min(a.box.y1, w.box.y1) - Math.max(a.box.y0, w.box.y0);
      const gap = Math.max(a.box.x0 - w.box.x1, w.box.x0 - a.box.x1, 0);
      return a !== w && overlap >= 0.5 * Math.min(h, height(a)) && gap <= 12 * h;
    });
    return sameRow || textBlocks.some((b) => inside(centre(w.box), b));
  };
  /** all-text: what OCR reads with enough confidence for its length, or what sits with such words. */
  const isText = (w: TextWord) => {
    const n = len(w);
    if (n === 0) return false;
    if (!w.dense) {
      // Read where the stroke analysis found text-like lines: OCR proposes little noise there.
      if (n === 1) return w.confidence >= 60 && sized(w);
      return (w.confidence >= 60 && height(w) <= 2.5 * typical) || (w.confidence >= 20 && sized(w)) || supported(w);
    }
    if (n === 1) return w.confidence >= 80 && sized(w);
    if (n === 2) return (w.confidence >= 70 && sized(w)) || supported(w);
    return (w.confidence >= 60 && height(w) <= 2.2 * typical) || supported(w);
  };
  for (const line of lines(words)) {
    // Multi-word values (a date and its time, "DOB: 08/29/1951", a split name) are judged on neighbours too.
    const flags = line.map((w, i) => {
      if (!hasAlnum(w.text)) return false;
      if (matcher.sensitive(w.text, w.confidence)) return true;
      const next = line[i + 1];
      const prev = line[i - 1];
      const pair = (a: TextWord, b: TextWord) => b.box.x0 - a.box.x1 < 2 * (a.box.y1 - a.box.y0) && !!matcher.sensitive(`${a.text} ${b.text}`, Math.min(a.confidence, b.confidence));
      if ((next && pair(w, next)) || (prev && pair(prev, w))) return true;
      // all-text: every word read with confidence, and the doubtful ones that sit with such words.
      return mode === 'all-text' && isText(w);
    });
    const picked = line.filter((_, i) => flags[i]);
    kept += line.length - picked.length;
    // A word whose box is much taller than its line's (OCR took in an edge above or below) is cut to the line.
    if (line.length >= 3) {
      const mid = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];
      const y0 = mid(line.map((w) => w.box.y0));
      const y1 = mid(line.map((w) => w.box.y1));
      const lh = y1 - y0;
      chosen.push(...picked.map((w) => (height(w) > 1.6 * lh && w.box.y0 <= y0 && w.box.y1 >= y1 ? { ...w, box: { ...w.box, y0: y0 - 1, y1: y1 + 1 } } : w)));
    } else chosen.push(...picked);
  }
  let boxes = chosen.map((w) => grow(w.box, opts.margin + Math.ceil((w.box.y1 - w.box.y0) / 5)));
  if (mode === 'all-text') {
    // About a character more on each side: the first or last character of a word is what OCR most
    // often drops (or, in a cine, what changes from frame to frame).
    boxes = boxes.map((b) => {
      const extra = Math.ceil(0.4 * (b.y1 - b.y0));
      return { ...b, x0: b.x0 - extra, x1: b.x1 + extra };
    });
    // A word read in a text-like block marks its whole row of that block: characters OCR split off,
    // misread or skipped on the same row are masked with it.
    boxes = boxes.map((b) => {
      const block = textBlocks.find((k) => inside(centre(b), k));
      return block ? { ...b, x0: Math.min(b.x0, block.x0 - opts.margin), x1: Math.max(b.x1, block.x1 + opts.margin) } : b;
    });
    // Join neighbours on a line so that separators between words are masked too.
    boxes = joinOnLines(boxes);
  }
  // Not merged into bounding boxes: chains of overlapping boxes would grow into large areas.
  return { boxes, masked: chosen.length, kept };
}

function joinOnLines(boxes: Box[]): Box[] {
  const out: Box[] = [];
  const sorted = [...boxes].sort((a, b) => a.x0 - b.x0);
  for (const b of sorted) {
    const h = b.y1 - b.y0;
    const prev = out.find((o) => {
      const oh = o.y1 - o.y0;
      const overlap = Math.min(o.y1, b.y1) - Math.max(o.y0, b.y0);
      return overlap > 0.6 * Math.min(h, oh) && b.x0 - o.x1 <= Math.max(h, oh) && b.x0 >= o.x0;
    });
    if (prev) {
      prev.x1 = Math.max(prev.x1, b.x1);
      prev.y0 = Math.min(prev.y0, b.y0);
      prev.y1 = Math.max(prev.y1, b.y1);
    } else out.push({ ...b });
  }
  return out;
}
