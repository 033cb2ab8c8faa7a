/**
 * The status engine on Redis: every process adds its counts to shared hashes in one MULTI per report,
 * and publishes its events on one channel, so any process reads the whole cluster and hears every
 * worker. Keys under `<prefix>`: `counts` (hash), `rate:<5-s bucket>` and `min:<minute>` (hashes that
 * expire), `workers` (hash of identities), `seen` (sorted set of last reports), `errors` (list), and
 * the channel `events`.
 */
import type { Redis } from 'ioredis';
import { ioredis } from '../redis-libs.js';
import { FORGET_WORKER_MS, GatheringReporter, HISTORY_MINUTES, MINUTE_MS, RATE_BUCKETS, RATE_BUCKET_MS, RECENT_ERRORS, clusterStatus, minuteOf, rateBucket, type Batch } from './ledger.js';
import type { ClusterStatus, RecentError, StatusEvent, StatusListener, StatusOptions, StatusPort, WorkerIdentity } from './types.js';

/** Reports kept while Redis cannot be reached (about a minute at the default rate); older ones are dropped. */
const MAX_PENDING = 60;

const toFields = (flat: Record<string, string>): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(flat)) out[k] = Number(v);
  return out;
};

export class RedisStatus extends GatheringReporter implements StatusPort {
  private readonly redis: Redis;
  private sub?: Redis;
  private subscribing?: Promise<unknown>;
  private readonly listeners = new Set<StatusListener>();
  private readonly pending: Batch[] = [];
  private readonly timer: NodeJS.Timeout;
  private flushing?: Promise<void>;
  private lastPrune = 0;
  private stopped = false;
  private closed = false;

  constructor(
    url: string,
    private readonly prefix: string,
    worker: WorkerIdentity,
    private readonly opts: StatusOptions & { onError?: (e: Error) => void } = {},
  ) {
    super(worker);
    this.redis = new (ioredis().Redis)(url, { maxRetriesPerRequest: 3, lazyConnect: false });
    this.redis.on('error', (e) => this.opts.onError?.(e));
    this.gathered.event({ type: 'worker', worker, state: 'up' });
    this.timer = setInterval(() => void this.flush().catch((e) => this.opts.onError?.(e as Error)), opts.flushMs ?? 1000);
    this.timer.unref();
  }

  private key(name: string): string {
    return `${this.prefix}:${name}`;
  }

  /** One report at a time: counts gathered during a report go into the next. */
  flush(): Promise<void> {
    const run = (this.flushing ?? Promise.resolve()).then(() => this.report());
    this.flushing = run.finally(() => {
      if (this.flushing === run) this.flushing = undefined;
    });
    return run;
  }

  private async report(): Promise<void> {
    // Our own subscriber hears what we publish from the moment subscribe() was called.
    await this.subscribing;
    const now = Date.now();
    const batch = this.gathered.take(now);
    if (batch) this.pending.push(batch);
    while (this.pending.length > MAX_PENDING) this.pending.shift();
    const m = this.redis.multi();
    for (const b of this.pending) {
      for (const [k, n] of Object.entries(b.counts)) m.hincrby(this.key('counts'), k, n);
      const rate = this.key(`rate:${rateBucket(b.at)}`);
      for (const [k, n] of Object.entries(b.rate)) m.hincrby(rate, k, n);
      m.pexpire(rate, (RATE_BUCKETS + 2) * RATE_BUCKET_MS);
      const minute = this.key(`min:${minuteOf(b.at)}`);
      for (const [k, n] of Object.entries(b.minute)) m.hincrby(minute, k, n);
      m.pexpire(minute, (HISTORY_MINUTES + 2) * MINUTE_MS);
      if (b.errors.length) {
        // Newest first in the list: push the oldest first.
        m.lpush(this.key('errors'), ...[...b.errors].reverse().map((e) => JSON.stringify(e)));
        m.ltrim(this.key('errors'), 0, RECENT_ERRORS - 1);
      }
      if (b.events.length) m.publish(this.key('events'), JSON.stringify(b.events));
    }
    m.hset(this.key('workers'), this.worker.id, JSON.stringify({ identity: this.worker, stopped: this.stopped }));
    m.zadd(this.key('seen'), now, this.worker.id);
    await m.exec();
    this.pending.length = 0;
    if (now - this.lastPrune > MINUTE_MS) {
      this.lastPrune = now;
      await this.prune(now);
    }
  }

  /** Drops workers silent for an hour from the per-worker list (their counts stay in the cluster totals). */
  private async prune(now: number): Promise<void> {
    for (const id of await this.redis.zrangebyscore(this.key('seen'), 0, now - FORGET_WORKER_MS)) {
      const fields: string[] = [];
      let cursor = '0';
      do {
        const [next, found] = await this.redis.hscan(this.key('counts'), cursor, 'MATCH', `w|${id}|*`, 'COUNT', 200);
        cursor = next;
        for (let i = 0; i < found.length; i += 2) fields.push(found[i]!);
      } while (cursor !== '0');
      const m = this.redis.multi().hdel(this.key('workers'), id).zrem(this.key('seen'), id);
      if (fields.length) m.hdel(this.key('counts'), ...fields);
      await m.exec();
    }
  }

  async snapshot(): Promise<ClusterStatus> {
    await this.flush();
    const now = Date.now();
    const rb = rateBucket(now);
    const mb = minuteOf(now);
    const rateKeys = Array.from({ length: RATE_BUCKETS }, (_, i) => this.key(`rate:${rb - RATE_BUCKETS + 1 + i}`));
    const minuteKeys = Array.from({ length: HISTORY_MINUTES }, (_, i) => this.key(`min:${mb - HISTORY_MINUTES + 1 + i}`));
    const p = this.redis.pipeline().hgetall(this.key('counts'));
    for (const k of [...rateKeys, ...minuteKeys]) p.hgetall(k);
    p.hgetall(this.key('workers')).zrange(this.key('seen'), '0', '-1', 'WITHSCORES').lrange(this.key('errors'), 0, RECENT_ERRORS - 1);
    const results = (await p.exec()) ?? [];
    const value = <T>(i: number): T => {
      const [err, v] = results[i]!;
      if (err) throw err;
      return v as T;
    };
    const hashes = Array.from({ length: 1 + rateKeys.length + minuteKeys.length }, (_, i) => toFields(value<Record<string, string>>(i)));
    let i = hashes.length;
    const infos = value<Record<string, string>>(i++);
    const seenFlat = value<string[]>(i++);
    const errors = value<string[]>(i++).map((e) => JSON.parse(e) as RecentError);
    const seen = new Map<string, number>();
    for (let j = 0; j + 1 < seenFlat.length; j += 2) seen.set(seenFlat[j]!, Number(seenFlat[j + 1]));
    const workers = Object.entries(infos).map(([id, json]) => {
      const info = JSON.parse(json) as { identity: WorkerIdentity; stopped: boolean };
      return { identity: info.identity, stopped: info.stopped, lastSeen: seen.get(id) ?? 0 };
    });
    return clusterStatus({ now, counts: hashes[0]!, rate: hashes.slice(1, 1 + RATE_BUCKETS), minutes: hashes.slice(1 + RATE_BUCKETS), workers, errors });
  }

  subscribe(listener: StatusListener): () => void {
    this.listeners.add(listener);
    if (!this.sub) {
      const sub = (this.sub = this.redis.duplicate());
      sub.on('error', (e) => this.opts.onError?.(e));
      sub.on('message', (_channel: string, message: string) => {
        let events: StatusEvent[];
        try {
          events = JSON.parse(message) as StatusEvent[];
        } catch {
          return;
        }
        for (const e of events) for (const l of this.listeners) l(e);
      });
      this.subscribing = sub.subscribe(this.key('events')).catch((e: Error) => this.opts.onError?.(e));
    }
    return () => void this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.stopped = true;
    this.gathered.event({ type: 'worker', worker: this.worker, state: 'down' });
    await this.flush().catch((e) => this.opts.onError?.(e as Error));
    this.listeners.clear();
    await Promise.all([this.redis, this.sub].filter((c): c is Redis => !!c).map((c) => c.quit().catch(() => c.disconnect())));
  }
}
