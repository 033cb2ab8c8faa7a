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
  /** How often it was requeued, and when last; a requeue that failed again keeps the id and counts up. */
  readonly requeues?: number;
  readonly lastRequeuedAt?: string;
}

/** What changed in the quarantine, for the status feed (no PHI: the id is a prefix of the object's hash). */
export interface QuarantineChange {
  readonly action: 'added' | 'requeued' | 'refused' | 'removed';
  readonly id: string;
  readonly stage: string;
  readonly code: ErrorCode;
}

export interface QuarantineReasonIn {
  readonly code: ErrorCode;
  readonly detail?: string;
  readonly stage: string;
  readonly origin?: IngestSource;
  readonly study?: string;
  readonly receivedAt?: string;
  readonly requeues?: number;
}

const objectKey = (id: string) => `quarantine/${id}.dcm`;
const entryKey = (id: string) => `quarantine/${id}.json`;

/**
 * The quarantine: the original bytes plus a reason, in the object store, so nothing is ever lost. An
 * entry is listed exactly when both its object and its reason are written: a reason that cannot be
 * written (a full disk) puts the object back where it was, so the caller can try again later.
 */
export class Quarantine {
  constructor(
    private readonly store: ObjectStore,
    /** Told of every change (the status feed). */
    private readonly onChange?: (change: QuarantineChange) => void,
  ) {}

  /** Moves (or writes) the original into quarantine and records the reason. */
  async add(id: string, original: { key?: string; bytes?: Uint8Array }, reason: QuarantineReasonIn): Promise<QuarantineEntry> {
    const key = objectKey(id);
    let moved = false;
    if (original.bytes) await this.store.put(key, original.bytes, { durable: true });
    else if (original.key) {
      try {
        await this.store.rename(original.key, key);
        moved = true;
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
      ...(reason.requeues ? { requeues: reason.requeues } : {}),
    };
    try {
      await this.write(entry);
    } catch (e) {
      if (moved && original.key) await this.store.rename(key, original.key).catch(() => undefined);
      throw e;
    }
    this.onChange?.({ action: 'added', id, stage: entry.stage, code: entry.code });
    return entry;
  }

  private write(entry: QuarantineEntry): Promise<void> {
    return this.store.put(entryKey(entry.id), Buffer.from(JSON.stringify(entry, null, 2)), { durable: true });
  }

  /** A requeue that failed again: the entry stays, with its attempt counted and the latest reason. */
  async refused(id: string, reason: { code: ErrorCode; detail?: string }): Promise<QuarantineEntry | undefined> {
    const old = await this.get(id);
    if (!old) return undefined;
    const { detail: _old, ...rest } = old;
    const entry: QuarantineEntry = {
      ...rest,
      code: reason.code,
      message: ERRORS[reason.code],
      ...(reason.detail ? { detail: reason.detail } : {}),
      requeues: (old.requeues ?? 0) + 1,
      lastRequeuedAt: new Date().toISOString(),
    };
    await this.write(entry);
    this.onChange?.({ action: 'refused', id, stage: entry.stage, code: entry.code });
    return entry;
  }

  async list(): Promise<QuarantineEntry[]> {
    const keys = (await this.store.list('quarantine')).filter((k) => k.endsWith('.json'));
    const entries = await Promise.all(keys.map(async (k) => JSON.parse((await this.store.get(k)).toString('utf8')) as QuarantineEntry));
    return entries.sort((a, b) => (a.quarantinedAt < b.quarantinedAt ? 1 : -1));
  }

  /** How many entries there are now (a directory listing: no entry is read). */
  async count(): Promise<number> {
    return (await this.store.list('quarantine')).filter((k) => k.endsWith('.json')).length;
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

  /**
   * Takes the entry out of quarantine, moving the object to `toKey`, then runs `then` (queueing it); if
   * that fails, the object and the entry are put back, so an entry is never lost from the list.
   */
  async release(id: string, toKey: string, then: () => Promise<void>): Promise<QuarantineEntry | undefined> {
    const entry = await this.get(id);
    if (!entry) return undefined;
    await this.store.rename(objectKey(id), toKey);
    try {
      await then();
    } catch (e) {
      await this.store.rename(toKey, objectKey(id));
      throw e;
    }
    await this.store.delete(entryKey(id));
    this.onChange?.({ action: 'requeued', id, stage: entry.stage, code: entry.code });
    return entry;
  }

  async delete(id: string): Promise<boolean> {
    const entry = await this.get(id);
    if (!entry) return false;
    await this.store.delete(objectKey(id));
    await this.store.delete(entryKey(id));
    this.onChange?.({ action: 'removed', id, stage: entry.stage, code: entry.code });
    return true;
  }
}
