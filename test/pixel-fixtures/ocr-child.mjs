// Runs the text engine pool in its own process for tests that must watch the process: does it reach
// the network, does it leave threads behind (a leaked worker thread keeps the process from exiting),
// does anything it runs write to the terminal.
// Usage: node ocr-child.mjs <mode> [png] ; prints one JSON line.
import { Worker } from 'node:worker_threads';
import sharp from 'sharp';
const dist = new URL('../../dist/', import.meta.url);
const { OcrPool } = await import(new URL('stages/pixels/ocr-pool.js', dist).href);
const [mode, image] = process.argv.slice(2);
let gray;
if (image) {
  const { data, info } = await sharp(image).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  gray = { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, info.width * info.height) };
}
/** Detects the lines of the image and reads them. */
async function read(pool) {
  const boxes = await pool.detect(gray, 2);
  const lines = await pool.recognize(gray, boxes);
  return lines.map((l) => l.text).join(' ');
}
const out = {};
if (mode === 'load') {
  // Concurrent load: more requests than threads, all in flight at once.
  const pool = new OcrPool({ size: 2 });
  let maxBusy = 0;
  const timer = setInterval(() => (maxBusy = Math.max(maxBusy, pool.stats.busy + pool.stats.starting)), 5);
  const results = await Promise.all(Array.from({ length: 5 }, () => read(pool)));
  clearInterval(timer);
  out.texts = [...new Set(results)];
  out.before = pool.stats;
  out.maxBusy = maxBusy;
  await pool.terminate();
  out.after = pool.stats;
  out.afterTerminate = await pool.detect(gray, 1).then(() => 'resolved', (e) => e.code);
} else if (mode === 'timeout') {
  // A start that cannot finish in time: the request fails with a code and nothing is left running.
  const pool = new OcrPool({ size: 1, createTimeoutMs: 5 });
  out.error = await pool.detect(gray, 1).then(() => 'resolved', (e) => e.code);
  await pool.terminate();
  out.after = pool.stats;
} else if (mode === 'read') {
  const pool = new OcrPool({ size: 1 });
  out.text = await read(pool);
  await pool.terminate();
} else if (mode === 'guard-control') {
  // The guard must also cover worker threads (where the engine runs).
  const w = new Worker('fetch("https://cdn.jsdelivr.net/x").catch(() => {})', { eval: true });
  await new Promise((r) => w.on('exit', r));
}
process.stdout.write(JSON.stringify(out) + '\n');
