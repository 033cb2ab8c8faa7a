import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { stageConfig, type ServiceConfig } from './config.js';
import { createDestination } from './export/index.js';
import { buildApp } from './http/app.js';
import { Metrics } from './http/metrics.js';
import { registerStow } from './http/stow.js';
import { startDimseScp } from './ingest/dimse-scp.js';
import { watchFolder } from './ingest/folder-watch.js';
import { createLogger, type Logger } from './logger.js';
import { createQueue } from './pipeline/queue/index.js';
import type { JobQueue } from './pipeline/queue/types.js';
import { Pipeline, type PipelineObserver, type StageName, type StageSettings } from './pipeline/runtime.js';
import type { MainMessage, ThreadMessage } from './pipeline-thread.js';
import { Worker } from 'node:worker_threads';
import { CachedStore } from './pipeline/cached-store.js';
import { LocalFolderStore } from './pipeline/storage.js';
import { FileStudyTracker, RedisStudyTracker, type StudyRecord, type StudyTracker } from './pipeline/studies.js';
import { DeidError } from './errors.js';
import { describeKept } from './profiles/kept-identifiers.js';
import { loadProfile, withKeptIdentifiers } from './profiles/profile.js';
import { loadSecret } from './secret.js';

export interface RunningService {
  readonly dimsePort?: number;
  readonly httpPort?: number;
  readonly adminToken: string;
  readonly pipeline: Pipeline;
  readonly app?: FastifyInstance;
  /** Stops taking new objects, finishes (or leaves safely queued) the work in flight, releases everything. */
  close(): Promise<void>;
}

/** The admin token: configured, or generated once into the data directory (mode 0600). */
function adminTokenFor(cfg: ServiceConfig, log: Logger): string {
  if (cfg.auth.adminToken) return cfg.auth.adminToken;
  const path = join(cfg.dataDir, 'admin-token');
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const token = randomBytes(24).toString('base64url');
  writeFileSync(path, token + '\n', { mode: 0o600 });
  log.info({ path }, 'generated an admin token for the /api routes');
  return token;
}

async function notifyCompleted(cfg: ServiceConfig, log: Logger, s: StudyRecord): Promise<void> {
  log.info({ study: s.id, received: s.received, exported: s.exported, quarantined: s.quarantined }, 'study complete');
  if (!cfg.studies.webhook) return;
  try {
    const res = await fetch(cfg.studies.webhook, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ event: 'study.completed', study: s }),
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) log.warn({ study: s.id, status: res.status }, 'study webhook answered with an error');
  } catch (e) {
    log.warn({ study: s.id, err: (e as Error).name }, 'study webhook failed');
  }
}

/**
 * Starts the service: the pipeline workers and, unless `workersOnly`, the DIMSE SCP, HTTP (STOW-RS,
 * admin API, metrics) and the folder watcher. The same code serves `deid serve` and `deid worker`.
 */
export interface BuiltPipeline {
  readonly pipeline: Pipeline;
  readonly queue: JobQueue;
  close(): Promise<void>;
}

/** Everything a process needs to run (or feed) the pipeline, from the configuration. */
export function buildPipeline(cfg: ServiceConfig, deps: { tracker: StudyTracker; observer?: PipelineObserver; log: Logger; cacheReads?: boolean }): BuiltPipeline {
  const secret = loadSecret(cfg.secretFile ?? join(cfg.dataDir, 'secret'), { create: true });
  if (secret.created) deps.log.info({ path: secret.path }, 'generated a new site secret; every worker must share it');
  const header = stageConfig(cfg, 'header')!;
  const exporter = stageConfig(cfg, 'export')!;
  const filter = stageConfig(cfg, 'filter');
  const profile = withKeptIdentifiers(loadProfile(header.profile ?? 'basic', header.options ?? []));
  const kept = (profile.keptIdentifiers ?? []).map(describeKept);
  if (kept.length && cfg.strict) throw new DeidError('DEID_ERR_PROFILE_KEEPS_IDENTIFIERS', `${profile.name}: ${kept.join('; ')}`.slice(0, 2000));
  if (kept.length) deps.log.warn({ profile: profile.name, kept }, 'the profile keeps attributes that PS3.15 Table E.1-1 removes or replaces');
  const destinations = (exporter.destinations ?? []).map((d) => createDestination(d, { stowToken: cfg.auth.exportToken }));
  // Only the stage workers cache: their stages read the same object one after another.
  const folder = new LocalFolderStore(join(cfg.dataDir, 'spool'));
  const store = deps.cacheReads ? new CachedStore(folder) : folder;
  const queue: JobQueue = createQueue({ redisUrl: cfg.redis, dir: join(cfg.dataDir, 'queue'), prefix: 'deid' });
  const configured = cfg.pipeline.map((s) => ({ name: s.stage as StageName, concurrency: s.concurrency ?? (s.stage === 'export' ? 4 : s.stage === 'pixels' ? 1 : 2) }));
  // Clean Pixel Data without a pixel stage would pass burned-in text through: add the stage after header.
  const stages: StageSettings[] =
    profile.options.has('clean-pixel-data') && !configured.some((s) => s.name === 'pixels')
      ? configured.flatMap((s) => (s.name === 'header' ? [s, { name: 'pixels' as const, concurrency: 1 }] : [s]))
      : configured;
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
    async close() {
      await queue.close();
      await pipeline.close();
      for (const d of destinations) await d.close().catch(() => undefined);
    },
  };
}

/** Runs the pipeline workers in a worker thread: the stages get their own core, away from ingest. */
function startPipelineThread(cfg: ServiceConfig, pipeline: Pipeline, tracker: StudyTracker, metrics: Metrics, log: Logger): () => Promise<void> {
  const thread = new Worker(new URL('./pipeline-thread.js', import.meta.url), { workerData: { cfg } });
  const exited = new Promise<void>((resolve) => thread.once('exit', () => resolve()));
  let closing = false;
  thread.on('message', (m: ThreadMessage) => {
    for (const e of m.events) {
      if (e.type === 'study') void tracker.record(e.id, e.event);
      else {
        if (e.method === 'stageDone') pipeline.noteDone(e.args[0] as StageName);
        (metrics[e.method] as (...a: unknown[]) => void)(...e.args);
      }
    }
  });
  // Embedded queue: the thread is this host's stage runner, so received objects go to it directly
  // (a copy of the bytes; the sender's buffer stays the sender's).
  if (!cfg.redis) {
    pipeline.handoff = (stage, job, bytes) => {
      const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
      thread.postMessage({ type: 'job', stage, job, bytes: own } satisfies MainMessage);
    };
  }
  thread.on('error', (e) => {
    // The jobs are safe on disk; a supervisor restart picks them up again.
    log.fatal({ err: e.name }, 'pipeline thread failed; exiting');
    process.exit(70);
  });
  thread.on('exit', (code) => {
    if (!closing) {
      log.fatal({ code }, 'pipeline thread stopped unexpectedly; exiting');
      process.exit(70);
    }
  });
  return async () => {
    closing = true;
    pipeline.handoff = undefined;
    thread.postMessage('close' satisfies MainMessage);
    await exited;
  };
}

/**
 * Starts the service: the pipeline workers and, unless `workersOnly`, the DIMSE SCP, HTTP (STOW-RS,
 * admin API, metrics) and the folder watcher. The same code serves `deid serve` and `deid worker`.
 */
export async function startService(
  cfg: ServiceConfig,
  opts: { workersOnly?: boolean; logger?: Logger; /** false: run the stages on this thread (in-process tests) */ pipelineThread?: boolean } = {},
): Promise<RunningService> {
  const log = opts.logger ?? createLogger(opts.workersOnly ? 'deid-worker' : 'deid');
  mkdirSync(cfg.dataDir, { recursive: true });
  const tracker: StudyTracker = cfg.redis ? new RedisStudyTracker(cfg.redis) : new FileStudyTracker(join(cfg.dataDir, 'studies.json'));
  const metrics = new Metrics();
  const built = buildPipeline(cfg, { tracker, observer: metrics, log, cacheReads: !!opts.workersOnly || opts.pipelineThread === false });
  const { pipeline, queue } = built;
  const stages = pipeline.stageNames;
  // The ingest node owns the spool: it re-queues what a crash or power loss left without a job.
  if (!opts.workersOnly) await pipeline.reconcile();
  let stopThread: (() => Promise<void>) | undefined;
  if (opts.workersOnly || (cfg.workers && opts.pipelineThread === false)) pipeline.start();
  else if (cfg.workers) stopThread = startPipelineThread(cfg, pipeline, tracker, metrics, log);

  const closers: Array<() => Promise<void>> = [];
  let dimsePort: number | undefined;
  let httpPort: number | undefined;
  let app: FastifyInstance | undefined;
  const adminToken = opts.workersOnly ? '' : adminTokenFor(cfg, log);

  if (!opts.workersOnly) {
    if (cfg.dimse.enabled) {
      const scp = await startDimseScp({
        host: cfg.dimse.host,
        port: cfg.dimse.port,
        aeTitle: cfg.dimse.aeTitle,
        allowedCallingAEs: cfg.dimse.allowedCallingAEs,
        maxPduLength: cfg.dimse.maxPduLength,
        ingest: pipeline.ingest,
        logger: log,
      });
      dimsePort = scp.port;
      closers.push(() => scp.close());
      log.info({ port: scp.port, aeTitle: cfg.dimse.aeTitle }, 'DIMSE SCP listening');
    }
    if (cfg.http.enabled) {
      app = await buildApp({
        pipeline,
        tracker,
        metrics,
        adminToken,
        engine: cfg.redis ? 'bullmq' : 'embedded',
        bodyLimit: cfg.http.maxBodyBytes,
        ready: async () => {
          try {
            // Ready while the spool has room for objects and the queue answers.
            await queue.counts(stages[0]);
            return statfsSync(cfg.dataDir).bavail * statfsSync(cfg.dataDir).bsize > 64 * 1024 * 1024;
          } catch {
            return false;
          }
        },
        register: [(a) => registerStow(a, { ingest: pipeline.ingest, token: cfg.auth.stowToken, maxBodyBytes: cfg.http.maxBodyBytes })],
      });
      await app.listen({ port: cfg.http.port, host: cfg.http.host });
      const addr = app.server.address();
      httpPort = typeof addr === 'object' && addr ? addr.port : cfg.http.port;
      const a = app;
      closers.push(() => a.close());
      log.info({ port: httpPort }, 'HTTP listening (STOW-RS, admin API, metrics)');
    }
    if (cfg.folder) {
      const w = watchFolder({ path: cfg.folder.path, settleMs: cfg.folder.settleMs, ingest: pipeline.ingest, logger: log });
      closers.push(() => w.close());
      log.info({ path: cfg.folder.path }, 'watching folder');
    }
    const completion = setInterval(async () => {
      try {
        for (const s of await tracker.completeQuiet(cfg.studies.quietSeconds * 1000)) await notifyCompleted(cfg, log, s);
      } catch (e) {
        log.warn({ err: (e as Error).name }, 'study completion check failed');
      }
    }, Math.min(5000, Math.max(200, cfg.studies.quietSeconds * 250)));
    completion.unref();
    closers.push(async () => clearInterval(completion));
  }

  let closing: Promise<void> | undefined;
  return {
    dimsePort,
    httpPort,
    adminToken,
    pipeline,
    app,
    close() {
      closing ??= (async () => {
        // Ingest first, so nothing new arrives; then the queue waits for the jobs in flight.
        for (const c of closers) await c().catch((e) => log.warn({ err: (e as Error).name }, 'close failed'));
        if (stopThread) await stopThread();
        await built.close();
        await tracker.close();
        log.info('stopped');
      })();
      return closing;
    },
  };
}
