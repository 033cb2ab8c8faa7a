import type { AddOptions, JobData, StageName } from './types.js';

/** Stage names become folder names and Redis key parts, so they stay short and plain. */
const STAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function checkStage(stage: StageName): void {
  if (!STAGE_NAME.test(stage)) throw new TypeError(`invalid stage name (allowed: ${STAGE_NAME.source})`);
}

export function checkJob(job: JobData): void {
  if (typeof job?.id !== 'string' || job.id.length === 0) throw new TypeError('a job needs a non-empty string id');
}

/** The attempt a job will carry, and its delay, from AddOptions (validated). */
export function addParams(opts: AddOptions = {}): { attempt: number; delayMs: number } {
  const attempt = opts.attempt ?? 1;
  if (!Number.isSafeInteger(attempt) || attempt < 1) throw new TypeError('attempt must be an integer >= 1');
  const delayMs = Math.max(0, Math.ceil(opts.delayMs ?? 0));
  if (!Number.isFinite(delayMs)) throw new TypeError('delayMs must be finite');
  return { attempt, delayMs };
}

export function checkConcurrency(concurrency: number): void {
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new TypeError('concurrency must be an integer >= 1');
}

/**
 * The id suffix under which a non-durable job added while the same job is active is queued once more
 * (the embedded file lane and BullMQ; the memory lane keeps it aside instead). See JobQueue.add.
 */
export const AGAIN = '.again';

export const queueClosed = (): Error => new Error('the job queue is closed');

export const errorCode = (e: unknown): string | undefined => (e as NodeJS.ErrnoException)?.code;
