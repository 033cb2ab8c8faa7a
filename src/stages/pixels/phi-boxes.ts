import { NEUTRAL } from '../identifier-matcher.js';
import type { PixelMode } from '../../profiles/pixel-settings.js';
import type { Identifier } from '../identifiers.js';
import type { TextLine } from './find-text.js';
import { clampBox, type Box } from './text-regions.js';

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

// Bounded by non-digits rather than word boundaries: a recogniser often drops the spaces around a
// value ("DOB:08/29/1951MCCHS").
const DATE_PATTERNS = [
  /(?<!\d)\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}(?!\d)/, // 08/29/1951, 29.08.51
  /(?<!\d)\d{4}[/.-]\d{1,2}[/.-]\d{1,2}(?!\d)/, // 1951-08-29
  /(?<!\d)(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?!\d)/, // 19510829
  /(?<!\d)\d{1,2}[-\s]?(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)[A-Z]*[-\s,]*\d{2,4}(?!\d)/i, // 29-AUG-1951
  /(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)[A-Z]*[-\s]?\d{1,2},?[-\s]?\d{2,4}(?!\d)/i, // Aug 29, 1951
  /(?<!\d)(19|20)\d{2}\s?(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)[A-Z]*\s?\d{1,2}(?!\d)/i, // 1999 Sep 23
];
const TIME_PATTERN = /(?<!\d)\d{1,2}:\d{2}(:\d{2})?\s*(AM|PM)?(?!\d)/i;
/** Six or more digits in a row (separators aside): medical record, accession and phone numbers. */
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

/** Whether some stretch of `t` is `v` with at most `max` edits. */
function containsWithin(t: string, v: string, max: number): boolean {
  if (t.length < v.length - max) return false;
  for (let i = 0; i + v.length - max <= t.length; i++) {
    for (const len of [v.length - 1, v.length, v.length + 1]) {
      if (len <= 0 || i + len > t.length) continue;
      if (within(t.slice(i, i + len), v, max)) return true;
    }
  }
  return false;
}

/** Whether `t` ends with the first `min` or more characters of `v` (a value cut off at the edge or by "…"). */
function endsWithStartOf(t: string, v: string, min: number): boolean {
  for (let k = v.length - 1; k >= min; k--) if (t.endsWith(v.slice(0, k))) return true;
  return false;
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

  /**
   * The kind of identifying content in a word or a whole line as read, or undefined. Values are also
   * found inside a longer reading (the recogniser drops spaces: "NAME:ZZZPATIENT"), read with one
   * error when they are long enough to stay specific, and cut short at the end of the text.
   */
  sensitive(text: string, confidence = 100): SensitiveKind | undefined {
    const t = alnum(text);
    if (t.length === 0) return undefined;
    for (const n of this.names) {
      if (t === n) return 'name';
      // Truncated on screen ("PATIENTFI…") or read with one error: long enough to be specific.
      if (t.length >= 4 && n.length >= 4 && (n.startsWith(t) || t.startsWith(n))) return 'name';
      if (t.length >= 5 && within(t, n, 1)) return 'name';
      if (n.length >= 4 && t.includes(n)) return 'name';
      if (n.length >= 6 && (containsWithin(t, n, 1) || endsWithStartOf(t, n, 5))) return 'name';
    }
    for (const id of this.ids) {
      if (t === id) return 'id';
      if (id.length >= 5 && (t.includes(id) || (t.length >= 5 && id.includes(t)))) return 'id';
      if (t.length >= 6 && within(t, id, 1)) return 'id';
      if (id.length >= 6 && containsWithin(t, id, 1)) return 'id';
    }
    for (const w of this.words) {
      if (t === w || (t.length >= 5 && within(t, w, 1)) || (t.length >= 4 && w.startsWith(t) && t.length >= w.length - 3)) return 'institution';
      if (w.length >= 5 && (t.includes(w) || endsWithStartOf(t, w, 5))) return 'institution';
      if (w.length >= 6 && containsWithin(t, w, 1)) return 'institution';
    }
    // Patterns are judged only on text read with some confidence: noise can look like digits.
    if (confidence >= 40) {
      if (DATE_PATTERNS.some((p) => p.test(text))) return 'date';
      if (TIME_PATTERN.test(text)) return 'time';
      if (DIGIT_RUN.test(text.replace(/[\s-]/g, ''))) return 'digits';
    }
    return undefined;
  }
}

const hasAlnum = (s: string) => /[\p{L}\p{N}]/u.test(s);

export interface MaskDecision {
  readonly boxes: Box[];
  /** Lines masked (counts only: never the text). */
  readonly masked: number;
  /** Of those, lines read with low confidence and masked from their shape and strokes. */
  readonly unread: number;
  /** Lines kept (sensitive-text mode: text that identifies no one). */
  readonly kept: number;
}

/** Whether a line holds identifying content: itself, a word of it, or two neighbouring words ("29 Aug", "DOE JOHN"). */
export function sensitiveLine(text: string, confidence: number, matcher: PhiMatcher): SensitiveKind | undefined {
  const whole = matcher.sensitive(text, confidence);
  if (whole) return whole;
  const words = text.split(/[\s:;,]+/).filter(hasAlnum);
  for (const [i, w] of words.entries()) {
    const k = matcher.sensitive(w, confidence) ?? (i + 1 < words.length ? matcher.sensitive(`${w} ${words[i + 1]}`, confidence) : undefined);
    if (k) return k;
  }
  return undefined;
}

/**
 * The boxes to mask, from the text lines found (find-text.ts). Every line is masked whole, labels,
 * values and the gaps between words, with a margin that grows with the line's height: part of a date
 * or a name left readable is a date or a name left readable. all-text masks every line;
 * sensitive-text masks the lines that hold identifying content and every line it could not read.
 */
export interface MaskOptions {
  readonly margin: number;
  readonly frame?: { readonly width: number; readonly height: number };
  /** Whether anything is drawn in a region of the frame (in any frame): without it, a strip is taken to hold ink. */
  readonly inkIn?: (b: Box) => boolean;
}

export function decideMasks(lines: readonly TextLine[], mode: PixelMode, matcher: PhiMatcher, opts: MaskOptions): MaskDecision {
  let masked = 0;
  let unread = 0;
  let kept = 0;
  const boxes: Box[] = [];
  // Columns keep to themselves: joining them with the lines beside them would mask the rows between.
  const columns: Box[] = [];
  for (const line of lines) {
    const take = mode === 'all-text' || !line.read || !!sensitiveLine(line.text, 100 * line.confidence, matcher);
    if (!take) {
      kept++;
      continue;
    }
    masked++;
    if (!line.read) unread++;
    // The line's height: a column's is its width.
    const h = line.vertical ? line.box.x1 - line.box.x0 : line.box.y1 - line.box.y0;
    // A fifth of the height above and below; more at each end (about a character): a line's first and
    // last glyphs are what detection most often cuts, while its height is found well.
    const m = Math.max(opts.margin, Math.ceil(0.2 * h));
    const end = Math.max(opts.margin, Math.ceil(0.6 * h));
    if (line.vertical) {
      const box = { x0: line.box.x0 - m, y0: line.box.y0 - end, x1: line.box.x1 + m, y1: line.box.y1 + end };
      columns.push(opts.frame ? clampBox(box, opts.frame.width, opts.frame.height) : box);
      continue;
    }
    const box = { x0: line.box.x0 - end, y0: line.box.y0 - m, x1: line.box.x1 + end, y1: line.box.y1 + m };
    boxes.push(opts.frame ? toFrameEdges(box, opts.frame, { margin: m, end, lineHeight: h, inkIn: opts.inkIn ?? (() => true) }) : box);
  }
  return { boxes: [...mergeLineBoxes(boxes), ...columns], masked, unread, kept };
}

/**
 * A strip between a mask and the frame's edge is masked too when it can hold only the cut-off part of
 * text running out of the frame, which no detector sees as a line: beside a line, narrower than its end
 * margin; above or below, narrower than the margin, or narrower than a line with something drawn in it
 * (the tops of the next line's glyphs, three rows high).
 */
function toFrameEdges(b: Box, frame: { width: number; height: number }, o: { margin: number; end: number; lineHeight: number; inkIn: (b: Box) => boolean }): Box {
  const cutOff = (strip: Box) => strip.y1 - strip.y0 <= o.margin || (strip.y1 - strip.y0 < o.lineHeight && o.inkIn(strip));
  return {
    x0: b.x0 <= o.end ? 0 : b.x0,
    y0: b.y0 > 0 && cutOff({ x0: Math.max(0, b.x0), y0: 0, x1: Math.min(frame.width, b.x1), y1: b.y0 }) ? 0 : b.y0,
    x1: frame.width - b.x1 <= o.end ? frame.width : b.x1,
    y1: b.y1 < frame.height && cutOff({ x0: Math.max(0, b.x0), y0: b.y1, x1: Math.min(frame.width, b.x1), y1: frame.height }) ? frame.height : b.y1,
  };
}

/**
 * Masks by line, and by paragraph where lines wrap. Boxes on one line become one, with what lies
 * between them. A line stacked
 * under another is joined to it (the gap between them is masked too); a line that starts indented
 * under the one above continues its value (a wrapped institution name), so it is masked to the right
 * end of that line as well. Columns side by side stay apart.
 */
/**
 * Pieces of one line further apart than this many line heights are separate texts. Closer, the gap
 * is a space between words, or characters the detector could not see (drawn in the same grey as the
 * anatomy behind them), and is masked with them.
 */
const LINE_GAP = 1.3;

function mergeLineBoxes(boxes: Box[]): Box[] {
  const lines: Box[] = [];
  for (const b of [...boxes].sort((a, c) => a.x0 - c.x0)) {
    const h = b.y1 - b.y0;
    const same = lines.find((o) => Math.min(o.y1, b.y1) - Math.max(o.y0, b.y0) > 0.6 * Math.min(h, o.y1 - o.y0) && b.x0 <= o.x1 + LINE_GAP * Math.min(h, o.y1 - o.y0));
    if (same) {
      same.x1 = Math.max(same.x1, b.x1);
      same.y0 = Math.min(same.y0, b.y0);
      same.y1 = Math.max(same.y1, b.y1);
    } else lines.push({ ...b });
  }
  lines.sort((a, c) => a.y0 - c.y0);
  const continues = new Set<Box>();
  for (const [i, line] of lines.entries()) {
    const h = line.y1 - line.y0;
    const above = lines
      .slice(0, i)
      .filter((o) => o.y1 <= line.y1 && line.y0 - o.y1 <= 0.9 * h && Math.min(o.x1, line.x1) - Math.max(o.x0, line.x0) > 0)
      .sort((a, c) => c.y1 - a.y1)[0];
    if (!above) continue;
    line.y0 = Math.min(line.y0, above.y1);
    // Indented under the line above, or aligned under a line that itself continues: the same value.
    if (line.x0 > above.x0 + 0.5 * h || (continues.has(above) && Math.abs(line.x0 - above.x0) <= 0.5 * h)) {
      line.x1 = Math.max(line.x1, above.x1);
      continues.add(line);
    }
  }
  return lines;
}
