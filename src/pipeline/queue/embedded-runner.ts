/**
 * Delivery of one stage's jobs in one embedded queue instance: an index of ready/ in delivery order,
 * claims by rename into active/, the in-memory lane for jobs that need no file, and the recovery of
 * jobs whose owner died.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errorCode } from './common.js';
import { BUS, byDeliveryOrder, ignoreMissing, type Entry, type JobRecord, type StageDirs } from './embedded-files.js';
import type { JobData, JobHandler, StageName } from './types.js';

/** What a runner needs from its queue instance. */
export interface RunnerHost {
  readonly options: { readonly pollMs: number; readonly recoverMs: number };
  /** Internal errors (a failed scan, an unreadable job file). */
  report(e: unknown): void;
  stageDirs(stage: StageName): Promise<StageDirs>;
  /** Writes a ready file (durably unless told otherwise) unless that (id, attempt) is already ready or active. */
  enqueue(stage: StageName, job: JobData, attempt: number, enqueuedAt: number, notBefore: number, durable?: boolean): Promise<void>;
  /** A fresh active/ name owned by this instance. */
  claimName(key: string): string;
  ownerIsDead(activeName: string): Promise<boolean>;
  /** Resolves once this instance's heartbeat file exists. */
  heartbeatStarted(): Promise<void>;
}

/** Delivery for one stage in one queue instance. */
export class StageRunner {
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
  /**
   * The same job added again while it runs here: delivered once more after it. Such an add may follow
   * a change that the running delivery has passed (the same object received again, and spooled again
   * after that delivery moved or deleted its copy), so it cannot be dropped as a duplicate.
   */
  private readonly memoryAgain = new Map<string, JobRecord>();
  /** Non-durable jobs not due yet (a retry's backoff), each on its timer. */
  private readonly memoryDelayed = new Map<string, { rec: JobRecord; timer: NodeJS.Timeout }>();
  private readonly onBus = (e: Omit<Entry, 'epoch'>): void => {
    this.insert({ ...e, epoch: this.epoch });
    this.pump();
  };

  constructor(
    private readonly q: RunnerHost,
    private readonly stage: StageName,
    private readonly concurrency: number,
    private readonly handler: JobHandler,
  ) {}

  get accepting(): boolean {
    return !this.stopping;
  }
  get memoryQueued(): number {
    return this.memory.length + this.memoryDelayed.size;
  }
  get memoryActive(): number {
    return this.memoryRunning.size;
  }
  memoryJobs(): JobData[] {
    return [...this.memory.map((m) => m.rec.job), ...[...this.memoryDelayed.values()].map((d) => d.rec.job), ...[...this.memoryRunning.values()].map((r) => r.job)];
  }

  addMemory(key: string, rec: JobRecord): void {
    // The same (id, attempt) already waiting or queued as a file is a no-op; running, it is kept aside (memoryAgain).
    if (this.memoryRunning.has(key)) {
      this.memoryAgain.set(key, rec);
      return;
    }
    if (this.memoryKeys.has(key) || this.index.has(`${key}.json`)) return;
    this.memoryKeys.add(key);
    const wait = rec.notBefore - Date.now();
    if (wait > 0) {
      const timer = setTimeout(() => {
        this.memoryDelayed.delete(key);
        this.memory.push({ key, rec });
        this.pump();
      }, wait);
      this.memoryDelayed.set(key, { rec, timer });
      return;
    }
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
      const again = this.memoryAgain.get(m.key);
      this.memoryAgain.delete(m.key);
      // Queued like any other (while stopping too: stop() writes what is left in memory as files).
      if (again) this.addMemory(m.key, again);
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
    // Stopped while starting: stop() has cleared the timers already, so none may be set now.
    if (this.stopping) return;
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
    await this.starting;
    // After the start-up: a timer it set would keep the process alive after a graceful stop.
    clearInterval(this.pollTimer);
    clearInterval(this.recoverTimer);
    clearTimeout(this.wakeTimer);
    if (this.dirs) BUS.off(this.dirs.ready, this.onBus);
    await this.recovering;
    await this.scanning;
    while (this.pumping) await this.pumping;
    while (this.inflight.size > 0) await Promise.all(this.inflight);
    // Graceful: in-memory jobs not started yet become files, so the next start delivers them.
    const delayed = [...this.memoryDelayed.values()];
    this.memoryDelayed.clear();
    for (const d of delayed) clearTimeout(d.timer);
    for (const rec of [...this.memory.splice(0).map((m) => m.rec), ...delayed.map((d) => d.rec)]) {
      await this.q.enqueue(this.stage, rec.job, rec.attempt, rec.enqueuedAt, rec.notBefore, true).catch((e) => this.q.report(e));
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
    if (this.stopping || (this.wakeTimer && this.wakeAt <= at)) return;
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
