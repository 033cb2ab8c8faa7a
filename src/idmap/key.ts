import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, realpathSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { DeidError } from '../errors.js';

/**
 * The re-identification key: 32 random bytes, separate from the site's HMAC secret, so that the people
 * who run de-identification need not be the people who may reverse it. Every key the map uses is
 * derived from it (HKDF), so one file is all there is to guard.
 */
export interface ReidKey {
  readonly key: Buffer;
  /** The file it came from, or `$DEID_REID_KEY` (never the key itself). */
  readonly source: string;
  /** True when this call generated the key (the user should be told where it is). */
  readonly created: boolean;
}

/** The keys derived from a re-identification key, each for one purpose. */
export interface MapKeys {
  /** AES-256-GCM key of the sealed originals. */
  readonly seal: Buffer;
  /** HMAC key of the lookup tokens: an index by value that needs the key and never decrypts. */
  readonly index: Buffer;
  /** A one-way fingerprint stored in the map, so a wrong key is refused before anything is read or written. */
  readonly keyId: string;
}

export const REID_KEY_ENV = 'DEID_REID_KEY';
export const REID_KEY_FILE_ENV = 'DEID_REID_KEY_FILE';

export function defaultReidKeyPath(): string {
  if (process.env[REID_KEY_FILE_ENV]) return resolve(process.env[REID_KEY_FILE_ENV]!);
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'deid', 'reid-key');
}

function parseKey(text: string, source: string): Buffer {
  const hex = text.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new DeidError('DEID_ERR_REID_KEY', `${source} does not hold 64 hex characters`);
  return Buffer.from(hex, 'hex');
}

/**
 * Finds the re-identification key: `file` (--reid-key), else `$DEID_REID_KEY` (the key itself, hex),
 * else the file `$DEID_REID_KEY_FILE`, else `~/.config/deid/reid-key`. With `create`, a missing key file
 * is generated (mode 0600); readers never create one (a new key opens no existing map). A key file
 * that others can read is refused, as ssh refuses such a private key.
 */
export function loadReidKey(opts: { file?: string; create?: boolean } = {}): ReidKey {
  if (!opts.file && process.env[REID_KEY_ENV]) return { key: parseKey(process.env[REID_KEY_ENV]!, `$${REID_KEY_ENV}`), source: `$${REID_KEY_ENV}`, created: false };
  const p = opts.file ? resolve(opts.file) : defaultReidKeyPath();
  try {
    if (existsSync(p)) {
      if ((statSync(p).mode & 0o077) !== 0) throw new DeidError('DEID_ERR_REID_KEY', `${p} is readable by others: chmod 600 it`);
      return { key: parseKey(readFileSync(p, 'utf8'), p), source: p, created: false };
    }
    if (!opts.create) throw new DeidError('DEID_ERR_REID_KEY', `${p} does not exist`);
    mkdirSync(dirname(p), { recursive: true, mode: 0o700 });
    // Written whole beside it, then linked into place: of processes starting at once (the workers of a
    // deployment), one creates the key and the others read that one, never a half-written file.
    const tmp = `${p}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    writeFileSync(tmp, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
    let created = true;
    try {
      chmodSync(tmp, 0o600);
      linkSync(tmp, p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      created = false;
    } finally {
      unlinkSync(tmp);
    }
    return { key: parseKey(readFileSync(p, 'utf8'), p), source: p, created };
  } catch (e) {
    if (e instanceof DeidError) throw e;
    throw new DeidError('DEID_ERR_REID_KEY', `${p}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/** The nearest existing ancestor's real path joined with the rest (the map folder may not exist yet). */
function realish(p: string): string {
  let head = resolve(p);
  const tail: string[] = [];
  while (!existsSync(head) && dirname(head) !== head) {
    tail.unshift(head.slice(dirname(head).length + 1));
    head = dirname(head);
  }
  return join(realpathSync(head), ...tail);
}

/** Refuses a key file inside the map's folder: a copy of the folder must never carry its own key. */
export function assertKeyOutsideMap(key: ReidKey, mapDir: string): void {
  if (key.source.startsWith('$')) return;
  const rel = relative(realish(mapDir), realish(key.source));
  if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) throw new DeidError('DEID_ERR_REID_KEY_IN_MAP', key.source);
}

export function deriveMapKeys(key: Buffer): MapKeys {
  const derive = (purpose: string) => Buffer.from(hkdfSync('sha256', key, 'deid-idmap-v1', purpose, 32));
  return {
    seal: derive('seal aes-256-gcm'),
    index: derive('index hmac-sha256'),
    keyId: createHmac('sha256', derive('key id')).update('deid-idmap key id').digest('hex').slice(0, 32),
  };
}
