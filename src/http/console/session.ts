/**
 * Console sessions: signing in with the admin token gives a random session id in an HttpOnly,
 * SameSite=Strict cookie, and a CSRF token that every state-changing request must echo in the
 * `X-CSRF-Token` header. Sessions live in this process's memory (a restart signs everyone out) and
 * carry a principal with a role, so that later users and roles fit without changing the cookie.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

export const SESSION_COOKIE = 'deid_session';
export const CSRF_HEADER = 'x-csrf-token';

/** Who is signed in. Today the admin token is the only credential; roles are where users will go. */
export interface Principal {
  readonly name: string;
  readonly role: 'admin';
}

export interface Session {
  readonly id: string;
  readonly csrf: string;
  readonly principal: Principal;
  readonly createdAt: number;
  lastSeenAt: number;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
const sameSecret = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));

/** The value of one cookie in a Cookie header (no cookie library: one name, one rule). */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export interface SessionOptions {
  /** A session unused for this long ends (default 8 hours). */
  readonly idleMs?: number;
  /** And every session ends this long after sign-in (default 24 hours). */
  readonly maxAgeMs?: number;
  /** Send the cookie with `Secure` (behind TLS). */
  readonly secureCookie?: boolean;
}

export class ConsoleSessions {
  private readonly sessions = new Map<string, Session>();
  private readonly idleMs: number;
  private readonly maxAgeMs: number;

  constructor(private readonly opts: SessionOptions = {}) {
    this.idleMs = opts.idleMs ?? 8 * 3600_000;
    this.maxAgeMs = opts.maxAgeMs ?? 24 * 3600_000;
  }

  /** A new session for a principal whose credential the caller checked. */
  open(principal: Principal, now = Date.now()): Session {
    this.sweep(now);
    const s: Session = { id: randomBytes(32).toString('base64url'), csrf: randomBytes(32).toString('base64url'), principal, createdAt: now, lastSeenAt: now };
    this.sessions.set(s.id, s);
    return s;
  }

  /** The live session a request's cookie names, if any (its idle clock restarts). */
  of(req: FastifyRequest, now = Date.now()): Session | undefined {
    const id = cookieValue(req.headers.cookie, SESSION_COOKIE);
    if (!id || id.length > 128) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    if (now - s.lastSeenAt > this.idleMs || now - s.createdAt > this.maxAgeMs) {
      this.sessions.delete(id);
      return undefined;
    }
    s.lastSeenAt = now;
    return s;
  }

  /**
   * Whether the request is authorised by a session: a live cookie ('none' without one), and for
   * anything but GET/HEAD/OPTIONS the session's CSRF token in X-CSRF-Token ('csrf' without it).
   * SameSite=Strict already keeps other sites' requests cookie-less; the header is the second lock.
   */
  readonly check = (req: FastifyRequest): 'ok' | 'none' | 'csrf' => {
    const s = this.of(req);
    if (!s) return 'none';
    if (SAFE_METHODS.has(req.method)) return 'ok';
    const sent = req.headers[CSRF_HEADER];
    return typeof sent === 'string' && sameSecret(sent, s.csrf) ? 'ok' : 'csrf';
  };

  readonly authorizes = (req: FastifyRequest): boolean => this.check(req) === 'ok';

  close(id: string): void {
    this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }

  private sweep(now: number): void {
    for (const [id, s] of this.sessions) if (now - s.lastSeenAt > this.idleMs || now - s.createdAt > this.maxAgeMs) this.sessions.delete(id);
  }

  setCookie(reply: FastifyReply, s: Session): void {
    reply.header('Set-Cookie', `${SESSION_COOKIE}=${s.id}; Path=/; HttpOnly; SameSite=Strict${this.opts.secureCookie ? '; Secure' : ''}; Max-Age=${Math.floor(this.maxAgeMs / 1000)}`);
  }

  clearCookie(reply: FastifyReply): void {
    reply.header('Set-Cookie', `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict${this.opts.secureCookie ? '; Secure' : ''}; Max-Age=0`);
  }
}
