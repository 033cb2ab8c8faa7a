/**
 * Builds the pipeline of a process from the service configuration: the secret, the profile, the
 * spool, the queue engine, the destinations and the stage settings. `deid serve`, `deid worker` and
 * the pipeline thread all build theirs here.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { stageConfig, type ServiceConfig } from '../config.js';
import type { IdMap } from '../idmap/index.js';
import type { CompiledProfile } from '../profiles/compile.js';
import { loadProfile } from '../profiles/profile.js';
import { loadSecret } from '../secret.js';
import { CachedStore } from './cached-store.js';
import { ObjectOutcomes } from './outcomes.js';
import type { Destination } from './ports.js';
import { createQueue } from './queue/index.js';
import type { JobQueue } from './queue/types.js';
import { RecordLog } from './record-log.js';
import { Pipeline, type PipelineObserver, type StageSettings } from './runtime.js';
import { LocalFolderStore } from './storage.js';
import type { StudyTracker } from './studies.js';

export interface BuiltPipeline {
  readonly pipeline: Pipeline;
  readonly queue: JobQueue;
  readonly profile: CompiledProfile;
  close(): Promise<void>;
}

export interface PipelineDeps {
  readonly tracker: StudyTracker;
  readonly observer?: PipelineObserver;
  readonly log: Logger;
  /** Cache reads and keep intermediate outputs in memory: for a process that runs the stages. */
  readonly cacheReads?: boolean;
  /** Makes a destination from its configured form (src/export/): the export adapters sit above the pipeline. */
  readonly destination: (spec: string, opts: { stowToken?: string }) => Destination;
  /** The re-identification map this process records into (outcomes.ts: openServiceIdMap); closed with the pipeline. */
  readonly idMap?: IdMap;
}

/** Everything a process needs to run (or feed) the pipeline, from the configuration. */
export function buildPipeline(cfg: ServiceConfig, deps: PipelineDeps): BuiltPipeline {
  const secret = loadSecret(cfg.secretFile ?? join(cfg.dataDir, 'secret'), { create: true });
  if (secret.created) deps.log.info({ path: secret.path }, 'generated a new site secret; every worker must share it');
  const header = stageConfig(cfg, 'header')!;
  const exporter = stageConfig(cfg, 'export')!;
  const filter = stageConfig(cfg, 'filter');
  const profile = loadProfile(header.profile ?? 'basic', header.options ?? []);
  const destinations = (exporter.destinations ?? []).map((d) => deps.destination(d, { stowToken: cfg.auth.exportToken }));
  const folder = new LocalFolderStore(join(cfg.dataDir, 'spool'));
  const store = deps.cacheReads ? new CachedStore(folder) : folder;
  const queue: JobQueue = createQueue({ redisUrl: cfg.redis, dir: join(cfg.dataDir, 'queue'), prefix: 'deid' });
  // Settings per configured stage; the order, and the pixel stage that clean-pixel-data needs, are the pipeline's own.
  const stages: StageSettings[] = cfg.pipeline.map((s) => ({ name: s.stage, concurrency: s.concurrency }));
  const records = cfg.reports.enabled ? new RecordLog(join(cfg.dataDir, 'records')) : undefined;
  const outcomes = records || deps.idMap ? new ObjectOutcomes({ profile, secret: secret.key, idMap: deps.idMap, records }) : undefined;
  const pipeline = new Pipeline(
    {
      stages,
      profile,
      filter: { accept: filter?.accept, reject: filter?.reject },
      destinations,
      maxAttempts: exporter.maxAttempts ?? 5,
      backoffMs: exporter.backoffMs ?? 1000,
      maxObjectBytes: cfg.maxObjectBytes,
      // Embedded queue only: with BullMQ the next stage may run in another process.
      deferWork: !cfg.redis,
      outcomes,
    },
    store,
    queue,
    deps.tracker,
    secret.key,
    deps.log,
    deps.observer,
  );
  return {
    pipeline,
    queue,
    profile,
    async close() {
      await queue.close();
      await pipeline.close();
      for (const d of destinations) await d.close().catch(() => undefined);
      await outcomes?.close();
    },
  };
}
