import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import tesseract from 'tesseract.js';
import { DeidError } from '../../errors.js';

/**
 * A pool of tesseract.js workers (each a worker thread running the wasm engine), sized to the cores.
 *
 * - The language data is read from node_modules (@tesseract.js-data/eng), never from a CDN: without an
 *   explicit langPath tesseract.js downloads it, which hangs or crashes offline.
 * - Every worker creation is wrapped in a timeout, on both sides: the pool stops waiting, and the new
 *   thread ends itself if its engine has not initialised in time (so a hung start never leaks a
 *   thread). A start that completes after the pool gave up is terminated at once.
 * - A recognition that overruns its timeout terminates its worker; the next job gets a fresh one.
 * - terminate() ends every worker, idle, busy or starting, and rejects queued jobs.
 */

export interface OcrWord {
  readonly text: string;
  /** 0-100 */
  readonly confidence: number;
  readonly bbox: { readonly x0: number; readonly y0: number; readonly x1: number; readonly y1: number };
}

export interface OcrParams {
  /** Tesseract page segmentation mode; 11 (sparse text) finds scattered words, 6 reads one block. */
  readonly psm?: number;
}

/** The part of a tesseract.js worker the pool uses (a seam for tests). */
export interface EngineWorker {
  setParameters(params: Record<string, string>): Promise<unknown>;
  recognize(image: Buffer, options: Record<string, unknown>, output: Record<string, boolean>): Promise<{ data: { blocks?: unknown[] | null } }>;
  terminate(): Promise<unknown>;
}

export type EngineFactory = () => Promise<EngineWorker>;

export interface OcrPoolOptions {
  /** Number of workers; defaults to the available cores. */
  readonly size?: number;
  /** How long a worker may take to start (load the engine and language data). */
  readonly createTimeoutMs?: number;
  /** How long one recognition may take. */
  readonly jobTimeoutMs?: number;
  /** Replaces the tesseract.js factory (tests). */
  readonly factory?: EngineFactory;
}

const requireHere = createRequire(import.meta.url);

/** The traineddata folder inside node_modules: the only place OCR data is read from. */
export function languageDataPath(): string {
  return join(dirname(requireHere.resolve('@tesseract.js-data/eng/package.json')), '4.0.0_best_int');
}

/**
 * The thread's entry script: tesseract.js's own node worker script, behind a watchdog that ends the
 * thread when the engine has not initialised within the timeout (process.exit in a worker thread
 * ends that thread only).
 */
function watchdogWorkerUrl(timeoutMs: number): URL {
  const script = join(dirname(requireHere.resolve('tesseract.js/package.json')), 'src/worker-script/node/index.js');
  const code = `
import { parentPort } from 'node:worker_threads';
import { createRequire } from 'node:module';
const timer = setTimeout(() => process.exit(70), ${Math.max(1, Math.round(timeoutMs))});
const post = parentPort.postMessage.bind(parentPort);
parentPort.postMessage = (msg, ...rest) => {
  if (msg && msg.action === 'initialize' && msg.status !== 'progress') clearTimeout(timer);
  return post(msg, ...rest);
};
createRequire(${JSON.stringify(script)})(${JSON.stringify(script)});
`;
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}

function tesseractFactory(createTimeoutMs: number): EngineFactory {
  const langPath = languageDataPath();
  return async () =>
    (await tesseract.createWorker('eng', tesseract.OEM.LSTM_ONLY, {
      langPath,
      gzip: true,
      cacheMethod: 'none',
      workerPath: watchdogWorkerUrl(createTimeoutMs) as unknown as string,
      logger: () => {},
      // Without an error handler tesseract.js rethrows worker errors from an event handler, which kills the process.
      errorHandler: () => {},
    })) as unknown as EngineWorker;
}

interface Slot {
  worker: EngineWorker;
  busy: boolean;
  psm?: number;
}

interface Job {
  readonly image: Buffer;
  readonly params: OcrParams;
  readonly resolve: (w: OcrWord[]) => void;
  readonly reject: (e: unknown) => void;
}

export interface OcrPoolStats {
  readonly size: number;
  /** Workers alive now (idle or busy). */
  readonly live: number;
  /** Worker starts in progress. */
  readonly starting: number;
  readonly busy: number;
  readonly queued: number;
  readonly created: number;
  readonly terminated: number;
  readonly recognitions: number;
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(onTimeout()), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

/** Words of a tesseract.js result (blocks → paragraphs → lines → words). */
function wordsOf(blocks: unknown[] | null | undefined): OcrWord[] {
  const out: OcrWord[] = [];
  for (const b of (blocks ?? []) as Array<{ paragraphs?: Array<{ lines?: Array<{ words?: OcrWord[] }> }> }>) {
    for (const p of b.paragraphs ?? []) for (const l of p.lines ?? []) for (const w of l.words ?? []) out.push({ text: w.text, confidence: w.confidence, bbox: { ...w.bbox } });
  }
  return out;
}

export class OcrPool {
  readonly size: number;
  private readonly createTimeoutMs: number;
  private readonly jobTimeoutMs: number;
  private readonly factory: EngineFactory;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private starting = 0;
  private closed = false;
  private created = 0;
  private terminatedCount = 0;
  private recognitions = 0;

  constructor(opts: OcrPoolOptions = {}) {
    this.size = Math.max(1, opts.size ?? availableParallelism());
    this.createTimeoutMs = opts.createTimeoutMs ?? 30_000;
    this.jobTimeoutMs = opts.jobTimeoutMs ?? 60_000;
    this.factory = opts.factory ?? tesseractFactory(this.createTimeoutMs);
  }

  get stats(): OcrPoolStats {
    return {
      size: this.size,
      live: this.slots.length,
      starting: this.starting,
      busy: this.slots.filter((s) => s.busy).length,
      queued: this.queue.length,
      created: this.created,
      terminated: this.terminatedCount,
      recognitions: this.recognitions,
    };
  }

  /** Recognises one image (PNG, PGM, BMP… as bytes) and returns its words with boxes in image pixels. */
  recognize(image: Buffer, params: OcrParams = {}): Promise<OcrWord[]> {
    if (this.closed) return Promise.reject(new DeidError('DEID_ERR_OCR_UNAVAILABLE', 'the OCR pool is shut down'));
    return new Promise<OcrWord[]>((resolve, reject) => {
      this.queue.push({ image, params, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue.length > 0 && !this.closed) {
      const idle = this.slots.find((s) => !s.busy);
      if (idle) {
        this.run(idle, this.queue.shift()!);
        continue;
      }
      if (this.slots.length + this.starting < this.size) {
        this.start();
        continue;
      }
      return;
    }
  }

  private start(): void {
    this.starting++;
    const creation = this.factory();
    withTimeout(creation, this.createTimeoutMs, () => new DeidError('DEID_ERR_OCR_UNAVAILABLE', `an OCR worker did not start within ${this.createTimeoutMs} ms`))
      .then((worker) => {
        this.starting--;
        this.created++;
        if (this.closed) {
          void this.kill(worker);
          return;
        }
        this.slots.push({ worker, busy: false });
        this.pump();
      })
      .catch((e) => {
        this.starting--;
        // A start that finishes after we gave up must not leave a thread behind.
        creation.then((w) => {
          this.created++;
          void this.kill(w);
        }, () => {});
        // Nothing can serve the queue if no worker is alive: fail the waiting jobs rather than hang.
        if (this.slots.length === 0 && this.starting === 0) {
          for (const job of this.queue.splice(0)) job.reject(e instanceof DeidError ? e : new DeidError('DEID_ERR_OCR_UNAVAILABLE', 'an OCR worker failed to start'));
        } else this.pump();
      });
  }

  private async kill(w: EngineWorker): Promise<void> {
    this.terminatedCount++;
    try {
      await w.terminate();
    } catch {
      /* already gone */
    }
  }

  private run(slot: Slot, job: Job): void {
    slot.busy = true;
    const psm = job.params.psm ?? 11;
    const work = (async () => {
      if (slot.psm !== psm) {
        // DPI: medical images carry none; 70 is what tesseract assumes anyway, said explicitly to silence its warning.
        // Crops arrive as dark text on light (detect.ts reads each polarity explicitly): tesseract's own
        // retry of doubtful lines in inverted polarity would only cost time.
        await slot.worker.setParameters({ tessedit_pageseg_mode: String(psm), user_defined_dpi: '72', tessedit_do_invert: '0' });
        slot.psm = psm;
      }
      const r = await slot.worker.recognize(job.image, {}, { blocks: true, text: false, hocr: false, tsv: false });
      return wordsOf(r.data.blocks);
    })();
    withTimeout(work, this.jobTimeoutMs, () => new DeidError('DEID_ERR_OCR_UNAVAILABLE', `OCR did not answer within ${this.jobTimeoutMs} ms`))
      .then((words) => {
        this.recognitions++;
        slot.busy = false;
        job.resolve(words);
      })
      .catch((e) => {
        // A worker that failed or overran is not trusted again.
        this.slots.splice(this.slots.indexOf(slot), 1);
        void this.kill(slot.worker);
        job.reject(e instanceof DeidError ? e : new DeidError('DEID_ERR_OCR_UNAVAILABLE', 'OCR failed on an image'));
      })
      .finally(() => this.pump());
  }

  /** Ends every worker and rejects queued jobs. Safe to call more than once. */
  async terminate(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new DeidError('DEID_ERR_OCR_UNAVAILABLE', 'the OCR pool is shut down'));
    const all = this.slots.splice(0);
    await Promise.all(all.map((s) => this.kill(s.worker)));
    // Starts in flight are killed as they complete (see start()); wait for them so that nothing outlives us.
    while (this.starting > 0) await new Promise((r) => setTimeout(r, 10));
  }
}

let shared: OcrPool | undefined;

/** The process-wide pool (created on first use, sized to the cores). */
export function sharedOcrPool(): OcrPool {
  shared ??= new OcrPool();
  return shared;
}

export async function shutdownSharedOcrPool(): Promise<void> {
  const p = shared;
  shared = undefined;
  if (p) await p.terminate();
}
