/**
 * The status port: what every process of a deployment reports (objects ingested, stage jobs done,
 * failed and retried, quarantines) and what any process reads back for the whole cluster, per stage
 * and per worker, with a subscription to live events. Two engines implement it, like the queue: the
 * embedded one (one node: the counts live in this process) and Redis (the counts live in Redis, so
 * every node's /api/status and /metrics show every worker). Nothing in it is PHI: stage names, error
 * codes, keyed study hashes, quarantine ids (object hash prefixes) and worker names.
 */
import type { ErrorCode } from '../../errors.js';
import type { PipelineObserver } from '../parts.js';
import type { QuarantineChange } from '../quarantine.js';
import type { StudyRecord } from '../studies.js';

export type WorkerRole = 'serve' | 'worker';

/** A process that reports: `deid serve` (ingest, and its pipeline thread) or a `deid worker`. */
export interface WorkerIdentity {
  /** `<host>:<pid>`, unique while it runs. */
  readonly id: string;
  readonly role: WorkerRole;
  readonly host: string;
  readonly pid: number;
  readonly startedAt: string;
}

/** Jobs of one stage: finished (done), quarantined (failed), retried, and objects/s over the last minute. */
export interface StageTally {
  done: number;
  failed: number;
  retried: number;
  throughput: number;
}

export interface WorkerStatus extends WorkerIdentity {
  readonly lastSeenAt: string;
  /** Reported within the last 15 s and not stopped. */
  readonly alive: boolean;
  readonly stages: Record<string, StageTally>;
}

export interface IngestTally {
  stored: number;
  refused: number;
  /** Objects/s received (stored or refused) over the last minute. */
  rate: number;
}

export interface RecentError {
  readonly at: string;
  readonly stage: string;
  readonly code: ErrorCode;
  readonly worker: string;
}

/** The whole cluster as the status port knows it. */
export interface ClusterStatus {
  readonly stages: Record<string, StageTally>;
  readonly workers: WorkerStatus[];
  /** By source: dimse, stow, folder. */
  readonly ingest: Record<string, IngestTally>;
  readonly quarantined: Array<{ stage: string; code: ErrorCode; count: number }>;
  /** The last quarantines, newest first. */
  readonly recentErrors: RecentError[];
  /** Jobs done per stage in each minute of the last hour, oldest first (the minute's start time). */
  readonly history: Array<{ at: string; done: Record<string, number> }>;
}

/** Counts a worker added since its previous report. */
export interface CountsDelta {
  readonly stages: Record<string, { done: number; failed: number; retried: number }>;
  readonly ingest: Record<string, { stored: number; refused: number }>;
}

/** What subscribers receive, from every process of the deployment, within about a second. */
export type StatusEvent =
  | { readonly type: 'counts'; readonly worker: string; readonly delta: CountsDelta }
  | { readonly type: 'study'; readonly study: StudyRecord }
  | { readonly type: 'quarantine'; readonly change: QuarantineChange }
  | { readonly type: 'worker'; readonly worker: WorkerIdentity; readonly state: 'up' | 'down' };

export type StatusListener = (event: StatusEvent) => void;

/**
 * The port. Reporting is synchronous and cheap (counts are gathered in memory and published in one
 * batch every `flushMs`); reading and subscribing cover every process of the deployment.
 */
export interface StatusPort extends Required<PipelineObserver> {
  readonly worker: WorkerIdentity;
  /** The cluster as of now (this process's unpublished counts included). */
  snapshot(): Promise<ClusterStatus>;
  /** Calls `listener` with every event of every process; returns the unsubscribe function. */
  subscribe(listener: StatusListener): () => void;
  /** Publishes what was gathered so far (also done every `flushMs`). */
  flush(): Promise<void>;
  /** Publishes the rest, marks this worker stopped, releases connections. */
  close(): Promise<void>;
}

export interface StatusOptions {
  /** How often gathered counts are published (default 1000 ms). */
  readonly flushMs?: number;
}
