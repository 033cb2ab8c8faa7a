import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { writeFileAtomicSync } from './durable-fs.js';
import { ioredis } from './redis-libs.js';

/**
 * Study tracking. Objects are grouped by study under a keyed hash of the original StudyInstanceUID:
 * nothing else about the study is stored. Each object is tracked by a prefix of the hash of its bytes,
 * so the counts are exact per object: an identical object received twice counts once, and a requeued
 * object moves back to "received" instead of being counted again. A study is complete once nothing
 * happened to it for the quiet period and every object it holds was exported or quarantined.
 */
export type StudyEvent = 'received' | 'requeued' | 'processed' | 'quarantined' | 'exported';

/** Where one object of a study is: in the pipeline, past the quality check, or out (exported or quarantined). */
export type ObjectState = 'received' | 'processed' | 'exported' | 'quarantined';

export interface StudyRecord {
  id: string;
  /** Distinct objects received. */
  received: number;
  /** Objects de-identified and verified (exported ones included). */
  processed: number;
  quarantined: number;
  exported: number;
  firstAt: string;
  lastAt: string;
  completedAt?: string;
}

export interface StudyTracker {
  /** Records what happened to one object (`object`: the hash of its bytes); resolves the study as it is now. */
  record(id: string, event: StudyEvent, object: string): Promise<StudyRecord | undefined>;
  list(): Promise<StudyRecord[]>;
  get(id: string): Promise<StudyRecord | undefined>;
  /** Marks and returns the studies that became complete (quiet and fully accounted for). */
  completeQuiet(quietMs: number, now?: number): Promise<StudyRecord[]>;
  /** Forgets the studies completed before `cutoff` (ms since the epoch); returns their ids. */
  forgetCompletedBefore(cutoff: number): Promise<string[]>;
  close(): Promise<void>;
}

type Transition = { readonly [S in ObjectState | '']: ObjectState };
const to = (s: ObjectState): Transition => ({ '': s, received: s, processed: s, exported: s, quarantined: s });

/**
 * An object's state after an event, by its state before ('' for an object the study has not seen).
 * A re-send of a known object changes nothing; a late "processed" never undoes an outcome. Data, so
 * that the Redis tracker's script applies the very same table.
 */
export const TRANSITIONS: { readonly [E in StudyEvent]: Transition } = {
  received: { '': 'received', received: 'received', processed: 'processed', exported: 'exported', quarantined: 'quarantined' },
  requeued: to('received'),
  processed: { '': 'processed', received: 'processed', processed: 'processed', exported: 'exported', quarantined: 'quarantined' },
  exported: to('exported'),
  quarantined: to('quarantined'),
};

/** How many hex digits of an object's hash name it in a study (64 bits: no collision within a study). */
export const OBJECT_KEY_LENGTH = 16;

type StateCounts = Record<ObjectState, number>;
const noCounts = (): StateCounts => ({ received: 0, processed: 0, exported: 0, quarantined: 0 });

function countsOf(id: string, n: StateCounts, times: { firstAt: string; lastAt: string; completedAt?: string }): StudyRecord {
  return {
    id,
    received: n.received + n.processed + n.exported + n.quarantined,
    processed: n.processed + n.exported,
    quarantined: n.quarantined,
    exported: n.exported,
    firstAt: times.firstAt,
    lastAt: times.lastAt,
    ...(times.completedAt ? { completedAt: times.completedAt } : {}),
  };
}

const isSettled = (s: StudyRecord) => !s.completedAt && s.received > 0 && s.exported + s.quarantined >= s.received;

interface FileStudy {
  id: string;
  firstAt: string;
  lastAt: string;
  completedAt?: string;
  /** Object key → state. */
  objects: Record<string, ObjectState>;
}

/**
 * Embedded tracker: in memory, persisted to one JSON file (written at most once a second). A write
 * that fails (a full disk) is logged and tried again later: it never ends the process.
 */
export class FileStudyTracker implements StudyTracker {
  private readonly studies = new Map<string, FileStudy & { n: StateCounts }>();
  private timer?: NodeJS.Timeout;
  private failing = false;

  constructor(
    private readonly path: string,
    private readonly log?: Logger,
  ) {
    try {
      for (const s of JSON.parse(readFileSync(path, 'utf8')) as FileStudy[]) {
        const objects = s.objects ?? {};
        const n = noCounts();
        for (const state of Object.values(objects)) n[state]++;
        this.studies.set(s.id, { id: s.id, firstAt: s.firstAt, lastAt: s.lastAt, completedAt: s.completedAt, objects, n });
      }
    } catch {
      /* first start */
    }
  }

  private persistSoon(delayMs = 1000): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, delayMs);
  }

  private flush(): void {
    try {
      const all = [...this.studies.values()].map(({ n: _n, ...s }) => s);
      writeFileAtomicSync(this.path, Buffer.from(JSON.stringify(all)));
      if (this.failing) this.log?.info('study tracking is written again');
      this.failing = false;
    } catch (e) {
      if (!this.failing) this.log?.warn({ err: (e as NodeJS.ErrnoException).code ?? (e as Error).name, path: this.path }, 'study tracking could not be written; trying again');
      this.failing = true;
      this.persistSoon(5000);
    }
  }

  async record(id: string, event: StudyEvent, object: string): Promise<StudyRecord> {
    const now = new Date().toISOString();
    let s = this.studies.get(id);
    if (!s) this.studies.set(id, (s = { id, firstAt: now, lastAt: now, objects: {}, n: noCounts() }));
    const key = object.slice(0, OBJECT_KEY_LENGTH);
    const before = s.objects[key];
    const after = TRANSITIONS[event][before ?? ''];
    if (after !== before) {
      if (before) s.n[before]--;
      s.n[after]++;
      s.objects[key] = after;
      // A study that has an object back in the pipeline is open again.
      if (after === 'received') delete s.completedAt;
    }
    s.lastAt = now;
    this.persistSoon();
    return countsOf(id, s.n, s);
  }

  async list(): Promise<StudyRecord[]> {
    return [...this.studies.values()].sort((a, b) => (a.lastAt < b.lastAt ? 1 : -1)).map((s) => countsOf(s.id, s.n, s));
  }

  async get(id: string): Promise<StudyRecord | undefined> {
    const s = this.studies.get(id);
    return s && countsOf(id, s.n, s);
  }

  async completeQuiet(quietMs: number, now = Date.now()): Promise<StudyRecord[]> {
    const done: StudyRecord[] = [];
    for (const s of this.studies.values()) {
      const r = countsOf(s.id, s.n, s);
      if (isSettled(r) && now - Date.parse(s.lastAt) >= quietMs) {
        s.completedAt = new Date(now).toISOString();
        done.push({ ...r, completedAt: s.completedAt });
      }
    }
    if (done.length) this.persistSoon();
    return done;
  }

  async forgetCompletedBefore(cutoff: number): Promise<string[]> {
    const gone: string[] = [];
    for (const s of this.studies.values()) if (s.completedAt && Date.parse(s.completedAt) < cutoff) gone.push(s.id);
    for (const id of gone) this.studies.delete(id);
    if (gone.length) this.persistSoon();
    return gone;
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.flush();
    if (this.timer) clearTimeout(this.timer);
  }
}

/**
 * One object's event, atomically: its state moves by the transition table (ARGV[2], JSON), the study's
 * per-state counts follow, and the study's hash comes back.
 * KEYS: the study hash, its objects hash, the studies sorted set. ARGV: object, transition, now (ISO), now (ms), study id.
 */
const RECORD_SCRIPT = `
local before = redis.call('HGET', KEYS[2], ARGV[1])
local after = cjson.decode(ARGV[2])[before or '']
if after ~= before then
  redis.call('HSET', KEYS[2], ARGV[1], after)
  if before then redis.call('HINCRBY', KEYS[1], 'n:' .. before, -1) end
  redis.call('HINCRBY', KEYS[1], 'n:' .. after, 1)
  if after == 'received' then redis.call('HDEL', KEYS[1], 'completedAt') end
end
redis.call('HSETNX', KEYS[1], 'firstAt', ARGV[3])
redis.call('HSET', KEYS[1], 'lastAt', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
return redis.call('HGETALL', KEYS[1])
`;

/**
 * Forgets a study if it is still complete since before the cutoff, atomically: an object arriving at the
 * same time reopens it (its completedAt goes) or moves its last activity past the cutoff, and it stays.
 * KEYS: the study hash, its objects hash, the studies sorted set. ARGV: study id, cutoff (ms), cutoff (ISO).
 */
const FORGET_SCRIPT = `
local completed = redis.call('HGET', KEYS[1], 'completedAt')
if not completed or completed >= ARGV[3] then return 0 end
local score = redis.call('ZSCORE', KEYS[3], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
`;

/** Redis tracker: one hash per study, one hash of its objects' states, and a sorted set by last activity, shared by every process. */
export class RedisStudyTracker implements StudyTracker {
  private readonly redis: Redis & { deidRecord?: (...args: string[]) => Promise<string[]>; deidForget?: (...args: string[]) => Promise<number> };

  constructor(url: string, private readonly prefix = 'deid') {
    this.redis = new (ioredis().Redis)(url, { maxRetriesPerRequest: 3, lazyConnect: false });
    this.redis.defineCommand('deidRecord', { numberOfKeys: 3, lua: RECORD_SCRIPT });
    this.redis.defineCommand('deidForget', { numberOfKeys: 3, lua: FORGET_SCRIPT });
  }

  private key(id: string): string {
    return `${this.prefix}:study:${id}`;
  }

  async record(id: string, event: StudyEvent, object: string): Promise<StudyRecord | undefined> {
    const now = new Date();
    const flat = await this.redis.deidRecord!(
      this.key(id),
      `${this.key(id)}:objects`,
      `${this.prefix}:studies`,
      object.slice(0, OBJECT_KEY_LENGTH),
      JSON.stringify(TRANSITIONS[event]),
      now.toISOString(),
      String(now.getTime()),
      id,
    );
    const h: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!;
    return RedisStudyTracker.parse(id, h);
  }

  private static parse(id: string, h: Record<string, string>): StudyRecord | undefined {
    if (!h.firstAt) return undefined;
    const n = noCounts();
    for (const s of Object.keys(n) as ObjectState[]) n[s] = Number(h[`n:${s}`] ?? 0);
    return countsOf(id, n, { firstAt: h.firstAt, lastAt: h.lastAt ?? h.firstAt, completedAt: h.completedAt });
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

  async forgetCompletedBefore(cutoff: number): Promise<string[]> {
    // A study completes after its last event, so one completed before the cutoff was last active before it too.
    const gone: string[] = [];
    const iso = new Date(cutoff).toISOString();
    for (const id of await this.redis.zrangebyscore(`${this.prefix}:studies`, 0, cutoff)) {
      if ((await this.redis.deidForget!(this.key(id), `${this.key(id)}:objects`, `${this.prefix}:studies`, id, String(cutoff), iso)) === 1) gone.push(id);
    }
    return gone;
  }

  async close(): Promise<void> {
    await this.redis.quit();
  }
}
