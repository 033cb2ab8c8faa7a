import { Redis } from 'ioredis';
import { DeidError } from '../errors.js';
import type { SealedRow } from './row.js';
import type { AuditEntry, MapStore } from './store.js';

/**
 * The Redis store, for Redis mode: every worker on every machine writes to one map. Each batch is one
 * MULTI/EXEC, so a batch is stored whole or not at all, and HSETNX by row id keeps a row that two
 * workers record (a retried object) once. Durability is Redis's own: run it with `appendonly yes` and
 * `appendfsync always` for rows that survive a power cut the moment they are acknowledged.
 *
 *   <prefix>:meta         hash: format, version, keyId
 *   <prefix>:rows         hash: row id → {"k": tokens, "b": sealed row}
 *   <prefix>:tok:<token>  set of row ids
 *   <prefix>:audit        stream of audit entries (XADD only)
 */
export class RedisMapStore implements MapStore {
  private readonly redis: Redis;

  constructor(url: string, private readonly prefix = 'deid:idmap') {
    // ioredis takes a socket path as it is.
    this.redis = new Redis(url.replace(/^unix:/, ''), { maxRetriesPerRequest: 3, lazyConnect: false });
  }

  private async run<T>(what: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      if (e instanceof DeidError) throw e;
      throw new DeidError('DEID_ERR_IDMAP', `${what}: ${(e as Error).name}`);
    }
  }

  private async exec(m: ReturnType<Redis['multi']>, what: string): Promise<void> {
    const res = await this.run(what, () => m.exec());
    if (!res || res.some(([err]) => err)) throw new DeidError('DEID_ERR_IDMAP', `${what}: transaction failed`);
  }

  async claimKeyId(keyId: string | undefined): Promise<string | undefined> {
    const meta = `${this.prefix}:meta`;
    if (keyId) await this.exec(this.redis.multi().hsetnx(meta, 'keyId', keyId).hsetnx(meta, 'format', 'deid-idmap').hsetnx(meta, 'version', '1'), 'creating the map');
    return (await this.run('reading the map', () => this.redis.hget(meta, 'keyId'))) ?? undefined;
  }

  async append(rows: readonly SealedRow[]): Promise<void> {
    if (rows.length === 0) return;
    const m = this.redis.multi();
    for (const r of rows) {
      m.hsetnx(`${this.prefix}:rows`, r.id, JSON.stringify({ k: r.tokens, b: r.box.toString('base64') }));
      for (const t of r.tokens) m.sadd(`${this.prefix}:tok:${t}`, r.id);
    }
    await this.exec(m, 'writing rows');
  }

  private static decode(id: string, json: string): SealedRow {
    try {
      const o = JSON.parse(json) as { k: string[]; b: string };
      return { id, tokens: o.k, box: Buffer.from(o.b, 'base64') };
    } catch {
      throw new DeidError('DEID_ERR_IDMAP_CORRUPT', `row ${id.slice(0, 12)}`);
    }
  }

  async find(token: string): Promise<SealedRow[]> {
    const ids = await this.run('looking up', () => this.redis.smembers(`${this.prefix}:tok:${token}`));
    if (ids.length === 0) return [];
    const values = await this.run('looking up', () => this.redis.hmget(`${this.prefix}:rows`, ...ids));
    return ids.flatMap((id, i) => (values[i] ? [RedisMapStore.decode(id, values[i]!)] : []));
  }

  async *scan(): AsyncIterable<SealedRow> {
    const seen = new Set<string>();
    let cursor = '0';
    do {
      const [next, flat] = await this.run('reading rows', () => this.redis.hscan(`${this.prefix}:rows`, cursor, 'COUNT', 1000));
      // HSCAN may return an entry twice while the hash grows: each id once.
      for (let i = 0; i < flat.length; i += 2) {
        if (seen.has(flat[i])) continue;
        seen.add(flat[i]);
        yield RedisMapStore.decode(flat[i], flat[i + 1]);
      }
      cursor = next;
    } while (cursor !== '0');
  }

  async audit(entry: AuditEntry): Promise<void> {
    await this.run('writing the audit log', () => this.redis.xadd(`${this.prefix}:audit`, '*', 'entry', JSON.stringify(entry)));
  }

  async *auditEntries(): AsyncIterable<AuditEntry> {
    const entries = await this.run('reading the audit log', () => this.redis.xrange(`${this.prefix}:audit`, '-', '+'));
    for (const [, fields] of entries) yield JSON.parse(fields[1]) as AuditEntry;
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
