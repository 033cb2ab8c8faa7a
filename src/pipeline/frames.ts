/**
 * Frames of an object as PNG, for the console's review pages: one frame at full resolution, with
 * boxes outlined (red on an original, green on a result) and, for a proposed result, the boxes filled
 * as the pixel stage would mask them. An original's render shows burned-in text: it is PHI, and the
 * routes that serve it say so and forbid caching.
 */
import { findElement } from '../dicom/element.js';
import { initCodecs } from '../dicom/pixels/codecs.js';
import { decodePixelData, hasPixelData } from '../dicom/pixels/pixel-data.js';
import { readDicom } from '../dicom/reader.js';
import { TAG } from '../dicom/tag.js';
import { textValue } from '../dicom/values.js';
import { charsetOf } from '../stages/identifiers.js';
import { paletteOf } from '../stages/pixels/clean-pixels.js';
import { previewPng } from '../stages/pixels/preview.js';
import { renderRgb } from '../stages/pixels/render.js';
import { clampBox, type Box } from '../stages/pixels/text-regions.js';

export interface FrameInfo {
  readonly frames: number;
  readonly rows: number;
  readonly columns: number;
  /** Device attributes a signature is made from (not identifying: the make and model of a machine). */
  readonly manufacturer: string;
  readonly model: string;
  readonly modality: string;
}

/** What an object's pixels look like, without decoding them; undefined when it has none. */
export function frameInfo(bytes: Uint8Array): FrameInfo | undefined {
  const f = readDicom(bytes);
  const ds = f.dataset;
  if (!hasPixelData(ds)) return undefined;
  const cs = charsetOf(ds);
  const text = (tag: number) => {
    const el = findElement(ds, tag);
    return el ? textValue(el, cs).trim() : '';
  };
  const us = (tag: number) => {
    const v = findElement(ds, tag)?.value;
    return v && v.length >= 2 ? v[0]! | (v[1]! << 8) : 0;
  };
  const n = Number.parseInt(text(TAG.NumberOfFrames) || '1', 10);
  return { frames: Number.isFinite(n) && n > 0 ? n : 1, rows: us(TAG.Rows), columns: us(TAG.Columns), manufacturer: text(TAG.Manufacturer), model: text(TAG.ManufacturerModelName), modality: text(TAG.Modality) };
}

/**
 * Frame `index` of an object as PNG. `outline` boxes are drawn, red on an original and green on a
 * result (`result`); `fill` boxes are first blanked (black) the way the pixel stage masks them.
 */
export async function framePng(bytes: Uint8Array, index: number, opts: { outline?: readonly Box[]; fill?: readonly Box[]; result?: boolean } = {}): Promise<Buffer> {
  await initCodecs();
  const f = readDicom(bytes);
  const image = decodePixelData(f.dataset, f.transferSyntaxUID);
  const d = image.desc;
  const frame = image.frames[Math.min(Math.max(0, index), image.frames.length - 1)]!;
  const rgb = renderRgb(d, frame, paletteOf(f.dataset, d));
  const inside = (list: readonly Box[] | undefined) => (list ?? []).map((b) => clampBox(b, d.columns, d.rows)).filter((b) => b.x1 > b.x0 && b.y1 > b.y0);
  const fill = inside(opts.fill);
  for (const b of fill) for (let y = b.y0; y < b.y1; y++) rgb.data.fill(0, (y * d.columns + b.x0) * 3, (y * d.columns + b.x1) * 3);
  return previewPng(rgb, [...inside(opts.outline), ...fill], !!opts.result);
}
