import { availableParallelism } from 'node:os';
import { readdirSync, statSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ErrorCode } from '../errors.js';
import type { IdMap } from '../idmap/index.js';
import { compileProfile, type CompiledProfile } from '../profiles/compile.js';
import type { ObjectRecord } from '../report/object-record.js';
import type { SubmissionReport } from '../report/submission.js';
import { takeRunWorkers } from './prewarm.js';
import type { FileJob, FileOutcome, RunSettings } from './process-file.js';
import type { WorkerInit, WorkerRequest } from './run-worker.js';
import { ThreadRun, type Processed } from './thread-run.js';

export interface RunSummary {
  files: number;
  deidentified: number;
  quarantined: number;
  reasons: Partial<Record<ErrorCode, number>>;
  bytesIn: number;
  seconds: number;
  filesPerSecond: number;
  mbPerSecond: number;
  /** clean-pixel-data: images whose pixels were examined and cleaned, and images skipped by policy. */
  pixelsCleaned?: number;
  pixelsSkipped?: number;
}

/** Every file under the given paths, recursively, in a stable order. */
export function collectFiles(inputs: readonly string[]): FileJob[] {
  const out: FileJob[] = [];
  for (const input of inputs) {
    const root = resolve(input);
    const st = statSync(root);
    if (st.isFile()) {
      out.push({ path: root, rel: input });
      continue;
    }
    // Paths relative to the root by slicing: path.relative per file was most of a 1,000-file walk.
    const prefix = root.endsWith(sep) ? root : root + sep;
    const walk = (dir: string) => {
      const entries = readdirSync(dir, { withFileTypes: true });
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const d of entries) {
        const p = dir + (dir.endsWith(sep) ? '' : sep) + d.name;
        if (d.isDirectory()) walk(p);
        else if (d.isFile() || (d.isSymbolicLink() && statSync(p).isFile())) out.push({ path: p, rel: p.slice(prefix.length) });
      }
    };
    walk(root);
  }
  return out;
}

/** Milliseconds from an arbitrary origin. Not performance.now(): the first use of that loads perf_hooks (7 ms of start-up). */
function now(): number {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
}

const BATCH = 16;
/** Below this many files per thread, starting a worker costs more than it saves. */
const FILES_PER_THREAD = 64;

function progressBar(done: number, total: number, started: number): string {
  const width = 30;
  const filled = total ? Math.round((done / total) * width) : width;
  const rate = done / Math.max((now() - started) / 1000, 1e-3);
  return `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}  ${rate.toFixed(0)} files/s `;
}

/**
 * Runs the pipeline over files on one thread per core: this one and worker threads. Each thread reads,
 * de-identifies, verifies and writes its own files in batches; this one also hands out the batches,
 * records every file (the map rows, the report) and counts the results.
 */
export async function runFiles(
  jobs: FileJob[],
  settings: RunSettings,
  opts: {
    threads?: number;
    progress?: boolean;
    compiled?: CompiledProfile;
    /** Told each file's record as it is counted (with a manifest in the settings). */
    onRecord?: (record: ObjectRecord) => void;
    /** The map of `settings.idMap`, opened already (else opened here); closed when the run ends. */
    idMap?: IdMap;
  } = {},
): Promise<RunSummary & { report?: SubmissionReport }> {
  const started = now();
  // Counted as they come, not kept: memory stays flat however many files a run has.
  const tally = { files: 0, ok: 0, bytesIn: 0, pixelsCleaned: 0, pixelsSkipped: 0, reasons: {} as Partial<Record<ErrorCode, number>> };
  const threads = Math.max(1, Math.min(opts.threads ?? availableParallelism(), Math.floor(jobs.length / FILES_PER_THREAD)));
  let lastDraw = 0;
  const onOutcome = ({ result: r, record }: FileOutcome) => {
    tally.files++;
    tally.bytesIn += r.bytesIn;
    if (r.ok) tally.ok++;
    else if (r.code) tally.reasons[r.code] = (tally.reasons[r.code] ?? 0) + 1;
    if (r.pixels === 'cleaned') tally.pixelsCleaned++;
    if (r.pixels === 'skipped') tally.pixelsSkipped++;
    if (record) opts.onRecord?.(record);
    if (opts.progress && (now() - lastDraw > 100 || tally.files === jobs.length)) {
      lastDraw = now();
      process.stderr.write(progressBar(tally.files, jobs.length, started));
    }
  };

  const compiled = opts.compiled ?? compileProfile(settings.chain, settings.options);
  const thisThread = new ThreadRun(settings, compiled, opts.idMap);
  if (compiled.pixels) {
    takeRunWorkers(0);
    // clean-pixel-data: OCR runs in one pool of workers sized to the cores, so files are processed
    // concurrently on this thread (decode, mask and encode are quick next to OCR).
    const { shutdownSharedOcrPool, sharedOcrPool, pixelConcurrency } = await import('../stages/pixels/ocr-pool.js');
    const concurrency = pixelConcurrency(sharedOcrPool().size);
    let next = 0;
    try {
      await Promise.all(
        Array.from({ length: Math.min(concurrency, jobs.length) }, async () => {
          while (next < jobs.length) (await thisThread.run([jobs[next++]], { reuseBuffers: false })).forEach(onOutcome);
        }),
      );
    } finally {
      await shutdownSharedOcrPool();
    }
  } else {
    // This thread de-identifies too, next to threads - 1 workers: it is started and loaded already, and
    // each worker pays a cold start (module loading and a JIT warm-up that were a quarter of a short run).
    let next = 0;
    const take = (n: number) => {
      const batch = jobs.slice(next, next + n);
      next += batch.length;
      return batch;
    };
    const prewarmed = takeRunWorkers(threads - 1);
    const workers = [...prewarmed];
    const workerUrl = new URL('./run-worker.js', import.meta.url);
    // Workers get the compiled profile too (a structured clone), rather than each compiling it again.
    const init: WorkerInit = { settings, profile: compiled };
    for (let i = workers.length; i < threads - 1; i++) workers.push(new Worker(workerUrl, { workerData: init }));
    // The workers' batches are recorded as they come, and counted once recorded.
    const recording: Array<Promise<void>> = [];
    const record = (processed: readonly Processed[]) => recording.push(thisThread.settle(processed).then((outcomes) => outcomes.forEach(onOutcome)));
    // Half batches here: this thread also records the workers' batches, and takes their next requests,
    // only in between its own; with whole ones a worker could run out of work waiting.
    const onThisThread = async () => {
      for (let batch = take(BATCH / 2); batch.length; batch = take(BATCH / 2)) {
        (await thisThread.run(batch, { reuseBuffers: true })).forEach(onOutcome);
        // Let the workers' results and requests in between batches.
        await new Promise((r) => setImmediate(r));
      }
    };
    const post = (w: Worker, m: WorkerRequest) => w.postMessage(m);
    const onWorker = (w: Worker, startedEarly: boolean) =>
      new Promise<void>((resolveWorker, reject) => {
        // A prewarmed worker was started before the settings existed: it gets them first.
        if (startedEarly) post(w, { init });
        // Two batches in flight per worker keep it busy without holding the whole job list in messages.
        let inFlight = 0;
        const feed = () => {
          while (inFlight < 2 && next < jobs.length) {
            post(w, take(BATCH));
            inFlight++;
          }
          // Done: the worker holds nothing that is not written.
          if (inFlight === 0) void w.terminate().then(() => resolveWorker());
        };
        w.on('message', (m: Processed[]) => {
          inFlight--;
          record(m);
          feed();
        });
        w.on('error', reject);
        feed();
      });
    await Promise.all([onThisThread(), ...workers.map((w, i) => onWorker(w, i < prewarmed.length))]);
    await Promise.all(recording);
  }
  const report = await thisThread.finish();
  if (opts.progress) process.stderr.write('\n');
  const seconds = (now() - started) / 1000;
  return {
    files: tally.files,
    deidentified: tally.ok,
    quarantined: tally.files - tally.ok,
    reasons: tally.reasons,
    bytesIn: tally.bytesIn,
    seconds,
    filesPerSecond: tally.files / Math.max(seconds, 1e-9),
    mbPerSecond: tally.bytesIn / 1e6 / Math.max(seconds, 1e-9),
    ...(compiled.pixels ? { pixelsCleaned: tally.pixelsCleaned, pixelsSkipped: tally.pixelsSkipped } : {}),
    ...(report ? { report } : {}),
  };
}
