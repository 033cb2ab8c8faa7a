import { EmbeddedStatus } from './embedded.js';
import { RedisStatus } from './redis.js';
import type { StatusOptions, StatusPort, WorkerIdentity } from './types.js';

export type * from './types.js';
export { workerIdentity } from './ledger.js';
export { EmbeddedStatus } from './embedded.js';
export { RedisStatus } from './redis.js';

export interface CreateStatusOptions extends StatusOptions {
  /** A Redis URL selects the Redis engine (as for the queue); without one the counts live in this process. */
  readonly redisUrl?: string;
  /** The embedded engine's namespace (the data directory); the Redis key prefix (default `deid:status`). */
  readonly namespace: string;
  readonly worker: WorkerIdentity;
  readonly onError?: (e: Error) => void;
}

/** Chooses the status engine the way createQueue chooses the queue's: Redis when a URL is given. */
export function createStatus(o: CreateStatusOptions): StatusPort {
  return o.redisUrl ? new RedisStatus(o.redisUrl, o.namespace, o.worker, o) : new EmbeddedStatus(o.namespace, o.worker, o);
}
