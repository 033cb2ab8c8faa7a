import type { Gray8 } from './render.js';

/**
 * Integer upscaling of an 8-bit grey crop with a Catmull-Rom cubic (the kernel sharp calls `cubic`),
 * done here rather than in sharp: OCR crops are small, and a synchronous pass costs a fraction of a
 * millisecond where a round trip through sharp's thread pool costs several under load.
 */
export function upscale(g: Gray8, s: number): Gray8 {
  if (s === 1) return g;
  const { width: W, height: H, data } = g;
  const w = W * s;
  const h = H * s;
  // Output pixel i samples source position i / s - 0.5, the convention of libvips (so OCR sees what
  // it saw when sharp did this).
  const taps = (n: number) => {
    const idx = new Int32Array(n * s * 4);
    const wt = new Float32Array(n * s * 4);
    for (let i = 0; i < n * s; i++) {
      const p = i / s - 0.5;
      const f = Math.floor(p);
      const t = p - f;
      const k = [((-0.5 * t + 1) * t - 0.5) * t, (1.5 * t - 2.5) * t * t + 1, ((-1.5 * t + 2) * t + 0.5) * t, (0.5 * t - 0.5) * t * t];
      for (let j = 0; j < 4; j++) {
        idx[i * 4 + j] = Math.min(n - 1, Math.max(0, f - 1 + j));
        wt[i * 4 + j] = k[j];
      }
    }
    return { idx, wt };
  };
  const tx = taps(W);
  const ty = taps(H);
  // Horizontal pass into floats, then vertical pass with rounding and clamping.
  const mid = new Float32Array(w * H);
  for (let y = 0; y < H; y++) {
    const row = y * W;
    for (let x = 0; x < w; x++) {
      const b = x * 4;
      mid[y * w + x] =
        data[row + tx.idx[b]] * tx.wt[b] + data[row + tx.idx[b + 1]] * tx.wt[b + 1] + data[row + tx.idx[b + 2]] * tx.wt[b + 2] + data[row + tx.idx[b + 3]] * tx.wt[b + 3];
    }
  }
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    const b = y * 4;
    const r0 = ty.idx[b] * w;
    const r1 = ty.idx[b + 1] * w;
    const r2 = ty.idx[b + 2] * w;
    const r3 = ty.idx[b + 3] * w;
    const k0 = ty.wt[b];
    const k1 = ty.wt[b + 1];
    const k2 = ty.wt[b + 2];
    const k3 = ty.wt[b + 3];
    for (let x = 0; x < w; x++) {
      const v = mid[r0 + x] * k0 + mid[r1 + x] * k1 + mid[r2 + x] * k2 + mid[r3 + x] * k3;
      out[y * w + x] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
    }
  }
  return { width: w, height: h, data: out };
}
