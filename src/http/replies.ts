import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ERRORS, errorSpec, type ErrorCode } from '../errors.js';

/**
 * A coded error as an HTTP answer: `{code, message, detail?}` with the catalogue's text, and the
 * catalogue's HTTP status unless the caller names another.
 */
export function sendError(reply: FastifyReply, code: ErrorCode, detail?: string, status = errorSpec(code).http): FastifyReply {
  return reply
    .code(status)
    .type('application/json')
    .send({ code, message: ERRORS[code], ...(detail ? { detail } : {}) });
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** A token as the routes read it on every request, so that a reload can change it: undefined means none is needed. */
export type TokenSource = () => string | undefined;

/**
 * Whether the request carries `Authorization: Bearer <token>`. The comparison is of fixed-length
 * digests in constant time, so that neither the token's content nor its length shows in the timing.
 */
export function bearerMatches(req: FastifyRequest, token: string): boolean {
  const m = /^Bearer[ \t]+(.+?)[ \t]*$/i.exec(req.headers.authorization ?? '');
  return !!m && timingSafeEqual(digest(m[1]), digest(token));
}
