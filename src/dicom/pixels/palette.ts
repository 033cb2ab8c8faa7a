import { DeidError } from '../../errors.js';
import { findElement, type Dataset } from '../element.js';
import { TAG } from '../tag.js';

/** A Palette Color lookup table (PS3.3 C.7.6.3.1.5), reduced to 8 bits per channel. */
export interface Palette {
  readonly r: Uint8Array;
  readonly g: Uint8Array;
  readonly b: Uint8Array;
  readonly firstMapped: number;
  /** The entry for a stored value: values below the first mapped one use entry 0, above the last the last. */
  index(v: number): number;
  /** The entry whose colour is darkest: what masked pixels are filled with. */
  readonly darkest: number;
}

const DESCRIPTORS = [TAG.RedPaletteColorLookupTableDescriptor, TAG.GreenPaletteColorLookupTableDescriptor, TAG.BluePaletteColorLookupTableDescriptor];
const DATA = [TAG.RedPaletteColorLookupTableData, TAG.GreenPaletteColorLookupTableData, TAG.BluePaletteColorLookupTableData];
const SEGMENTED = [TAG.SegmentedRedPaletteColorLookupTableData, TAG.SegmentedGreenPaletteColorLookupTableData, TAG.SegmentedBluePaletteColorLookupTableData];

/** Reads the red, green and blue tables. Segmented tables are refused (fail closed) rather than guessed. */
export function readPalette(ds: Dataset): Palette {
  if (SEGMENTED.some((t) => findElement(ds, t))) throw new DeidError('DEID_ERR_PIXEL_UNSUPPORTED', 'segmented palette colour lookup tables');
  const channels = DESCRIPTORS.map((dt, c) => {
    const desc = findElement(ds, dt)?.value;
    const data = findElement(ds, DATA[c])?.value;
    if (!desc || desc.length < 6 || !data) throw new DeidError('DEID_ERR_PIXEL_UNSUPPORTED', 'PALETTE COLOR without its lookup tables');
    const dv = new DataView(desc.buffer, desc.byteOffset, desc.byteLength);
    const entries = dv.getUint16(0, true) || 65536;
    const first = dv.getUint16(2, true);
    const bits = dv.getUint16(4, true);
    const out = new Uint8Array(entries);
    if (bits === 8 && data.length === entries) out.set(data);
    else {
      const n = Math.min(entries, data.length >> 1);
      const ddv = new DataView(data.buffer, data.byteOffset, data.byteLength);
      // 16-bit entries (or 8-bit entries stored in 16-bit words): keep the significant byte.
      for (let i = 0; i < n; i++) out[i] = bits === 8 ? ddv.getUint16(i * 2, true) & 0xff : ddv.getUint16(i * 2, true) >> 8;
    }
    return { out, first };
  });
  const [r, g, b] = channels.map((c) => c.out);
  const first = channels[0].first;
  const n = Math.min(r.length, g.length, b.length);
  let darkest = 0;
  let best = Infinity;
  for (let i = 0; i < n; i++) {
    const l = r[i] * 0.299 + g[i] * 0.587 + b[i] * 0.114;
    if (l < best) {
      best = l;
      darkest = i;
    }
  }
  return { r, g, b, firstMapped: first, darkest, index: (v) => Math.max(0, Math.min(n - 1, v - first)) };
}
