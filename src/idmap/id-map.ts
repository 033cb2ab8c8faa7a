import { hostname, userInfo } from 'node:os';
import { resolve } from 'node:path';
import { DeidError } from '../errors.js';
import { FileMapStore } from './file-store.js';
import { assertKeyOutsideMap, deriveMapKeys, type MapKeys, type ReidKey } from './key.js';
import { MAP_FIELDS, Tokenizer, openRow, sealRow, type MapField, type MapRow, type SealedRow, type TokenKind } from './row.js';
import type { AuditEntry, MapStore } from './store.js';

/** What the pipeline knows about one object when it records it (see `identityFacts`). */
export interface MapRowInput {
  readonly original: Partial<Record<MapField, string>>;
  readonly new: Partial<Record<MapField, string>>;
  readonly dateOffsetDays?: number;
  /** When the object was de-identified (default: now). */
  readonly at?: Date;
}

/** One answer of a lookup: the identifier on the other side, and how many objects carry the pair. */
export interface ReidMatch {
  readonly field: MapField;
  readonly value: string;
  readonly objects: number;
  /** The patient's date offset, for a PatientID match when dates were shifted. */
  readonly dateOffsetDays?: number;
}

export interface OpenIdMapOptions {
  readonly key: ReidKey;
  /** Writers create a missing map; readers (reid, export) are refused one (DEID_ERR_IDMAP). */
  readonly create?: boolean;
  /** Who is asking, for the audit log (default `$DEID_REID_ACTOR`, else user@host). */
  readonly actor?: string;
  /** Key prefix in Redis (default `deid:idmap`). */
  readonly redisPrefix?: string;
  /**
   * File store: fsync every batch (default), so that `record` resolves once its row is on disk; or
   * false, fsync when the map closes (`record` resolves once its row is written, as safe as the
   * page cache until then). Redis: as the server is configured.
   */
  readonly syncEachBatch?: boolean;
}

/** Rows per write: one fdatasync (or one MULTI/EXEC) each. */
const MAX_BATCH = 1000;

/** A Redis server: a `redis://` or `rediss://` URL, or `unix:<socket path>`. */
export const isRedisLocation = (location: string): boolean => /^(rediss?:\/\/|unix:)/.test(location);

function defaultActor(): string {
  if (process.env.DEID_REID_ACTOR) return process.env.DEID_REID_ACTOR;
  try {
    return `${userInfo().username}@${hostname()}`;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}@${hostname()}`;
  }
}

/**
 * Seals map rows under a re-identification key. Any thread that holds the key can seal its own
 * objects' rows, so that the one thread that writes the map only writes (`IdMap.recordSealed`).
 */
export class RowSealer {
  /** The lookup tokens, memoised (a lookup uses them too). */
  readonly tokens: Tokenizer;

  constructor(readonly keys: MapKeys) {
    this.tokens = new Tokenizer(keys.index);
  }

  static fromKey(key: Buffer): RowSealer {
    return new RowSealer(deriveMapKeys(key));
  }

  seal(input: MapRowInput, at = new Date().toISOString()): SealedRow {
    return sealRow({ ...input, at: input.at?.toISOString() ?? at }, this.keys, this.tokens);
  }
}

/** Rows waiting to be written, and who waits for them. */
interface Pending {
  readonly rows: readonly SealedRow[];
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

/**
 * The re-identification map: records per object the original and new identifiers, sealed under the
 * re-identification key, and answers lookups (audited) for those who hold the key.
 *
 * Recording is a group commit: rows recorded while a write is in flight go into the next write, so
 * one fdatasync serves many objects and the pipeline never waits for a disk round trip per object,
 * yet `record` resolves only once its row is durable: acknowledge an object only after that. A caller
 * that has a batch of objects at once (`deid run`) has them sealed where they were processed
 * (`RowSealer`) and records them with `recordSealed`, written at once.
 *
 * ```ts
 * const map = await IdMap.open('/var/lib/deid/idmap', { key: loadReidKey({ create: true }), create: true });
 * await map.record(identityFacts(source.dataset, header.file.dataset, header.report.dateOffsetDays));
 * await map.close();
 * ```
 */
export class IdMap {
  private readonly sealer: RowSealer;
  private pending: Pending[] = [];
  private writing?: Promise<void>;

  private constructor(
    private readonly store: MapStore,
    private readonly keys: MapKeys,
    private readonly actor: string,
  ) {
    this.sealer = new RowSealer(keys);
  }

  /** Opens the map at a folder or a `redis://` URL, and refuses a key that is not the map's own. */
  static async open(location: string, opts: OpenIdMapOptions): Promise<IdMap> {
    let store: MapStore;
    // Loaded only in Redis mode: a file map never pays for ioredis.
    if (isRedisLocation(location)) store = new (await import('./redis-store.js')).RedisMapStore(location, opts.redisPrefix);
    else {
      assertKeyOutsideMap(opts.key, location);
      store = new FileMapStore(resolve(location), opts.syncEachBatch ?? true);
    }
    try {
      const keys = deriveMapKeys(opts.key.key);
      const keyId = await store.claimKeyId(opts.create ? keys.keyId : undefined);
      if (!keyId) throw new DeidError('DEID_ERR_IDMAP', 'no map there (it is created by the first run that records into it)');
      if (keyId !== keys.keyId) throw new DeidError('DEID_ERR_REID_KEY_MISMATCH');
      return new IdMap(store, keys, opts.actor ?? defaultActor());
    } catch (e) {
      await store.close().catch(() => undefined);
      throw e;
    }
  }

  /** Records one object's row; resolves once the row is durable (throws DEID_ERR_IDMAP if it cannot be). */
  record(input: MapRowInput): Promise<void> {
    const written = this.enqueue([input]);
    // After this turn of the event loop, so that the rows of objects finishing together share a write.
    this.writing ??= new Promise<void>((r) => setImmediate(r)).then(() => this.drain());
    return written;
  }

  /**
   * Records rows a RowSealer sealed under this map's key (in another thread, maybe: a box that came
   * through postMessage is a Uint8Array again), written now and together; resolves once they are durable.
   */
  recordSealed(rows: readonly SealedRow[]): Promise<void> {
    if (rows.length === 0) return Promise.resolve();
    const asBuffers = rows.map((r) => {
      const box = r.box as Uint8Array;
      return Buffer.isBuffer(box) ? r : { ...r, box: Buffer.from(box.buffer, box.byteOffset, box.byteLength) };
    });
    const written = new Promise<void>((resolve, reject) => this.pending.push({ rows: asBuffers, resolve, reject }));
    this.writing ??= this.drain();
    return written;
  }

  private enqueue(inputs: readonly MapRowInput[]): Promise<void> {
    const at = new Date().toISOString();
    const rows = inputs.map((input) => this.sealer.seal(input, at));
    return new Promise<void>((resolve, reject) => this.pending.push({ rows, resolve, reject }));
  }

  private async drain(): Promise<void> {
    while (this.pending.length) {
      // Whole entries, up to about MAX_BATCH rows.
      let n = 0;
      let rows = 0;
      while (n < this.pending.length && (n === 0 || rows + this.pending[n].rows.length <= MAX_BATCH)) rows += this.pending[n++].rows.length;
      const batch = this.pending.splice(0, n);
      try {
        await this.store.append(batch.length === 1 ? batch[0].rows : batch.flatMap((p) => p.rows));
        for (const p of batch) p.resolve();
      } catch (e) {
        for (const p of batch) p.reject(e);
      }
    }
    this.writing = undefined;
  }

  /** Waits until every row recorded so far is written (or has failed, which its own promise reports). */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /** The originals behind a new identifier (a pseudonym or a new UID). Audited. */
  lookupNew(value: string): Promise<ReidMatch[]> {
    return this.lookup('new', value);
  }

  /** The pseudonyms and new UIDs of an original identifier. Audited. */
  lookupOriginal(value: string): Promise<ReidMatch[]> {
    return this.lookup('orig', value);
  }

  private async lookup(kind: TokenKind, value: string): Promise<ReidMatch[]> {
    const query = this.sealer.tokens.token(kind, value);
    // Audited before anything is read: a lookup that could not be logged does not happen.
    await this.audit(kind === 'new' ? 'reid-new' : 'reid-original', query);
    const rows = (await this.store.find(query)).map((s) => openRow(s, this.keys));
    const [from, to] = kind === 'new' ? (['new', 'original'] as const) : (['original', 'new'] as const);
    const matches = new Map<string, { field: MapField; value: string; objects: number; dateOffsetDays?: number }>();
    for (const row of rows) {
      for (const field of MAP_FIELDS) {
        if (row[from][field] !== value) continue;
        const k = `${field}\0${row[to][field]}`;
        const m = matches.get(k) ?? { field, value: row[to][field], objects: 0 };
        m.objects++;
        if (field === 'PatientID' && row.dateOffsetDays !== undefined) m.dateOffsetDays = row.dateOffsetDays;
        matches.set(k, m);
      }
    }
    return [...matches.values()].sort((a, b) => MAP_FIELDS.indexOf(a.field) - MAP_FIELDS.indexOf(b.field) || (a.value < b.value ? -1 : 1));
  }

  /** Every row, opened (audited as one export). Fails whole on a row that does not open. */
  async *rows(): AsyncIterable<MapRow> {
    await this.audit('export');
    for await (const s of this.store.scan()) yield openRow(s, this.keys);
  }

  private audit(action: AuditEntry['action'], query?: string): Promise<void> {
    return this.store.audit({ at: new Date().toISOString(), actor: this.actor, action, ...(query ? { query } : {}), pid: process.pid });
  }

  /** The audit log, oldest first. */
  auditEntries(): AsyncIterable<AuditEntry> {
    return this.store.auditEntries();
  }

  /** Writes what is pending, then releases the store. */
  async close(): Promise<void> {
    await this.flush();
    await this.store.close();
  }
}
