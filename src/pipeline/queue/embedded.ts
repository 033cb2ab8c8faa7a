import { randomBytes } from 'node:crypto';
import { writeFile as writeFileCb } from 'node:fs';
import { promisify } from 'node:util';
import { link, mkdir, readFile, readdir, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DirSyncer, fsyncDir, writeFileSynced } from '../durable-fs.js';
import { AGAIN, addParams, checkConcurrency, checkJob, checkStage, errorCode, queueClosed } from './common.js';
import { BUS, countJson, jobKey, type JobRecord, type StageDirs } from './embedded-files.js';
import { StageRunner, type RunnerHost } from './embedded-runner.js';
import { Liveness } from './liveness.js';
import type { AddOptions, JobData, JobHandler, JobQueue, StageCounts, StageName } from './types.js';

export interface EmbeddedQueueOptions {
  /** How often an idle stage looks for jobs added by other processes. */
  readonly pollMs?: number;
  /** How often active/ is checked for jobs of dead owners. */
  readonly recoverMs?: number;
  /** Heartbeat period of this instance while it processes. */
  readonly heartbeatMs?: number;
  /** A heartbeat older than this marks an owner on another host as dead. */
  readonly staleOwnerMs?: number;
  /** Internal errors (a failed scan, an unreadable job file). Handler errors are not reported here. */
  readonly onError?: (err: Error) => void;
}

// One native request for a small file, instead of the open/write/close round trips of fs/promises.
const writeWhole = promisify(writeFileCb);

/**
 * The embedded durable queue: a folder per stage, a small JSON file per job, no external service.
 *
 * Layout: `<dir>/<stage>/ready/<idHash>.<attempt>.json` (queued, delayed included),
 * `<dir>/<stage>/active/<idHash>.<attempt>~<owner>~<seq>.json` (claimed), `<dir>/<stage>/tmp/` (writes
 * in progress) and `<dir>/owners/<owner>` (heartbeats). Job ids never appear in file names, only
 * their SHA-256, so any id is safe and no identifier leaks into a directory listing.
 *
 * - add() writes a temp file, fsyncs it, hard-links it into ready/ (which fails if that name exists:
 *   the no-op for a duplicate) and fsyncs ready/ before resolving. Directory fsyncs of concurrent
 *   adds are coalesced. (A duplicate racing a claim of the same job can slip through: at worst one
 *   extra delivery, which idempotent stages absorb.)
 * - A job is claimed by renaming it from ready/ into active/: rename is atomic, so of several
 *   processes sharing the folder exactly one wins. On completion or failure the file is deleted.
 * - Order: by the time a job became deliverable, max(enqueued, notBefore), so FIFO unless delayed.
 *
 * Crash recovery: an active file names its owner, and liveness.ts decides whether that owner died.
 * Orphans are checked when a stage starts processing and every `recoverMs` after, re-queued with
 * attempt + 1 (so a job that keeps killing its worker reaches the caller's attempt limit) and
 * delivered again ahead of newer jobs.
 *
 * counts(): queued and active are global (read from the folder, all processes); done and failed
 * count what this queue instance's handlers finished since it was created.
 */
export class EmbeddedQueue implements JobQueue, RunnerHost {
  readonly dir: string;
  private readonly opts: Required<Omit<EmbeddedQueueOptions, 'onError'>> & Pick<EmbeddedQueueOptions, 'onError'>;
  private readonly liveness: Liveness;
  private readonly dirs = new Map<StageName, Promise<StageDirs>>();
  private readonly runners = new Map<StageName, StageRunner>();
  private claimSeq = 0;
  private addSeq = 0;
  private closed = false;

  constructor(dir: string, opts: EmbeddedQueueOptions = {}) {
    this.dir = resolve(dir);
    this.opts = {
      pollMs: opts.pollMs ?? 100,
      recoverMs: opts.recoverMs ?? 1000,
      heartbeatMs: opts.heartbeatMs ?? 5000,
      staleOwnerMs: opts.staleOwnerMs ?? 60_000,
      onError: opts.onError,
    };
    this.liveness = new Liveness(this.dir, this.opts, (e) => this.report(e));
  }

  async add(stage: StageName, job: JobData, opts?: AddOptions): Promise<void> {
    if (this.closed) throw queueClosed();
    checkStage(stage);
    checkJob(job);
    const { attempt, delayMs } = addParams(opts);
    const now = Date.now();
    // Not durable and for a stage this instance processes: the job stays in memory (no file at all),
    // delayed ones on a timer. A crash loses it by design; the caller recreates such jobs (the
    // pipeline's reconcile does); a graceful stop writes them as files.
    const runner = this.runners.get(stage);
    if (opts?.durable === false && runner?.accepting) {
      runner.addMemory(jobKey(job.id, attempt), { v: 1, job, attempt, enqueuedAt: now, notBefore: now + delayMs, seq: ++this.addSeq });
      return;
    }
    await this.enqueue(stage, job, attempt, now, now + delayMs, opts?.durable ?? true);
  }

  process(stage: StageName, concurrency: number, handler: JobHandler): void {
    if (this.closed) throw queueClosed();
    checkStage(stage);
    checkConcurrency(concurrency);
    if (this.runners.has(stage)) throw new Error(`stage ${stage} is already being processed`);
    const runner = new StageRunner(this, stage, concurrency, handler);
    this.runners.set(stage, runner);
    runner.start();
  }

  async counts(stage: StageName): Promise<StageCounts> {
    checkStage(stage);
    const root = join(this.dir, stage);
    const [queued, active] = await Promise.all([countJson(join(root, 'ready')), countJson(join(root, 'active'))]);
    const runner = this.runners.get(stage);
    return { queued: queued + (runner?.memoryQueued ?? 0), active: active + (runner?.memoryActive ?? 0), done: runner?.done ?? 0, failed: runner?.failed ?? 0 };
  }

  async pending(stage: StageName): Promise<JobData[]> {
    checkStage(stage);
    const root = join(this.dir, stage);
    const out: JobData[] = [];
    for (const sub of ['ready', 'active']) {
      let names: string[] = [];
      try {
        names = (await readdir(join(root, sub))).filter((n) => n.endsWith('.json'));
      } catch (e) {
        if (errorCode(e) !== 'ENOENT') throw e;
      }
      for (const n of names) {
        try {
          out.push((JSON.parse(await readFile(join(root, sub, n), 'utf8')) as JobRecord).job);
        } catch {
          /* claimed or finished meanwhile */
        }
      }
    }
    return [...out, ...(this.runners.get(stage)?.memoryJobs() ?? [])];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.runners.values()].map((r) => r.stop()));
    await this.liveness.stop();
  }

  // ---- internals shared with StageRunner ----

  /** @internal */
  report(e: unknown): void {
    this.opts.onError?.(e instanceof Error ? e : new Error(String(e)));
  }

  /** @internal */
  get options(): EmbeddedQueue['opts'] {
    return this.opts;
  }

  /** @internal */
  stageDirs(stage: StageName): Promise<StageDirs> {
    let dirs = this.dirs.get(stage);
    if (!dirs) {
      dirs = (async () => {
        const root = join(this.dir, stage);
        const d = { root, ready: join(root, 'ready'), active: join(root, 'active'), tmp: join(root, 'tmp') };
        await Promise.all([mkdir(d.ready, { recursive: true }), mkdir(d.active, { recursive: true }), mkdir(d.tmp, { recursive: true })]);
        // New directory entries must survive a crash as well as the files put in them.
        await fsyncDir(root);
        await fsyncDir(this.dir);
        const ready = new DirSyncer(d.ready);
        return { ...d, syncReady: () => ready.sync() };
      })();
      dirs.catch(() => this.dirs.delete(stage));
      this.dirs.set(stage, dirs);
    }
    return dirs;
  }

  /**
   * @internal Writes a ready file durably unless that (id, attempt) is already ready or active. A
   * non-durable job that is active is queued once more under a name of its own (`again`), as the memory
   * lane does (embedded-runner.ts): it may be the same object received again, after the active delivery
   * moved or deleted its copy.
   */
  async enqueue(stage: StageName, job: JobData, attempt: number, enqueuedAt: number, notBefore: number, durable = true, again = false): Promise<void> {
    const d = await this.stageDirs(stage);
    const key = jobKey(again ? `${job.id}${AGAIN}` : job.id, attempt);
    const name = `${key}.json`;
    // A claim renames the file out of ready/, so a duplicate may be sitting in active/ instead.
    if ((await readdir(d.active)).some((n) => n.startsWith(`${key}~`))) {
      if (!durable && !again) await this.enqueue(stage, job, attempt, enqueuedAt, notBefore, durable, true);
      return;
    }
    const record: JobRecord = { v: 1, job, attempt, enqueuedAt, notBefore, seq: ++this.addSeq };
    const tmp = join(d.tmp, `${key}~${process.pid}~${randomBytes(4).toString('hex')}.tmp`);
    const bytes = Buffer.from(JSON.stringify(record));
    if (durable) await writeFileSynced(tmp, bytes);
    else await writeWhole(tmp, bytes);
    try {
      await link(tmp, join(d.ready, name));
    } catch (e) {
      if (errorCode(e) === 'EEXIST') return; // already queued: the no-op
      throw e;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    if (durable) await d.syncReady();
    BUS.emit(d.ready, { name, key, at: Math.max(enqueuedAt, notBefore), enqueuedAt, seq: record.seq, record });
  }

  /** @internal A fresh active/ name owned by this instance. */
  claimName(key: string): string {
    return `${key}~${this.liveness.owner}~${++this.claimSeq}.json`;
  }

  /** @internal Whether the owner of an active/ file is gone (liveness.ts). */
  ownerIsDead(activeName: string): Promise<boolean> {
    return this.liveness.ownerIsDead(activeName);
  }

  /** @internal Starts this instance's heartbeat (once) and resolves when its file exists. */
  heartbeatStarted(): Promise<void> {
    return this.liveness.started();
  }
}
