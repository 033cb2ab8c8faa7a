/**
 * The composition root of `deid serve` and `deid worker`: it builds the pipeline (pipeline/assemble.ts)
 * and puts the protocols in front of it (DIMSE, HTTP, folder), then listens. No behaviour of its own.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { ServiceConfig } from './config.js';
import { createDestination } from './export/index.js';
import { buildApp } from './http/app.js';
import { Metrics } from './http/metrics.js';
import { registerStow } from './http/stow.js';
import { startDimseScp } from './ingest/dimse-scp.js';
import { watchFolder } from './ingest/folder-watch.js';
import { createLogger, type Logger } from './logger.js';
import { buildPipeline } from './pipeline/assemble.js';
import { openServiceIdMap, Submissions } from './pipeline/outcomes.js';
import { RecordLog } from './pipeline/record-log.js';
import type { Pipeline } from './pipeline/runtime.js';
import { spoolReady } from './pipeline/readiness.js';
import { FileStudyTracker, RedisStudyTracker, type StudyTracker } from './pipeline/studies.js';
import { watchStudyCompletion } from './pipeline/study-completion.js';
import { startPipelineThread } from './pipeline/thread-host.js';
import { loadOrCreateToken } from './secret.js';

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
  const { token, created } = loadOrCreateToken(path);
  if (created) log.info({ path }, 'generated an admin token for the /api routes');
  return token;
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
  const stagesHere = opts.workersOnly || (cfg.workers && opts.pipelineThread === false);
  // The map is opened where the stages run; with a pipeline thread, opened here once first, so that a
  // missing or wrong key stops start-up with its code (the thread opens its own).
  const idMap = stagesHere ? await openServiceIdMap(cfg, log) : undefined;
  if (!stagesHere && cfg.workers) await (await openServiceIdMap(cfg, log))?.close();
  const built = buildPipeline(cfg, { tracker, observer: metrics, log, cacheReads: !!opts.workersOnly || opts.pipelineThread === false, destination: createDestination, idMap });
  const { pipeline, queue } = built;
  const stages = pipeline.stageNames;
  // The ingest node owns the spool: it re-queues what a crash or power loss left without a job.
  if (!opts.workersOnly) await pipeline.reconcile();
  let stopThread: (() => Promise<void>) | undefined;
  if (stagesHere) pipeline.start();
  else if (cfg.workers) stopThread = startPipelineThread({ entry: new URL('./pipeline-thread.js', import.meta.url), cfg, pipeline, tracker, observer: metrics, log });

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
        ready: () => spoolReady(queue, stages[0]!, cfg.dataDir),
        submissions: cfg.reports.enabled ? new Submissions(new RecordLog(join(cfg.dataDir, 'records')), tracker, { kThreshold: cfg.reports.kThreshold, profile: built.profile }) : undefined,
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
    const completion = watchStudyCompletion(tracker, cfg.studies, log);
    closers.push(() => completion.close());
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
