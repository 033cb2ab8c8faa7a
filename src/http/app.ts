import Fastify, { type FastifyInstance } from 'fastify';
import type { Submissions } from '../pipeline/outcomes.js';
import type { Pipeline } from '../pipeline/runtime.js';
import type { StudyTracker } from '../pipeline/studies.js';
import type { Metrics } from './metrics.js';
import { registerRecordRoutes } from './record-routes.js';
import { bearerMatches, sendError } from './replies.js';

export interface AppOptions {
  readonly pipeline: Pipeline;
  readonly tracker: StudyTracker;
  readonly metrics: Metrics;
  /** Every /api route needs `Authorization: Bearer <adminToken>`. */
  readonly adminToken: string;
  /** Whether the service is ready to take objects (queue and spool usable). */
  readonly ready: () => Promise<boolean>;
  /** Further routes (STOW-RS) registered on the same app. */
  readonly register?: ReadonlyArray<(app: FastifyInstance) => void | Promise<void>>;
  readonly bodyLimit?: number;
  readonly logger?: boolean;
  readonly engine: string;
  /** Per-study manifests and reports, and day reports (absent when `reports.enabled` is off). */
  readonly submissions?: Submissions;
}

/**
 * The HTTP face of the service: STOW-RS (registered by the caller), the admin API, health and
 * Prometheus metrics. Only server.ts listens; tests call app.inject().
 */
export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: opts.logger ?? false, bodyLimit: opts.bodyLimit ?? 1024 * 1024 });
  const started = Date.now();

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => ((await opts.ready()) ? { status: 'ready' } : reply.code(503).send({ status: 'not ready' })));
  app.get('/metrics', async (_req, reply) => {
    const status = await opts.pipeline.status();
    for (const [stage, c] of Object.entries(status)) for (const state of ['queued', 'active'] as const) opts.metrics.queueDepth.set({ stage, state }, c[state]);
    return reply.type(opts.metrics.registry.contentType).send(await opts.metrics.registry.metrics());
  });

  await app.register(async (api) => {
    api.addHook('onRequest', async (req, reply) => {
      if (!bearerMatches(req, opts.adminToken)) {
        reply.header('WWW-Authenticate', 'Bearer realm="deid admin"');
        return sendError(reply, 'DEID_ERR_UNAUTHORIZED');
      }
    });
    api.get('/api/status', async () => ({
      engine: opts.engine,
      uptimeSeconds: Math.round((Date.now() - started) / 1000),
      stages: await opts.pipeline.status(),
    }));
    api.get('/api/studies', async () => ({ studies: await opts.tracker.list() }));
    api.get<{ Params: { id: string } }>('/api/studies/:id', async (req, reply) => {
      const s = /^[0-9a-f]{32}$/.test(req.params.id) ? await opts.tracker.get(req.params.id) : undefined;
      return s ?? sendError(reply, 'DEID_ERR_NOT_FOUND');
    });
    api.get('/api/quarantine', async () => ({ entries: await opts.pipeline.quarantine.list() }));
    api.get<{ Params: { id: string } }>('/api/quarantine/:id', async (req, reply) => {
      const e = await opts.pipeline.quarantine.get(req.params.id);
      return e ?? sendError(reply, 'DEID_ERR_NOT_FOUND');
    });
    api.get<{ Params: { id: string } }>('/api/quarantine/:id/object', async (req, reply) => {
      const e = await opts.pipeline.quarantine.get(req.params.id);
      if (!e) return sendError(reply, 'DEID_ERR_NOT_FOUND');
      return reply.type('application/dicom').send(await opts.pipeline.quarantine.object(e.id));
    });
    api.post<{ Params: { id: string } }>('/api/quarantine/:id/requeue', async (req, reply) =>
      (await opts.pipeline.requeue(req.params.id)) ? reply.code(202).send({ requeued: req.params.id }) : sendError(reply, 'DEID_ERR_NOT_FOUND'),
    );
    api.delete<{ Params: { id: string } }>('/api/quarantine/:id', async (req, reply) =>
      (await opts.pipeline.quarantine.delete(req.params.id)) ? reply.code(204).send() : sendError(reply, 'DEID_ERR_NOT_FOUND'),
    );
    registerRecordRoutes(api, opts.submissions);
  });

  for (const r of opts.register ?? []) await r(app);
  return app;
}
