import { crop, type Gray8 } from './render.js';
import { boxArea, type Box } from './text-regions.js';
import { upscale } from './upscale.js';

/**
 * Turning a candidate region into the images OCR reads ("pieces"): cut out, turned to dark ink on a
 * light background for each polarity present, upscaled when the glyphs are small, padded. Large
 * regions are first split into overlapping tiles.
 */
export interface Piece {
  readonly frame: number;
  /** Source rectangle in frame pixels. */
  readonly src: Box;
  readonly scale: number;
  /** The normalised, scaled and padded image (dark ink on a light background). */
  readonly img: Gray8;
  /** Padding around the scaled crop in `img`, in pixels. */
  readonly pad: number;
  /** The piece covers much of the frame (texture-dominated). */
  readonly dense: boolean;
}

/** Light background of a normalised piece; also the fill between stacked pieces. */
export const BACKGROUND = 235;
/** Padding around a piece, in its own (scaled) pixels, so that no text touches the border. */
const PAD = 12;
/** Pieces from a region larger than this share of the frame are dominated by image texture. */
const DENSE_SHARE = 0.25;
/** Largest side of one OCR tile, in source pixels (before upscaling). */
const MAX_TILE = 1600;
const TILE_OVERLAP = 96;

/**
 * Typical glyph height in a normalised crop (dark ink on light): the median length of the vertical
 * ink runs of at least 3 pixels. Vertical strokes run the height of a capital; horizontal strokes and
 * horizontal lines (tables, rulers) give short runs and are left out.
 */
function glyphHeight(g: Gray8): number {
  const runs: number[] = [];
  for (let x = 0; x < g.width; x++) {
    let run = 0;
    for (let y = 0; y <= g.height; y++) {
      const ink = y < g.height && g.data[y * g.width + x] < 140;
      if (ink) run++;
      else {
        if (run >= 3) runs.push(run);
        run = 0;
      }
    }
  }
  if (runs.length < 8) return 0;
  runs.sort((a, b) => a - b);
  return runs[Math.floor(runs.length * 0.85)];
}

/**
 * The versions of a crop to read. Text of either polarity becomes dark ink on a near-white
 * background by subtracting the local background (a box mean around each pixel): one version keeps
 * what is darker than its surroundings, the other what is brighter. This copes with text on uneven
 * backgrounds and with both polarities in one crop (a light banner beside white text on black), and
 * makes every crop look alike, which matters because tesseract binarises a page of stacked crops as
 * a whole. The weaker polarity is read too unless its contrast is clearly only the gaps between the
 * strokes of the stronger one.
 */
function versions(c: Gray8): Uint8Array[] {
  const { width: W, height: H, data } = c;
  const r = Math.max(6, Math.min(16, Math.round(Math.min(W, H) / 3)));
  // Integral image for box means.
  const I = new Float64Array((W + 1) * (H + 1));
  for (let y = 0; y < H; y++) {
    let row = 0;
    for (let x = 0; x < W; x++) {
      row += data[y * W + x];
      I[(y + 1) * (W + 1) + x + 1] = I[y * (W + 1) + x + 1] + row;
    }
  }
  const dark = new Int16Array(W * H);
  const bright = new Int16Array(W * H);
  const hd = new Uint32Array(256);
  const hb = new Uint32Array(256);
  for (let y = 0; y < H; y++) {
    const y0 = Math.max(0, y - r);
    const y1 = Math.min(H, y + r + 1);
    for (let x = 0; x < W; x++) {
      const x0 = Math.max(0, x - r);
      const x1 = Math.min(W, x + r + 1);
      const sum = I[y1 * (W + 1) + x1] - I[y0 * (W + 1) + x1] - I[y1 * (W + 1) + x0] + I[y0 * (W + 1) + x0];
      const d = data[y * W + x] - sum / ((y1 - y0) * (x1 - x0));
      const i = y * W + x;
      if (d < 0) {
        dark[i] = -d;
        hd[Math.min(255, Math.round(-d))]++;
      } else {
        bright[i] = d;
        hb[Math.min(255, Math.round(d))]++;
      }
    }
  }
  const top = (h: Uint32Array) => {
    // The contrast of the strongest ink: the 99.7th percentile of the positive differences.
    let total = 0;
    for (let i = 1; i < 256; i++) total += h[i];
    let acc = 0;
    for (let i = 255; i > 0; i--) {
      acc += h[i];
      if (acc >= 0.003 * W * H || acc >= total) return i;
    }
    return 0;
  };
  const kd = top(hd);
  const kb = top(hb);
  const render = (diff: Int16Array, k: number) => {
    const out = new Uint8Array(W * H);
    const scale = 235 / Math.max(k * 0.8, 24);
    for (let i = 0; i < out.length; i++) {
      const v = 235 - diff[i] * scale;
      out[i] = v <= 0 ? 0 : v;
    }
    return out;
  };
  const strong = Math.max(kd, kb);
  const out: Uint8Array[] = [];
  if (kd >= 24 && kd >= 0.6 * strong) out.push(render(dark, kd));
  if (kb >= 24 && kb >= 0.6 * strong) out.push(render(bright, kb));
  if (out.length === 0) out.push(render(kd >= kb ? dark : bright, strong));
  return out;
}

export function makePieces(g: Gray8, frame: number, src: Box): Piece[] {
  const c = crop(g, src.x0, src.y0, src.x1, src.y1);
  const pieces: Piece[] = [];
  const dense = boxArea(src) > DENSE_SHARE * g.width * g.height;
  for (const data of versions(c)) {
    // Tesseract reads best with text 20-40 px high. A crop of a line or two: from its line height. A
    // tall crop (a block, a whole frame of texture) has no reliable line height: small ones are
    // upscaled within a pixel budget.
    const h = glyphHeight({ ...c, data });
    const budget = Math.max(1, Math.floor(Math.sqrt(1_200_000 / (c.width * c.height))));
    const scale = Math.min(3, budget, h > 0 ? Math.max(1, Math.round(16 / h)) : c.height > 80 ? 2 : 1);
    const img = upscale({ width: c.width, height: c.height, data }, scale);
    // Pad with the (now light) background so that no text touches the border.
    const pw = img.width + 2 * PAD;
    const padded = new Uint8Array(pw * (img.height + 2 * PAD)).fill(BACKGROUND);
    for (let y = 0; y < img.height; y++) padded.set(img.data.subarray(y * img.width, (y + 1) * img.width), (y + PAD) * pw + PAD);
    pieces.push({ frame, src, scale, img: { width: pw, height: img.height + 2 * PAD, data: padded }, pad: PAD, dense });
  }
  return pieces;
}

/** Splits a region larger than a tile into overlapping tiles. */
export function tiles(b: Box): Box[] {
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
