import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findElement } from '../src/dicom/element.js';
import { initCodecs } from '../src/dicom/pixels/codecs.js';
import { decodePixelData } from '../src/dicom/pixels/pixel-data.js';
import { readDicom } from '../src/dicom/reader.js';
import { rawString } from '../src/dicom/values.js';
import { processObjectAsync } from '../src/pipeline/process-object.js';
import { loadProfile } from '../src/profiles/profile.js';
import { collectIdentifiers } from '../src/stages/identifiers.js';
import { OcrPool, type EngineWorker } from '../src/stages/pixels/ocr-pool.js';
import { PhiMatcher } from '../src/stages/pixels/phi-boxes.js';
import { runPixelStage } from '../src/stages/pixels/pixel-stage.js';
import { deidentifyHeader } from '../src/stages/header.js';
import { writeDicom } from '../src/dicom/writer.js';
import { renderRgb } from '../src/stages/pixels/render.js';
import { CLI, REPO_ROOT, corpusFile, tempDir } from './helpers/corpus.js';
import { imageFile } from './helpers/pixels.js';
import { readZipEntry } from './pixel-eval/zip.mjs';

/**
 * The OCR side of the pixel stage, with the real engine: the pool under load and at shutdown, the
 * language data coming from node_modules only, and end to end on the corpus's real ultrasound images
 * with Debian's tesseract CLI as an independent reader of the outputs.
 */
const tmp = tempDir('deid-pixels-ocr-');
const SECRET = Buffer.from('pixel-test-secret');
const CHILD = join(REPO_ROOT, 'test/pixel-fixtures/ocr-child.mjs');
const GUARD = join(REPO_ROOT, 'test/pixel-fixtures/net-guard.cjs');
let pool: OcrPool;

beforeAll(async () => {
  await initCodecs();
  pool = new OcrPool({ size: 2 });
  // The child scripts run the built pool (npm test builds first).
  if (!existsSync(join(REPO_ROOT, 'dist/stages/pixels/ocr-pool.js'))) execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO_ROOT, stdio: 'ignore' });
});
afterAll(async () => {
  await pool?.terminate();
  tmp.cleanup();
});

/** Frame `f` of a DICOM file as a PNG, as a viewer would show it. */
async function framePng(bytes: Uint8Array, f = 0): Promise<Buffer> {
  const file = readDicom(bytes);
  const img = decodePixelData(file.dataset, file.transferSyntaxUID);
  const rgb = renderRgb(img.desc, img.frames[f]);
  return sharp(Buffer.from(rgb.data), { raw: { width: rgb.width, height: rgb.height, channels: 3 } }).png().toBuffer();
}

/** Words Debian's tesseract reads in a PNG (sparse text, one thread). */
function tesseractCli(png: Buffer, name: string): string[] {
  const p = join(tmp.path, `${name}.png`);
  writeFileSync(p, png);
  const out = execFileSync('tesseract', [p, '-', '--psm', '11'], { encoding: 'utf8', env: { ...process.env, OMP_THREAD_LIMIT: '1' }, stdio: ['ignore', 'pipe', 'ignore'] });
  return out.split(/\s+/).filter(Boolean);
}

function child(args: string[], env: Record<string, string> = {}) {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [CHILD, ...args], { encoding: 'utf8', timeout: 45_000, env: { ...process.env, ...env } });
  return { code: r.status, signal: r.signal, ms: Date.now() - t0, out: r.stdout ? JSON.parse(r.stdout.trim().split('\n').pop() || '{}') : {}, stderr: r.stderr };
}

describe('text engine pool', () => {
  let bandPng: string;
  beforeAll(async () => {
    // The real banner of GREYSCALE_IMAGE (name, MRN, birth date), cut out.
    const png = await sharp(await framePng(readFileSync(corpusFile('deid-data/ultrasounds/GREYSCALE_IMAGE.dcm')))).extract({ left: 0, top: 0, width: 300, height: 24 }).png().toBuffer();
    bandPng = join(tmp.path, 'band.png');
    writeFileSync(bandPng, png);
  });

  it('should serve concurrent requests with at most its size of threads, then terminate every one and leave no thread behind', () => {
    const r = child(['load', bandPng]);
    // A leaked worker thread would keep the child alive until the spawn timeout kills it.
    expect(r.signal, r.stderr).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    // The same reading every time, and it is the banner's MRN.
    expect(r.out.texts).toHaveLength(1);
    expect(r.out.texts[0]).toMatch(/00079241539/);
    expect(r.out.maxBusy).toBeLessThanOrEqual(2);
    expect(r.out.before).toMatchObject({ size: 2, live: 2, created: 2, requests: 10, queued: 0 });
    expect(r.out.after).toMatchObject({ live: 0, starting: 0, busy: 0, terminated: 2 });
    expect(r.out.afterTerminate).toBe('DEID_ERR_OCR_UNAVAILABLE');
    // Nothing from the engine reaches the terminal.
    expect(r.stderr).toBe('');
  });

  it('should give up on a thread that does not start in time, with a code, and not leak it', () => {
    const r = child(['timeout', bandPng]);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    expect(r.out.error).toBe('DEID_ERR_OCR_UNAVAILABLE');
    expect(r.out.after).toMatchObject({ live: 0, starting: 0 });
  });

  it('should load its models from node_modules only: nothing in any thread touches the network', () => {
    const log = join(tmp.path, 'net.log');
    const env = { NODE_OPTIONS: `--require ${GUARD}`, NET_GUARD_LOG: log };
    // The guard itself works in worker threads (where the engine runs) …
    child(['guard-control'], env);
    expect(readFileSync(log, 'utf8')).toMatch(/thread [1-9]\d*: fetch https:\/\/cdn/);
    writeFileSync(log, '');
    // … and a real detection and reading under it never reaches for the network.
    const r = child(['read', bandPng], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.out.text).toMatch(/00079241539/);
    expect(readFileSync(log, 'utf8')).toBe('');
  });

  it('should replace a thread whose request overruns, and reject requests after terminate', async () => {
    let made = 0;
    let terminated = 0;
    const fake = (hang: boolean): EngineWorker => ({
      request: (body) => (hang ? new Promise(() => {}) : Promise.resolve({ id: 0, boxes: [], ...(body.op === 'recognize' ? { lines: [] } : {}) })),
      terminate: async () => {
        terminated++;
      },
    });
    const gray = { width: 8, height: 8, data: new Uint8Array(64) };
    const p = new OcrPool({ size: 1, jobTimeoutMs: 50, factory: async () => fake(made++ === 0) });
    await expect(p.detect(gray, 1)).rejects.toMatchObject({ code: 'DEID_ERR_OCR_UNAVAILABLE' });
    await expect(p.detect(gray, 1)).resolves.toEqual([]);
    expect(made).toBe(2);
    expect(terminated).toBe(1);
    await p.terminate();
    expect(terminated).toBe(2);
    await expect(p.detect(gray, 1)).rejects.toMatchObject({ code: 'DEID_ERR_OCR_UNAVAILABLE' });
  });
});

describe('clean-pixel-data end to end on the real ultrasound images', () => {
  const profile = loadProfile('basic', ['clean-pixel-data']);

  /** Identifying tokens (per the source's identifiers and the PHI patterns) in a list of OCR'd words. */
  const identifying = (words: string[], identifiers: ReturnType<typeof collectIdentifiers>) => {
    const m = new PhiMatcher(identifiers);
    return words.filter((w) => m.sensitive(w, 100));
  };

  it.each(['GREYSCALE_IMAGE.dcm', 'RGB_IMAGE.dcm'])('should mask the burned-in PHI of %s so that Debian tesseract reads none of it', async (name) => {
    const input = readFileSync(corpusFile(`deid-data/ultrasounds/${name}`));
    const ids = collectIdentifiers(readDicom(input).dataset);
    // The check means something: tesseract reads PHI in the original.
    expect(identifying(tesseractCli(await framePng(input), `${name}-in`), ids).length).toBeGreaterThanOrEqual(3);
    const r = await processObjectAsync(input, { profile, secret: SECRET, ocrPool: pool, previews: true });
    expect(r.pixels?.action).toBe('cleaned');
    expect(r.pixels?.boxes?.length).toBeGreaterThan(0);
    expect(r.pixelVerify?.ok).toBe(true);
    expect(identifying(tesseractCli(await framePng(r.output), `${name}-out`), ids)).toEqual([]);
    const out = readDicom(r.output);
    expect(rawString(findElement(out.dataset, 0x00280301)?.value)).toBe('NO');
    const codes = findElement(out.dataset, 0x00120064)!.items!.map((i) => rawString(findElement(i.elements, 0x00080100)?.value));
    expect(codes).toEqual(['113100', '113101']);
    // Lossless in, lossless out.
    expect(out.transferSyntaxUID).toBe('1.2.840.10008.1.2.1');
    expect(r.previews?.before.subarray(1, 4).toString()).toBe('PNG');
    expect(r.previews?.after.subarray(1, 4).toString()).toBe('PNG');
  });

  it('should keep non-identifying annotations in sensitive-text mode and still remove the PHI', async () => {
    const dir = join(tmp.path, 'sens');
    mkdirSync(dir);
    writeFileSync(join(dir, 'p.yaml'), 'name: sens\nextends: basic\noptions: [clean-pixel-data]\npixels: { mode: sensitive-text, builtinSignatures: false }\n');
    const p = loadProfile(join(dir, 'p.yaml'));
    const input = readFileSync(corpusFile('deid-data/ultrasounds/GREYSCALE_IMAGE.dcm'));
    const r = await processObjectAsync(input, { profile: p, secret: SECRET, ocrPool: pool });
    const words = tesseractCli(await framePng(r.output), 'sens-out');
    expect(identifying(words, collectIdentifiers(readDicom(input).dataset))).toEqual([]);
    expect(words.join(' ')).toMatch(/Breast/);
    expect(words.join(' ')).toMatch(/TAC1|Res/);
    expect(r.pixels!.text!.linesKept).toBeGreaterThan(3);
  });

  it('should quarantine (DEID_ERR_PIXEL_LEAK) when masking left identifying text readable: verification fails closed', async () => {
    const dir = join(tmp.path, 'leak');
    mkdirSync(dir);
    // A profile that blanks nothing: no OCR, no signatures. Verification still reads the output.
    writeFileSync(join(dir, 'p.yaml'), 'name: blind\nextends: basic\noptions: [clean-pixel-data]\npixels: { ocr: false, builtinSignatures: false }\n');
    const p = loadProfile(join(dir, 'p.yaml'));
    const err = await processObjectAsync(readFileSync(corpusFile('deid-data/ultrasounds/GREYSCALE_IMAGE.dcm')), { profile: p, secret: SECRET, ocrPool: pool }).catch((e) => e);
    expect(err.code).toBe('DEID_ERR_PIXEL_LEAK');
    // Findings are named by frame and coordinates, never by the text read.
    expect(err.message).toMatch(/frame 0 box \(\d+,\d+\)-\(\d+,\d+\)/);
    expect(err.message).not.toMatch(/ZZZ|PATIENT|00079241539|1951|CLEVELAND/i);
  });

  // Two-level images: a scanned document stored one bit per pixel (Secondary Capture: always read
  // whole), and two-level frames of a class the first pass screens (CT), 8 bits and 1 bit. Rendered
  // with the darker of two values taken for padding, such a frame was one grey: text-free, and passed on.
  it.each([
    { name: 'a one-bit scanned document', bits: 1, sopClassUid: '1.2.840.10008.5.1.4.1.1.7' },
    { name: 'a two-level 8-bit CT-class image', bits: 8, sopClassUid: '1.2.840.10008.5.1.4.1.1.2' },
    { name: 'a one-bit CT-class image', bits: 1, sopClassUid: '1.2.840.10008.5.1.4.1.1.2' },
  ])('should mask the text of $name and keep its pixel layout', async ({ bits, sopClassUid }) => {
    const W = 480;
    const H = 120;
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><rect width="${W}" height="${H}" fill="#fff"/><text x="16" y="44" font-family="DejaVu Sans" font-size="22" fill="#000">Patient: DOE, JOHN</text><text x="16" y="90" font-family="DejaVu Sans" font-size="22" fill="#000">MRN 123456  DOB 03/14/1951</text></svg>`;
    const { data } = await sharp(Buffer.from(svg)).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
    // Black ink on white paper, nothing in between.
    const paper = (i: number) => data[i] >= 128;
    let pixelData: Uint8Array;
    if (bits === 1) {
      pixelData = new Uint8Array(Math.ceil((W * H) / 8));
      for (let i = 0; i < W * H; i++) if (paper(i)) pixelData[i >> 3] |= 1 << (i & 7);
    } else pixelData = Uint8Array.from({ length: W * H }, (_, i) => (paper(i) ? 255 : 0));
    const input = writeDicom(imageFile({ rows: H, columns: W, bitsAllocated: bits, bitsStored: bits, highBit: bits - 1, photometric: 'MONOCHROME2', pixelData, sopClassUid, modality: 'OT' }));
    const ids = collectIdentifiers(readDicom(input).dataset);
    expect(identifying(tesseractCli(await framePng(input), 'two-level-in'), ids).length).toBeGreaterThanOrEqual(2);
    const r = await processObjectAsync(input, { profile, secret: SECRET, ocrPool: pool });
    expect(r.pixels?.action).toBe('cleaned');
    expect(r.pixels?.boxes?.length).toBeGreaterThanOrEqual(2);
    expect(r.pixelVerify?.ok).toBe(true);
    expect(identifying(tesseractCli(await framePng(r.output), 'two-level-out'), ids)).toEqual([]);
    const out = readDicom(r.output);
    expect(findElement(out.dataset, 0x00280100)?.value).toEqual(Uint8Array.of(bits, 0));
    expect(findElement(out.dataset, 0x7fe00010)?.value?.length).toBe(pixelData.length);
  });

  // A page of text with more candidates than are read whole (a worklist, a table): the first read as
  // text, so the rest is read too, and every cell is masked; texture stops after the first (pixels-real).
  it('should read and mask every cell of a table with more than 400 text candidates', async () => {
    const [W, H, rows, cols] = [1024, 1024, 34, 12];
    let cells = '';
    for (let r = 0, k = 0; r < rows; r++) for (let c = 0; c < cols; c++, k++) cells += `<text x="${12 + 84 * c}" y="${30 + 29 * r}" font-family="DejaVu Sans" font-size="15" fill="#fff">${String.fromCharCode(65 + (k % 26))}${((k * 7919) % 9000) + 1000}</text>`;
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><rect width="${W}" height="${H}" fill="#000"/>${cells}</svg>`;
    const { data } = await sharp(Buffer.from(svg)).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
    const input = writeDicom(imageFile({ rows: H, columns: W, bitsAllocated: 8, bitsStored: 8, highBit: 7, photometric: 'MONOCHROME2', pixelData: new Uint8Array(data.subarray(0, W * H)), sopClassUid: '1.2.840.10008.5.1.4.1.1.2', modality: 'CT' }));
    const r = await processObjectAsync(input, { profile, secret: SECRET, ocrPool: pool });
    expect(r.pixels?.text?.linesMasked).toBeGreaterThanOrEqual(0.95 * rows * cols);
    expect(r.pixelVerify?.ok).toBe(true);
    // No cell left: the output's frame is black wherever the input had ink.
    const out = decodePixelData(readDicom(r.output).dataset, readDicom(r.output).transferSyntaxUID).frames[0];
    let ink = 0;
    let left = 0;
    for (let i = 0; i < W * H; i++) {
      if (data[i] < 128) continue;
      ink++;
      if (out[i] >= 128) left++;
    }
    expect(ink).toBeGreaterThan(20_000);
    expect(left).toBe(0);
  });

  // Text in a saturated dark colour has little luma: dark blue over black was taken for no text on a
  // colour image of a class the first pass screens (PET), and passed on. Each channel is read apart.
  it.each(['#0000c0', '#a00000'])('should mask text drawn in %s on a colour PET image, as read in any one channel', async (colour) => {
    const W = 512;
    const H = 512;
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><rect width="${W}" height="${H}" fill="#000"/><circle cx="256" cy="300" r="150" fill="#553322"/><text x="20" y="40" font-family="DejaVu Sans" font-size="16" fill="${colour}">DOE JOHN 12/03/1951 MRN 123456</text></svg>`;
    const { data } = await sharp(Buffer.from(svg)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const input = writeDicom(imageFile({ rows: H, columns: W, samplesPerPixel: 3, bitsAllocated: 8, photometric: 'RGB', pixelData: new Uint8Array(data), sopClassUid: '1.2.840.10008.5.1.4.1.1.128', modality: 'PT' }));
    const ids = collectIdentifiers(readDicom(input).dataset);
    const channels = async (bytes: Uint8Array, name: string) => {
      const png = await framePng(bytes);
      const words: string[] = [];
      for (const c of [0, 1, 2] as const) words.push(...tesseractCli(await sharp(png).extractChannel(c).png().toBuffer(), `${name}-${c}`));
      return identifying(words, ids);
    };
    expect((await channels(input, 'colour-in')).length).toBeGreaterThanOrEqual(2);
    const r = await processObjectAsync(input, { profile, secret: SECRET, ocrPool: pool });
    expect(r.pixels?.text?.firstPass).toBe('candidates');
    expect(r.pixels?.pixelsMasked).toBeGreaterThan(0);
    expect(r.pixelVerify?.ok).toBe(true);
    expect(await channels(r.output, 'colour-out')).toEqual([]);
  });

  it('should mask every frame of the multi-frame cine (GREYSCALE_CINE.zip, unzipped here)', async () => {
    const input = readZipEntry(corpusFile('deid-data/ultrasounds/GREYSCALE_CINE.zip'), '.dcm');
    const ids = collectIdentifiers(readDicom(input).dataset);
    const r = await processObjectAsync(input, { profile, secret: SECRET, ocrPool: pool });
    expect(r.pixels?.frames).toBe(27);
    expect(r.pixelVerify?.ok).toBe(true);
    for (const f of [0, 13, 26]) {
      expect(identifying(tesseractCli(await framePng(r.output, f), `cine-${f}`), ids), `frame ${f}`).toEqual([]);
    }
  });

  it('should run as one step on bytes for a staged pipeline (the service), between header and verify', async () => {
    const input = readFileSync(corpusFile('deid-data/ultrasounds/RGB_IMAGE.dcm'));
    const header = deidentifyHeader(readDicom(input), { profile, secret: SECRET });
    const r = await runPixelStage(input, writeDicom(header.file), profile, { pool });
    expect(r.report.action).toBe('cleaned');
    expect(r.verify?.ok).toBe(true);
    expect(rawString(findElement(readDicom(r.output).dataset, 0x00280301)?.value)).toBe('NO');
    const ct = readFileSync(corpusFile('pydicom/CT_small.dcm'));
    const headerBytes = writeDicom(deidentifyHeader(readDicom(ct), { profile, secret: SECRET }).file);
    // Every image is examined; a text-free CT keeps its pixel data byte for byte.
    const examined = await runPixelStage(ct, headerBytes, profile, { pool });
    expect(examined.report.action).toBe('cleaned');
    expect(examined.report.boxes).toEqual([]);
    expect(examined.report.pixelsMasked).toBe(0);
    const pixelData = (b: Uint8Array) => findElement(readDicom(b).dataset, 0x7fe00010)!.value!;
    expect(Buffer.compare(pixelData(examined.output), pixelData(headerBytes))).toBe(0);
  });

  it('should run from the CLI with --option clean-pixel-data and write before/after previews', () => {
    const inDir = join(tmp.path, 'cli-in');
    mkdirSync(inDir);
    writeFileSync(join(inDir, 'us.dcm'), readFileSync(corpusFile('deid-data/ultrasounds/GREYSCALE_IMAGE.dcm')));
    writeFileSync(join(inDir, 'ct.dcm'), readFileSync(corpusFile('pydicom/CT_small.dcm')));
    writeFileSync(join(tmp.path, 'secret'), 'cli-pixel-secret-0123456789\n');
    const out = join(tmp.path, 'cli-out');
    const previews = join(tmp.path, 'cli-previews');
    const r = spawnSync(process.execPath, [CLI, 'run', inDir, '--out', out, '--quarantine', join(tmp.path, 'cli-q'), '--option', 'clean-pixel-data', '--previews', previews, '--secret-file', join(tmp.path, 'secret')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/2 file\(s\): 2 de-identified, 0 quarantined/);
    expect(r.stdout).toMatch(/pixels: 2 image\(s\) examined and cleaned, 0 skipped/);
    // Nothing from the text engine reaches the terminal.
    expect(r.stderr).toBe('');
    // Previews only of the image in which something was masked.
    const pngs = readdirSync(previews).sort();
    expect(pngs).toHaveLength(2);
    expect(pngs[0]).toMatch(/^2\.25\.\d+\.after\.png$/);
    expect(pngs[1]).toMatch(/^2\.25\.\d+\.before\.png$/);
  });
});
