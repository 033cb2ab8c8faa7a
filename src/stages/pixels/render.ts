import type { PixelDescriptor } from '../../dicom/pixels/descriptor.js';
import type { Palette } from '../../dicom/pixels/palette.js';

/**
 * Renders of decoded frames for OCR and previews. OCR wants 8-bit grey with the text as contrast;
 * previews want what a viewer shows. Both come from the stored values, never from presentation
 * LUTs that could hide text (a window that clips burned-in text to the background would hide it).
 */
export interface Gray8 {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

export interface Rgb8 {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array; // interleaved RGB
}

/** The stored value of sample `s` of pixel `p` as a number (signed when PixelRepresentation is 1; bits outside BitsStored dropped). */
export function sampleReader(d: PixelDescriptor, frame: Uint8Array): (p: number, s: number) => number {
  const n = d.rows * d.columns;
  const spp = d.samplesPerPixel;
  const index = d.planarConfiguration === 1 ? (p: number, s: number) => s * n + p : (p: number, s: number) => p * spp + s;
  const lowBit = d.highBit - d.bitsStored + 1;
  const signed = d.pixelRepresentation === 1;
  const bs = d.bitsStored;
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (d.bitsAllocated === 8) {
    if (lowBit === 0 && bs === 8) return signed ? (p, s) => view.getInt8(index(p, s)) : (p, s) => frame[index(p, s)];
    return (p, s) => extract(frame[index(p, s)], lowBit, bs, signed);
  }
  if (d.bitsAllocated === 16) {
    if (lowBit === 0 && bs === 16) return signed ? (p, s) => view.getInt16(index(p, s) * 2, true) : (p, s) => view.getUint16(index(p, s) * 2, true);
    return (p, s) => extract(view.getUint16(index(p, s) * 2, true), lowBit, bs, signed);
  }
  if (lowBit === 0 && bs === 32) return signed ? (p, s) => view.getInt32(index(p, s) * 4, true) : (p, s) => view.getUint32(index(p, s) * 4, true);
  return (p, s) => extract(view.getUint32(index(p, s) * 4, true), lowBit, bs, signed);
}

function extract(word: number, lowBit: number, bits: number, signed: boolean): number {
  const v = Math.floor(word / 2 ** lowBit) % 2 ** bits;
  return signed && v >= 2 ** (bits - 1) ? v - 2 ** bits : v;
}

/**
 * 8-bit grey for text detection and OCR. Monochrome: a linear min–max window over the frame (text is
 * almost always at or near an extreme value; a clinical window could clip it into the background),
 * without an isolated black value (see grayWindow), MONOCHROME1 inverted to look as displayed.
 * Colour: luma. YBR_FULL: its Y sample.
 */
export function renderGray(d: PixelDescriptor, frame: Uint8Array, lut?: Palette, shared?: FrameWords): Gray8 {
  const n = d.rows * d.columns;
  const get = sampleReader(d, frame);
  if (d.photometric === 'PALETTE COLOR' && lut) {
    const out = new Uint8Array(n);
    for (let p = 0; p < n; p++) {
      const i = lut.index(get(p, 0));
      out[p] = (lut.r[i] * 77 + lut.g[i] * 150 + lut.b[i] * 29) >> 8;
    }
    return { width: d.columns, height: d.rows, data: out };
  }
  if (d.samplesPerPixel === 3) {
    const out = new Uint8Array(n);
    if (d.photometric === 'YBR_FULL') {
      const scale = 255 / (2 ** d.bitsStored - 1);
      for (let p = 0; p < n; p++) out[p] = Math.round(get(p, 0) * scale);
    } else {
      const scale = 255 / (2 ** d.bitsStored - 1);
      for (let p = 0; p < n; p++) out[p] = Math.round((get(p, 0) * 0.299 + get(p, 1) * 0.587 + get(p, 2) * 0.114) * scale);
    }
    return { width: d.columns, height: d.rows, data: out };
  }
  const invert = d.photometric === 'MONOCHROME1';
  // 8- and 16-bit: the window over the distinct stored values, then applied as a lookup table by word
  // (every frame is rendered twice, for cleaning and for verification; the per-pixel reader is
  // several times slower). Other layouts (32-bit, big-endian hosts): value by value.
  const words = shared ?? frameWords(d, frame);
  const w = grayWindow(
    (visit) => {
      if (words) for (const v of words.values) visit(v);
      else for (let p = 0; p < n; p++) visit(get(p, 0));
    },
    invert,
  );
  const range = w.max - w.min || 1;
  const grey = (v: number) => {
    const g = Math.round(((v - w.min) * 255) / range);
    const c = g <= 0 ? 0 : g >= 255 ? 255 : g;
    return invert ? 255 - c : c;
  };
  return { width: d.columns, height: d.rows, data: toGrey(d, frame, words, grey) };
}

/**
 * The min–max window of a monochrome frame, leaving out a value at the end displayed as black when it
 * lies further from the other values than they span: the fill of masked boxes (the smallest storable
 * value, -32768 on a signed CT) or a padding value. Kept in the window, it would squeeze the picture
 * and any text left in it into a few grey levels, where neither the stroke analysis nor OCR sees
 * them: verification of a masked CT would look at a blank image. Left out, it renders as black.
 */
export function grayWindow(each: (visit: (v: number) => void) => void, invert: boolean): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  each((v) => {
    if (v < min) min = v;
    if (v > max) max = v;
  });
  if (min === max) return { min, max };
  // The black end: the minimum, or the maximum for MONOCHROME1; its nearest other value.
  const black = invert ? max : min;
  let next = invert ? -Infinity : Infinity;
  each((v) => {
    if (v !== black && (invert ? v > next : v < next)) next = v;
  });
  const gap = Math.abs(next - black);
  const rest = invert ? next - min : max - next;
  // Two values only (a bitmap, a two-level document): neither is padding, or the frame renders as one grey.
  if (gap <= rest || rest === 0) return { min, max };
  return invert ? { min, max: next } : { min: next, max };
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The stored words of a one-sample 8- or 16-bit frame as a typed array; undefined for other layouts. */
function storedWords(d: PixelDescriptor, frame: Uint8Array): Uint8Array | Uint16Array | undefined {
  const n = d.rows * d.columns;
  if (d.bitsAllocated === 8) return frame.subarray(0, n);
  if (d.bitsAllocated !== 16 || !littleEndian) return undefined;
  const bytes = frame.byteOffset % 2 === 0 ? frame : frame.slice(0, n * 2);
  return new Uint16Array(bytes.buffer, bytes.byteOffset, n);
}

interface DistinctWords {
  /** The value of each distinct word, in the order first seen. */
  readonly values: readonly number[];
  /** The frame mapped through `grey`, called once per distinct value. */
  render(grey: (value: number) => number): Uint8Array;
}

/**
 * The distinct stored words of a one-sample 8- or 16-bit frame (a small frame holds far fewer than
 * 2^16), so that a render computes each value's grey once and maps pixels through a table.
 */
function distinctWords(d: PixelDescriptor, frame: Uint8Array): DistinctWords | undefined {
  const words = storedWords(d, frame);
  if (!words) return undefined;
  const seen = new Uint8Array(2 ** d.bitsAllocated);
  const distinct: number[] = [];
  for (let p = 0; p < words.length; p++) {
    const word = words[p];
    if (!seen[word]) {
      seen[word] = 1;
      distinct.push(word);
    }
  }
  const values = distinct.map((word) => extract(word, d.highBit - d.bitsStored + 1, d.bitsStored, d.pixelRepresentation === 1));
  return {
    values,
    render(grey) {
      const table = new Uint8Array(seen.length);
      for (let i = 0; i < distinct.length; i++) table[distinct[i]] = grey(values[i]);
      const out = new Uint8Array(words.length);
      for (let p = 0; p < words.length; p++) out[p] = table[words[p]];
      return out;
    },
  };
}

/** A frame's distinct stored words, for its renders to share (undefined for layouts rendered value by value). */
export type FrameWords = DistinctWords | undefined;

export function frameWords(d: PixelDescriptor, frame: Uint8Array): FrameWords {
  return d.samplesPerPixel === 1 && d.photometric !== 'PALETTE COLOR' ? distinctWords(d, frame) : undefined;
}

/** A one-sample frame in 8-bit grey by `grey`: through a table over its distinct words when it has them, else value by value. */
function toGrey(d: PixelDescriptor, frame: Uint8Array, words: DistinctWords | undefined, grey: (value: number) => number): Uint8Array {
  if (words) return words.render(grey);
  const get = sampleReader(d, frame);
  const out = new Uint8Array(d.rows * d.columns);
  for (let p = 0; p < out.length; p++) out[p] = grey(get(p, 0));
  return out;
}

/** An 8-bit RGB render for previews: grey replicated, colour as stored (YBR_FULL converted). */
export function renderRgb(d: PixelDescriptor, frame: Uint8Array, lut?: Palette): Rgb8 {
  const n = d.rows * d.columns;
  const out = new Uint8Array(n * 3);
  if (d.samplesPerPixel === 3) {
    const get = sampleReader(d, frame);
    const scale = 255 / (2 ** d.bitsStored - 1);
    const ybr = d.photometric === 'YBR_FULL';
    for (let p = 0; p < n; p++) {
      let r = get(p, 0) * scale;
      let g = get(p, 1) * scale;
      let b = get(p, 2) * scale;
      if (ybr) {
        const y = r;
        const cb = g - 128;
        const cr = b - 128;
        r = y + 1.402 * cr;
        g = y - 0.344136 * cb - 0.714136 * cr;
        b = y + 1.772 * cb;
      }
      out[p * 3] = clamp8(r);
      out[p * 3 + 1] = clamp8(g);
      out[p * 3 + 2] = clamp8(b);
    }
    return { width: d.columns, height: d.rows, data: out };
  }
  if (d.photometric === 'PALETTE COLOR' && lut) {
    const get = sampleReader(d, frame);
    for (let p = 0; p < n; p++) {
      const i = lut.index(get(p, 0));
      out[p * 3] = lut.r[i];
      out[p * 3 + 1] = lut.g[i];
      out[p * 3 + 2] = lut.b[i];
    }
    return { width: d.columns, height: d.rows, data: out };
  }
  const g = renderGray(d, frame);
  for (let p = 0; p < n; p++) out[p * 3] = out[p * 3 + 1] = out[p * 3 + 2] = g.data[p];
  return { width: d.columns, height: d.rows, data: out };
}

const clamp8 = (v: number) => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));

export function crop(g: Gray8, x0: number, y0: number, x1: number, y1: number): Gray8 {
  const w = x1 - x0;
  const h = y1 - y0;
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) out.set(g.data.subarray((y0 + y) * g.width + x0, (y0 + y) * g.width + x1), y * w);
  return { width: w, height: h, data: out };
}

/**
 * The brightest of a colour frame's channels, per pixel: text in a saturated dark colour (blue on
 * black) has too little luma for the stroke analysis to see it, and is bright in its own channel.
 * Undefined for a monochrome frame.
 */
export function renderBrightest(d: PixelDescriptor, frame: Uint8Array, lut?: Palette): Gray8 | undefined {
  if (d.samplesPerPixel !== 3 && !(d.photometric === 'PALETTE COLOR' && lut)) return undefined;
  const rgb = renderRgb(d, frame, lut).data;
  const out = new Uint8Array(d.rows * d.columns);
  for (let p = 0, i = 0; p < out.length; p++, i += 3) out[p] = Math.max(rgb[i], rgb[i + 1], rgb[i + 2]);
  return { width: d.columns, height: d.rows, data: out };
}

/** A render halved, each output pixel the mean of its 2 × 2 block (an odd last row or column dropped). */
export function halve(g: Gray8): Gray8 {
  const w = g.width >> 1;
  const h = g.height >> 1;
  const out = new Uint8Array(w * h);
  const src = g.data;
  for (let y = 0; y < h; y++) {
    let a = 2 * y * g.width;
    let b = a + g.width;
    for (let x = 0, o = y * w; x < w; x++, o++, a += 2, b += 2) out[o] = (src[a] + src[a + 1] + src[b] + src[b + 1] + 2) >> 2;
  }
  return { width: w, height: h, data: out };
}

/** A linear VOI window in modality units (PS3.3 C.11.2.1.2), with the rescale that maps stored values to them. */
export interface VoiWindow {
  readonly center: number;
  readonly width: number;
  readonly slope: number;
  readonly intercept: number;
}

/**
 * 8-bit grey through the data set's own window: what a viewer shows first. Text drawn in the range a
 * viewer displays stands out here even when the stored range is far wider (a 16-bit CT with -2000 padding).
 */
export function renderWindow(d: PixelDescriptor, frame: Uint8Array, w: VoiWindow, shared?: FrameWords): Gray8 | undefined {
  if (d.samplesPerPixel !== 1 || d.photometric === 'PALETTE COLOR' || !(w.width >= 1) || !Number.isFinite(w.center)) return undefined;
  const n = d.rows * d.columns;
  const invert = d.photometric === 'MONOCHROME1';
  const lo = w.center - 0.5 - (w.width - 1) / 2;
  const scale = 255 / Math.max(1, w.width - 1);
  const grey = (v: number) => {
    const g = Math.round((v * w.slope + w.intercept - lo) * scale);
    const c = g <= 0 ? 0 : g >= 255 ? 255 : g;
    return invert ? 255 - c : c;
  };
  const out = toGrey(d, frame, shared ?? frameWords(d, frame), grey);
  let clipped = 0;
  for (let p = 0; p < n; p++) if (out[p] === 0 || out[p] === 255) clipped++;
  // A window that clips almost everything shows nothing (8-bit data with a CT window in HU); one that
  // clips nothing shows what the stored-range render shows. Neither is worth reading.
  if (clipped > 0.97 * n || clipped === 0) return undefined;
  return { width: d.columns, height: d.rows, data: out };
}

/** Radius of the neighbourhood a local-contrast render compares each pixel with: about a line of small text. */
const LOCAL_RADIUS = 12;

/**
 * Local contrast: each value as its distance from the mean of its neighbourhood, in units of the
 * neighbourhood's spread. Text in the middle of the range (grey on grey), or faint against the
 * anatomy it is drawn over, gets the contrast that a global window gives only to the extremes.
 * `values` are one sample per pixel (stored values, or an 8-bit render); MONOCHROME1 is inverted by
 * the caller's flag so that the render looks as displayed.
 */
export function renderLocalContrast(values: ArrayLike<number>, width: number, height: number, invert = false): Gray8 {
  const W = width;
  const H = height;
  const r = LOCAL_RADIUS;
  const stride = W + 1;
  const sum = new Float64Array(stride * (H + 1));
  const sq = new Float64Array(stride * (H + 1));
  let total = 0;
  let totalSq = 0;
  for (let y = 0; y < H; y++) {
    let a = 0;
    let b = 0;
    for (let x = 0; x < W; x++) {
      const v = values[y * W + x];
      a += v;
      b += v * v;
      sum[(y + 1) * stride + x + 1] = sum[y * stride + x + 1] + a;
      sq[(y + 1) * stride + x + 1] = sq[y * stride + x + 1] + b;
    }
    total += a;
    totalSq += b;
  }
  const n = W * H;
  const globalSd = Math.sqrt(Math.max(0, totalSq / n - (total / n) ** 2));
  // A floor under the spread: flat areas (air, padding) would otherwise turn their noise into texture.
  const floor = Math.max(0.05 * globalSd, NOISE_FLOOR * noiseSd(values, W, H)) + 1e-6;
  const out = new Uint8Array(n);
  for (let y = 0; y < H; y++) {
    const ya = Math.max(0, y - r);
    const yb = Math.min(H, y + r + 1);
    for (let x = 0; x < W; x++) {
      const xa = Math.max(0, x - r);
      const xb = Math.min(W, x + r + 1);
      const count = (yb - ya) * (xb - xa);
      const s = sum[yb * stride + xb] - sum[ya * stride + xb] - sum[yb * stride + xa] + sum[ya * stride + xa];
      const s2 = sq[yb * stride + xb] - sq[ya * stride + xb] - sq[yb * stride + xa] + sq[ya * stride + xa];
      const mean = s / count;
      const sd = Math.sqrt(Math.max(0, s2 / count - mean * mean));
      let z = (values[y * W + x] - mean) / (sd + floor);
      if (invert) z = -z;
      const g = Math.round(128 + 50 * z);
      out[y * W + x] = g <= 0 ? 0 : g >= 255 ? 255 : g;
    }
  }
  return { width: W, height: H, data: out };
}

/**
 * The spread floor in units of the frame's noise: a neighbourhood whose values differ by about its
 * noise alone stays dim, where letters, drawn well above the noise, still stand out.
 */
const NOISE_FLOOR = 1;

/**
 * The frame's noise, robustly: the median absolute difference of horizontal neighbours (most of
 * a frame is smooth, so edges and letters do not move it), as a standard deviation. 0 where most
 * neighbours are equal (padding, a synthetic background): the floor then stays as it was.
 */
function noiseSd(values: ArrayLike<number>, W: number, H: number): number {
  const BINS = 4096;
  const hist = new Uint32Array(BINS);
  let count = 0;
  for (let y = 0; y < H; y += 2) {
    const row = y * W;
    for (let x = 0; x + 1 < W; x++) {
      const d = Math.abs(values[row + x + 1] - values[row + x]);
      hist[d >= BINS - 1 ? BINS - 1 : Math.floor(d)]++;
      count++;
    }
  }
  let seen = 0;
  for (let b = 0; b < BINS; b++) {
    seen += hist[b];
    // For normal noise, the median of |difference| is 0.954 of one pixel's standard deviation.
    if (seen * 2 >= count) return b / 0.954;
  }
  return 0;
}

/** One sample per pixel as numbers (monochrome stored values; luma of colour via the grey render). */
export function monochromeValues(d: PixelDescriptor, frame: Uint8Array): Float32Array | undefined {
  if (d.samplesPerPixel !== 1 || d.photometric === 'PALETTE COLOR') return undefined;
  const n = d.rows * d.columns;
  const get = sampleReader(d, frame);
  const out = new Float32Array(n);
  for (let p = 0; p < n; p++) out[p] = get(p, 0);
  return out;
}
