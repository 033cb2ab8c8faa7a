import { createHash } from 'node:crypto';
import type { Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { bullmq, ioredis } from '../redis-libs.js';
import { AGAIN, addParams, checkConcurrency, checkJob, checkStage, queueClosed } from './common.js';
import type { AddOptions, JobData, JobHandler, JobQueue, StageCounts, StageName } from './types.js';

export interface BullMqQueueOptions {
  /** How long a worker's claim lasts without renewal; a dead worker's jobs return after about this long. */
  readonly lockDurationMs?: number;
  /** How often workers look for stalled jobs. */
  readonly stalledIntervalMs?: number;
  /** Recoveries after which BullMQ fails a job that keeps killing its worker. */
  readonly maxStalledCount?: number;
  /** Connection and internal errors (handler errors are not reported here). */
  readonly onError?: (err: Error) => void;
}

interface Payload {
  readonly job: JobData;
  readonly attempt: number;
}

const PLAIN_ID = /^[A-Za-z0-9._-]{1,100}$/;

export function bullJobId(id: string, attempt: number): string {
  const base = PLAIN_ID.test(id) ? id : `#${createHash('sha256').update(id).digest('hex')}`;
  return `${base}@${attempt}`;
}

interface StageWorker {
  readonly worker: Worker<Payload>;
  readonly connection: Redis;
  done: number;
  failed: number;
}

/**
 * The queue port on BullMQ (Redis): one BullMQ queue and, when processed, one worker per stage, so
 * many worker processes on many machines share each stage.
 *
 * - Job ids: BullMQ rejects ':' and integer-looking custom ids, so the BullMQ id is
 *   `<id>@<attempt>` when the id is plain (`[A-Za-z0-9._-]`, up to 100 characters) and
 *   `#<sha256(id)>@<attempt>` otherwise; '#' and '@' never occur in a plain id, so the mapping is
 *   injective. BullMQ ignores an add whose id exists, which gives the port's no-op per (id, attempt).
 *   A non-durable add of an active job goes in under the id with AGAIN appended (one LPOS on the
 *   stage's active list first: a single command, where getJobState runs a script over every state).
 * - Finished jobs are removed at once (removeOnComplete/removeOnFail): a retained record would make
 *   a later add of the same (id, attempt), such as a quarantine requeue, a silent no-op here while
 *   the embedded engine would deliver it.
 * - attempts: 1, since retries are the caller's policy. A job whose worker dies is found by BullMQ's
 *   stalled-job check once its lock (`lockDurationMs`) expires, and delivered again with attempt + 1
 *   (from BullMQ's attemptsStarted), like the embedded engine. Beyond `maxStalledCount` such
 *   recoveries BullMQ fails the job without calling the handler (counted as failed).
 * - counts(): queued (waiting + delayed + prioritized) and active are global, read from Redis; done
 *   and failed count what this instance's workers finished since it was created, as in the
 *   embedded engine.
 * - Objects never travel in Redis: a job is its JobData (keys and small metadata) and the attempt.
 *   Durability is Redis's: run it with AOF (appendfsync everysec or always) in production.
 */
export class BullMqQueue implements JobQueue {
  readonly prefix: string;
  private readonly url: string;
  private readonly opts: Required<Omit<BullMqQueueOptions, 'onError'>> & Pick<BullMqQueueOptions, 'onError'>;
  private readonly connection: Redis;
  private readonly queues = new Map<StageName, Queue<Payload>>();
  private readonly workers = new Map<StageName, StageWorker>();
  private closed = false;

  constructor(redisUrl: string, prefix = 'deid', opts: BullMqQueueOptions = {}) {
    if (prefix.includes(':')) throw new TypeError('the BullMQ prefix must not contain ":"');
    this.url = redisUrl;
    this.prefix = prefix;
    const lockDurationMs = opts.lockDurationMs ?? 30_000;
    this.opts = {
      lockDurationMs,
      stalledIntervalMs: opts.stalledIntervalMs ?? Math.max(500, Math.floor(lockDurationMs / 2)),
      maxStalledCount: opts.maxStalledCount ?? 10,
      onError: opts.onError,
    };
    // Producers keep a bounded retry count so that add() fails (and the sender is told) when Redis
    // is unreachable, instead of hanging; workers need maxRetriesPerRequest: null (BullMQ's rule).
    this.connection = this.connect({ maxRetriesPerRequest: 3 });
  }

  async add(stage: StageName, job: JobData, opts?: AddOptions): Promise<void> {
    if (this.closed) throw queueClosed();
    checkStage(stage);
    checkJob(job);
    const { attempt, delayMs } = addParams(opts);
    const queue = this.queue(stage);
    let jobId = bullJobId(job.id, attempt);
    // A non-durable job that is active now is queued once more (JobQueue.add): BullMQ would ignore the add.
    // Waiting or delayed, it starts after this add, and the add is the no-op.
    if (opts?.durable === false && (await this.connection.lpos(queue.toKey('active'), jobId)) !== null) jobId = bullJobId(`${job.id}${AGAIN}`, attempt);
    await queue.add(
      stage,
      { job, attempt },
      {
        jobId,
        ...(delayMs > 0 ? { delay: delayMs } : {}),
        attempts: 1,
        removeOnComplete: true,
        removeOnFail: true,
      },
    );
  }

  process(stage: StageName, concurrency: number, handler: JobHandler): void {
    if (this.closed) throw queueClosed();
    checkStage(stage);
    checkConcurrency(concurrency);
    if (this.workers.has(stage)) throw new Error(`stage ${stage} is already being processed`);
    const connection = this.connect({ maxRetriesPerRequest: null });
    const worker = new (bullmq().Worker)<Payload>(
      stage,
      async (job: Job<Payload>) => {
        const { job: data, attempt } = job.data;
        // attemptsStarted > 1 means an earlier delivery died with its worker (a stalled job).
        await handler(data, { id: data.id, attempt: attempt + Math.max(0, (job.attemptsStarted ?? 1) - 1) });
      },
      {
        connection,
        prefix: this.prefix,
        concurrency,
        lockDuration: this.opts.lockDurationMs,
        stalledInterval: this.opts.stalledIntervalMs,
        maxStalledCount: this.opts.maxStalledCount,
      },
    );
    const entry: StageWorker = { worker, connection, done: 0, failed: 0 };
    // Counted on BullMQ's events, i.e. once the job has left the active list.
    worker.on('completed', () => void entry.done++);
    worker.on('failed', () => void entry.failed++);
    worker.on('error', (e) => this.report(e));
    this.workers.set(stage, entry);
  }

  async counts(stage: StageName): Promise<StageCounts> {
    checkStage(stage);
    const c = await this.queue(stage).getJobCounts('waiting', 'delayed', 'prioritized', 'active');
    const w = this.workers.get(stage);
    return {
      queued: (c.waiting ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0),
      active: c.active ?? 0,
      done: w?.done ?? 0,
      failed: w?.failed ?? 0,
    };
  }

  async pending(stage: StageName): Promise<JobData[]> {
    checkStage(stage);
    const jobs = await this.queue(stage).getJobs(['waiting', 'delayed', 'prioritized', 'active']);
    return jobs.filter(Boolean).map((j) => j.data.job);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Workers first: close() stops fetching and waits for the handlers in flight.
    await Promise.all([...this.workers.values()].map((w) => w.worker.close()));
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    const connections = [this.connection, ...[...this.workers.values()].map((w) => w.connection)];
    await Promise.all(connections.map((c) => c.quit().catch(() => c.disconnect())));
  }

  private queue(stage: StageName): Queue<Payload> {
    let q = this.queues.get(stage);
    if (!q) {
      q = new (bullmq().Queue)<Payload>(stage, { connection: this.connection, prefix: this.prefix });
      q.on('error', (e) => this.report(e));
      this.queues.set(stage, q);
    }
    return q;
  }

  private connect(extra: { maxRetriesPerRequest: number | null }): Redis {
    // BullMQ's ESM build cannot load ioredis by itself, so it gets ready-made clients.
    const c = new (ioredis().Redis)(this.url, { ...extra, lazyConnect: false });
    c.on('error', (e) => this.report(e));
    return c;
  }

  private report(e: unknown): void {
    this.opts.onError?.(e instanceof Error ? e : new Error(String(e)));
  }
}
