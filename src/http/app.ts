import Fastify, { type FastifyInstance } from 'fastify';
import { isDeidError } from '../errors.js';
import type { ProfileChoice } from '../pipeline/profiles.js';
import type { Submissions } from '../pipeline/outcomes.js';
import type { Pipeline } from '../pipeline/runtime.js';
import type { StudyTracker } from '../pipeline/studies.js';
import { registerConsoleApi, type ConsoleApiOptions } from './console/api.js';
import { registerConsolePages } from './console/pages.js';
import type { ConsoleSessions } from './console/session.js';
import { registerHealth } from './health.js';
import type { Metrics } from './metrics.js';
import { registerRecordRoutes } from './record-routes.js';
import { bearerMatches, sendError, type TokenSource } from './replies.js';

export interface AppOptions {
  readonly pipeline: Pipeline;
  readonly tracker: StudyTracker;
  readonly metrics: Metrics;
  /** Every /api route needs `Authorization: Bearer <adminToken>` (a function: read per request, so a reload can change it). */
  readonly adminToken: string | (() => string);
  /** When it gives a token, /metrics needs it too. */
  readonly metricsToken?: TokenSource;
  /** Whether the service is ready to take objects (queue and spool usable). */
  readonly ready: () => Promise<boolean>;
  /** Further routes (STOW-RS) registered on the same app. */
  readonly register?: ReadonlyArray<(app: FastifyInstance) => void | Promise<void>>;
  readonly bodyLimit?: number;
  readonly logger?: boolean;
  readonly engine: string;
  /** Per-study manifests and reports, and day reports (absent when `reports.enabled` is off). */
  readonly submissions?: Submissions;
  /** The web console at / (src/http/console/): its sessions also open the /api routes. */
  readonly console?: Pick<ConsoleApiOptions, 'disk' | 'exportFolders' | 'reload'> & { readonly sessions: ConsoleSessions };
}

/**
 * The HTTP face of the service: STOW-RS (registered by the caller), the admin API, health and
 * Prometheus metrics. Only server.ts listens; tests call app.inject().
 */
export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: opts.logger ?? false, bodyLimit: opts.bodyLimit ?? 1024 * 1024 });
  const started = Date.now();

  const adminToken = typeof opts.adminToken === 'string' ? () => opts.adminToken as string : opts.adminToken;
  registerHealth(app, { pipeline: opts.pipeline, metrics: opts.metrics, ready: opts.ready, metricsToken: opts.metricsToken });

  await app.register(async (api) => {
    api.addHook('onRequest', async (req, reply) => {
      if (bearerMatches(req, adminToken())) return;
      const session = opts.console?.sessions.check(req);
      if (session === 'csrf') return sendError(reply, 'DEID_ERR_CSRF');
      if (session !== 'ok') {
        reply.header('WWW-Authenticate', 'Bearer realm="deid admin"');
        return sendError(reply, 'DEID_ERR_UNAUTHORIZED');
      }
    });
    api.setErrorHandler((err: Error & { validation?: unknown; statusCode?: number; code?: string }, req, reply) => {
      if (isDeidError(err)) return sendError(reply, err.code, err.detail);
      if (err.validation) return sendError(reply, 'DEID_ERR_BAD_REQUEST', err.message);
      // The framework's own refusals of a request (an empty or malformed JSON body, a wrong content
      // type) are the caller's error; named by code only, as a parser's message may quote the body.
      if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) return sendError(reply, 'DEID_ERR_BAD_REQUEST', err.code ?? `HTTP ${err.statusCode}`);
      req.log.error({ err: err.name }, 'admin request failed');
      return sendError(reply, 'DEID_ERR_INTERNAL');
    });
    // The whole deployment: per stage (queue counts, done, failed, throughput), per worker, ingest by source, quarantines by code.
    const status = async () => {
      const cluster = await opts.pipeline.cluster();
      return {
        engine: opts.engine,
        uptimeSeconds: Math.round((Date.now() - started) / 1000),
        stages: await opts.pipeline.status(cluster),
        ...(cluster ? { workers: cluster.workers, ingest: cluster.ingest, quarantined: cluster.quarantined, recentErrors: cluster.recentErrors, history: cluster.history } : {}),
      };
    };
    api.get('/api/status', status);
    if (opts.console) {
      const feed = registerConsoleApi(api, { ...opts.console, pipeline: opts.pipeline, tracker: opts.tracker, status });
      // Live feeds would hold the server open.
      app.addHook('preClose', async () => feed.close());
    }
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
    // Body (optional): {"profile": "<name or file>", "options": ["..."]} to process the object under another profile.
    api.post<{ Params: { id: string }; Body: { profile?: string; options?: string[] } | undefined }>(
      '/api/quarantine/:id/requeue',
      { schema: { body: REQUEUE_BODY } },
      async (req, reply) => {
        const body = req.body ?? {};
        const configured = opts.pipeline.profileChoice;
        const choice: ProfileChoice | undefined =
          body.profile !== undefined || body.options !== undefined
            ? { profile: body.profile ?? configured.profile, options: body.options ?? (body.profile !== undefined ? [] : configured.options) }
            : undefined;
        const outcome = await opts.pipeline.requeue(req.params.id, choice);
        if (!outcome) return sendError(reply, 'DEID_ERR_NOT_FOUND');
        // Still unreadable: the entry stays in quarantine (same id, one more attempt) and the caller hears why.
        if (!outcome.ok) return sendError(reply, outcome.code, outcome.detail, 409);
        return reply.code(202).send({ requeued: req.params.id, profile: outcome.profile, options: outcome.options });
      },
    );
    api.delete<{ Params: { id: string } }>('/api/quarantine/:id', async (req, reply) =>
      (await opts.pipeline.quarantine.delete(req.params.id)) ? reply.code(204).send() : sendError(reply, 'DEID_ERR_NOT_FOUND'),
    );
    registerRecordRoutes(api, opts.submissions);
  });

  if (opts.console) registerConsolePages(app, { sessions: opts.console.sessions, adminToken });
  for (const r of opts.register ?? []) await r(app);
  return app;
}

const REQUEUE_BODY = {
  anyOf: [
    { type: 'null' },
    {
      type: 'object',
      additionalProperties: false,
      properties: { profile: { type: 'string', minLength: 1, maxLength: 4096 }, options: { type: 'array', maxItems: 32, items: { type: 'string', maxLength: 64 } } },
    },
  ],
} as const;
