// `npm run bench:pixels` (built by tsconfig.bench.json after `npm run build`): the pixel stage
// (clean-pixel-data) end to end — decode, find text, read, mask, write, verify — on real images, and
// in the same run the Debian tesseract CLI (OMP_THREAD_LIMIT=1, one sparse-text pass, no masking, no
// verification) on the same frames:
//   - 512×512 CTs with burned-in text (../shared/testdata/tcia-burned-in): time per image, one at a time;
//   - text-free 512×512 CTs (the corpus): CPU per image, every thread of the process counted (goal ≤ 20 ms);
//   - the corpus's 1024×768 ultrasound;
//   - images/s with every core busy (ours: many images in flight over one pool; the CLI: one process per core).
// Within a round the two sides run back to back, each over all of a group's images, so drifting load on a
// shared machine mostly cancels in the ratio.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { TESTDATA, fromDist } from './lib.js';

const run = promisify(execFile);
const { readDicom } = await fromDist<typeof import('../src/dicom/reader.js')>('dicom/reader.js');
const { decodePixelData } = await fromDist<typeof import('../src/dicom/pixels/pixel-data.js')>('dicom/pixels/pixel-data.js');
const { initCodecs } = await fromDist<typeof import('../src/dicom/pixels/codecs.js')>('dicom/pixels/codecs.js');
const { loadProfile } = await fromDist<typeof import('../src/profiles/profile.js')>('profiles/profile.js');
const { processObjectAsync } = await fromDist<typeof import('../src/pipeline/process-object.js')>('pipeline/process-object.js');
const { sharedOcrPool, shutdownSharedOcrPool } = await fromDist<typeof import('../src/stages/pixels/ocr-pool.js')>('stages/pixels/ocr-pool.js');
const { renderGray } = await fromDist<typeof import('../src/stages/pixels/render.js')>('stages/pixels/render.js');

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const cores = availableParallelism();
const work = mkdtempSync(join(tmpdir(), 'deid-pixel-bench-'));
const profile = loadProfile('basic', ['clean-pixel-data']);
const secret = Buffer.from('pixel-bench-secret');
await initCodecs();

interface BenchImage {
  readonly path: string;
  readonly bytes: Buffer;
  readonly png: string;
}

const tcia = join(TESTDATA, 'tcia-burned-in');
const ctWithText = readdirSync(tcia)
  .filter((f) => f.includes('CT_UROGRAM') && f.endsWith('.dcm'))
  .filter((_, i) => i % 4 === 0)
  .map((f) => join(tcia, f));
// Uncompressed, so that the figure is the pixel stage's own (a JPEG 2000 decode alone costs far more than 20 ms).
const textFree = ['dicomparser/CT1_UNC.explicit_little_endian.dcm', 'dicomparser/CT1_UNC.implicit_little_endian.dcm', 'dicomparser/CT1_UNC.explicit_big_endian.dcm'].map((f) => join(TESTDATA, f));
const ultrasound = [join(TESTDATA, 'deid-data/ultrasounds/GREYSCALE_IMAGE.dcm')];

/** What the CLI reads: the stored-range render of the frame, as PNG. */
async function prepare(path: string): Promise<BenchImage> {
  const bytes = readFileSync(path);
  const f = readDicom(bytes);
  const px = decodePixelData(f.dataset, f.transferSyntaxUID);
  const g = renderGray(px.desc, px.frames[0]);
  const png = join(work, `${path.split('/').pop()}.png`);
  writeFileSync(png, await sharp(Buffer.from(g.data), { raw: { width: g.width, height: g.height, channels: 1 } }).png().toBuffer());
  return { path, bytes, png };
}
const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const ours = (img: BenchImage) => processObjectAsync(img.bytes, { profile, secret });
const cli = (img: BenchImage) => run('tesseract', [img.png, '-', '--psm', '11'], { env: { ...process.env, OMP_THREAD_LIMIT: '1' } });
/** CPU of the whole process, every thread included (the text engine runs in worker threads). */
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

interface Group {
  readonly name: string;
  readonly images: BenchImage[];
  readonly textFree?: boolean;
}
const groups: Group[] = [
  { name: '512x512 CT with burned-in text (tcia)', images: await Promise.all(ctWithText.map(prepare)) },
  { name: '512x512 text-free CT (corpus)', images: await Promise.all(textFree.map(prepare)), textFree: true },
  { name: '1024x768 ultrasound (GREYSCALE_IMAGE)', images: await Promise.all(ultrasound.map(prepare)) },
];

// Warm-up: start the pool's threads, and check that every image is examined.
let t = performance.now();
for (const g of groups) {
  for (const img of g.images) {
    const r = await ours(img);
    if (r.pixels?.action !== 'cleaned') throw new Error(`${img.path} was not examined`);
    if (g.textFree && r.pixels.pixelsMasked) throw new Error(`${img.path} is not text-free: ${r.pixels.pixelsMasked} pixels masked`);
    await cli(img);
  }
}
const warm = performance.now() - t;

// A text-free image takes some 25 ms: a few rounds of it time code the JIT has not optimised yet, not
// what a running service pays. It gets rounds enough to measure warm code.
const roundsOf = (g: Group) => (g.textFree ? Math.max(ROUNDS, 30) : ROUNDS);
const results = [];
for (const g of groups) {
  const oursMs: number[] = [];
  const cliMs: number[] = [];
  const cpu: number[] = [];
  // Each side reads the group's images one after another, as a stream; the sides alternate which
  // goes first by round. Interleaved image by image, every image of ours after a CLI run took about
  // twice as long as the same images read back to back (550–860 ms against 210–440 ms on this VM),
  // and as much after a 0.4 s sleep: the machine's idle-time behaviour, not the stage's work.
  const oursRound = async () => {
    for (const img of g.images) {
      const c0 = cpuMs();
      t = performance.now();
      await ours(img);
      oursMs.push(performance.now() - t);
      cpu.push(cpuMs() - c0);
    }
  };
  const cliRound = async () => {
    for (const img of g.images) {
      t = performance.now();
      await cli(img);
      cliMs.push(performance.now() - t);
    }
  };
  for (let round = 0; round < roundsOf(g); round++) {
    for (const side of round % 2 ? [cliRound, oursRound] : [oursRound, cliRound]) await side();
  }
  // Throughput with every core busy.
  const batch = g.images.flatMap((img) => Array<BenchImage>(Math.max(2, Math.ceil((ROUNDS * cores) / g.images.length))).fill(img));
  t = performance.now();
  await Promise.all(batch.map((img) => ours(img)));
  const oursRate = batch.length / ((performance.now() - t) / 1000);
  t = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: cores }, async () => {
      while (next < batch.length) await cli(batch[next++]);
    }),
  );
  const cliRate = batch.length / ((performance.now() - t) / 1000);
  results.push({ g, ours: median(oursMs), cli: median(cliMs), cpu: median(cpu), oursRate, cliRate });
}
const poolSize = sharedOcrPool().size;
await shutdownSharedOcrPool();
rmSync(work, { recursive: true, force: true });

const f = (v: number, d = 0) => v.toFixed(d);
console.log(`\npixel stage benchmark — ${cores} cores, text engine pool of ${poolSize} threads, ${ROUNDS} rounds (text-free: ${roundsOf(groups.find((g) => g.textFree)!)}), medians; warm-up ${f(warm)} ms\n`);
console.log('per image, one at a time (deid: decode → find text → read → mask → write → verify; CLI: one OCR pass):');
for (const r of results) {
  console.log(`  ${r.g.name.padEnd(42)} deid ${f(r.ours).padStart(5)} ms (CPU ${f(r.cpu).padStart(4)} ms)   tesseract CLI ${f(r.cli).padStart(5)} ms   ratio CLI/deid ${f(r.cli / r.ours, 2)}x`);
}
const free = results.find((r) => r.g.textFree)!;
console.log(`\ntext-free 512x512 CT: ${f(free.cpu, 1)} ms of CPU per image (every thread)   goal ≤ 20 ms  ${free.cpu <= 20 ? 'PASS' : 'FAIL'}`);
console.log(`\nthroughput, all cores busy (deid: images in flight over one pool; CLI: ${cores} processes):`);
for (const r of results) {
  console.log(`  ${r.g.name.padEnd(42)} deid ${f(r.oursRate, 2).padStart(6)} images/s   tesseract CLI ${f(r.cliRate, 2).padStart(6)} images/s   ratio deid/CLI ${f(r.oursRate / r.cliRate, 2)}x`);
}
