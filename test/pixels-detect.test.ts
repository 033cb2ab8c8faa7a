import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findElement } from '../src/dicom/element.js';
import { initCodecs } from '../src/dicom/pixels/codecs.js';
import type { PixelDescriptor } from '../src/dicom/pixels/descriptor.js';
import { decodePixelData, encodePixelData } from '../src/dicom/pixels/pixel-data.js';
import { readDicom } from '../src/dicom/reader.js';
import { TS } from '../src/dicom/transfer-syntax.js';
import { writeDicom } from '../src/dicom/writer.js';
import { loadProfile } from '../src/profiles/profile.js';
import { deidentifyHeader } from '../src/stages/header.js';
import { collectIdentifiers } from '../src/stages/identifiers.js';
import { frameSource, voiWindowOf } from '../src/stages/pixels/clean-pixels.js';
import { readText } from '../src/stages/pixels/detect.js';
import { maskFrame } from '../src/stages/pixels/mask.js';
import { OcrPool } from '../src/stages/pixels/ocr-pool.js';
import { runPixelStage } from '../src/stages/pixels/pixel-stage.js';
import { renderGray, sampleReader, type Gray8 } from '../src/stages/pixels/render.js';
import { detectorInput, EDGE_PAD } from '../src/stages/pixels/ocr/db-postprocess.js';
import { analyseText, boxArea, drawnIn, type Box } from '../src/stages/pixels/text-regions.js';
import { verifyPixels } from '../src/stages/pixels/verify-pixels.js';
import { REPO_ROOT, corpusFile, tempDir } from './helpers/corpus.js';
import type { EvalCase } from './pixel-eval/generate.mjs';

/**
 * Where the pixel stage looks for text: the stroke analysis that proposes regions to OCR, the grey
 * render it works on (for cleaning and for verification), and the crop upscaling. On real inputs:
 * the evaluation set (known words burned into corpus images) and text-free corpus slices.
 */
const tmp = tempDir('deid-pixels-detect-');
let cases: EvalCase[];
let pool: OcrPool;

beforeAll(async () => {
  await initCodecs();
  // The generator runs the built code (npm test builds first).
  if (!existsSync(join(REPO_ROOT, 'dist/stages/pixels/render.js'))) execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO_ROOT, stdio: 'ignore' });
  const { buildEvalSet } = await import('./pixel-eval/generate.mjs');
  cases = await buildEvalSet(tmp.path);
  pool = new OcrPool({ size: 2 });
});
afterAll(async () => {
  await pool?.terminate();
  tmp.cleanup();
});

function firstFrame(bytes: Uint8Array): { gray: Gray8; desc: PixelDescriptor } {
  const f = readDicom(bytes);
  const img = decodePixelData(f.dataset, f.transferSyntaxUID);
  return { gray: renderGray(img.desc, img.frames[0]), desc: img.desc };
}

const inside = (boxes: readonly Box[], x: number, y: number) => boxes.some((b) => x >= b.x0 && x < b.x1 && y >= b.y0 && y < b.y1);

/** A word drawn with sharp (white on dark grey), as an 8-bit frame. */
async function wordImage(text: string, font: string, size: number): Promise<Gray8> {
  const W = 40 + Math.ceil(size * text.length * 0.9);
  const H = 40 + size * 2;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><rect width="${W}" height="${H}" fill="#202020"/><text x="20" y="${20 + Math.round(size * 1.4)}" font-family="${font}" font-size="${size}" fill="#fff">${text}</text></svg>`;
  const { data, info } = await sharp(Buffer.from(svg)).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data) };
}

describe('the detector\'s view of a frame\'s edges', () => {
  // A 64-px frame: black, with the cut-off tops of bright glyphs in its last three rows.
  const frame: Gray8 = { width: 64, height: 64, data: new Uint8Array(64 * 64) };
  for (let x = 8; x < 56; x += 4) for (let y = 61; y < 64; y++) frame.data[y * 64 + x] = 230;

  it('should surround the frame with its background, so that a line cut by the edge stays the top of a line', () => {
    const input = detectorInput(frame, 1);
    // The pad's rows below the frame hold the background (black, normalised), not the glyph tops repeated.
    const below = (input.height - 2) * input.width;
    const black = input.data[0];
    expect(Array.from(input.data.subarray(below, below + input.width)).every((v) => v === black)).toBe(true);
    const edge = detectorInput(frame, 1, 'edge');
    expect(Array.from(edge.data.subarray(below, below + edge.width)).some((v) => v !== black)).toBe(true);
    expect(input.width).toBe(Math.round((64 + 2 * EDGE_PAD) / 32) * 32);
  });

  it('should tell a strip with something drawn in it from a flat one', () => {
    expect(drawnIn(frame, { x0: 0, y0: 58, x1: 64, y1: 64 })).toBe(true);
    expect(drawnIn(frame, { x0: 0, y0: 40, x1: 64, y1: 58 })).toBe(false);
    // Noise within the contrast of film grain is not drawing.
    const grain: Gray8 = { width: 64, height: 8, data: new Uint8Array(64 * 8).map((_, i) => 100 + ((i * 37) % 30)) };
    expect(drawnIn(grain, { x0: 0, y0: 0, x1: 64, y1: 8 })).toBe(false);
  });
});

describe('text regions (the stroke analysis)', () => {
  it('should propose regions holding every burned-in word of the evaluation images', () => {
    for (const c of cases.filter((k) => k.name.endsWith('(native)'))) {
      const { gray } = firstFrame(readFileSync(c.path));
      const { regions } = analyseText(gray);
      for (const w of c.truth[0]) {
        const bw = w.box.x1 - w.box.x0;
        let ink = 0;
        let covered = 0;
        for (let y = w.box.y0; y < w.box.y1; y++) {
          for (let x = w.box.x0; x < w.box.x1; x++) {
            if (!w.inkMask[(y - w.box.y0) * bw + (x - w.box.x0)]) continue;
            ink++;
            if (inside(regions, x, y)) covered++;
          }
        }
        expect(covered / ink, `${c.name}: a burned word at (${w.box.x0},${w.box.y0})`).toBe(1);
      }
    }
  });

  it('should propose only bone edges on a text-free CT slice, a small share of it, where OCR reads no identifying word', async () => {
    const bytes = readFileSync(corpusFile('dicomparser/CT1_UNC.explicit_little_endian.dcm'));
    const { gray } = firstFrame(bytes);
    const { regions } = analyseText(gray);
    const share = regions.reduce((s, r) => s + boxArea(r), 0) / (gray.width * gray.height);
    expect(share).toBeLessThan(0.05);
    const file = readDicom(bytes);
    const img = decodePixelData(file.dataset, file.transferSyntaxUID);
    const read = await readText(frameSource(img, undefined, voiWindowOf(file.dataset)), pool, { minConfidence: 0.5 });
    // No text: the detector's proposals (if any) on the bone edges are not read as text.
    expect(read.lines).toEqual([]);
  });

  it('should not read a thumbnail whose anatomy the detector takes for one big word, nor ask the other renders', async () => {
    // The 64² MR passes the stroke gate (its texture is as dense as letters) and the detector boxes
    // its whole head, more than half the frame's height, and a 3-pixel speck: neither can be a line.
    const file = readDicom(readFileSync(corpusFile('pydicom/MR_small.dcm')));
    const img = decodePixelData(file.dataset, file.transferSyntaxUID);
    const frames = frameSource(img, undefined, voiWindowOf(file.dataset));
    const calls: string[] = [];
    const counting = {
      size: pool.size,
      detect: (g: Gray8, s: number, o: unknown) => (calls.push('detect'), pool.detect(g, s, o as never)),
      recognize: (g: Gray8, b: Box[]) => (calls.push('recognize'), pool.recognize(g, b)),
    } as unknown as OcrPool;
    const read = await readText(frames, counting, { minConfidence: 0.6, firstPass: 'strict' });
    expect(read.candidates).toBe(true);
    expect(read.detections).toBeGreaterThan(0);
    expect(read.possibleLines).toBe(0);
    expect(read.dropped).toBe(read.detections);
    expect(read.lines).toEqual([]);
    // One detection per band of the local-contrast render, no reading.
    expect(calls.every((c) => c === 'detect')).toBe(true);
    expect(calls.length).toBeLessThanOrEqual(pool.size);

    // Through the pixel stage: nothing found could be read, so the pixels leave unchanged and the
    // verifier does not detect the same unchanged frame again (as with no detection at all).
    calls.length = 0;
    const profile = loadProfile('basic', ['clean-pixel-data']);
    const input = readFileSync(corpusFile('pydicom/MR_small.dcm'));
    const header = writeDicom(deidentifyHeader(readDicom(input), { profile, secret: Buffer.from('mr-thumbnail') }).file);
    const r = await runPixelStage(input, header, profile, { pool: counting });
    expect(r.report.action).toBe('cleaned');
    expect(r.report.text?.possibleLines).toBe(0);
    expect(r.verify).toBeUndefined();
    expect(calls.length).toBeLessThanOrEqual(pool.size);
    const pixelData = (b: Uint8Array) => findElement(readDicom(b).dataset, 0x7fe00010)!.value!;
    expect(Buffer.compare(pixelData(r.output), pixelData(header))).toBe(0);
  });

  it('should still read a line that fills most of a short frame\'s height (a banner)', async () => {
    const W = 520;
    const H = 60;
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><rect width="${W}" height="${H}" fill="#202020"/><text x="10" y="46" font-family="DejaVu Sans" font-size="40" fill="#fff">DAVIDSON 1932</text></svg>`;
    const { data, info } = await sharp(Buffer.from(svg)).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
    const gray = { width: info.width, height: info.height, data: new Uint8Array(data) };
    const frames = { count: 1, width: W, height: H, gray: () => gray, renders: () => [{ name: 'stored' as const, gray }], local: () => ({ name: 'local' as const, gray }) };
    const read = await readText(frames, pool, { minConfidence: 0.6, firstPass: 'none' });
    expect(read.lines.map((l) => l.text.replace(/\s/g, '')).join(' ')).toMatch(/DAVIDSON/);
    expect(read.lines.some((l) => l.box.y1 - l.box.y0 > H / 2)).toBe(true);
  });

  it('should skip OCR on an image without any stroke (a smooth gradient)', async () => {
    const W = 256;
    const data = new Uint8Array(W * W);
    for (let y = 0; y < W; y++) for (let x = 0; x < W; x++) data[y * W + x] = (x + y) >> 1;
    const gray = { width: W, height: W, data };
    expect(analyseText(gray).regions).toEqual([]);
    const refusing = { size: 1, detect: () => Promise.reject(new Error('the engine must not run')), recognize: () => Promise.reject(new Error('the engine must not run')) } as unknown as OcrPool;
    const frames = { count: 1, width: W, height: W, gray: () => gray, renders: () => [{ name: 'stored' as const, gray }], local: () => ({ name: 'local' as const, gray }) };
    const read = await readText(frames, refusing, { minConfidence: 0.5 });
    expect(read.detections).toBe(0);
    expect(read.lines).toEqual([]);
  });

  it('should leave out horizontal lines but keep words made mostly of bars ("EE", "LEE", "ZZ", "E") at 8 to 48 px', async () => {
    // A ruler of thin horizontal lines, as under a CT table or on a scale bar.
    const W = 200;
    const lines = new Uint8Array(W * 60).fill(30);
    for (const y of [20, 24, 28]) for (let x = 20; x < 180; x++) lines[y * W + x] = 230;
    expect(analyseText({ width: W, height: 60, data: lines }).regions).toEqual([]);
    for (const size of [8, 12, 16, 20, 28, 48]) {
      for (const font of ['DejaVu Sans', 'Liberation Serif', 'DejaVu Sans Mono']) {
        for (const text of ['EE', 'LEE', 'ZZ', 'E', 'LI']) {
          if (size < 10 && text.length === 1) continue; // one small letter is not always a stroke pattern
          const g = await wordImage(text, font, size);
          expect(analyseText(g).regions.length, `${text} in ${font} ${size} px`).toBeGreaterThan(0);
        }
      }
    }
  });

  it('should not read a region holding only specks of edge (a rib on the eval CT), yet find two-letter words at 8 to 12 px anywhere on the cell grid', async () => {
    const { gray } = firstFrame(readFileSync(cases.find((k) => k.name === 'ct16 (native)')!.path));
    const rib = { x0: 408, y0: 312, x1: 464, y1: 376 };
    const overlap = (a: Box, b: Box) => a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
    expect(analyseText(gray).blocks.some((b) => overlap(b, rib))).toBe(true);
    expect(analyseText(gray).regions.filter((r) => overlap(r, rib))).toEqual([]);
    for (const size of [8, 10, 12]) {
      for (const font of ['DejaVu Sans', 'Liberation Serif', 'Liberation Sans Narrow']) {
        for (const text of ['LI', 'Li', 'Ng', 'Wu', '17']) {
          for (const shift of [0, 3, 5]) {
            const g = await wordImage(text, font, size);
            // Shift the word within the 8 px cells by cropping columns and rows off the top left.
            const w = g.width - shift;
            const h = g.height - shift;
            const data = new Uint8Array(w * h);
            for (let y = 0; y < h; y++) data.set(g.data.subarray((y + shift) * g.width + shift, (y + shift) * g.width + g.width), y * w);
            expect(analyseText({ width: w, height: h, data }).regions.length, `${text} in ${font} ${size} px, shifted ${shift}`).toBeGreaterThan(0);
          }
        }
      }
    }
  });
});

describe('grey render', () => {
  /** The window as documented, value by value, for comparison. */
  function reference(d: PixelDescriptor, frame: Uint8Array): Uint8Array {
    const get = sampleReader(d, frame);
    const n = d.rows * d.columns;
    let min = Infinity;
    let max = -Infinity;
    for (let p = 0; p < n; p++) {
      min = Math.min(min, get(p, 0));
      max = Math.max(max, get(p, 0));
    }
    const out = new Uint8Array(n);
    for (let p = 0; p < n; p++) {
      const v = Math.round(((get(p, 0) - min) * 255) / (max - min || 1));
      out[p] = d.photometric === 'MONOCHROME1' ? 255 - v : v;
    }
    return out;
  }

  it('should render corpus frames (16-bit signed CT, 12-bit MR, 8-bit) exactly as the min-max window', () => {
    for (const rel of ['dicomparser/CT1_UNC.explicit_little_endian.dcm', 'pydicom/examples_overlay.dcm', 'pydicom/MR_small.dcm', 'dicomparser/deflate/image_dfl', 'pydicom/CT_small.dcm']) {
      const f = readDicom(readFileSync(corpusFile(rel)));
      const img = decodePixelData(f.dataset, f.transferSyntaxUID);
      expect(Buffer.from(renderGray(img.desc, img.frames[0]).data).equals(Buffer.from(reference(img.desc, img.frames[0]))), rel).toBe(true);
    }
  });

  it('should keep the contrast of a masked CT, so that verification reads what masking left (fail closed)', async () => {
    const c = cases.find((k) => k.name === 'ct16 (native)')!;
    const input = readDicom(readFileSync(c.path));
    const img = decodePixelData(input.dataset, input.transferSyntaxUID);
    // Mask every word (fill -32768) but the grey ones: the date and time at the top right, the
    // institution at the bottom left (drawn at 80% of the range, not at the maximum).
    const left = (w: { box: Box }) => (w.box.y1 < 40 && w.box.x0 > 300) || (w.box.y0 > 470 && w.box.x1 < 250);
    const masked = c.truth[0].filter((w) => !left(w));
    expect(c.truth[0].filter(left).map((w) => w.text)).toEqual(['1962-03-14', '14:22:05', 'ST', 'ELSEWHERE', 'GENERAL', 'HOSPITAL']);
    maskFrame(img.frames[0], img.desc, { boxes: masked.map((w) => ({ x0: w.box.x0 - 3, y0: w.box.y0 - 3, x1: w.box.x1 + 3, y1: w.box.y1 + 3 })) });
    const enc = encodePixelData(input.dataset, img, TS.ExplicitLE);
    const output = readDicom(writeDicom({ ...input, dataset: enc.dataset, transferSyntaxUID: enc.transferSyntaxUID }));

    const report = await verifyPixels(output, collectIdentifiers(input.dataset), { pool });
    expect(report.ok).toBe(false);
    expect(report.leaks.filter((l) => l.box.y0 < 40).map((l) => l.kind)).toEqual(expect.arrayContaining([expect.stringMatching(/^(date|time)$/)]));
    expect(report.leaks.filter((l) => l.box.y0 > 440).map((l) => l.kind)).toContain('institution');

    const { gray } = firstFrame(writeDicom(output));
    // The body keeps most of its grey levels (it was squeezed into 224-255 when the fill set the window).
    const levels = new Set(gray.data.filter((v) => v > 0)).size;
    expect(levels).toBeGreaterThan(150);
  });

  it('should render a masked box black and leave the rest of the window to the picture', () => {
    const d = { rows: 64, columns: 64, samplesPerPixel: 1, bitsAllocated: 16, bitsStored: 16, highBit: 15, pixelRepresentation: 1, planarConfiguration: 0, photometric: 'MONOCHROME2' } as PixelDescriptor;
    const frame = new Uint8Array(64 * 64 * 2);
    const dv = new DataView(frame.buffer);
    for (let p = 0; p < 64 * 64; p++) dv.setInt16(p * 2, p < 64 * 8 ? -32768 : -1000 + (p % 64) * 50, true);
    const g = renderGray(d, frame);
    expect(g.data[0]).toBe(0);
    expect(g.data[64 * 8]).toBe(0);
    expect(g.data[64 * 8 + 63]).toBe(255);
    expect(new Set(g.data.subarray(64 * 8)).size).toBe(64);
  });
});
