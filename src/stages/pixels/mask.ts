import type { PixelDescriptor } from '../../dicom/pixels/descriptor.js';
import type { Palette } from '../../dicom/pixels/palette.js';
import type { Box } from './text-regions.js';

/**
 * Masking in the stored values: a pure function of (frame, description, boxes). Every sample of every
 * pixel inside a box gets the fill, written with the right width, bit position and sign, so that a
 * viewer shows black whatever the window:
 * - MONOCHROME2: the smallest storable value; MONOCHROME1 (inverted display): the largest;
 * - RGB: 0, 0, 0; YBR_FULL: Y = 0 with neutral chroma;
 * - PALETTE COLOR: the index of the darkest palette entry.
 * Bits outside BitsStored inside a box are cleared (they can hold overlay bit planes).
 */

/** The fill value of each sample, as a signed or unsigned stored value. */
export function fillValues(d: PixelDescriptor, palette?: Palette): number[] {
  const bs = d.bitsStored;
  const signed = d.pixelRepresentation === 1;
  const min = signed ? -(2 ** (bs - 1)) : 0;
  const max = signed ? 2 ** (bs - 1) - 1 : 2 ** bs - 1;
  switch (d.photometric) {
    case 'MONOCHROME1':
      return [max];
    case 'MONOCHROME2':
      return [min];
    case 'PALETTE COLOR':
      return [palette ? Math.min(max, palette.darkest + palette.firstMapped) : min];
    case 'YBR_FULL':
      return [0, 2 ** (bs - 1), 2 ** (bs - 1)];
    default:
      return d.samplesPerPixel === 3 ? [min, min, min] : [min];
  }
}

/** The whole allocated word for a stored value: the value at [lowBit, highBit], sign-extended above when signed. */
export function storedWord(d: PixelDescriptor, value: number): number {
  const bs = d.bitsStored;
  const lowBit = d.highBit - bs + 1;
  const bits = ((value % 2 ** bs) + 2 ** bs) % 2 ** bs;
  let word = bits * 2 ** lowBit;
  if (d.pixelRepresentation === 1 && value < 0) word += 2 ** d.bitsAllocated - 2 ** (d.highBit + 1);
  return word;
}

export interface MaskSpec {
  /** Rectangles to fill, in frame pixels (end-exclusive); clipped to the frame. */
  readonly boxes: readonly Box[];
  /** Optional keep-map (one byte per pixel, 1 = keep): every pixel outside it is filled (ultrasound regions). */
  readonly keep?: Uint8Array;
}

/** Fills the boxes (and everything outside the keep-map) of one frame in place; returns the pixels filled. */
export function maskFrame(frame: Uint8Array, d: PixelDescriptor, spec: MaskSpec, palette?: Palette): number {
  const W = d.columns;
  const H = d.rows;
  const n = W * H;
  const spp = d.samplesPerPixel;
  const bps = d.bitsAllocated / 8;
  const words = fillValues(d, palette).map((v) => storedWord(d, v));
  const planar = d.planarConfiguration === 1;
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const put = (p: number) => {
    for (let s = 0; s < spp; s++) {
      const i = planar ? s * n + p : p * spp + s;
      if (bps === 1) frame[i] = words[s];
      else if (bps === 2) dv.setUint16(i * 2, words[s], true);
      else dv.setUint32(i * 4, words[s], true);
    }
  };
  const hit = new Uint8Array(n);
  for (const b of spec.boxes) {
    const x0 = Math.max(0, Math.floor(b.x0));
    const y0 = Math.max(0, Math.floor(b.y0));
    const x1 = Math.min(W, Math.ceil(b.x1));
    const y1 = Math.min(H, Math.ceil(b.y1));
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) hit[y * W + x] = 1;
  }
  if (spec.keep) for (let p = 0; p < n; p++) if (!spec.keep[p]) hit[p] = 1;
  let count = 0;
  for (let p = 0; p < n; p++) {
    if (!hit[p]) continue;
    put(p);
    count++;
  }
  return count;
}
