/**
 * Builds the pipeline of a process from the service configuration: the secret, the profile, the
 * spool, the queue engine, the destinations and the stage settings. `deid serve`, `deid worker` and
 * the pipeline thread all build theirs here, and a reload (SIGHUP) rebuilds the parts that may change.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { stageConfig, type ServiceConfig } from '../config.js';
import { DeidError } from '../errors.js';
import type { IdMap } from '../idmap/index.js';
import type { CompiledProfile } from '../profiles/compile.js';
import { describeKept } from '../profiles/kept-identifiers.js';
import { withKeptIdentifiers } from '../profiles/profile.js';
import { setSiteSignatureFile } from '../profiles/pixel-settings.js';
import { loadSecret } from '../secret.js';
import { CachedStore } from './cached-store.js';
import { ObjectOutcomes } from './outcomes.js';
import type { Destination } from './ports.js';
import { absoluteChoice, compileChoice } from './profiles.js';
import { createQueue } from './queue/index.js';
import type { JobQueue } from './queue/types.js';
import type { DiskGuard } from './readiness.js';
import { RecordLog } from './record-log.js';
import { Pipeline, type PipelineObserver, type PipelineOptions, type StageSettings } from './runtime.js';
import type { StatusPort } from './status/types.js';
import { LocalFolderStore } from './storage.js';
import type { StudyTracker } from './studies.js';

export interface BuiltPipeline {
  readonly pipeline: Pipeline;
  readonly queue: JobQueue;
  /** The profile in force (the latest reload's). */
  readonly profile: CompiledProfile;
  /**
   * Applies a reloaded configuration: throws (changing nothing) when it does not validate; old
   * destinations close once idle. `profile`: the one the main thread compiled, so both threads agree.
   */
  reconfigure(cfg: ServiceConfig, profile?: CompiledProfile): Promise<void>;
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
  /** The profile compiled by another thread of this process (the pipeline thread gets the main thread's). */
  readonly profile?: CompiledProfile;
  /** The re-identification map this process records into (outcomes.ts: openServiceIdMap); closed with the pipeline. */
  readonly idMap?: IdMap;
}

/**
 * A profile freshly compiled for the service: what it keeps that Table E.1-1 removes or replaces is
 * logged once (here, not in the thread that is handed the compiled profile), or refused in strict mode.
 */
function checkedProfile(compiled: CompiledProfile, strict: boolean, log: Logger): CompiledProfile {
  const profile = withKeptIdentifiers(compiled);
  const kept = (profile.keptIdentifiers ?? []).map(describeKept);
  if (kept.length && strict) throw new DeidError('DEID_ERR_PROFILE_KEEPS_IDENTIFIERS', `${profile.name}: ${kept.join('; ')}`.slice(0, 2000));
  if (kept.length) log.warn({ profile: profile.name, kept }, 'the profile keeps attributes that PS3.15 Table E.1-1 removes or replaces');
  return profile;
}

/**
 * The pipeline's settings from the configuration: the profile read afresh from its files, and new
 * destinations. Throws the coded error of a bad profile or destination (a reload is then refused).
 */
export function pipelineOptions(cfg: ServiceConfig, deps: Pick<PipelineDeps, 'destination' | 'log'>, compiled?: CompiledProfile, outcomes?: ObjectOutcomes): PipelineOptions {
  const header = stageConfig(cfg, 'header')!;
  const exporter = stageConfig(cfg, 'export')!;
  const filter = stageConfig(cfg, 'filter');
  const choice = absoluteChoice({ profile: header.profile ?? 'basic', options: header.options ?? [] });
  const profile = compiled ?? checkedProfile(compileChoice(choice), cfg.strict, deps.log);
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
    outcomes,
    review: cfg.review,
  };
}

/** Everything a process needs to run (or feed) the pipeline, from the configuration. */
export function buildPipeline(cfg: ServiceConfig, deps: PipelineDeps): BuiltPipeline {
  // The signature file the console grows: every profile of the service reads it.
  setSiteSignatureFile(join(cfg.dataDir, 'signatures.yaml'));
  const secret = loadSecret(cfg.secretFile ?? join(cfg.dataDir, 'secret'), { create: true });
  if (secret.created) deps.log.info({ path: secret.path }, 'generated a new site secret; every worker must share it');
  let opts = pipelineOptions(cfg, deps, deps.profile);
  // The records and the map are opened once; a reload keeps them (the records name the profile each object had).
  const records = cfg.reports.enabled ? new RecordLog(join(cfg.dataDir, 'records')) : undefined;
  const outcomes = records || deps.idMap ? new ObjectOutcomes({ secret: secret.key, idMap: deps.idMap, records }) : undefined;
  opts = { ...opts, outcomes };
  const folder = new LocalFolderStore(join(cfg.dataDir, 'spool'));
  const store = deps.cacheReads ? new CachedStore(folder) : folder;
  const queue: JobQueue = createQueue({ redisUrl: cfg.redis, dir: join(cfg.dataDir, 'queue'), prefix: 'deid' });
  const pipeline = new Pipeline(opts, store, queue, deps.tracker, secret.key, deps.log, deps.observer, { status: deps.status, disk: deps.disk });
  const retired: Destination[] = [];
  return {
    pipeline,
    queue,
    get profile() {
      return opts.profile;
    },
    async reconfigure(next, profile) {
      const old = opts;
      opts = pipelineOptions(next, deps, profile, outcomes);
      pipeline.reconfigure(opts);
      // A send in progress finishes on the destination it started on; each closes once its queue is empty.
      for (const d of old.destinations) retired.push(d);
      await Promise.all(old.destinations.map((d) => d.close().catch(() => undefined)));
    },
    async close() {
      await queue.close();
      await pipeline.close();
      for (const d of [...opts.destinations, ...retired]) await d.close().catch(() => undefined);
      await outcomes?.close();
    },
  };
}
