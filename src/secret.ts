import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { DeidError } from './errors.js';

export interface Secret {
  readonly key: Buffer;
  readonly path: string;
  /** True when this call generated the secret (the user should be told where it is). */
  readonly created: boolean;
}

export function defaultSecretPath(): string {
  if (process.env.DEID_SECRET_FILE) return resolve(process.env.DEID_SECRET_FILE);
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'deid', 'secret');
}

/**
 * Reads the site secret that keys every UID, pseudonym and date offset. Without a path (or with
 * `create`), a missing secret is created as 32 random bytes on first use (mode 0600).
 */
export function loadSecret(path?: string, opts: { create?: boolean } = {}): Secret {
  const p = path ? resolve(path) : defaultSecretPath();
  try {
    if (existsSync(p)) {
      const text = readFileSync(p, 'utf8').trim();
      if (text.length < 16) throw new DeidError('DEID_ERR_SECRET', `${p} holds fewer than 16 characters`);
      return { key: Buffer.from(text, 'utf8'), path: p, created: false };
    }
    if (path && !opts.create) throw new DeidError('DEID_ERR_SECRET', `${p} does not exist`);
    mkdirSync(dirname(p), { recursive: true, mode: 0o700 });
    const text = randomBytes(32).toString('hex');
    writeFileSync(p, text + '\n', { mode: 0o600, flag: 'wx' });
    chmodSync(p, 0o600);
    return { key: Buffer.from(text, 'utf8'), path: p, created: true };
  } catch (e) {
    if (e instanceof DeidError) throw e;
    throw new DeidError('DEID_ERR_SECRET', `${p}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/**
 * A token for an API: read from `path`, or generated there once (mode 0600). `created` says that this
 * call made it, so that the caller can say where it is.
 */
export function loadOrCreateToken(path: string): { token: string; created: boolean } {
  if (existsSync(path)) return { token: readFileSync(path, 'utf8').trim(), created: false };
  const token = randomBytes(24).toString('base64url');
  writeFileSync(path, token + '\n', { mode: 0o600 });
  return { token, created: true };
}
