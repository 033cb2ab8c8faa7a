/**
 * The embedded status engine: one node. The fields live in this process, shared by every status
 * instance opened on the same namespace (the data directory); the pipeline thread reports through the
 * main thread (thread-host.ts), so one instance sees everything the node does.
 */
import { EventEmitter } from 'node:events';
import { FORGET_WORKER_MS, GatheringReporter, HISTORY_MINUTES, RATE_BUCKETS, RECENT_ERRORS, clusterStatus, minuteOf, rateBucket, type Batch } from './ledger.js';
import type { ClusterStatus, RecentError, StatusEvent, StatusListener, StatusOptions, StatusPort, WorkerIdentity } from './types.js';

type Fields = Record<string, number>;

/** One namespace's fields and subscribers. */
class Hub {
  readonly counts: Fields = {};
  readonly rate = new Map<number, Fields>();
  readonly minutes = new Map<number, Fields>();
  readonly workers = new Map<string, { identity: WorkerIdentity; lastSeen: number; stopped: boolean }>();
  errors: RecentError[] = [];
  readonly events = new EventEmitter().setMaxListeners(0);

  apply(b: Batch): void {
    const add = (into: Fields, from: Fields) => {
      for (const [k, n] of Object.entries(from)) into[k] = (into[k] ?? 0) + n;
    };
    add(this.counts, b.counts);
    const rb = rateBucket(b.at);
    add(this.rate.get(rb) ?? this.rate.set(rb, {}).get(rb)!, b.rate);
    const mb = minuteOf(b.at);
    add(this.minutes.get(mb) ?? this.minutes.set(mb, {}).get(mb)!, b.minute);
    for (const k of this.rate.keys()) if (k <= rb - RATE_BUCKETS) this.rate.delete(k);
    for (const k of this.minutes.keys()) if (k <= mb - HISTORY_MINUTES) this.minutes.delete(k);
    if (b.errors.length) this.errors = [...b.errors, ...this.errors].slice(0, RECENT_ERRORS);
    for (const e of b.events) this.events.emit('event', e);
  }

  seen(identity: WorkerIdentity, now: number, stopped = false): void {
    this.workers.set(identity.id, { identity, lastSeen: now, stopped });
    for (const [id, w] of this.workers) {
      if (now - w.lastSeen <= FORGET_WORKER_MS) continue;
      this.workers.delete(id);
      for (const k of Object.keys(this.counts)) if (k.startsWith(`w|${id}|`)) delete this.counts[k];
    }
  }
}

const HUBS = new Map<string, Hub>();

export class EmbeddedStatus extends GatheringReporter implements StatusPort {
  private readonly hub: Hub;
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(namespace: string, worker: WorkerIdentity, opts: StatusOptions = {}) {
    super(worker);
    this.hub = HUBS.get(namespace) ?? HUBS.set(namespace, new Hub()).get(namespace)!;
    this.hub.seen(worker, Date.now());
    this.gathered.event({ type: 'worker', worker, state: 'up' });
    this.timer = setInterval(() => void this.flush(), opts.flushMs ?? 1000);
    this.timer.unref();
  }

  async flush(): Promise<void> {
    const now = Date.now();
    if (!this.closed) this.hub.seen(this.worker, now);
    const batch = this.gathered.take(now);
    if (batch) this.hub.apply(batch);
  }

  async snapshot(): Promise<ClusterStatus> {
    await this.flush();
    const now = Date.now();
    const h = this.hub;
    const rb = rateBucket(now);
    const mb = minuteOf(now);
    return clusterStatus({
      now,
      counts: h.counts,
      rate: Array.from({ length: RATE_BUCKETS }, (_, i) => h.rate.get(rb - RATE_BUCKETS + 1 + i) ?? {}),
      minutes: Array.from({ length: HISTORY_MINUTES }, (_, i) => h.minutes.get(mb - HISTORY_MINUTES + 1 + i) ?? {}),
      workers: [...h.workers.values()],
      errors: h.errors,
    });
  }

  subscribe(listener: StatusListener): () => void {
    const on = (e: StatusEvent) => listener(e);
    this.hub.events.on('event', on);
    return () => void this.hub.events.off('event', on);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.gathered.event({ type: 'worker', worker: this.worker, state: 'down' });
    await this.flush();
    this.hub.seen(this.worker, Date.now(), true);
  }
}
