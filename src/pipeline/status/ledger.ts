/**
 * What both status engines share: the counts a process gathers between reports (as increments of
 * named fields, the way Redis hashes hold them), and the cluster status built from those fields.
 * The engines differ only in where the fields live: this process's memory, or Redis.
 *
 * Fields: `s|<stage>|<done|failed|retried>` (cluster), `w|<worker>|<stage>|<outcome>` (per worker),
 * `i|<source>|<stored|refused>` (ingest), `q|<stage>|<code>` (quarantined). Rate buckets of 5 s hold
 * `s|<stage>`, `w|<worker>|<stage>` (jobs done) and `i|<source>` (objects received); minute buckets
 * hold `s|<stage>` for the hour of history.
 */
import type { ErrorCode } from '../../errors.js';
import type { QuarantineChange } from '../quarantine.js';
import type { StudyRecord } from '../studies.js';
import type { ClusterStatus, CountsDelta, IngestTally, RecentError, StageTally, StatusEvent, WorkerIdentity, WorkerStatus } from './types.js';

export const RATE_BUCKET_MS = 5000;
/** Rate buckets read for a throughput: the current one and the twelve before it (about a minute). */
export const RATE_BUCKETS = 13;
export const MINUTE_MS = 60_000;
export const HISTORY_MINUTES = 60;
/** A worker unheard of for this long is shown as not alive. */
export const ALIVE_MS = 15_000;
/** A stopped or silent worker is dropped from the per-worker list after this long (its counts stay in the totals). */
export const FORGET_WORKER_MS = 3_600_000;
export const RECENT_ERRORS = 50;

export const rateBucket = (t: number): number => Math.floor(t / RATE_BUCKET_MS);
export const minuteOf = (t: number): number => Math.floor(t / MINUTE_MS);

type Fields = Record<string, number>;

/** One report: field increments, the newest errors and the events to publish. */
export interface Batch {
  readonly at: number;
  readonly counts: Fields;
  readonly rate: Fields;
  readonly minute: Fields;
  readonly errors: RecentError[];
  readonly events: StatusEvent[];
}

const inc = (f: Fields, key: string, by = 1): void => {
  f[key] = (f[key] ?? 0) + by;
};

/** Counts and events one process gathered since its last report. */
export class Gathered {
  private counts: Fields = {};
  private rate: Fields = {};
  private minute: Fields = {};
  private errors: RecentError[] = [];
  private delta: { stages: Record<string, { done: number; failed: number; retried: number }>; ingest: Record<string, { stored: number; refused: number }> } = { stages: {}, ingest: {} };
  /** The latest record of each study changed (one event per study per report). */
  private studies = new Map<string, StudyRecord>();
  private other: StatusEvent[] = [];

  constructor(private readonly worker: string) {}

  private stage(stage: string) {
    return (this.delta.stages[stage] ??= { done: 0, failed: 0, retried: 0 });
  }

  stageDone(stage: string): void {
    inc(this.counts, `s|${stage}|done`);
    inc(this.counts, `w|${this.worker}|${stage}|done`);
    inc(this.rate, `s|${stage}`);
    inc(this.rate, `w|${this.worker}|${stage}`);
    inc(this.minute, `s|${stage}`);
    this.stage(stage).done++;
  }

  stageRetried(stage: string): void {
    inc(this.counts, `s|${stage}|retried`);
    inc(this.counts, `w|${this.worker}|${stage}|retried`);
    this.stage(stage).retried++;
  }

  quarantined(stage: string, code: ErrorCode): void {
    inc(this.counts, `q|${stage}|${code}`);
    // Refusals at ingest are counted by source (ingested); a stage's quarantines are its failed jobs.
    if (stage !== 'ingest') {
      inc(this.counts, `s|${stage}|failed`);
      inc(this.counts, `w|${this.worker}|${stage}|failed`);
      this.stage(stage).failed++;
    }
    this.errors.unshift({ at: new Date().toISOString(), stage, code, worker: this.worker });
    if (this.errors.length > RECENT_ERRORS) this.errors.length = RECENT_ERRORS;
  }

  ingested(source: string, ok: boolean): void {
    inc(this.counts, `i|${source}|${ok ? 'stored' : 'refused'}`);
    inc(this.rate, `i|${source}`);
    const d = (this.delta.ingest[source] ??= { stored: 0, refused: 0 });
    if (ok) d.stored++;
    else d.refused++;
  }

  studyChanged(study: StudyRecord): void {
    this.studies.set(study.id, study);
  }

  quarantineChanged(change: QuarantineChange): void {
    this.other.push({ type: 'quarantine', change });
  }

  event(e: StatusEvent): void {
    this.other.push(e);
  }

  /** Everything gathered, as one report (undefined when there is nothing), and a fresh start. */
  take(now = Date.now()): Batch | undefined {
    const hasCounts = Object.keys(this.counts).length > 0;
    if (!hasCounts && this.studies.size === 0 && this.other.length === 0) return undefined;
    const events: StatusEvent[] = [];
    if (Object.keys(this.delta.stages).length || Object.keys(this.delta.ingest).length) events.push({ type: 'counts', worker: this.worker, delta: this.delta as CountsDelta });
    for (const study of this.studies.values()) events.push({ type: 'study', study });
    events.push(...this.other);
    const batch: Batch = { at: now, counts: this.counts, rate: this.rate, minute: this.minute, errors: this.errors, events };
    this.counts = {};
    this.rate = {};
    this.minute = {};
    this.errors = [];
    this.delta = { stages: {}, ingest: {} };
    this.studies = new Map();
    this.other = [];
    return batch;
  }
}

/**
 * The reporting half of a status engine (the pipeline's observer): every event goes into the batch
 * that the engine's next report publishes.
 */
export abstract class GatheringReporter {
  protected readonly gathered: Gathered;

  constructor(readonly worker: WorkerIdentity) {
    this.gathered = new Gathered(worker.id);
  }

  ingested(source: string, ok: boolean): void {
    this.gathered.ingested(source, ok);
  }
  stageDone(stage: string): void {
    this.gathered.stageDone(stage);
  }
  stageRetried(stage: string): void {
    this.gathered.stageRetried(stage);
  }
  quarantined(stage: string, code: ErrorCode): void {
    this.gathered.quarantined(stage, code);
  }
  studyChanged(study: StudyRecord): void {
    this.gathered.studyChanged(study);
  }
  quarantineChanged(change: QuarantineChange): void {
    this.gathered.quarantineChanged(change);
  }
}

/** The raw fields an engine read, from which the cluster status is built. */
export interface RawCluster {
  readonly now: number;
  readonly counts: Fields;
  /** The rate buckets from rateBucket(now) - RATE_BUCKETS + 1 to rateBucket(now), missing ones as {}. */
  readonly rate: Fields[];
  /** The minute buckets from minuteOf(now) - HISTORY_MINUTES + 1 to minuteOf(now), missing ones as {}. */
  readonly minutes: Fields[];
  readonly workers: ReadonlyArray<{ identity: WorkerIdentity; lastSeen: number; stopped: boolean }>;
  readonly errors: RecentError[];
}

const round2 = (n: number) => Math.round(n * 100) / 100;

export function clusterStatus(raw: RawCluster): ClusterStatus {
  const { now, counts } = raw;
  // The rate window runs from the start of its oldest bucket to now.
  const windowSeconds = Math.max(1, (now - (rateBucket(now) - RATE_BUCKETS + 1) * RATE_BUCKET_MS) / 1000);
  const rateOf = (field: string) => round2(raw.rate.reduce((n, b) => n + (b[field] ?? 0), 0) / windowSeconds);
  const tally = (prefix: string, stage: string, rateField: string): StageTally => ({
    done: counts[`${prefix}|${stage}|done`] ?? 0,
    failed: counts[`${prefix}|${stage}|failed`] ?? 0,
    retried: counts[`${prefix}|${stage}|retried`] ?? 0,
    throughput: rateOf(rateField),
  });

  const stageNames = new Set<string>();
  const ingestSources = new Set<string>();
  const quarantined: ClusterStatus['quarantined'] = [];
  const perWorker = new Map<string, Set<string>>();
  for (const [field, n] of Object.entries(counts)) {
    const p = field.split('|');
    if (p[0] === 's') stageNames.add(p[1]!);
    else if (p[0] === 'i') ingestSources.add(p[1]!);
    else if (p[0] === 'q' && n > 0) quarantined.push({ stage: p[1]!, code: p[2] as ErrorCode, count: n });
    else if (p[0] === 'w') {
      const stages = perWorker.get(p[1]!) ?? new Set<string>();
      stages.add(p[2]!);
      perWorker.set(p[1]!, stages);
    }
  }
  const stages: Record<string, StageTally> = {};
  for (const s of [...stageNames].sort()) stages[s] = tally('s', s, `s|${s}`);
  const ingest: Record<string, IngestTally> = {};
  for (const src of [...ingestSources].sort()) ingest[src] = { stored: counts[`i|${src}|stored`] ?? 0, refused: counts[`i|${src}|refused`] ?? 0, rate: rateOf(`i|${src}`) };
  const workers: WorkerStatus[] = raw.workers
    .map(({ identity, lastSeen, stopped }) => {
      const ws: Record<string, StageTally> = {};
      for (const s of [...(perWorker.get(identity.id) ?? [])].sort()) ws[s] = tally(`w|${identity.id}`, s, `w|${identity.id}|${s}`);
      return { ...identity, lastSeenAt: new Date(lastSeen).toISOString(), alive: !stopped && now - lastSeen < ALIVE_MS, stages: ws };
    })
    .sort((a, b) => (a.role === b.role ? (a.id < b.id ? -1 : 1) : a.role === 'serve' ? -1 : 1));
  const firstMinute = minuteOf(now) - HISTORY_MINUTES + 1;
  const history = raw.minutes.map((m, i) => {
    const done: Record<string, number> = {};
    for (const [field, n] of Object.entries(m)) if (field.startsWith('s|')) done[field.slice(2)] = n;
    return { at: new Date((firstMinute + i) * MINUTE_MS).toISOString(), done };
  });
  quarantined.sort((a, b) => b.count - a.count);
  return { stages, workers, ingest, quarantined, recentErrors: raw.errors.slice(0, RECENT_ERRORS), history };
}

/** The identity of this process as a reporting worker. */
export function workerIdentity(role: WorkerIdentity['role'], host: string): WorkerIdentity {
  return { id: `${host}:${process.pid}`, role, host, pid: process.pid, startedAt: new Date().toISOString() };
}
