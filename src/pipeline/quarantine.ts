import { ERRORS, type ErrorCode } from '../errors.js';
import type { IngestSource } from './ports.js';
import { isNotFound, type ObjectStore } from './storage.js';

/** Why an object was stopped. Never holds a patient value: codes, stage names, hashes and times. */
export interface QuarantineEntry {
  readonly id: string;
  readonly code: ErrorCode;
  readonly message: string;
  readonly detail?: string;
  readonly stage: string;
  readonly origin?: IngestSource;
  readonly study?: string;
  readonly receivedAt?: string;
  readonly quarantinedAt: string;
  /** Store key of the original object, byte for byte as received. */
  readonly object: string;
}

const objectKey = (id: string) => `quarantine/${id}.dcm`;
const entryKey = (id: string) => `quarantine/${id}.json`;

/** The quarantine: the original bytes plus a reason, in the object store, so nothing is ever lost. */
export class Quarantine {
  constructor(private readonly store: ObjectStore) {}

  /** Moves (or writes) the original into quarantine and records the reason. */
  async add(
    id: string,
    original: { key?: string; bytes?: Uint8Array },
    reason: { code: ErrorCode; detail?: string; stage: string; origin?: IngestSource; study?: string; receivedAt?: string },
  ): Promise<QuarantineEntry> {
    const key = objectKey(id);
    if (original.bytes) await this.store.put(key, original.bytes, { durable: true });
    else if (original.key) {
      try {
        await this.store.rename(original.key, key);
      } catch (e) {
        // Already moved by an earlier attempt of the same job.
        if (!isNotFound(e)) throw e;
      }
    }
    const entry: QuarantineEntry = {
      id,
      code: reason.code,
      message: ERRORS[reason.code],
      ...(reason.detail ? { detail: reason.detail } : {}),
      stage: reason.stage,
      ...(reason.origin ? { origin: reason.origin } : {}),
      ...(reason.study ? { study: reason.study } : {}),
      ...(reason.receivedAt ? { receivedAt: reason.receivedAt } : {}),
      quarantinedAt: new Date().toISOString(),
      object: key,
    };
    await this.store.put(entryKey(id), Buffer.from(JSON.stringify(entry, null, 2)), { durable: true });
    return entry;
  }

  async list(): Promise<QuarantineEntry[]> {
    const keys = (await this.store.list('quarantine')).filter((k) => k.endsWith('.json'));
    const entries = await Promise.all(keys.map(async (k) => JSON.parse((await this.store.get(k)).toString('utf8')) as QuarantineEntry));
    return entries.sort((a, b) => (a.quarantinedAt < b.quarantinedAt ? 1 : -1));
  }

  async get(id: string): Promise<QuarantineEntry | undefined> {
    if (!/^[0-9a-f]{8,64}$/.test(id)) return undefined;
    try {
      return JSON.parse((await this.store.get(entryKey(id))).toString('utf8')) as QuarantineEntry;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async object(id: string): Promise<Buffer> {
    return this.store.get(objectKey(id));
  }

  /** Takes the entry out of quarantine, returning it and moving the object to `toKey`. */
  async release(id: string, toKey: string): Promise<QuarantineEntry | undefined> {
    const entry = await this.get(id);
    if (!entry) return undefined;
    await this.store.rename(objectKey(id), toKey);
    await this.store.delete(entryKey(id));
    return entry;
  }

  async delete(id: string): Promise<boolean> {
    const entry = await this.get(id);
    if (!entry) return false;
    await this.store.delete(objectKey(id));
    await this.store.delete(entryKey(id));
    return true;
  }
}
