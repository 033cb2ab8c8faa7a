import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { writeFileAtomicSync } from './durable-fs.js';

/**
 * Study tracking. Objects are grouped by study under a keyed hash of the original StudyInstanceUID:
 * nothing else about the study is stored. A study is complete once nothing happened to it for the
 * quiet period and every received object was exported or quarantined.
 */
export type StudyEvent = 'received' | 'processed' | 'quarantined' | 'exported';

export interface StudyRecord {
  id: string;
  received: number;
  processed: number;
  quarantined: number;
  exported: number;
  firstAt: string;
  lastAt: string;
  completedAt?: string;
}

export interface StudyTracker {
  record(id: string, event: StudyEvent): Promise<void>;
  list(): Promise<StudyRecord[]>;
  get(id: string): Promise<StudyRecord | undefined>;
  /** Marks and returns the studies that became complete (quiet and fully accounted for). */
  completeQuiet(quietMs: number, now?: number): Promise<StudyRecord[]>;
  close(): Promise<void>;
}

const isSettled = (s: StudyRecord) => !s.completedAt && s.received > 0 && s.exported + s.quarantined >= s.received;

/** Embedded tracker: in memory, persisted to one JSON file (written at most once a second). */
export class FileStudyTracker implements StudyTracker {
  private readonly studies = new Map<string, StudyRecord>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly path: string) {
    try {
      for (const s of JSON.parse(readFileSync(path, 'utf8')) as StudyRecord[]) this.studies.set(s.id, s);
    } catch {
      /* first start */
    }
  }

  private persistSoon(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, 1000);
  }

  private flush(): void {
    writeFileAtomicSync(this.path, Buffer.from(JSON.stringify([...this.studies.values()])));
  }

  async record(id: string, event: StudyEvent): Promise<void> {
    const now = new Date().toISOString();
    const s = this.studies.get(id) ?? { id, received: 0, processed: 0, quarantined: 0, exported: 0, firstAt: now, lastAt: now };
    s[event]++;
    s.lastAt = now;
    // A study that receives more objects after completing is open again.
    if (event === 'received') delete s.completedAt;
    this.studies.set(id, s);
    this.persistSoon();
  }

  async list(): Promise<StudyRecord[]> {
    return [...this.studies.values()].sort((a, b) => (a.lastAt < b.lastAt ? 1 : -1));
  }

  async get(id: string): Promise<StudyRecord | undefined> {
    return this.studies.get(id);
  }

  async completeQuiet(quietMs: number, now = Date.now()): Promise<StudyRecord[]> {
    const done: StudyRecord[] = [];
    for (const s of this.studies.values()) {
      if (isSettled(s) && now - Date.parse(s.lastAt) >= quietMs) {
        s.completedAt = new Date(now).toISOString();
        done.push(s);
      }
    }
    if (done.length) this.persistSoon();
    return done;
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.flush();
  }
}

/** Redis tracker: one hash per study and a sorted set by last activity, shared by every process. */
export class RedisStudyTracker implements StudyTracker {
  private readonly redis: Redis;

  constructor(url: string, private readonly prefix = 'deid') {
    this.redis = new Redis(url, { maxRetriesPerRequest: 3, lazyConnect: false });
  }

  private key(id: string): string {
    return `${this.prefix}:study:${id}`;
  }

  async record(id: string, event: StudyEvent): Promise<void> {
    const now = new Date().toISOString();
    const m = this.redis.multi().hincrby(this.key(id), event, 1).hsetnx(this.key(id), 'firstAt', now).hset(this.key(id), 'lastAt', now);
    if (event === 'received') m.hdel(this.key(id), 'completedAt');
    await m.zadd(`${this.prefix}:studies`, Date.now(), id).exec();
  }

  private static parse(id: string, h: Record<string, string>): StudyRecord | undefined {
    if (!h.firstAt) return undefined;
    return {
      id,
      received: Number(h.received ?? 0),
      processed: Number(h.processed ?? 0),
      quarantined: Number(h.quarantined ?? 0),
      exported: Number(h.exported ?? 0),
      firstAt: h.firstAt,
      lastAt: h.lastAt,
      ...(h.completedAt ? { completedAt: h.completedAt } : {}),
    };
  }

  async get(id: string): Promise<StudyRecord | undefined> {
    return RedisStudyTracker.parse(id, await this.redis.hgetall(this.key(id)));
  }

  async list(): Promise<StudyRecord[]> {
    const ids = await this.redis.zrevrange(`${this.prefix}:studies`, 0, 999);
    const out = await Promise.all(ids.map((id) => this.get(id)));
    return out.filter((s): s is StudyRecord => !!s);
  }

  async completeQuiet(quietMs: number, now = Date.now()): Promise<StudyRecord[]> {
    const ids = await this.redis.zrangebyscore(`${this.prefix}:studies`, 0, now - quietMs);
    const done: StudyRecord[] = [];
    for (const id of ids) {
      const s = await this.get(id);
      // HSETNX makes completion happen once even when several processes check at the same time.
      if (s && isSettled(s) && (await this.redis.hsetnx(this.key(id), 'completedAt', new Date(now).toISOString())) === 1) {
        done.push({ ...s, completedAt: new Date(now).toISOString() });
      }
    }
    return done;
  }

  async close(): Promise<void> {
    await this.redis.quit();
  }
}
