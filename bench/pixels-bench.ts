// `npm run bench:pixels` (built by tsconfig.bench.json after `npm run build`): the pixel stage (clean-pixel-data) end to end — decode, find text, OCR,
// mask, write, re-OCR verification — on
//   - a 512×512 16-bit CT with burned-in text (test/pixel-eval/generate.mjs), and
//   - the corpus's 1024×768 ultrasound (deid-data/ultrasounds/GREYSCALE_IMAGE.dcm),
// and, in the same run on the same rendered images, the Debian tesseract CLI with OMP_THREAD_LIMIT=1
// (one full-page OCR per image, no masking, no verification): the floor the issue sets.
// Prints per-image times (one image at a time) and images/s (the whole machine: our pool vs one CLI
// process per core), and the ratios.
import { execFile } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { ROOT, TESTDATA, fromDist } from './lib.js';

const run = promisify(execFile);
const { buildEvalSet } = (await import(pathToFileURL(join(ROOT, 'test/pixel-eval/generate.mjs')).href)) as typeof import('../test/pixel-eval/generate.mjs');
const { readDicom } = await fromDist<typeof import('../src/dicom/reader.js')>('dicom/reader.js');
const { decodePixelData } = await fromDist<typeof import('../src/dicom/pixels/pixel-data.js')>('dicom/pixels/pixel-data.js');
const { loadProfile } = await fromDist<typeof import('../src/profiles/profile.js')>('profiles/profile.js');
const { processObjectAsync } = await fromDist<typeof import('../src/pipeline/process-object.js')>('pipeline/process-object.js');
const { sharedOcrPool, shutdownSharedOcrPool } = await fromDist<typeof import('../src/stages/pixels/ocr-pool.js')>('stages/pixels/ocr-pool.js');
const { renderGray } = await fromDist<typeof import('../src/stages/pixels/render.js')>('stages/pixels/render.js');

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8);
const cores = availableParallelism();
const work = mkdtempSync(join(tmpdir(), 'deid-pixel-bench-'));
const profile = loadProfile('basic', ['clean-pixel-data']);
const secret = Buffer.from('pixel-bench-secret');

const set = await buildEvalSet(join(work, 'set'));
interface BenchImage {
  readonly name: string;
  readonly path: string;
  bytes?: Buffer;
  png?: string;
}
const images: BenchImage[] = [
  { name: '512x512 16-bit CT with text', path: set.find((c) => c.name === 'ct16 (native)')!.path },
  { name: '1024x768 ultrasound (GREYSCALE_IMAGE)', path: join(TESTDATA, 'deid-data/ultrasounds/GREYSCALE_IMAGE.dcm') },
];
// What the CLI reads: the same 8-bit render our OCR starts from, as PNG.
for (const img of images) {
  img.bytes = readFileSync(img.path);
  const f = readDicom(img.bytes);
  const px = decodePixelData(f.dataset, f.transferSyntaxUID);
  const g = renderGray(px.desc, px.frames[0]);
  img.png = join(work, `${img.name.replace(/\W+/g, '_')}.png`);
  writeFileSync(img.png, await sharp(Buffer.from(g.data), { raw: { width: g.width, height: g.height, channels: 1 } }).png().toBuffer());
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];
const ours = (img: BenchImage) => processObjectAsync(img.bytes!, { profile, secret });
const cli = (img: BenchImage) => run('tesseract', [img.png!, '-', '--psm', '11'], { env: { ...process.env, OMP_THREAD_LIMIT: '1' } });

// Warm-up: start the pool's workers and check that every image goes through.
let t = performance.now();
for (const img of images) {
  const r = await ours(img);
  if (r.pixels?.action !== 'cleaned') throw new Error(`${img.name} was not cleaned`);
  await cli(img);
}
const warm = performance.now() - t;

const results: Array<{ img: BenchImage; ours: number; cli: number; oursRate: number; cliRate: number }> = [];
for (const img of images) {
  const oursMs: number[] = [];
  const cliMs: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    t = performance.now();
    await ours(img);
    oursMs.push(performance.now() - t);
    t = performance.now();
    await cli(img);
    cliMs.push(performance.now() - t);
  }
  // Throughput: the whole machine busy. Ours: many images in flight through one pool sized to the
  // cores. The CLI: one single-threaded process per core.
  const n = ROUNDS * cores;
  t = performance.now();
  await Promise.all(Array.from({ length: n }, () => ours(img)));
  const oursRate = n / ((performance.now() - t) / 1000);
  t = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: cores }, async () => {
    while (next++ < n) await cli(img);
  }));
  const cliRate = n / ((performance.now() - t) / 1000);
  results.push({ img, ours: median(oursMs), cli: median(cliMs), oursRate, cliRate });
}
const poolSize = sharedOcrPool().size;
await shutdownSharedOcrPool();
rmSync(work, { recursive: true, force: true });

const f = (v: number, d = 0) => v.toFixed(d);
console.log(`\npixel stage benchmark — ${cores} cores, OCR pool of ${poolSize} workers, ${ROUNDS} rounds, medians; warm-up ${f(warm)} ms\n`);
console.log('per image, one at a time (ours: decode → find text → OCR → mask → write → re-OCR verify; CLI: one OCR pass):');
for (const r of results) {
  console.log(`  ${r.img.name.padEnd(40)} deid ${f(r.ours).padStart(5)} ms   tesseract CLI ${f(r.cli).padStart(5)} ms   ratio CLI/deid ${f(r.cli / r.ours, 2)}x`);
}
console.log(`\nthroughput, all cores busy (deid: ${cores * ROUNDS} images in flight over one pool; CLI: ${cores} processes):`);
for (const r of results) {
  console.log(`  ${r.img.name.padEnd(40)} deid ${f(r.oursRate, 2).padStart(6)} images/s   tesseract CLI ${f(r.cliRate, 2).padStart(6)} images/s   ratio deid/CLI ${f(r.oursRate / r.cliRate, 2)}x`);
}
