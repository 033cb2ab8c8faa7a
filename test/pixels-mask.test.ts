import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DicomFile } from '../src/dicom/element.js';
import { initCodecs } from '../src/dicom/pixels/codecs.js';
import type { PixelDescriptor } from '../src/dicom/pixels/descriptor.js';
import { readPalette } from '../src/dicom/pixels/palette.js';
import { decodePixelData } from '../src/dicom/pixels/pixel-data.js';
import { readDicom } from '../src/dicom/reader.js';
import { TS } from '../src/dicom/transfer-syntax.js';
import { writeDicom } from '../src/dicom/writer.js';
import { compileSignature } from '../src/profiles/pixel-settings.js';
import { cleanPixels } from '../src/stages/pixels/clean-pixels.js';
import { fillValues, maskFrame, storedWord } from '../src/stages/pixels/mask.js';
import { renderGray, renderRgb, sampleReader } from '../src/stages/pixels/render.js';
import type { Box } from '../src/stages/pixels/text-regions.js';
import { corpusFile } from './helpers/corpus.js';
import { imageFile, pixelSettings, type ImageSpec } from './helpers/pixels.js';

beforeAll(() => initCodecs());

const BOX: Box = { x0: 2, y0: 1, x1: 6, y1: 4 };
const inBox = (p: number, d: PixelDescriptor, b: Box = BOX) => {
  const x = p % d.columns;
  const y = Math.floor(p / d.columns);
  return x >= b.x0 && x < b.x1 && y >= b.y0 && y < b.y1;
};

/** The whole allocated word of sample s of pixel p (what is stored, bits outside BitsStored included). */
function word(frame: Uint8Array, d: PixelDescriptor, p: number, s: number): number {
  const n = d.rows * d.columns;
  const i = d.planarConfiguration === 1 ? s * n + p : p * d.samplesPerPixel + s;
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  return d.bitsAllocated === 8 ? frame[i] : d.bitsAllocated === 16 ? dv.getUint16(i * 2, true) : dv.getUint32(i * 4, true);
}

interface Case {
  name: string;
  spec: ImageSpec;
  /** Expected stored words inside the box, per sample. */
  fill: number[];
}

const CASES: Case[] = [
  { name: 'MONOCHROME2 8-bit', spec: { rows: 6, columns: 8, bitsAllocated: 8, photometric: 'MONOCHROME2' }, fill: [0] },
  { name: 'MONOCHROME1 8-bit', spec: { rows: 6, columns: 8, bitsAllocated: 8, photometric: 'MONOCHROME1' }, fill: [0xff] },
  { name: 'MONOCHROME2 12-bit stored in 16', spec: { rows: 6, columns: 8, bitsAllocated: 16, bitsStored: 12, photometric: 'MONOCHROME2' }, fill: [0] },
  { name: 'MONOCHROME1 12-bit stored in 16', spec: { rows: 6, columns: 8, bitsAllocated: 16, bitsStored: 12, photometric: 'MONOCHROME1' }, fill: [0x0fff] },
  { name: 'MONOCHROME2 signed 16-bit', spec: { rows: 6, columns: 8, bitsAllocated: 16, pixelRepresentation: 1, photometric: 'MONOCHROME2' }, fill: [0x8000] },
  { name: 'MONOCHROME1 signed 16-bit', spec: { rows: 6, columns: 8, bitsAllocated: 16, pixelRepresentation: 1, photometric: 'MONOCHROME1' }, fill: [0x7fff] },
  // -2048 in 12 bits, sign-extended through the unused high bits as writers do.
  { name: 'MONOCHROME2 signed 12-bit in 16', spec: { rows: 6, columns: 8, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 1, photometric: 'MONOCHROME2' }, fill: [0xf800] },
  // Stored bits at the top of the word (HighBit 15): the fill sits there too.
  { name: 'MONOCHROME1 12-bit at HighBit 15', spec: { rows: 6, columns: 8, bitsAllocated: 16, bitsStored: 12, highBit: 15, photometric: 'MONOCHROME1' }, fill: [0xfff0] },
  { name: 'MONOCHROME2 32-bit', spec: { rows: 6, columns: 8, bitsAllocated: 32, photometric: 'MONOCHROME2' }, fill: [0] },
  { name: 'RGB 8-bit interleaved', spec: { rows: 6, columns: 8, samplesPerPixel: 3, bitsAllocated: 8, photometric: 'RGB' }, fill: [0, 0, 0] },
  { name: 'RGB 8-bit planar (PlanarConfiguration 1)', spec: { rows: 6, columns: 8, samplesPerPixel: 3, bitsAllocated: 8, planarConfiguration: 1, photometric: 'RGB' }, fill: [0, 0, 0] },
  { name: 'RGB 16-bit planar', spec: { rows: 6, columns: 8, samplesPerPixel: 3, bitsAllocated: 16, planarConfiguration: 1, photometric: 'RGB' }, fill: [0, 0, 0] },
  { name: 'YBR_FULL 8-bit', spec: { rows: 6, columns: 8, samplesPerPixel: 3, bitsAllocated: 8, photometric: 'YBR_FULL' }, fill: [0, 128, 128] },
];

describe('masking in stored values', () => {
  it.each(CASES)('should fill exactly the box, in every sample, for $name', ({ spec, fill }) => {
    const file = imageFile(spec);
    const before = decodePixelData(file.dataset, file.transferSyntaxUID);
    const image = decodePixelData(file.dataset, file.transferSyntaxUID);
    const d = image.desc;
    const n = maskFrame(image.frames[0], d, { boxes: [BOX] });
    expect(n).toBe((BOX.x1 - BOX.x0) * (BOX.y1 - BOX.y0));
    for (let p = 0; p < d.rows * d.columns; p++) {
      for (let s = 0; s < d.samplesPerPixel; s++) {
        if (inBox(p, d)) expect(word(image.frames[0], d, p, s)).toBe(fill[s]);
        else expect(word(image.frames[0], d, p, s)).toBe(word(before.frames[0], d, p, s));
      }
    }
    // What a viewer shows there is black (or, for MONOCHROME1, the inverted extreme that displays black).
    const g = renderGray(d, image.frames[0]);
    for (let p = 0; p < d.rows * d.columns; p++) if (inBox(p, d)) expect(g.data[p]).toBeLessThanOrEqual(1);
  });

  it('should clear overlay bits above BitsStored inside the box and keep them outside', () => {
    const px = new Uint8Array(6 * 8 * 2);
    const dv = new DataView(px.buffer);
    for (let p = 0; p < 48; p++) dv.setUint16(p * 2, 0xf000 | (p * 37), true); // overlay planes in bits 12-15
    const file = imageFile({ rows: 6, columns: 8, bitsAllocated: 16, bitsStored: 12, photometric: 'MONOCHROME2', pixelData: px });
    const image = decodePixelData(file.dataset, file.transferSyntaxUID);
    maskFrame(image.frames[0], image.desc, { boxes: [BOX] });
    const out = new DataView(image.frames[0].buffer, image.frames[0].byteOffset);
    for (let p = 0; p < 48; p++) expect(out.getUint16(p * 2, true)).toBe(inBox(p, image.desc) ? 0 : 0xf000 | (p * 37));
  });

  it('should fill everything outside a keep-map (ultrasound data areas) as well as the boxes', () => {
    const file = imageFile({ rows: 6, columns: 8, bitsAllocated: 8, photometric: 'MONOCHROME2', pixelData: new Uint8Array(48).fill(200) });
    const image = decodePixelData(file.dataset, file.transferSyntaxUID);
    const keep = new Uint8Array(48);
    for (let y = 2; y < 6; y++) keep.fill(1, y * 8, y * 8 + 8);
    maskFrame(image.frames[0], image.desc, { boxes: [{ x0: 0, y0: 5, x1: 2, y1: 6 }], keep });
    const f = image.frames[0];
    expect([...f.subarray(0, 16)].every((v) => v === 0)).toBe(true);
    expect(f[5 * 8]).toBe(0);
    expect(f[5 * 8 + 2]).toBe(200);
    expect(f[3 * 8 + 4]).toBe(200);
  });

  it('should compute sign-extended stored words for signed fills', () => {
    const d: PixelDescriptor = { rows: 1, columns: 1, samplesPerPixel: 1, bitsAllocated: 16, bitsStored: 12, highBit: 11, pixelRepresentation: 1, planarConfiguration: 0, photometric: 'MONOCHROME2', frames: 1 };
    expect(fillValues(d)).toEqual([-2048]);
    expect(storedWord(d, -2048)).toBe(0xf800);
    expect(storedWord(d, 2047)).toBe(0x07ff);
    expect(storedWord({ ...d, pixelRepresentation: 0 }, 0)).toBe(0);
  });
});

/** Runs the stage with one signature rectangle and no OCR, writes, reads back and decodes the result. */
async function maskThroughStage(file: DicomFile, rect: [number, number, number, number]) {
  const settings = pixelSettings({ signatures: [compileSignature({ name: 'test-box', regions: [rect] }, 'test')] });
  const r = await cleanPixels(file, file, [], { settings });
  const written = readDicom(writeDicom(r.file));
  return { report: r.report, written, image: decodePixelData(written.dataset, written.transferSyntaxUID) };
}

describe('masking real corpus images through the stage', () => {
  const REAL: Array<{ file: string; pi: string; check: string }> = [
    { file: 'pydicom/dicomdirtests/77654033/CR1/6154', pi: 'MONOCHROME1', check: '12-bit stored, MONOCHROME1' },
    { file: 'pydicom/CT_small.dcm', pi: 'MONOCHROME2', check: 'signed 16-bit' },
    { file: 'pydicom/ExplVR_BigEnd.dcm', pi: 'RGB', check: 'RGB, planar configuration 1, big endian' },
    { file: 'pydicom/SC_ybr_full_422_uncompressed.dcm', pi: 'YBR_FULL', check: 'YBR_FULL_422 expanded to YBR_FULL' },
    { file: 'pydicom/SC_rgb_jpeg_dcmtk.dcm', pi: 'YBR_FULL', check: 'YBR_FULL JPEG decoded to RGB, re-encoded' },
    { file: 'pydicom/JPGExtended.dcm', pi: 'MONOCHROME2', check: '12-bit JPEG extended' },
    { file: 'deid-data/ultrasounds/GREYSCALE_IMAGE.dcm', pi: 'MONOCHROME2', check: '8-bit' },
    { file: 'pydicom/rtdose_1frame.dcm', pi: 'MONOCHROME2', check: '32-bit' },
    { file: 'pydicom/examples_palette.dcm', pi: 'PALETTE COLOR', check: 'palette colour' },
  ];

  it.each(REAL)('should mask $file ($check) so that the box displays black and nothing else changes', async ({ file, pi }) => {
    const src = readDicom(readFileSync(corpusFile(file)));
    const orig = decodePixelData(src.dataset, src.transferSyntaxUID);
    const d0 = orig.desc;
    const rect: [number, number, number, number] = [Math.floor(d0.columns / 4), Math.floor(d0.rows / 4), Math.ceil(d0.columns / 3), Math.ceil(d0.rows / 3)];
    const box: Box = { x0: rect[0], y0: rect[1], x1: rect[0] + rect[2], y1: rect[1] + rect[3] };
    const { written, image } = await maskThroughStage(src, rect);
    const d = image.desc;
    expect(d.photometric === pi || (pi === 'YBR_FULL' && d.photometric === 'YBR_FULL') || d.photometric === 'RGB' || pi === d.photometric).toBe(true);
    const palette = d.photometric === 'PALETTE COLOR' ? readPalette(written.dataset) : undefined;
    const darkest = palette ? Math.min(...Array.from(palette.r, (r, i) => r * 0.299 + palette.g[i] * 0.587 + palette.b[i] * 0.114)) : 0;
    const lossy = written.transferSyntaxUID === TS.JPEGBaseline;
    for (let f = 0; f < image.frames.length; f++) {
      const rgb = renderRgb(d, image.frames[f], palette);
      const before = renderRgb(d0, orig.frames[f], palette);
      let outsideDiff = 0;
      let notBlack = 0;
      for (let p = 0; p < d.rows * d.columns; p++) {
        const lum = rgb.data[p * 3] * 0.299 + rgb.data[p * 3 + 1] * 0.587 + rgb.data[p * 3 + 2] * 0.114;
        if (inBox(p, d, box)) notBlack += lum > darkest + (lossy ? 12 : 1) ? 1 : 0;
        else for (let c = 0; c < 3; c++) outsideDiff += Math.abs(rgb.data[p * 3 + c] - before.data[p * 3 + c]);
      }
      expect(notBlack).toBe(0);
      // Monochrome renders are windowed min–max, so compare stored values there instead.
      if (d.samplesPerPixel === 1 && !palette) {
        const a = sampleReader(d, image.frames[f]);
        const b = sampleReader(d0, orig.frames[f]);
        let changed = 0;
        for (let p = 0; p < d.rows * d.columns; p++) if (!inBox(p, d, box) && a(p, 0) !== b(p, 0)) changed++;
        expect(changed).toBe(0);
      } else if (!lossy) expect(outsideDiff).toBe(0);
      else expect(outsideDiff / (d.rows * d.columns * 3)).toBeLessThan(4);
    }
  });

  it('should write masked YBR_FULL_422 as YBR_FULL, fully sampled, and planar RGB as it was', async () => {
    const ybr = await maskThroughStage(readDicom(readFileSync(corpusFile('pydicom/SC_ybr_full_422_uncompressed.dcm'))), [0, 0, 10, 10]);
    expect(ybr.image.desc.photometric).toBe('YBR_FULL');
    expect(ybr.written.transferSyntaxUID).toBe(TS.ExplicitLE);
    const planar = await maskThroughStage(readDicom(readFileSync(corpusFile('pydicom/ExplVR_BigEnd.dcm'))), [0, 0, 10, 10]);
    expect(planar.image.desc.planarConfiguration).toBe(1);
    expect(planar.written.transferSyntaxUID).toBe(TS.ExplicitLE);
  });
});
