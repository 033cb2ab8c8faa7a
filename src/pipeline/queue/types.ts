/**
 * The queue port. Two engines implement it: the embedded durable queue (no external service, the
 * default) and BullMQ on Redis (many worker processes on many machines). Objects never travel in
 * jobs: a job carries keys into the ObjectStore and small metadata only.
 */
export type StageName = string;

export interface JobData {
  /** Deterministic id: the input hash plus the configuration hash, so a replay is a no-op. */
  readonly id: string;
  readonly [key: string]: unknown;
}

export interface JobInfo {
  readonly id: string;
  /** 1 on the first delivery. */
  readonly attempt: number;
}

export type JobHandler = (job: JobData, info: JobInfo) => Promise<void>;

export interface StageCounts {
  queued: number;
  active: number;
  done: number;
  failed: number;
}

export interface AddOptions {
  /** Deliver no earlier than this many milliseconds from now (retry backoff). */
  readonly delayMs?: number;
  /** The attempt number the job will carry when delivered (retries re-add with attempt + 1). */
  readonly attempt?: number;
  /**
   * false: the job may be lost in a crash (no fsync; the embedded engine keeps it in memory when this
   * process runs the stage). Only for jobs the caller can recreate: the pipeline uses it between
   * stages and for the first job, since the original is durable in the spool and reconcile() puts any
   * spooled object without a job back at the start. Graceful shutdown still keeps such jobs.
   */
  readonly durable?: boolean;
}

export interface JobQueue {
  /**
   * Adds a job durably (it survives a crash once the promise resolves). Adding a job whose id is
   * already queued or active in that stage with the same attempt is a no-op; a retry re-added from
   * inside its handler (attempt + 1) is therefore queued. A finished job can be added again. One
   * exception: a non-durable job added while the same job is active is delivered once more, after it
   * (or, in another process, at worst beside it), since the pipeline adds such jobs for an object
   * received again while its first copy is still on its way, whose delivery may already have moved or
   * deleted the copy the new one spooled again.
   */
  add(stage: StageName, job: JobData, opts?: AddOptions): Promise<void>;
  /**
   * Starts delivering the stage's jobs to the handler, at most `concurrency` at a time. A handler that
   * resolves completes the job (counted as done); one that throws fails it (counted as failed). Retries
   * are the caller's policy: it re-adds with a delay. Jobs active when a process dies are delivered again,
   * with attempt + 1.
   */
  process(stage: StageName, concurrency: number, handler: JobHandler): void;
  /** queued (delayed included) and active cover every process; done and failed are this instance's. */
  counts(stage: StageName): Promise<StageCounts>;
  /** The jobs of a stage that are queued (delayed included) or active, in no particular order. */
  pending(stage: StageName): Promise<JobData[]>;
  /** Stops taking new jobs, waits for active handlers to finish, then releases resources. */
  close(): Promise<void>;
}
