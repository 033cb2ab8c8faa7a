import { findElement, type Dataset } from '../../dicom/element.js';
import type { Box } from './text-regions.js';
import { TAG } from '../../dicom/tag.js';


function ul(ds: Dataset, tag: number): number | undefined {
  const v = findElement(ds, tag)?.value;
  if (!v || v.length < 4) return undefined;
  return new DataView(v.buffer, v.byteOffset, v.byteLength).getUint32(0, true);
}

/**
 * The data areas of SequenceOfUltrasoundRegions (PS3.3 C.8.5.5), in frame pixels, end-exclusive
 * (RegionLocationMaxX1/MaxY1 are inclusive). Items with missing or out-of-frame corners are ignored.
 */
export function ultrasoundRegions(ds: Dataset, columns: number, rows: number): Box[] {
  const seq = findElement(ds, TAG.SequenceOfUltrasoundRegions);
  const out: Box[] = [];
  for (const item of seq?.items ?? []) {
    const x0 = ul(item.elements, TAG.RegionLocationMinX0);
    const y0 = ul(item.elements, TAG.RegionLocationMinY0);
    const x1 = ul(item.elements, TAG.RegionLocationMaxX1);
    const y1 = ul(item.elements, TAG.RegionLocationMaxY1);
    if (x0 === undefined || y0 === undefined || x1 === undefined || y1 === undefined) continue;
    if (x1 < x0 || y1 < y0 || x0 >= columns || y0 >= rows) continue;
    out.push({ x0, y0, x1: Math.min(columns, x1 + 1), y1: Math.min(rows, y1 + 1) });
  }
  return out;
}

/** A keep-map (1 = inside a data area) for masking everything outside the regions. */
export function keepMap(regions: readonly Box[], columns: number, rows: number): Uint8Array {
  const keep = new Uint8Array(columns * rows);
  for (const r of regions) for (let y = r.y0; y < r.y1; y++) keep.fill(1, y * columns + r.x0, y * columns + r.x1);
  return keep;
}
