import type { Logger } from 'pino';
import { configHash } from '../keyed.js';
import type { StageName } from '../stages/stage.js';
import { Admission } from './admission.js';
import { InFlightObjects } from './in-flight.js';
import { JobIds, type ObjectJob } from './jobs.js';
import type { PipelineObserver, PipelineOptions, PipelineParts } from './parts.js';
import { Quarantine } from './quarantine.js';
import type { JobData, JobQueue } from './queue/types.js';
import { stageList } from './stage-list.js';
import { StageRunner } from './stage-runner.js';
import { StageStats, type StageStatus } from './stage-stats.js';
import type { ObjectStore } from './storage.js';
import type { StudyEvent, StudyTracker } from './studies.js';

export type { PipelineObserver, PipelineOptions, StageSettings } from './parts.js';
export type { StageName };

/** How many jobs of a stage run at once when the configuration does not say. */
const DEFAULT_CONCURRENCY: Record<StageName, number> = { filter: 2, header: 2, pixels: 1, verify: 2, export: 4 };

/**
 * The staged pipeline of the service: the stages of stage-list.ts, each a queue worker with its own
 * concurrency. Stages never change their input: each writes its output under a key derived from the
 * input hash and the configuration hash, so a retry after a crash finds or recomputes the identical
 * result. Admission (admission.ts) takes objects in; the stage runner (stage-runner.ts) takes them
 * through; the counts (stage-stats.ts) say how it goes.
 */
export class Pipeline {
  readonly quarantine: Quarantine;
  private readonly parts: PipelineParts;
  private readonly admission: Admission;
  private readonly runner: StageRunner;
  private readonly stats: StageStats;

  constructor(
    private readonly opts: PipelineOptions,
    store: ObjectStore,
    queue: JobQueue,
    tracker: StudyTracker,
    secret: Uint8Array,
    log: Logger,
    observer?: PipelineObserver,
  ) {
    this.quarantine = new Quarantine(store);
    const list = stageList({ profile: opts.profile, filter: opts.stages.some((s) => s.name === 'filter'), pixels: opts.stages.some((s) => s.name === 'pixels') });
    this.parts = {
      opts,
      list,
      store,
      queue,
      quarantine: this.quarantine,
      // Everything that changes an output: the profile, the options, the secret (by an HMAC, not its value).
      jobs: new JobIds(configHash(secret, opts.profile.fingerprint), list[0]!),
      objects: new InFlightObjects(store, { profile: opts.profile, secret }),
      secret,
      log,
      observer,
      record: async (study: string, event: StudyEvent) => {
        try {
          await tracker.record(study, event);
        } catch (e) {
          log.warn({ study, event, err: (e as Error).name }, 'study tracking failed');
        }
      },
    };
    this.admission = new Admission(this.parts);
    this.stats = new StageStats(list, queue);
    this.runner = new StageRunner(this.parts, this.stats);
  }

  get stageNames(): readonly StageName[] {
    return this.parts.list;
  }

  /** Accepts a received object: durable in the spool and queued before it resolves ok. */
  get ingest() {
    return this.admission.ingest;
  }

  /** See Admission.handoff. */
  get handoff(): Admission['handoff'] {
    return this.admission.handoff;
  }
  set handoff(f: Admission['handoff']) {
    this.admission.handoff = f;
  }

  /** The receiving side of `handoff`: the bytes stay in memory for the first stage, and so does the job. */
  accept(stage: StageName, job: JobData, bytes: Uint8Array): Promise<void> {
    return this.admission.accept(stage, job, bytes);
  }

  reconcile(): Promise<number> {
    return this.admission.reconcile();
  }

  requeue(id: string): Promise<boolean> {
    return this.admission.requeue(id);
  }

  /** Counts a job finished elsewhere (the pipeline thread) in this process's status. */
  noteDone(stage: StageName, failed = false): void {
    this.stats.noteDone(stage, failed);
  }

  /** Starts a queue worker for every stage. */
  start(): void {
    this.stats.start();
    this.admission.runsStages = true;
    for (const name of this.parts.list) {
      const concurrency = this.opts.stages.find((s) => s.name === name)?.concurrency ?? DEFAULT_CONCURRENCY[name];
      this.parts.queue.process(name, concurrency, (job, info) => this.runner.run(name, job as ObjectJob, info));
    }
  }

  /** Samples done counts for the throughput figure (the status owner, when its thread runs the stages). */
  startSampler(): void {
    this.stats.start();
  }

  /** Per stage: queued, active, done, failed, and throughput (objects/s over the last minute). */
  status(): Promise<Record<string, StageStatus>> {
    return this.stats.status();
  }

  /** After the queue closed: jobs it kept for the next start may name outputs held in memory. */
  async close(): Promise<void> {
    this.stats.stop();
    await this.parts.store.flush?.();
  }
}
