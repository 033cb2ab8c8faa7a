/**
 * Builds the pipeline of a process from the service configuration: the secret, the profile, the
 * spool, the queue engine, the destinations and the stage settings. `deid serve`, `deid worker` and
 * the pipeline thread all build theirs here, and a reload (SIGHUP) rebuilds the parts that may change.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { stageConfig, type ServiceConfig } from '../config.js';
import { setSiteSignatureFile } from '../profiles/pixel-settings.js';
import { loadSecret } from '../secret.js';
import { CachedStore } from './cached-store.js';
import type { Destination } from './ports.js';
import { absoluteChoice, compileChoice } from './profiles.js';
import { createQueue } from './queue/index.js';
import type { JobQueue } from './queue/types.js';
import type { DiskGuard } from './readiness.js';
import { Pipeline, type PipelineObserver, type PipelineOptions, type StageSettings } from './runtime.js';
import type { StatusPort } from './status/types.js';
import { LocalFolderStore } from './storage.js';
import type { StudyTracker } from './studies.js';

export interface BuiltPipeline {
  readonly pipeline: Pipeline;
  readonly queue: JobQueue;
  /** Applies a reloaded configuration (validated by the caller: see pipelineOptions); old destinations close once idle. */
  reconfigure(cfg: ServiceConfig): Promise<void>;
  close(): Promise<void>;
}

export interface PipelineDeps {
  readonly tracker: StudyTracker;
  readonly observer?: PipelineObserver;
  readonly status?: StatusPort;
  readonly disk?: DiskGuard;
  readonly log: Logger;
  /** Cache reads and keep intermediate outputs in memory: for a process that runs the stages. */
  readonly cacheReads?: boolean;
  /** Makes a destination from its configured form (src/export/): the export adapters sit above the pipeline. */
  readonly destination: (spec: string, opts: { stowToken?: string; logger?: Logger }) => Destination;
}

/**
 * The pipeline's settings from the configuration: the profile read afresh from its files, and new
 * destinations. Throws the coded error of a bad profile or destination (a reload is then refused).
 */
export function pipelineOptions(cfg: ServiceConfig, deps: Pick<PipelineDeps, 'destination' | 'log'>): PipelineOptions {
  const header = stageConfig(cfg, 'header')!;
  const exporter = stageConfig(cfg, 'export')!;
  const filter = stageConfig(cfg, 'filter');
  const choice = absoluteChoice({ profile: header.profile ?? 'basic', options: header.options ?? [] });
  const profile = compileChoice(choice);
  const destinations: Destination[] = [];
  try {
    for (const d of exporter.destinations ?? []) destinations.push(deps.destination(d, { stowToken: cfg.auth.exportToken, logger: deps.log }));
  } catch (e) {
    for (const d of destinations) void d.close().catch(() => undefined);
    throw e;
  }
  // Settings per configured stage; the order, and the pixel stage that clean-pixel-data needs, are the pipeline's own.
  const stages: StageSettings[] = cfg.pipeline.map((s) => ({ name: s.stage, concurrency: s.concurrency }));
  return {
    stages,
    profile,
    choice,
    filter: { accept: filter?.accept, reject: filter?.reject },
    destinations,
    maxAttempts: exporter.maxAttempts ?? 5,
    backoffMs: exporter.backoffMs ?? 1000,
    maxBackoffMs: exporter.maxBackoffMs,
    maxObjectBytes: cfg.maxObjectBytes,
    // Embedded queue only: with BullMQ the next stage may run in another process.
    deferWork: !cfg.redis,
    review: cfg.review,
  };
}

/** Everything a process needs to run (or feed) the pipeline, from the configuration. */
export function buildPipeline(cfg: ServiceConfig, deps: PipelineDeps): BuiltPipeline {
  // The signature file the console grows: every profile of the service reads it.
  setSiteSignatureFile(join(cfg.dataDir, 'signatures.yaml'));
  const secret = loadSecret(cfg.secretFile ?? join(cfg.dataDir, 'secret'), { create: true });
  if (secret.created) deps.log.info({ path: secret.path }, 'generated a new site secret; every worker must share it');
  let opts = pipelineOptions(cfg, deps);
  const folder = new LocalFolderStore(join(cfg.dataDir, 'spool'));
  const store = deps.cacheReads ? new CachedStore(folder) : folder;
  const queue: JobQueue = createQueue({ redisUrl: cfg.redis, dir: join(cfg.dataDir, 'queue'), prefix: 'deid' });
  const pipeline = new Pipeline(opts, store, queue, deps.tracker, secret.key, deps.log, deps.observer, { status: deps.status, disk: deps.disk });
  const retired: Destination[] = [];
  return {
    pipeline,
    queue,
    async reconfigure(next) {
      const old = opts;
      opts = pipelineOptions(next, deps);
      pipeline.reconfigure(opts);
      // A send in progress finishes on the destination it started on; each closes once its queue is empty.
      for (const d of old.destinations) retired.push(d);
      await Promise.all(old.destinations.map((d) => d.close().catch(() => undefined)));
    },
    async close() {
      await queue.close();
      await pipeline.close();
      for (const d of [...opts.destinations, ...retired]) await d.close().catch(() => undefined);
    },
  };
}
