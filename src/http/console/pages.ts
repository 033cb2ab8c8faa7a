/**
 * The console's own files and its sign-in: `GET /` is the page, `/console/*` its scripts and styles
 * (our files in console/, read once at start: nothing comes from a CDN), and `/console/session` signs
 * in with the admin token (a session cookie and a CSRF token), tells the page who is signed in, and
 * signs out. Every page answer carries a strict Content-Security-Policy.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { sendError } from '../replies.js';
import { CSRF_HEADER, type ConsoleSessions } from './session.js';

/** console/ at the package root (beside dist/ and src/). */
export const CONSOLE_ASSETS = resolve(dirname(fileURLToPath(import.meta.url)), '../../../console');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

export function securityHeaders(reply: FastifyReply): FastifyReply {
  return reply.header('Content-Security-Policy', CSP).header('X-Content-Type-Options', 'nosniff').header('Referrer-Policy', 'no-referrer').header('X-Frame-Options', 'DENY');
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export interface PagesOptions {
  readonly sessions: ConsoleSessions;
  readonly adminToken: () => string;
  readonly assetsDir?: string;
}

export function registerConsolePages(app: FastifyInstance, opts: PagesOptions): void {
  const dir = opts.assetsDir ?? CONSOLE_ASSETS;
  const assets = new Map<string, { body: Buffer; type: string }>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (type) assets.set(name, { body: readFileSync(join(dir, name)), type });
  }
  const page = assets.get('index.html');

  app.get('/', async (_req, reply) => {
    if (!page) return sendError(reply, 'DEID_ERR_NOT_FOUND', 'the console files are missing');
    return securityHeaders(reply).header('Cache-Control', 'no-cache').type(page.type).send(page.body);
  });
  app.get<{ Params: { name: string } }>('/console/:name', async (req, reply) => {
    const a = assets.get(req.params.name);
    if (!a) return sendError(reply, 'DEID_ERR_NOT_FOUND');
    return securityHeaders(reply).header('Cache-Control', 'no-cache').type(a.type).send(a.body);
  });

  app.post<{ Body: { token?: string } }>(
    '/console/session',
    { schema: { body: { type: 'object', additionalProperties: false, required: ['token'], properties: { token: { type: 'string', minLength: 1, maxLength: 512 } } } } },
    async (req, reply) => {
      // Fixed-length digests compared in constant time, as for the bearer token.
      if (!timingSafeEqual(digest(req.body.token ?? ''), digest(opts.adminToken()))) {
        req.log.warn({ remote: req.ip }, 'console sign-in refused');
        return sendError(reply, 'DEID_ERR_UNAUTHORIZED', 'wrong admin token');
      }
      const s = opts.sessions.open({ name: 'admin', role: 'admin' });
      opts.sessions.setCookie(reply, s);
      return reply.header('Cache-Control', 'no-store').send({ principal: s.principal, csrf: s.csrf });
    },
  );
  app.get('/console/session', async (req, reply) => {
    const s = opts.sessions.of(req);
    reply.header('Cache-Control', 'no-store');
    return s ? { principal: s.principal, csrf: s.csrf } : sendError(reply, 'DEID_ERR_UNAUTHORIZED', 'not signed in');
  });
  app.delete('/console/session', async (req, reply) => {
    const s = opts.sessions.of(req);
    const state = opts.sessions.check(req);
    if (s && state === 'csrf') return sendError(reply, 'DEID_ERR_CSRF');
    if (s) opts.sessions.close(s.id);
    opts.sessions.clearCookie(reply);
    return reply.code(204).send();
  });
}

export { CSRF_HEADER };
