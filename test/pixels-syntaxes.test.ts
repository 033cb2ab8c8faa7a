import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findElement } from '../src/dicom/element.js';
import { TS_HTJ2K_LOSSLESS, initCodecs, isLossySyntax } from '../src/dicom/pixels/codecs.js';
import { decodePixelData, encodePixelData, hasPixelData, type PixelImage } from '../src/dicom/pixels/pixel-data.js';
import { readDicom } from '../src/dicom/reader.js';
import { TS, isNativeSyntax } from '../src/dicom/transfer-syntax.js';
import { rawString } from '../src/dicom/values.js';
import { writeDicom } from '../src/dicom/writer.js';
import { isDeidError } from '../src/errors.js';
import { compileSignature } from '../src/profiles/pixel-settings.js';
import { cleanPixels } from '../src/stages/pixels/clean-pixels.js';
import { renderRgb, sampleReader } from '../src/stages/pixels/render.js';
import { corpusFiles, corpusFile, tempDir } from './helpers/corpus.js';
import { imageFile, pixelSettings } from './helpers/pixels.js';

/**
 * Every transfer syntax in the corpus either round-trips through masking (decode every frame, mask,
 * write, read back, decode again: the box is black, the rest unchanged for lossless inputs) or is
 * quarantined with a coded reason. Never passed on uncleaned.
 */
const LOSSLESS_OUT = new Set<string>([TS.ExplicitLE, TS.ImplicitLE, TS.RLELossless, TS.JPEGLosslessSV1, TS.JPEGLSLossless, TS.JPEG2000Lossless, TS_HTJ2K_LOSSLESS]);

/** Corpus files the stage refuses, and why: each with its code. */
const EXPECTED_REFUSALS: Record<string, string> = {
  'pydicom/JPEG2000-embedded-sequence-delimiter.dcm': 'DEID_ERR_PIXEL_DECODE', // the codestream is cut by an embedded delimiter
  'pydicom/badVR.dcm': 'DEID_ERR_PIXEL_UNSUPPORTED', // NumberOfFrames "1A"
  'pydicom/nested_priv_SQ.dcm': 'DEID_ERR_PIXEL_UNSUPPORTED', // Pixel Data without an Image Pixel module
};

function imageFiles(): string[] {
  return corpusFiles()
    .filter((f) => !/\.(json|txt|csv|md|zip|icc|dump|gz)$|LICENSE|SOURCE|README|DICOMDIR/.test(f))
    .filter((f) => {
      try {
        return hasPixelData(readDicom(readFileSync(corpusFile(f))).dataset);
      } catch {
        return false;
      }
    });
}

const seenSyntaxes = new Map<string, string>();
const tmp = tempDir('deid-pixels-ts-');
afterAll(tmp.cleanup);
beforeAll(() => initCodecs());

describe('every transfer syntax of the corpus through masking', () => {
  const files = imageFiles();

  it('should find images in every syntax family of the corpus', () => {
    const syntaxes = new Set(files.map((f) => readDicom(readFileSync(corpusFile(f))).transferSyntaxUID));
    for (const ts of [TS.ImplicitLE, TS.ExplicitLE, TS.ExplicitBE, TS.DeflatedExplicitLE, TS.RLELossless, TS.JPEGBaseline, TS.JPEGExtended12, TS.JPEGLossless57, TS.JPEGLosslessSV1, TS.JPEGLSLossless, TS.JPEGLSNearLossless, TS.JPEG2000Lossless, TS.JPEG2000]) {
      expect(syntaxes.has(ts), ts).toBe(true);
    }
  });

  it.each(files)('should mask %s in every frame or refuse it with a code', async (rel) => {
    const src = readDicom(readFileSync(corpusFile(rel)));
    let orig: PixelImage;
    try {
      orig = decodePixelData(src.dataset, src.transferSyntaxUID);
    } catch (e) {
      expect(isDeidError(e) && e.code, `${rel} was refused`).toBe(EXPECTED_REFUSALS[rel]);
      // And the stage itself refuses it the same way rather than passing it on.
      await expect(cleanPixels(src, src, [], { settings: pixelSettings() })).rejects.toMatchObject({ code: EXPECTED_REFUSALS[rel] });
      return;
    }
    expect(EXPECTED_REFUSALS[rel], `${rel} decodes but was expected to be refused`).toBeUndefined();
    const d0 = orig.desc;
    const rect = [0, 0, Math.max(1, Math.ceil(d0.columns / 2)), Math.max(1, Math.ceil(d0.rows / 3))];
    const settings = pixelSettings({ signatures: [compileSignature({ name: 'top-left', regions: [rect] }, 'test')] });
    const r = await cleanPixels(src, src, [], { settings });
    const bytes = writeDicom(r.file);
    const out = readDicom(bytes);
    const img = decodePixelData(out.dataset, out.transferSyntaxUID);
    expect(img.frames).toHaveLength(orig.frames.length);
    expect(rawString(findElement(out.dataset, 0x00280301)?.value)).toBe('NO');

    const lossyIn = isLossySyntax(src.transferSyntaxUID) || rawString(findElement(src.dataset, 0x00282110)?.value) === '01';
    if (lossyIn) {
      expect(rawString(findElement(out.dataset, 0x00282110)?.value)).toBe('01');
    } else {
      expect(LOSSLESS_OUT.has(out.transferSyntaxUID), `${rel} → ${out.transferSyntaxUID}`).toBe(true);
    }
    if (src.transferSyntaxUID === TS.JPEGBaseline) {
      // Re-encoded lossy: one more step in the compression history.
      const methods = rawString(findElement(out.dataset, 0x00282114)?.value).split('\\');
      const ratios = rawString(findElement(out.dataset, 0x00282112)?.value).split('\\');
      expect(methods[methods.length - 1]).toBe('ISO_10918_1');
      expect(ratios).toHaveLength(methods.length);
      expect(Number(ratios[ratios.length - 1])).toBeGreaterThan(0);
    }

    const lossyOut = out.transferSyntaxUID === TS.JPEGBaseline;
    const d = img.desc;
    const box = { x0: 0, y0: 0, x1: rect[2], y1: rect[3] };
    for (let f = 0; f < img.frames.length; f++) {
      const after = renderRgb(d, img.frames[f]);
      const before = renderRgb(d0, orig.frames[f]);
      let bright = 0;
      let diff = 0;
      let changed = 0;
      const a = sampleReader(d, img.frames[f]);
      const b = sampleReader(d0, orig.frames[f]);
      for (let p = 0; p < d.rows * d.columns; p++) {
        const x = p % d.columns;
        const y = Math.floor(p / d.columns);
        const inside = x < box.x1 && y < box.y1;
        if (inside) {
          const lum = after.data[p * 3] * 0.299 + after.data[p * 3 + 1] * 0.587 + after.data[p * 3 + 2] * 0.114;
          if (lum > (lossyOut ? 24 : 1)) bright++;
        } else {
          for (let c = 0; c < 3; c++) diff += Math.abs(after.data[p * 3 + c] - before.data[p * 3 + c]);
          if (!lossyOut) for (let s = 0; s < d.samplesPerPixel; s++) if (a(p, s) !== b(p, s)) changed++;
        }
      }
      const boxArea = box.x1 * Math.min(box.y1, d.rows);
      // JPEG re-encoding rings a little at the box's edge; the inside is black.
      expect(bright, `frame ${f}: bright pixels in the box`).toBeLessThanOrEqual(lossyOut ? Math.ceil(boxArea * 0.02) : 0);
      if (lossyOut) expect(diff / (d.rows * d.columns * 3)).toBeLessThan(4);
      else expect(changed, `frame ${f}: samples changed outside the box`).toBe(0);
    }
    if (!isNativeSyntax(out.transferSyntaxUID) && !seenSyntaxes.has(out.transferSyntaxUID)) seenSyntaxes.set(out.transferSyntaxUID, rel);
    // Keep one written output per encapsulated syntax for the independent decoders below.
    if (!isNativeSyntax(out.transferSyntaxUID)) writeFileSync(join(tmp.path, `${out.transferSyntaxUID}.dcm`), bytes);
  });

  it('should write encapsulated outputs that DCMTK and GDCM decode to the same pixels', () => {
    const tools: Record<string, string[]> = {
      [TS.RLELossless]: ['dcmdrle'],
      [TS.JPEGBaseline]: ['dcmdjpeg'],
      [TS.JPEGLosslessSV1]: ['dcmdjpeg'],
      [TS.JPEGLSLossless]: ['dcmdjpls'],
      [TS.JPEG2000Lossless]: ['gdcmconv', '--raw'],
    };
    expect(seenSyntaxes.size).toBeGreaterThanOrEqual(4);
    for (const ts of seenSyntaxes.keys()) {
      const tool = tools[ts];
      if (!tool) continue;
      const input = join(tmp.path, `${ts}.dcm`);
      const output = join(tmp.path, `${ts}.native.dcm`);
      execFileSync(tool[0], [...tool.slice(1), input, output], { stdio: 'ignore' });
      const ours = readDicom(readFileSync(input));
      const theirs = readDicom(readFileSync(output));
      const a = decodePixelData(ours.dataset, ours.transferSyntaxUID);
      const b = decodePixelData(theirs.dataset, theirs.transferSyntaxUID);
      expect(b.frames.length).toBe(a.frames.length);
      if (ts === TS.JPEGBaseline) continue; // libjpeg versions may differ by a level; the frames decoded is what counts
      for (let f = 0; f < a.frames.length; f++) {
        const x = renderRgb(a.desc, a.frames[f]).data;
        const y = renderRgb(b.desc, b.frames[f]).data;
        expect(Buffer.compare(Buffer.from(x), Buffer.from(y)), `${tool[0]} on ${ts}`).toBe(0);
      }
    }
  });
});

describe('bit-packed pixel data (BitsAllocated 1: segmentations, scanned documents)', () => {
  // 5 × 7 = 35 pixels: every frame but the first starts inside a byte, as the standard packs them.
  const rows = 5;
  const columns = 7;
  const frames = 3;
  const bits = Array.from({ length: rows * columns * frames }, (_, i) => ((i * 37 + 11) % 5 < 2 ? 1 : 0));
  const packed = new Uint8Array(Math.ceil(bits.length / 8) + (Math.ceil(bits.length / 8) % 2));
  bits.forEach((b, i) => (packed[i >> 3] |= b << (i & 7)));
  const bitmap = imageFile({ rows, columns, bitsAllocated: 1, bitsStored: 1, highBit: 0, photometric: 'MONOCHROME2', frames, pixelData: packed });

  it('should unpack every frame bit by bit, as DCMTK reads it, and pack it back to the same bytes', () => {
    const img = decodePixelData(bitmap.dataset, bitmap.transferSyntaxUID);
    expect(img.bitPacked).toBe(true);
    expect(img.frames.map((f) => [...f])).toEqual([0, 1, 2].map((f) => bits.slice(f * rows * columns, (f + 1) * rows * columns)));
    const path = join(tmp.path, 'bitmap.dcm');
    writeFileSync(path, writeDicom(bitmap));
    for (let f = 0; f < frames; f++) {
      // dcm2pnm renders a 1-bit frame as 0 and 255 (PGM, binary: the last rows × columns bytes).
      const pgm = execFileSync('dcm2pnm', ['--frame', String(f + 1), '--write-raw-pnm', path]);
      const theirs = [...pgm.subarray(pgm.length - rows * columns)].map((v) => (v ? 1 : 0));
      expect(theirs, `frame ${f}`).toEqual([...img.frames[f]]);
    }
    const again = encodePixelData(bitmap.dataset, img, bitmap.transferSyntaxUID);
    expect(Buffer.from(findElement(again.dataset, 0x7fe00010)!.value!)).toEqual(Buffer.from(packed));
    expect(again.transferSyntaxUID).toBe(TS.ExplicitLE);
  });

  it('should refuse what is not a one-sample bitmap, and a bitmap in an encapsulated syntax', () => {
    const refused = (over: Partial<Parameters<typeof imageFile>[0]>, ts: string = TS.ExplicitLE) => {
      try {
        const f = imageFile({ rows, columns, bitsAllocated: 1, bitsStored: 1, highBit: 0, photometric: 'MONOCHROME2', pixelData: packed, ...over }, ts);
        decodePixelData(f.dataset, f.transferSyntaxUID);
        return 'decoded';
      } catch (e) {
        return isDeidError(e) ? e.code : String(e);
      }
    };
    expect(refused({ bitsStored: 8, highBit: 7 })).toBe('DEID_ERR_PIXEL_UNSUPPORTED');
    expect(refused({ photometric: 'PALETTE COLOR' })).toBe('DEID_ERR_PIXEL_UNSUPPORTED');
    expect(refused({ pixelData: packed.subarray(0, 2) })).toBe('DEID_ERR_PIXEL_DECODE');
    expect(refused({}, TS.RLELossless)).toBe('DEID_ERR_PIXEL_UNSUPPORTED');
    // 65535 × 65535 × 2 frames would unpack to 8 GiB: refused before anything is allocated.
    expect(refused({ rows: 65535, columns: 65535, frames: 2 })).toBe('DEID_ERR_PIXEL_UNSUPPORTED');
  });
});
