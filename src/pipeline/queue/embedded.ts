import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync, writeFile as writeFileCb } from 'node:fs';
import { promisify } from 'node:util';
import { link, mkdir, open, readFile, readdir, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { addParams, checkConcurrency, checkJob, checkStage, errorCode, queueClosed } from './common.js';
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

interface JobRecord {
  readonly v: 1;
  readonly job: JobData;
  readonly attempt: number;
  readonly enqueuedAt: number;
  readonly notBefore: number;
  readonly seq: number;
}

interface Entry {
  readonly name: string;
  readonly key: string;
  readonly at: number;
  readonly enqueuedAt: number;
  readonly seq: number;
  /** Scan epoch when the entry was indexed: a scan only drops entries it could have seen. */
  readonly epoch: number;
  /** The job file's content, when this process wrote or read it already (saves reading it again at claim). */
  readonly record?: JobRecord;
}

// One native request for a small file, instead of the open/write/close round trips of fs/promises.
const writeWhole = promisify(writeFileCb);

/** A job file's key: any id becomes a safe name, and the attempt tells retries apart. */
const jobKey = (id: string, attempt: number) => `${createHash('sha256').update(id).digest('hex')}.${attempt}`;

const HOST_TAG = createHash('sha256').update(hostname()).digest('hex').slice(0, 12);
const PID = process.pid;
const LIVE_INSTANCES = new Set<string>();
/** Same-process wakeups: a job added by any instance reaches this process's runners at once. */
const BUS = new EventEmitter().setMaxListeners(0);

/** Start time of a process in clock ticks since boot ('0' without /proc); `null` if it is gone. */
function procStart(pid: number): string | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (e) {
    if (errorCode(e) === 'ENOENT' || errorCode(e) === 'ESRCH') return existsProc() ? null : killCheck(pid);
    return killCheck(pid);
  }
  // Fields after the parenthesised command name: state is field 3, starttime field 22.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return null;
  return fields[19] ?? '0';
}

let procExists: boolean | undefined;
function existsProc(): boolean {
  if (procExists === undefined) {
    try {
      readFileSync('/proc/self/stat');
      procExists = true;
    } catch {
      procExists = false;
    }
  }
  return procExists;
}

function killCheck(pid: number): string | null {
  try {
    process.kill(pid, 0);
    return '0';
  } catch (e) {
    return errorCode(e) === 'EPERM' ? '0' : null;
  }
}

const PID_START = procStart(PID) ?? '0';

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Coalesces directory fsyncs: every caller gets a sync that started after its call. */
function dirSyncer(dir: string): () => Promise<void> {
  let running: Promise<void> | undefined;
  let next: Promise<void> | undefined;
  const start = (): Promise<void> => {
    running = fsyncDir(dir).finally(() => {
      running = undefined;
    });
    return running;
  };
  return () => {
    if (!running) return start();
    next ??= running
      .catch(() => undefined)
      .then(() => {
        next = undefined;
        return start();
      });
    return next;
  };
}

const byDeliveryOrder = (a: Entry, b: Entry): number =>
  a.at - b.at || a.enqueuedAt - b.enqueuedAt || a.seq - b.seq || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

const ignoreMissing = (e: unknown): void => {
  if (errorCode(e) !== 'ENOENT') throw e;
};

interface StageDirs {
  readonly root: string;
  readonly ready: string;
  readonly active: string;
  readonly tmp: string;
  readonly syncReady: () => Promise<void>;
}

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
 * Crash recovery: an active file names its owner as `<hostTag>~<pid>~<pidStartTime>~<instance>`.
 * A process never touches its own live claims. Otherwise an owner is dead when:
 * - same host, other pid: that pid no longer exists, is a zombie, or has another start time (the pid
 *   was reused). Decided immediately, from /proc (or kill(pid, 0) where there is no /proc);
 * - same pid (this process): the instance that claimed it is closed, or the pid was reused;
 * - another host (a shared filesystem, or a container recreated under a new hostname): pids mean
 *   nothing there, so the owner's heartbeat file must be older than `staleOwnerMs`.
 * Orphans are checked when a stage starts processing and every `recoverMs` after, re-queued with
 * attempt + 1 (so a job that keeps killing its worker reaches the caller's attempt limit) and
 * delivered again ahead of newer jobs. Assumption: processes on one host share a pid namespace
 * (containers sharing the folder need distinct hostnames).
 *
 * counts(): queued and active are global (read from the folder, all processes); done and failed
 * count what this queue instance's handlers finished since it was created.
 */
export class EmbeddedQueue implements JobQueue {
  readonly dir: string;
  private readonly opts: Required<Omit<EmbeddedQueueOptions, 'onError'>> & Pick<EmbeddedQueueOptions, 'onError'>;
  private readonly instance = randomBytes(6).toString('hex');
  /** `<hostTag>~<pid>~<pidStart>~<instance>`: see the class comment. */
  private readonly owner = `${HOST_TAG}~${PID}~${PID_START}~${this.instance}`;
  private readonly dirs = new Map<StageName, Promise<StageDirs>>();
  private readonly runners = new Map<StageName, StageRunner>();
  private heartbeat: NodeJS.Timeout | undefined;
  private firstBeat: Promise<void> | undefined;
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
    LIVE_INSTANCES.add(this.instance);
  }

  async add(stage: StageName, job: JobData, opts?: AddOptions): Promise<void> {
    if (this.closed) throw queueClosed();
    checkStage(stage);
    checkJob(job);
    const { attempt, delayMs } = addParams(opts);
    const now = Date.now();
    // Not durable and for a stage this instance processes: the job stays in memory (no file at all).
    // A crash loses it by design; the caller recreates such jobs (the pipeline's reconcile does).
    const runner = this.runners.get(stage);
    if (opts?.durable === false && delayMs === 0 && runner?.accepting) {
      runner.addMemory(jobKey(job.id, attempt), { v: 1, job, attempt, enqueuedAt: now, notBefore: now, seq: ++this.addSeq });
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
    clearInterval(this.heartbeat);
    await Promise.all([...this.runners.values()].map((r) => r.stop()));
    LIVE_INSTANCES.delete(this.instance);
    if (this.heartbeat) await unlink(join(this.dir, 'owners', this.owner)).catch(() => undefined);
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
        return { ...d, syncReady: dirSyncer(d.ready) };
      })();
      dirs.catch(() => this.dirs.delete(stage));
      this.dirs.set(stage, dirs);
    }
    return dirs;
  }

  /** @internal Writes a ready file durably unless that (id, attempt) is already ready or active. */
  async enqueue(stage: StageName, job: JobData, attempt: number, enqueuedAt: number, notBefore: number, durable = true): Promise<void> {
    const d = await this.stageDirs(stage);
    const key = jobKey(job.id, attempt);
    const name = `${key}.json`;
    // A claim renames the file out of ready/, so a duplicate may be sitting in active/ instead.
    if ((await readdir(d.active)).some((n) => n.startsWith(`${key}~`))) return;
    const record: JobRecord = { v: 1, job, attempt, enqueuedAt, notBefore, seq: ++this.addSeq };
    const tmp = join(d.tmp, `${key}~${PID}~${randomBytes(4).toString('hex')}.tmp`);
    if (durable) {
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(JSON.stringify(record));
        await fh.sync();
      } finally {
        await fh.close();
      }
    } else await writeWhole(tmp, JSON.stringify(record));
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
    return `${key}~${this.owner}~${++this.claimSeq}.json`;
  }

  /** @internal Whether the owner of an active/ file is gone (see the class comment). */
  async ownerIsDead(activeName: string): Promise<boolean> {
    const parts = activeName.slice(0, -'.json'.length).split('~');
    if (parts.length !== 6) return false;
    const [, host, pidText, start, instance] = parts as [string, string, string, string, string];
    const owner = `${host}~${pidText}~${start}~${instance}`;
    if (owner === this.owner) return false;
    const pid = Number(pidText);
    if (host !== HOST_TAG) {
      try {
        const s = await stat(join(this.dir, 'owners', owner));
        return Date.now() - s.mtimeMs > this.opts.staleOwnerMs;
      } catch (e) {
        ignoreMissing(e);
        return true;
      }
    }
    if (pid === PID) return start !== PID_START || !LIVE_INSTANCES.has(instance);
    const current = procStart(pid);
    return current === null || (start !== '0' && current !== '0' && current !== start);
  }

  /** @internal Starts this instance's heartbeat (once) and resolves when the file exists. */
  heartbeatStarted(): Promise<void> {
    if (!this.firstBeat) {
      const file = join(this.dir, 'owners', this.owner);
      const beat = async (): Promise<void> => {
        const now = new Date();
        try {
          await utimes(file, now, now);
        } catch (e) {
          ignoreMissing(e);
          await mkdir(join(this.dir, 'owners'), { recursive: true });
          await writeFile(file, '');
        }
      };
      this.firstBeat = beat();
      this.firstBeat.catch(() => {
        this.firstBeat = undefined; // the next runner start-up retries
      });
      this.heartbeat ??= setInterval(() => void beat().catch((e) => this.report(e)), this.opts.heartbeatMs);
    }
    return this.firstBeat;
  }
}

async function countJson(dir: string): Promise<number> {
  try {
    return (await readdir(dir)).filter((n) => n.endsWith('.json')).length;
  } catch (e) {
    ignoreMissing(e);
    return 0;
  }
}

/** Delivery for one stage in one queue instance. */
class StageRunner {
  done = 0;
  failed = 0;
  private dirs!: StageDirs;
  private readonly index = new Map<string, Entry>();
  /** Index entries in delivery order. */
  private order: Entry[] = [];
  private epoch = 0;
  private running = 0;
  private readonly inflight = new Set<Promise<void>>();
  private pumping: Promise<void> | undefined;
  private repump = false;
  private scanning: Promise<void> | undefined;
  private lastReadyMtime = -1;
  private wakeTimer: NodeJS.Timeout | undefined;
  private wakeAt = Infinity;
  private pollTimer: NodeJS.Timeout | undefined;
  private recoverTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private recovering: Promise<void> | undefined;
  private starting: Promise<void> | undefined;
  private stopping = false;
  /** Non-durable jobs added by this instance for this stage: no file, delivered first. */
  private readonly memory: Array<{ key: string; rec: JobRecord }> = [];
  private readonly memoryKeys = new Set<string>();
  private readonly memoryRunning = new Map<string, JobRecord>();
  private readonly onBus = (e: Omit<Entry, 'epoch'>): void => {
    this.insert({ ...e, epoch: this.epoch });
    this.pump();
  };

  constructor(
    private readonly q: EmbeddedQueue,
    private readonly stage: StageName,
    private readonly concurrency: number,
    private readonly handler: JobHandler,
  ) {}

  get accepting(): boolean {
    return !this.stopping;
  }
  get memoryQueued(): number {
    return this.memory.length;
  }
  get memoryActive(): number {
    return this.memoryRunning.size;
  }
  memoryJobs(): JobData[] {
    return [...this.memory.map((m) => m.rec.job), ...[...this.memoryRunning.values()].map((r) => r.job)];
  }

  addMemory(key: string, rec: JobRecord): void {
    // The same (id, attempt) already waiting, running, or queued as a file is a no-op.
    if (this.memoryKeys.has(key) || this.index.has(`${key}.json`)) return;
    this.memoryKeys.add(key);
    this.memory.push({ key, rec });
    this.pump();
  }

  private startMemory(m: { key: string; rec: JobRecord }): void {
    this.memoryRunning.set(m.key, m.rec);
    const run = (async () => {
      let ok = true;
      try {
        await this.handler(m.rec.job, { id: m.rec.job.id, attempt: m.rec.attempt });
      } catch {
        ok = false; // the caller's handler owns error reporting and retries
      }
      this.memoryRunning.delete(m.key);
      this.memoryKeys.delete(m.key);
      if (ok) this.done++;
      else this.failed++;
    })();
    this.inflight.add(run);
    void run.finally(() => {
      this.inflight.delete(run);
      this.running--;
      if (!this.stopping) this.pump();
    });
  }

  start(): void {
    this.starting = this.init().catch((e) => {
      this.q.report(e);
      if (!this.stopping) this.retryTimer = setTimeout(() => this.start(), this.q.options.recoverMs);
    });
  }

  private async init(): Promise<void> {
    this.dirs = await this.q.stageDirs(this.stage);
    // Other hosts judge our claims by the heartbeat, so it must exist before the first claim.
    await this.q.heartbeatStarted();
    if (this.stopping) return;
    BUS.off(this.dirs.ready, this.onBus);
    BUS.on(this.dirs.ready, this.onBus);
    await this.sweepTmp();
    await this.recover();
    await this.scan();
    this.pump();
    this.pollTimer = setInterval(() => this.poll(), this.q.options.pollMs);
    this.recoverTimer = setInterval(() => {
      if (this.recovering) return;
      this.recovering = this.recover()
        .catch((e) => this.q.report(e))
        .finally(() => {
          this.recovering = undefined;
        });
    }, this.q.options.recoverMs);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pollTimer);
    clearInterval(this.recoverTimer);
    clearTimeout(this.wakeTimer);
    await this.starting;
    if (this.dirs) BUS.off(this.dirs.ready, this.onBus);
    await this.recovering;
    await this.scanning;
    while (this.pumping) await this.pumping;
    while (this.inflight.size > 0) await Promise.all(this.inflight);
    // Graceful: in-memory jobs not started yet become files, so the next start delivers them.
    for (const m of this.memory.splice(0)) {
      await this.q.enqueue(this.stage, m.rec.job, m.rec.attempt, m.rec.enqueuedAt, m.rec.notBefore, true).catch((e) => this.q.report(e));
    }
    this.memoryKeys.clear();
  }

  private poll(): void {
    if (this.stopping || !this.dirs || this.scanning || this.running >= this.concurrency) return;
    const head = this.order[0];
    if (head && head.at <= Date.now()) return this.pump();
    this.scanning = this.scan(true)
      .then(() => this.pump())
      .catch((e) => this.q.report(e))
      .finally(() => {
        this.scanning = undefined;
      });
  }

  /** Syncs the index with ready/ (reading only files it has not seen). */
  private async scan(cheap = false): Promise<void> {
    if (cheap) {
      // Skip the listing when ready/ is unchanged; mtimes can be coarse, so only trust old ones.
      const s = await stat(this.dirs.ready);
      if (s.mtimeMs === this.lastReadyMtime && Date.now() - s.mtimeMs > 2000) return;
      this.lastReadyMtime = s.mtimeMs;
    }
    const epoch = ++this.epoch;
    const names = (await readdir(this.dirs.ready)).filter((n) => n.endsWith('.json'));
    const present = new Set(names);
    let dropped = false;
    for (const [name, e] of this.index) {
      if (e.epoch < epoch && !present.has(name)) {
        this.index.delete(name);
        dropped = true;
      }
    }
    if (dropped) this.order = this.order.filter((e) => this.index.get(e.name) === e);
    const fresh = names.filter((n) => !this.index.has(n));
    for (let i = 0; i < fresh.length; i += 64) {
      await Promise.all(fresh.slice(i, i + 64).map((n) => this.indexFile(n, epoch)));
    }
  }

  private async indexFile(name: string, epoch: number): Promise<void> {
    let rec: JobRecord;
    try {
      rec = JSON.parse(await readFile(join(this.dirs.ready, name), 'utf8')) as JobRecord;
    } catch (e) {
      if (errorCode(e) === 'ENOENT') return; // claimed meanwhile
      return this.quarantineFile(join(this.dirs.ready, name), e);
    }
    const key = name.slice(0, -'.json'.length);
    this.insert({ name, key, at: Math.max(rec.enqueuedAt, rec.notBefore), enqueuedAt: rec.enqueuedAt, seq: rec.seq, epoch, record: rec });
  }

  private insert(e: Entry): void {
    const old = this.index.get(e.name);
    if (old) this.order.splice(this.order.indexOf(old), 1);
    this.index.set(e.name, e);
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (byDeliveryOrder(this.order[mid]!, e) <= 0) lo = mid + 1;
      else hi = mid;
    }
    this.order.splice(lo, 0, e);
  }

  private pump(): void {
    if (this.pumping) {
      this.repump = true;
      return;
    }
    this.pumping = this.fill()
      .catch((e) => this.q.report(e))
      .finally(() => {
        this.pumping = undefined;
        if (this.repump && !this.stopping) {
          this.repump = false;
          this.pump();
        }
      });
  }

  /** Claims and starts jobs in delivery order until the concurrency is used or nothing is due. */
  private async fill(): Promise<void> {
    while (!this.stopping && this.running < this.concurrency) {
      const m = this.memory.shift();
      if (m) {
        this.running++;
        this.startMemory(m);
        continue;
      }
      const head = this.order[0];
      if (!head) return;
      const now = Date.now();
      if (head.at > now) return this.wakeUpAt(head.at);
      this.order.shift();
      this.index.delete(head.name);
      this.running++;
      const started = await this.claim(head).catch((e) => {
        this.q.report(e);
        return false;
      });
      if (!started) this.running--;
    }
  }

  private wakeUpAt(at: number): void {
    if (this.wakeTimer && this.wakeAt <= at) return;
    clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined;
      this.wakeAt = Infinity;
      this.pump();
    }, Math.max(0, at - Date.now()) + 1);
  }

  private async claim(e: Entry): Promise<boolean> {
    const activePath = join(this.dirs.active, this.q.claimName(e.key));
    try {
      await rename(join(this.dirs.ready, e.name), activePath);
    } catch (err) {
      ignoreMissing(err); // another process took it
      return false;
    }
    let rec: JobRecord;
    try {
      // A file name is (id, attempt): the content indexed earlier is the content claimed now.
      rec = e.record ?? (JSON.parse(await readFile(activePath, 'utf8')) as JobRecord);
    } catch (err) {
      await this.quarantineFile(activePath, err);
      return false;
    }
    const at = Math.max(rec.enqueuedAt, rec.notBefore);
    if (at > Date.now()) {
      // The index was stale (the file was replaced by another process): not due yet, put it back.
      await rename(activePath, join(this.dirs.ready, e.name));
      this.insert({ ...e, at, enqueuedAt: rec.enqueuedAt, seq: rec.seq, epoch: this.epoch });
      return false;
    }
    const run = this.deliver(rec, activePath);
    this.inflight.add(run);
    void run.finally(() => {
      this.inflight.delete(run);
      this.running--;
      if (!this.stopping) this.pump();
    });
    return true;
  }

  private async deliver(rec: JobRecord, activePath: string): Promise<void> {
    let ok = true;
    try {
      await this.handler(rec.job, { id: rec.job.id, attempt: rec.attempt });
    } catch {
      ok = false; // the caller's handler owns error reporting and retries
    }
    try {
      await unlink(activePath);
    } catch (e) {
      if (errorCode(e) !== 'ENOENT') this.q.report(e);
    }
    if (ok) this.done++;
    else this.failed++;
  }

  /** Re-queues active jobs whose owner is dead (attempt + 1, ahead of newer jobs). */
  private async recover(): Promise<void> {
    if (this.stopping) return;
    for (const name of await readdir(this.dirs.active)) {
      if (!name.endsWith('.json') || !(await this.q.ownerIsDead(name))) continue;
      const key = name.slice(0, name.indexOf('~'));
      // Take ownership first, so that of several recovering processes only one re-queues it.
      const mine = join(this.dirs.active, this.q.claimName(key));
      try {
        await rename(join(this.dirs.active, name), mine);
      } catch (e) {
        ignoreMissing(e);
        continue;
      }
      let rec: JobRecord;
      try {
        rec = JSON.parse(await readFile(mine, 'utf8')) as JobRecord;
      } catch (e) {
        await this.quarantineFile(mine, e);
        continue;
      }
      await this.q.enqueue(this.stage, rec.job, rec.attempt + 1, rec.enqueuedAt, 0);
      await unlink(mine);
    }
  }

  /** Temp files older than a minute are leftovers of a crashed add(). */
  private async sweepTmp(): Promise<void> {
    const now = Date.now();
    for (const name of await readdir(this.dirs.tmp)) {
      const p = join(this.dirs.tmp, name);
      try {
        if (now - (await stat(p)).mtimeMs > 60_000) await unlink(p);
      } catch (e) {
        ignoreMissing(e);
      }
    }
  }

  /** A job file that cannot be parsed is moved aside (never deleted), out of delivery. */
  private async quarantineFile(path: string, err: unknown): Promise<void> {
    const dir = join(this.dirs.root, 'corrupt');
    await mkdir(dir, { recursive: true });
    await rename(path, join(dir, `${Date.now()}-${randomBytes(4).toString('hex')}.json`)).catch(() => undefined);
    this.q.report(new Error(`unreadable job file moved to ${dir}: ${(err as Error)?.message ?? err}`));
  }
}
