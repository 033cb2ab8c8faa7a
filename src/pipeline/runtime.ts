import type { Logger } from 'pino';
import type { CompiledProfile } from '../profiles/compile.js';
import { pixelConcurrency } from '../stages/pixels/ocr-pool.js';
import type { StageName } from '../stages/stage.js';
import { Admission, type RequeueOutcome } from './admission.js';
import { ObjectCatalog } from './catalog.js';
import { InFlightObjects } from './in-flight.js';
import { JobIds, type ManualRegion, type ObjectJob } from './jobs.js';
import { observeAll, type PipelineObserver, type PipelineOptions, type PipelineParts } from './parts.js';
import { ProfileRegistry, type ProfileChoice } from './profiles.js';
import { Quarantine } from './quarantine.js';
import type { JobData, JobQueue, StageCounts } from './queue/types.js';
import type { DiskGuard } from './readiness.js';
import { ReviewQueue } from './review.js';
import { ReviewDesk } from './review-desk.js';
import { stageList } from './stage-list.js';
import { StageRunner } from './stage-runner.js';
import type { ClusterStatus, StatusPort } from './status/types.js';
import type { ObjectStore } from './storage.js';
import type { StudyEvent, StudyTracker } from './studies.js';

export type { PipelineObserver, PipelineOptions, StageSettings } from './parts.js';
export type { RequeueOutcome };
export type { StageName };

/** Per stage: queued and active from the queue, done, failed and throughput from the status port; all cluster-wide. */
export type StageStatus = Pick<StageCounts, 'queued' | 'active'> & { done: number; failed: number; retried: number; throughput: number };

/** How many jobs of a stage run at once when the configuration does not say. */
// The pixel stage's objects wait on the text engine threads most of the time: enough at once to keep them all busy.
const DEFAULT_CONCURRENCY: Record<StageName, number> = { filter: 2, header: 2, pixels: pixelConcurrency(), verify: 2, export: 4 };

export interface PipelineExtras {
  /** Counts and events for the whole deployment (status/); without one, status() shows queue counts only. */
  readonly status?: StatusPort;
  /** Free space on the spool's volume: below its reserve ingest refuses. */
  readonly disk?: DiskGuard;
}

/**
 * The staged pipeline of the service: the stages of stage-list.ts, each a queue worker with its own
 * concurrency. Stages never change their input: each writes its output under a key derived from the
 * input hash and the configuration hash, so a retry after a crash finds or recomputes the identical
 * result. Admission (admission.ts) takes objects in; the stage runner (stage-runner.ts) takes them
 * through; the status port (status/) counts how it goes, for every process of the deployment.
 */
export class Pipeline {
  readonly quarantine: Quarantine;
  /** Objects held before export for a reviewer, and the reviewer's decisions (the console). */
  readonly review: ReviewDesk;
  /** Where each object ended, with its new identity (the console's studies). */
  readonly catalog: ObjectCatalog;
  readonly statusPort?: StatusPort;
  private readonly parts: PipelineParts;
  private readonly admission: Admission;
  private readonly runner: StageRunner;
  private readonly processing = new Set<StageName>();
  private started = false;

  constructor(
    opts: PipelineOptions,
    store: ObjectStore,
    queue: JobQueue,
    tracker: StudyTracker,
    secret: Uint8Array,
    log: Logger,
    observer?: PipelineObserver,
    extras: PipelineExtras = {},
  ) {
    this.statusPort = extras.status;
    const observers = observeAll(observer, extras.status);
    this.quarantine = new Quarantine(store, (change) => observers.quarantineChanged?.(change));
    const hasFilter = opts.stages.some((s) => s.name === 'filter');
    const hasPixels = opts.stages.some((s) => s.name === 'pixels');
    const listFor = (profile: CompiledProfile) => stageList({ profile, filter: hasFilter, pixels: hasPixels });
    const profiles = new ProfileRegistry(secret, opts.profile);
    this.parts = {
      opts,
      get list() {
        return listFor(profiles.current.profile);
      },
      listFor,
      profiles,
      store,
      queue,
      quarantine: this.quarantine,
      review: new ReviewQueue(store),
      catalog: new ObjectCatalog(store),
      jobs: new JobIds(listFor(opts.profile)[0]!),
      objects: new InFlightObjects(store, secret, () => ({ maxBytes: this.parts.opts.maxObjectBytes })),
      secret,
      log,
      observer: observers,
      disk: extras.disk,
      record: async (study: string, event: StudyEvent, object: string) => {
        try {
          const now = await tracker.record(study, event, object);
          if (now) observers.studyChanged?.(now);
        } catch (e) {
          log.warn({ study, event, err: (e as Error).name }, 'study tracking failed');
        }
      },
      ensureStage: (stage) => this.process(stage),
    };
    this.catalog = this.parts.catalog;
    this.admission = new Admission(this.parts);
    this.runner = new StageRunner(this.parts);
    this.review = new ReviewDesk(this.parts);
  }

  get stageNames(): readonly StageName[] {
    return this.parts.list;
  }

  /** The profile new objects get. */
  get profile(): CompiledProfile {
    return this.parts.profiles.current.profile;
  }

  /** How the configured profile is named (for a requeue that changes only the options). */
  get profileChoice(): ProfileChoice {
    return this.parts.opts.choice ?? { profile: this.profile.name, options: [...this.profile.options] };
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

  /**
   * Requeues a quarantined object (see Admission.requeue); a bad `choice` throws its coded profile
   * error. With `regions` (drawn in the console) the pixel stage masks them too.
   */
  requeue(id: string, choice?: ProfileChoice, regions?: readonly ManualRegion[]): Promise<RequeueOutcome | undefined> {
    return this.admission.requeue(id, choice, regions);
  }

  /**
   * A reload: new objects get the new profile, filter, destinations and retry settings; objects in
   * flight finish under the profile they started with. Stages a new profile needs start here too.
   */
  reconfigure(opts: PipelineOptions): void {
    this.parts.opts = opts;
    this.parts.profiles.setCurrent(opts.profile);
    if (this.started) for (const s of this.parts.list) this.process(s);
  }

  /** Starts a queue worker for every stage. */
  start(): void {
    this.started = true;
    this.admission.runsStages = true;
    for (const name of this.parts.list) this.process(name);
  }

  private process(name: StageName): void {
    if (!this.started || this.processing.has(name)) return;
    this.processing.add(name);
    this.admission.runsStages = true;
    const concurrency = this.parts.opts.stages.find((s) => s.name === name)?.concurrency ?? DEFAULT_CONCURRENCY[name];
    this.parts.queue.process(name, concurrency, (job, info) => this.runner.run(name, job as ObjectJob, info));
  }

  /** The whole deployment as the status port sees it (undefined without one). */
  cluster(): Promise<ClusterStatus | undefined> {
    return this.statusPort ? this.statusPort.snapshot() : Promise.resolve(undefined);
  }

  /** Per stage: queued, active, done, failed, retried, and throughput (objects/s over the last minute), for the whole deployment. */
  async status(cluster?: ClusterStatus): Promise<Record<string, StageStatus>> {
    const tallies = (cluster ?? (await this.cluster()))?.stages ?? {};
    const out: Record<string, StageStatus> = {};
    for (const s of this.parts.list) {
      const c = await this.parts.queue.counts(s);
      const t = tallies[s] ?? { done: 0, failed: 0, retried: 0, throughput: 0 };
      out[s] = { queued: c.queued, active: c.active, done: t.done, failed: t.failed, retried: t.retried, throughput: t.throughput };
    }
    return out;
  }

  /** After the queue closed: jobs it kept for the next start may name outputs held in memory. */
  async close(): Promise<void> {
    await this.parts.store.flush?.();
  }
}
