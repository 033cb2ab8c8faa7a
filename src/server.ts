/**
 * The composition root of `deid serve` and `deid worker`: it builds the pipeline (pipeline/assemble.ts)
 * and puts the protocols in front of it (DIMSE, HTTP, folder), then listens; a reload (SIGHUP) hands
 * the new configuration to each part. No behaviour of its own.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAbsolute, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { restartOnlyChanges, stageConfig, type ServiceConfig } from './config.js';
import { createDestination } from './export/index.js';
import { buildApp } from './http/app.js';
import { ConsoleSessions } from './http/console/session.js';
import { buildWorkerApp } from './http/health.js';
import { Metrics } from './http/metrics.js';
import { registerStow } from './http/stow.js';
import { startDimseScp, type DimseScpHandle } from './ingest/dimse-scp.js';
import { watchFolder } from './ingest/folder-watch.js';
import { createLogger, setLogLevel, type Logger } from './logger.js';
import { buildPipeline } from './pipeline/assemble.js';
import { observeAll } from './pipeline/parts.js';
import { sweepStaleTemps } from './pipeline/durable-fs.js';
import { DiskGuard, spoolReady } from './pipeline/readiness.js';
import { openServiceIdMap, Submissions } from './pipeline/outcomes.js';
import { RecordLog, watchRecordRetention } from './pipeline/record-log.js';
import type { Pipeline } from './pipeline/runtime.js';
import { createStatus, workerIdentity } from './pipeline/status/index.js';
import { FileStudyTracker, RedisStudyTracker, type StudyTracker } from './pipeline/studies.js';
import { watchStudyCompletion } from './pipeline/study-completion.js';
import { startPipelineThread, type PipelineThread } from './pipeline/thread-host.js';
import { loadOrCreateToken } from './secret.js';

export interface RunningService {
  readonly dimsePort?: number;
  readonly httpPort?: number;
  readonly adminToken: string;
  readonly pipeline: Pipeline;
  readonly app?: FastifyInstance;
  /**
   * Applies a reloaded configuration: profiles, destinations, filters, tokens, log level, study
   * settings, AE titles and limits change without dropping an association or a job. Throws the coded
   * error of an invalid one, leaving the running configuration as it was; resolves to the settings
   * that differ but take effect only after a restart.
   */
  reload(next: ServiceConfig): Promise<string[]>;
  /** Stops taking new objects, finishes (or leaves safely queued) the work in flight, releases everything. */
  close(): Promise<void>;
}

export interface ServiceOptions {
  workersOnly?: boolean;
  logger?: Logger;
  /** false: run the stages on this thread (in-process tests). */
  pipelineThread?: boolean;
  /** `deid worker --http-port`: serve /healthz, /readyz and /metrics on this port (0: any free one). */
  workerHttpPort?: number;
}

/** A token of the data directory: configured, or generated once into `<dataDir>/<file>` (mode 0600). */
function tokenFor(configured: string | undefined, cfg: ServiceConfig, file: string, what: string, log: Logger): string {
  if (configured) return configured;
  const path = join(cfg.dataDir, file);
  const { token, created } = loadOrCreateToken(path);
  if (created) log.info({ path }, `generated a token for ${what}`);
  return token;
}

/** The tokens the HTTP routes check, read per request so that a reload can change them. */
function tokensFor(cfg: ServiceConfig, log: Logger): { admin: string; stow?: string; metrics?: string } {
  return {
    admin: tokenFor(cfg.auth.adminToken, cfg, 'admin-token', 'the /api routes', log),
    // STOW-RS is open only when the configuration says so in as many words.
    stow: cfg.auth.stowToken === 'none' ? undefined : tokenFor(cfg.auth.stowToken, cfg, 'stow-token', 'STOW-RS uploads', log),
    metrics: cfg.auth.metricsToken,
  };
}

/**
 * PHI on disk is for this service's user only: files 0600, folders 0700 (the spool, the quarantine,
 * the export folders, the queue). The main thread sets the umask; a worker thread may not.
 */
function restrictDataDir(dataDir: string, log: Logger): void {
  try {
    process.umask(0o077);
  } catch {
    /* not the main thread (an in-process test in a worker thread) */
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  try {
    chmodSync(dataDir, 0o700);
  } catch (e) {
    log.warn({ path: dataDir, err: (e as NodeJS.ErrnoException).code }, 'the data directory could not be made private (mode 0700)');
  }
}

/**
 * Starts the service: the pipeline workers and, unless `workersOnly`, the DIMSE SCP, HTTP (STOW-RS,
 * admin API, metrics) and the folder watcher. The same code serves `deid serve` and `deid worker`.
 */
export async function startService(cfg: ServiceConfig, opts: ServiceOptions = {}): Promise<RunningService> {
  const log = opts.logger ?? createLogger(opts.workersOnly ? 'deid-worker' : 'deid', cfg.log);
  restrictDataDir(cfg.dataDir, log);
  let live = cfg;
  // Leftovers of writes a crash interrupted (the spool, studies.json); folder destinations in the background.
  const swept = (await sweepStaleTemps(join(cfg.dataDir, 'spool'))) + (await sweepStaleTemps(cfg.dataDir, { recursive: false }));
  if (swept) log.info({ files: swept }, 'removed temporary files left by an interrupted write');
  for (const d of stageConfig(cfg, 'export')?.destinations ?? []) {
    if (isAbsolute(d)) void sweepStaleTemps(d).catch(() => undefined);
  }
  const tracker: StudyTracker = cfg.redis ? new RedisStudyTracker(cfg.redis) : new FileStudyTracker(join(cfg.dataDir, 'studies.json'), log);
  const metrics = new Metrics();
  const status = createStatus({
    redisUrl: cfg.redis,
    namespace: cfg.redis ? 'deid:status' : cfg.dataDir,
    worker: workerIdentity(opts.workersOnly ? 'worker' : 'serve', hostname()),
    onError: (e) => log.warn({ err: e.name }, 'status report failed; retrying'),
  });
  const disk = new DiskGuard(cfg.dataDir, cfg.minFreeSpace);
  const stagesHere = opts.workersOnly || (cfg.workers && opts.pipelineThread === false);
  // The map is opened where the stages run; with a pipeline thread, opened here once first, so that a
  // missing or wrong key stops start-up with its code (the thread opens its own).
  const idMap = stagesHere ? await openServiceIdMap(cfg, log) : undefined;
  if (!stagesHere && cfg.workers) await (await openServiceIdMap(cfg, log))?.close();
  const built = buildPipeline(cfg, {
    tracker,
    observer: metrics,
    status,
    disk,
    log,
    cacheReads: !!opts.workersOnly || opts.pipelineThread === false,
    destination: createDestination,
    idMap,
  });
  const { pipeline, queue } = built;
  const ready = () => spoolReady(queue, pipeline.stageNames[0]!, disk);
  // The ingest node owns the spool: it re-queues what a crash or power loss left without a job.
  if (!opts.workersOnly) await pipeline.reconcile();
  let thread: PipelineThread | undefined;
  if (stagesHere) pipeline.start();
  // What the thread reports is counted here, by this process's metrics and its status port.
  else if (cfg.workers) thread = startPipelineThread({ entry: new URL('./pipeline-thread.js', import.meta.url), cfg, pipeline, tracker, observer: observeAll(metrics, status), log });

  const closers: Array<() => Promise<void>> = [];
  let dimsePort: number | undefined;
  let httpPort: number | undefined;
  let app: FastifyInstance | undefined;
  let scp: DimseScpHandle | undefined;
  let tokens = opts.workersOnly ? { admin: '', metrics: cfg.auth.metricsToken } : tokensFor(cfg, log);
  const completion = { ...cfg.studies };

  const listen = async (a: FastifyInstance, port: number, what: string): Promise<number> => {
    await a.listen({ port, host: cfg.http.host });
    const addr = a.server.address();
    const bound = typeof addr === 'object' && addr ? addr.port : port;
    closers.push(() => a.close());
    log.info({ host: cfg.http.host, port: bound }, `HTTP listening (${what})`);
    return bound;
  };

  if (opts.workersOnly && opts.workerHttpPort !== undefined) {
    app = await buildWorkerApp({ pipeline, metrics, ready, metricsToken: () => tokens.metrics });
    httpPort = await listen(app, opts.workerHttpPort, 'health, readiness, metrics');
  }

  if (!opts.workersOnly) {
    // The object records, read here for manifests and reports, and kept within `reports.keepDays`.
    const records = cfg.reports.enabled ? new RecordLog(join(cfg.dataDir, 'records')) : undefined;
    if (cfg.dimse.enabled) {
      scp = await startDimseScp({
        host: cfg.dimse.host,
        port: cfg.dimse.port,
        aeTitle: cfg.dimse.aeTitle,
        allowedCallingAEs: cfg.dimse.allowedCallingAEs,
        checkCalledAE: cfg.dimse.checkCalledAE,
        maxObjectBytes: cfg.maxObjectBytes,
        maxPduLength: cfg.dimse.maxPduLength,
        ingest: pipeline.ingest,
        logger: log,
      });
      dimsePort = scp.port;
      const s = scp;
      closers.push(() => s.close());
    }
    if (cfg.http.enabled) {
      const sessions = new ConsoleSessions();
      app = await buildApp({
        pipeline,
        tracker,
        metrics,
        adminToken: () => tokens.admin,
        metricsToken: () => tokens.metrics,
        engine: cfg.redis ? 'bullmq' : 'embedded',
        bodyLimit: cfg.http.maxBodyBytes,
        ready,
        submissions: records ? new Submissions(records, tracker, { kThreshold: cfg.reports.kThreshold, profile: built.profile }) : undefined,
        console: {
          sessions,
          disk,
          exportFolders: () => (stageConfig(live, 'export')?.destinations ?? []).filter((d) => isAbsolute(d)),
          // A signature saved from the console: every profile compiles again with it.
          reload: () => service.reload(live),
        },
        register: [(a) => registerStow(a, { ingest: pipeline.ingest, token: () => tokens.stow, authorize: sessions.authorizes, maxBodyBytes: cfg.http.maxBodyBytes, maxObjectBytes: () => live.maxObjectBytes })],
      });
      httpPort = await listen(app, cfg.http.port, 'STOW-RS, admin API, metrics');
    }
    if (cfg.folder) {
      const w = watchFolder({ path: cfg.folder.path, settleMs: cfg.folder.settleMs, ingest: pipeline.ingest, logger: log, maxObjectBytes: () => live.maxObjectBytes });
      closers.push(() => w.close());
      log.info({ path: cfg.folder.path }, 'watching folder');
    }
    const watcher = watchStudyCompletion(tracker, completion, log, (study) => pipeline.catalog.forget(study));
    closers.push(() => watcher.close());
    if (records) {
      const retention = watchRecordRetention(records, () => live.reports.keepDays, log);
      closers.push(async () => retention.close());
    }
  }

  let closing: Promise<void> | undefined;
  const service: RunningService = {
    dimsePort,
    httpPort,
    get adminToken() {
      return tokens.admin;
    },
    pipeline,
    app,
    async reload(next) {
      // Everything that can fail comes first, so that a refused reload changes nothing.
      const nextTokens = opts.workersOnly ? { admin: '', metrics: next.auth.metricsToken } : tokensFor(next, log);
      await built.reconfigure(next);
      thread?.reload(next);
      tokens = nextTokens;
      live = next;
      setLogLevel(log, next.log.level);
      scp?.reconfigure({ aeTitle: next.dimse.aeTitle, allowedCallingAEs: next.dimse.allowedCallingAEs, checkCalledAE: next.dimse.checkCalledAE, maxObjectBytes: next.maxObjectBytes });
      Object.assign(completion, { webhook: undefined }, next.studies);
      disk.setReserve(next.minFreeSpace);
      return restartOnlyChanges(cfg, next);
    },
    close() {
      closing ??= (async () => {
        // Ingest first, so nothing new arrives; then the queue waits for the jobs in flight.
        for (const c of closers) await c().catch((e) => log.warn({ err: (e as Error).name }, 'close failed'));
        if (thread) await thread.stop();
        await built.close();
        await tracker.close();
        await status.close();
        log.info('stopped');
      })();
      return closing;
    },
  };
  return service;
}
