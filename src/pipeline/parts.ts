/** What the parts of the service's pipeline (admission, stage runner, status) share. */
import type { Logger } from 'pino';
import type { ErrorCode } from '../errors.js';
import type { CompiledProfile } from '../profiles/compile.js';
import type { FilterConfig } from '../stages/filter.js';
import type { StageName } from '../stages/stage.js';
import type { InFlightObjects } from './in-flight.js';
import type { JobIds } from './jobs.js';
import type { Destination, IngestSource } from './ports.js';
import type { ProfileChoice, ProfileRegistry } from './profiles.js';
import type { ObjectCatalog } from './catalog.js';
import type { Quarantine, QuarantineChange } from './quarantine.js';
import type { ObjectOutcomes } from './outcomes.js';
import type { ReviewMode, ReviewQueue } from './review.js';
import type { JobQueue } from './queue/types.js';
import type { DiskGuard } from './readiness.js';
import type { ObjectStore } from './storage.js';
import type { StudyEvent, StudyRecord } from './studies.js';

export interface StageSettings {
  readonly name: StageName;
  /** Jobs of the stage run at once in this process (a default per stage when not given). */
  readonly concurrency?: number;
}

export interface PipelineOptions {
  /** Per-stage settings; the order of the stages is the pipeline's own (stage-list.ts). */
  readonly stages: readonly StageSettings[];
  readonly profile: CompiledProfile;
  /** How the profile was named (configured name or file, and options): a requeue with other options starts from it. */
  readonly choice?: ProfileChoice;
  readonly filter: FilterConfig;
  readonly destinations: readonly Destination[];
  readonly maxAttempts: number;
  readonly backoffMs: number;
  /** The longest wait between two attempts (default 5 minutes). */
  readonly maxBackoffMs?: number;
  readonly maxObjectBytes: number;
  /**
   * Intermediate outputs may stay in memory when the store keeps them (embedded queue: the next
   * stage's job stays in this process too). They are written when a job leaves memory (a retry, a shutdown).
   */
  readonly deferWork?: boolean;
  /** The map rows and the records for manifests and reports, when either is on. */
  readonly outcomes?: ObjectOutcomes;
  /** Hold objects before export for a reviewer (review.ts); off when not given. */
  readonly review?: ReviewMode;
}

/** Events the metrics, the logs and the status port observe. */
export interface PipelineObserver {
  ingested(kind: IngestSource['kind'], ok: boolean): void;
  stageDone(stage: StageName, ms: number): void;
  stageRetried(stage: StageName): void;
  quarantined(stage: string, code: ErrorCode): void;
  /** A study's counts changed (the status feed). */
  studyChanged?(study: StudyRecord): void;
  /** An entry was added to, requeued from, refused again by, or removed from the quarantine (the status feed). */
  quarantineChanged?(change: QuarantineChange): void;
}

/** Every observer told of every event. */
export function observeAll(...observers: ReadonlyArray<PipelineObserver | undefined>): PipelineObserver {
  const all = observers.filter((o): o is PipelineObserver => !!o);
  return {
    ingested: (kind, ok) => all.forEach((o) => o.ingested(kind, ok)),
    stageDone: (stage, ms) => all.forEach((o) => o.stageDone(stage, ms)),
    stageRetried: (stage) => all.forEach((o) => o.stageRetried(stage)),
    quarantined: (stage, code) => all.forEach((o) => o.quarantined(stage, code)),
    studyChanged: (study) => all.forEach((o) => o.studyChanged?.(study)),
    quarantineChanged: (change) => all.forEach((o) => o.quarantineChanged?.(change)),
  };
}

export interface PipelineParts {
  /** Replaced as a whole by a reload. */
  opts: PipelineOptions;
  /** The stages objects go through under the current profile, in order (a job's own: listFor). */
  readonly list: readonly StageName[];
  /** The stages of an object under a given profile. */
  listFor(profile: CompiledProfile): readonly StageName[];
  readonly profiles: ProfileRegistry;
  readonly store: ObjectStore;
  readonly queue: JobQueue;
  readonly quarantine: Quarantine;
  readonly review: ReviewQueue;
  readonly catalog: ObjectCatalog;
  readonly jobs: JobIds;
  readonly objects: InFlightObjects;
  readonly secret: Uint8Array;
  readonly log: Logger;
  readonly observer: PipelineObserver;
  /** Free space on the spool's volume: ingest refuses below the threshold. */
  readonly disk?: DiskGuard;
  /** Records a study event of one object (its hash); a tracking failure is logged, never passed on. */
  record(study: string, event: StudyEvent, object: string): Promise<void>;
  /** Makes sure this process delivers a stage's jobs (once it runs stages at all): a job may need one it did not start with. */
  ensureStage(stage: StageName): void;
}
