/** What the parts of the service's pipeline (admission, stage runner, status) share. */
import type { Logger } from 'pino';
import type { ErrorCode } from '../errors.js';
import type { CompiledProfile } from '../profiles/compile.js';
import type { FilterConfig } from '../stages/filter.js';
import type { StageName } from '../stages/stage.js';
import type { InFlightObjects } from './in-flight.js';
import type { JobIds } from './jobs.js';
import type { Destination, IngestSource } from './ports.js';
import type { Quarantine } from './quarantine.js';
import type { ObjectOutcomes } from './outcomes.js';
import type { JobQueue } from './queue/types.js';
import type { ObjectStore } from './storage.js';
import type { StudyEvent } from './studies.js';

export interface StageSettings {
  readonly name: StageName;
  /** Jobs of the stage run at once in this process (a default per stage when not given). */
  readonly concurrency?: number;
}

export interface PipelineOptions {
  /** Per-stage settings; the order of the stages is the pipeline's own (stage-list.ts). */
  readonly stages: readonly StageSettings[];
  readonly profile: CompiledProfile;
  readonly filter: FilterConfig;
  readonly destinations: readonly Destination[];
  readonly maxAttempts: number;
  readonly backoffMs: number;
  readonly maxObjectBytes: number;
  /**
   * Intermediate outputs may stay in memory when the store keeps them (embedded queue: the next
   * stage's job stays in this process too). They are written when a job leaves memory (a retry, a shutdown).
   */
  readonly deferWork?: boolean;
  /** The map rows and the records for manifests and reports, when either is on. */
  readonly outcomes?: ObjectOutcomes;
}

/** Events the metrics and logs observe. */
export interface PipelineObserver {
  ingested(kind: IngestSource['kind'], ok: boolean): void;
  stageDone(stage: StageName, ms: number): void;
  stageRetried(stage: StageName): void;
  quarantined(stage: string, code: ErrorCode): void;
}

export interface PipelineParts {
  readonly opts: PipelineOptions;
  /** The stages objects go through here, in order. */
  readonly list: readonly StageName[];
  readonly store: ObjectStore;
  readonly queue: JobQueue;
  readonly quarantine: Quarantine;
  readonly jobs: JobIds;
  readonly objects: InFlightObjects;
  readonly secret: Uint8Array;
  readonly log: Logger;
  readonly observer?: PipelineObserver;
  /** Records a study event; a tracking failure is logged, never passed on. */
  record(study: string, event: StudyEvent): Promise<void>;
}
