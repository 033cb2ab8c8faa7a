// Runs the OCR pool in its own process for tests that must watch the process: does it reach the
// network, does it leave threads behind (a leaked worker thread keeps the process from exiting).
// Usage: node ocr-child.mjs <mode> <png-or-pgm> ; prints one JSON line.
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
const dist = new URL('../../dist/', import.meta.url);
const { OcrPool } = await import(new URL('stages/pixels/ocr-pool.js', dist).href);
const [mode, image] = process.argv.slice(2);
const img = image ? readFileSync(image) : undefined;
const out = {};
if (mode === 'load') {
  // Concurrent load: more jobs than workers, all in flight at once.
  const pool = new OcrPool({ size: 2 });
  let maxBusy = 0;
  const timer = setInterval(() => (maxBusy = Math.max(maxBusy, pool.stats.busy + pool.stats.starting)), 5);
  const results = await Promise.all(Array.from({ length: 10 }, () => pool.recognize(img)));
  clearInterval(timer);
  out.texts = [...new Set(results.map((ws) => ws.map((w) => w.text).join(' ')))];
  out.before = pool.stats;
  out.maxBusy = maxBusy;
  await pool.terminate();
  out.after = pool.stats;
  out.afterTerminate = await pool.recognize(img).then(() => 'resolved', (e) => e.code);
} else if (mode === 'timeout') {
  // A start that cannot finish in time: the job fails with a code and nothing is left running.
  const pool = new OcrPool({ size: 1, createTimeoutMs: 5 });
  out.error = await pool.recognize(img).then(() => 'resolved', (e) => e.code);
  await pool.terminate();
  out.after = pool.stats;
} else if (mode === 'read') {
  const pool = new OcrPool({ size: 1 });
  out.words = (await pool.recognize(img)).map((w) => w.text);
  await pool.terminate();
} else if (mode === 'guard-control') {
  // The guard must also cover worker threads (where tesseract.js runs).
  const w = new Worker('fetch("https://cdn.jsdelivr.net/x").catch(() => {})', { eval: true });
  await new Promise((r) => w.on('exit', r));
}
process.stdout.write(JSON.stringify(out) + '\n');
