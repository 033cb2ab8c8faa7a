import type { Gray8 } from '../render.js';
import { histogramMedian, type Box } from '../text-regions.js';

/**
 * The pure halves of DB text detection (no ONNX here): the detector's input tensor from an 8-bit
 * render, and text boxes from its probability map. DB predicts a shrunk text kernel per line; a
 * component of the thresholded map, grown back by the shrink distance ("unclip"), is one line or word.
 */

export interface DetectorInput {
  readonly data: Float32Array;
  readonly width: number;
  readonly height: number;
  /** Frame pixels per input pixel, in x and y. */
  readonly sx: number;
  readonly sy: number;
}

/** ImageNet normalisation, as the detector was trained (the three channels of a grey render differ only by it). */
const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

/** Largest input side: beyond it large frames are read scaled down (their text is large too). */
export const MAX_DETECTOR_SIDE = 1600;

/**
 * Context added around the render: a line cut by the frame's edge is then a line inside the detector's
 * view, which it finds far more reliably.
 */
export const EDGE_PAD = 16;

/**
 * What fills that context. `background`, the frame border's typical value, shows a line cut by the
 * edge as the top half of a line, which the detector finds; `edge`, the edge pixels repeated, smears its
 * cut glyphs into stripes but sees a little differently (the verifier's second segmentation uses it).
 */
export type EdgeFill = 'background' | 'edge';

/**
 * Resizes (bilinear) to `scale` times the render padded by EDGE_PAD, rounded to multiples of 32 as the
 * network needs, and normalises. Coordinates map back through sx, sy and the pad.
 */
export function detectorInput(g: Gray8, scale: number, fill: EdgeFill = 'background'): DetectorInput {
  const s = Math.min(scale, MAX_DETECTOR_SIDE / Math.max(g.width, g.height));
  const pw = g.width + 2 * EDGE_PAD;
  const ph = g.height + 2 * EDGE_PAD;
  const W = Math.max(32, Math.round((pw * s) / 32) * 32);
  const H = Math.max(32, Math.round((ph * s) / 32) * 32);
  const sx = pw / W;
  const sy = ph / H;
  const n = W * H;
  const out = new Float32Array(3 * n);
  const lut = [0, 1, 2].map((c) => Float32Array.from({ length: 256 }, (_, v) => (v / 255 - MEAN[c]) / STD[c]));
  const src = g.data;
  const gw = g.width;
  // Column weights once per column: the inner loop is then two multiply-adds per pixel.
  const xa = new Int32Array(W);
  const xb = new Int32Array(W);
  const wx = new Float32Array(W);
  const outside = new Uint8Array(W);
  for (let x = 0; x < W; x++) {
    const raw = (x + 0.5) * sx - 0.5 - EDGE_PAD;
    outside[x] = raw < -0.5 || raw > gw - 0.5 ? 1 : 0;
    const fx = Math.min(gw - 1, Math.max(0, raw));
    xa[x] = Math.floor(fx);
    xb[x] = Math.min(gw - 1, xa[x] + 1);
    wx[x] = fx - xa[x];
  }
  const pad = fill === 'background' ? borderMedian(g) : -1;
  for (let y = 0; y < H; y++) {
    const rawY = (y + 0.5) * sy - 0.5 - EDGE_PAD;
    const rowOutside = rawY < -0.5 || rawY > g.height - 0.5;
    const fy = Math.min(g.height - 1, Math.max(0, rawY));
    const ya = Math.floor(fy);
    const yb = Math.min(g.height - 1, ya + 1);
    const wy = fy - ya;
    const ra = ya * gw;
    const rb = yb * gw;
    for (let x = 0; x < W; x++) {
      const top = src[ra + xa[x]] + (src[ra + xb[x]] - src[ra + xa[x]]) * wx[x];
      const bottom = src[rb + xa[x]] + (src[rb + xb[x]] - src[rb + xa[x]]) * wx[x];
      const v = pad >= 0 && (rowOutside || outside[x]) ? pad : Math.round(top + (bottom - top) * wy);
      const p = y * W + x;
      out[p] = lut[0][v];
      out[n + p] = lut[1][v];
      out[2 * n + p] = lut[2][v];
    }
  }
  return { data: out, width: W, height: H, sx, sy };
}

/** The median of the frame's outermost pixels: the background a cut-off line sits on. */
function borderMedian(g: Gray8): number {
  const hist = new Uint32Array(256);
  const { width: w, height: h, data } = g;
  for (let x = 0; x < w; x++) {
    hist[data[x]]++;
    hist[data[(h - 1) * w + x]]++;
  }
  for (let y = 1; y < h - 1; y++) {
    hist[data[y * w]]++;
    hist[data[y * w + w - 1]]++;
  }
  return histogramMedian(hist, 2 * w + 2 * Math.max(0, h - 2));
}

export interface DetectedBox extends Box {
  /** Mean probability over the component (0-1). */
  readonly score: number;
}

export interface BoxParams {
  /** Probability above which a pixel belongs to a text kernel. */
  readonly threshold?: number;
  /** Mean probability a component needs to count. */
  readonly boxThreshold?: number;
  /** Growth of a kernel back to its text, as DB's unclip ratio. */
  readonly unclipRatio?: number;
}

/**
 * Components of the thresholded probability map (4-connected), each grown by the unclip distance
 * area × ratio / perimeter and mapped back to frame pixels. Axis-aligned: burned-in text is horizontal.
 */
export function boxesFromProbability(prob: Float32Array, input: Pick<DetectorInput, 'width' | 'height' | 'sx' | 'sy'>, frame: { width: number; height: number }, p: BoxParams = {}): DetectedBox[] {
  const T = p.threshold ?? 0.3;
  const minScore = p.boxThreshold ?? 0.5;
  const ratio = p.unclipRatio ?? 1.5;
  const { width: W, height: H, sx, sy } = input;
  const n = W * H;
  const seen = new Uint8Array(n);
  const stack = new Int32Array(n);
  const out: DetectedBox[] = [];
  for (let i = 0; i < n; i++) {
    if (seen[i] || prob[i] <= T) continue;
    let x0 = W;
    let y0 = H;
    let x1 = -1;
    let y1 = -1;
    let sum = 0;
    let count = 0;
    let top = 0;
    stack[top++] = i;
    seen[i] = 1;
    while (top > 0) {
      const j = stack[--top];
      const x = j % W;
      const y = (j - x) / W;
      sum += prob[j];
      count++;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
      if (x > 0 && !seen[j - 1] && prob[j - 1] > T) (seen[j - 1] = 1), (stack[top++] = j - 1);
      if (x < W - 1 && !seen[j + 1] && prob[j + 1] > T) (seen[j + 1] = 1), (stack[top++] = j + 1);
      if (y > 0 && !seen[j - W] && prob[j - W] > T) (seen[j - W] = 1), (stack[top++] = j - W);
      if (y < H - 1 && !seen[j + W] && prob[j + W] > T) (seen[j + W] = 1), (stack[top++] = j + W);
    }
    const w = x1 - x0 + 1;
    const h = y1 - y0 + 1;
    const score = sum / count;
    if (Math.min(w, h) < 2 || score < minScore) continue;
    const d = (w * h * ratio) / (2 * (w + h));
    const box = {
      x0: Math.max(0, Math.floor((x0 - d) * sx - EDGE_PAD)),
      y0: Math.max(0, Math.floor((y0 - d) * sy - EDGE_PAD)),
      x1: Math.min(frame.width, Math.ceil((x1 + 1 + d) * sx - EDGE_PAD)),
      y1: Math.min(frame.height, Math.ceil((y1 + 1 + d) * sy - EDGE_PAD)),
      score,
    };
    // Text found only in the repeated edge is the edge's own, already found inside the frame.
    if (box.x1 - box.x0 >= 2 && box.y1 - box.y0 >= 2) out.push(box);
  }
  return out;
}
