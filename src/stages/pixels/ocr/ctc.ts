import type { Gray8 } from '../render.js';
import type { Box } from '../text-regions.js';

/**
 * The pure halves of line recognition: the recogniser's input from a crop of a render, and text from
 * its per-step class probabilities (greedy CTC: best class per step, repeats collapsed, blanks dropped).
 */

/** The recogniser's fixed input height. */
export const LINE_HEIGHT = 48;
/** Widest input: longer lines are squeezed (they are rare, and a squeezed line still reads as text). */
export const MAX_LINE_WIDTH = 2400;

export interface RecognizerInput {
  readonly data: Float32Array;
  readonly width: number;
}

/** The crop `b` of `g`, scaled to the line height with its aspect kept, normalised to [-1, 1]. */
export function recognizerInput(g: Gray8, b: Box): RecognizerInput | undefined {
  const x0 = Math.max(0, Math.floor(b.x0));
  const y0 = Math.max(0, Math.floor(b.y0));
  const x1 = Math.min(g.width, Math.ceil(b.x1));
  const y1 = Math.min(g.height, Math.ceil(b.y1));
  const cw = x1 - x0;
  const ch = y1 - y0;
  if (cw < 2 || ch < 2) return undefined;
  const H = LINE_HEIGHT;
  const W = Math.max(16, Math.min(MAX_LINE_WIDTH, Math.ceil((cw * H) / ch / 8) * 8));
  const plane = H * W;
  const out = new Float32Array(3 * plane);
  const src = g.data;
  for (let y = 0; y < H; y++) {
    const fy = Math.min(ch - 1, Math.max(0, ((y + 0.5) * ch) / H - 0.5));
    const ya = Math.floor(fy);
    const yb = Math.min(ch - 1, ya + 1);
    const wy = fy - ya;
    for (let x = 0; x < W; x++) {
      const fx = Math.min(cw - 1, Math.max(0, ((x + 0.5) * cw) / W - 0.5));
      const xa = Math.floor(fx);
      const xb = Math.min(cw - 1, xa + 1);
      const wx = fx - xa;
      const at = (yy: number, xx: number) => src[(y0 + yy) * g.width + x0 + xx];
      const top = at(ya, xa) + (at(ya, xb) - at(ya, xa)) * wx;
      const bottom = at(yb, xa) + (at(yb, xb) - at(yb, xa)) * wx;
      const v = (top + (bottom - top) * wy) / 127.5 - 1;
      const p = y * W + x;
      out[p] = v;
      out[plane + p] = v;
      out[2 * plane + p] = v;
    }
  }
  return { data: out, width: W };
}

export interface ReadChar {
  readonly char: string;
  /** Probability of the character (0-1). */
  readonly p: number;
  /** Where it was read: the centre of its step, in the pixels of the frame the crop came from. */
  readonly x: number;
}

export interface ReadLine {
  readonly text: string;
  /** Mean probability of the characters read (0-1); 0 when nothing was read. */
  readonly confidence: number;
  readonly chars: readonly ReadChar[];
}

/**
 * Greedy CTC decoding of `steps` × `classes` probabilities. `at(step)` maps a step to the frame's x
 * (the steps cover the input width evenly).
 */
export function decodeCtc(probs: Float32Array, steps: number, classes: number, charset: readonly string[], at: (step: number) => number = (t) => t): ReadLine {
  let text = '';
  let sum = 0;
  let count = 0;
  let prev = 0;
  const chars: ReadChar[] = [];
  for (let t = 0; t < steps; t++) {
    const row = t * classes;
    let best = 0;
    let bestP = -1;
    for (let c = 0; c < classes; c++) {
      const p = probs[row + c];
      if (p > bestP) {
        bestP = p;
        best = c;
      }
    }
    if (best !== 0 && best !== prev) {
      const char = charset[best] ?? '';
      text += char;
      sum += bestP;
      count++;
      chars.push({ char, p: bestP, x: at(t) });
    }
    prev = best;
  }
  return { text, confidence: count ? sum / count : 0, chars };
}
