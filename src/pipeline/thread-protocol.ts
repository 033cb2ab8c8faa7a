/** The messages between the main thread and the pipeline thread (thread-host.ts, src/pipeline-thread.ts). */
import type { ServiceConfig } from '../config.js';
import type { CompiledProfile } from '../profiles/compile.js';
import type { StageName } from '../stages/stage.js';
import type { PipelineObserver } from './parts.js';
import type { JobData } from './queue/types.js';
import type { StudyEvent } from './studies.js';

/** One event from the pipeline thread to the main thread, which owns study tracking, metrics and the status port. */
export type ThreadEvent =
  | { type: 'study'; id: string; event: StudyEvent; object: string }
  | { type: 'observe'; method: keyof PipelineObserver; args: unknown[] };

/** Thread → main: events in batches (one message per object per stage costs more than the work). */
export type ThreadMessage = { type: 'events'; events: ThreadEvent[] };

/**
 * Main → thread: a received object's first job with its bytes (embedded queue), a reloaded
 * configuration (validated by the main thread), or 'close'.
 */
export type MainMessage = 'close' | { type: 'job'; stage: StageName; job: JobData; bytes: Uint8Array } | { type: 'reload'; cfg: ServiceConfig; profile: CompiledProfile };

/** What the thread starts with: the configuration, and the profile as the main thread compiled it (a structured clone). */
export interface ThreadInit {
  readonly cfg: ServiceConfig;
  readonly profile: CompiledProfile;
}
