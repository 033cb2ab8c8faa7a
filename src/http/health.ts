/**
 * Health, readiness and Prometheus metrics: served by `deid serve` next to the admin API, and by
 * `deid worker --http-port` on their own (buildWorkerApp).
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Pipeline } from '../pipeline/runtime.js';
import type { Metrics } from './metrics.js';
import { bearerMatches, sendError, type TokenSource } from './replies.js';

export interface HealthOptions {
  readonly pipeline: Pipeline;
  readonly metrics: Metrics;
  /** Whether the process can take work (queue answers, spool has room). */
  readonly ready: () => Promise<boolean>;
  /** When it gives a token, /metrics needs `Authorization: Bearer <token>`. */
  readonly metricsToken?: TokenSource;
}

export function registerHealth(app: FastifyInstance, opts: HealthOptions): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => ((await opts.ready()) ? { status: 'ready' } : reply.code(503).send({ status: 'not ready' })));
  app.get('/metrics', async (req, reply) => {
    const token = opts.metricsToken?.();
    if (token !== undefined && !bearerMatches(req, token)) {
      reply.header('WWW-Authenticate', 'Bearer realm="deid metrics"');
      return sendError(reply, 'DEID_ERR_UNAUTHORIZED');
    }
    const cluster = await opts.pipeline.cluster();
    opts.metrics.observeDeployment(await opts.pipeline.status(cluster), cluster);
    return reply.type(opts.metrics.registry.contentType).send(await opts.metrics.registry.metrics());
  });
}

/** A worker's HTTP face: /healthz, /readyz and /metrics only. */
export async function buildWorkerApp(opts: HealthOptions & { readonly logger?: boolean }): Promise<FastifyInstance> {
  const app = Fastify({ logger: opts.logger ?? false });
  registerHealth(app, opts);
  return app;
}
