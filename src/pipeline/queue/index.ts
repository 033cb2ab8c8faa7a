import { BullMqQueue, type BullMqQueueOptions } from './bullmq.js';
import { EmbeddedQueue, type EmbeddedQueueOptions } from './embedded.js';
import type { JobQueue } from './types.js';

export type * from './types.js';
export { BullMqQueue, bullJobId, type BullMqQueueOptions } from './bullmq.js';
export { EmbeddedQueue, type EmbeddedQueueOptions } from './embedded.js';

export interface CreateQueueOptions {
  /** A Redis URL selects BullMQ (`--redis` / REDIS_URL); without one the embedded queue is used. */
  readonly redisUrl?: string;
  /** The embedded queue's folder, e.g. `<dataDir>/queue`. */
  readonly dir: string;
  /** Redis key prefix for BullMQ (default `deid`). */
  readonly prefix?: string;
  readonly embedded?: EmbeddedQueueOptions;
  readonly bullmq?: BullMqQueueOptions;
}

/** Chooses the queue engine: BullMQ when a Redis URL is given, the embedded durable queue otherwise. */
export function createQueue(opts: CreateQueueOptions): JobQueue {
  return opts.redisUrl
    ? new BullMqQueue(opts.redisUrl, opts.prefix ?? 'deid', opts.bullmq)
    : new EmbeddedQueue(opts.dir, opts.embedded);
}
