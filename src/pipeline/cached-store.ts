import { SizedCache } from './sized-cache.js';
import type { ObjectStore, PutOptions } from './storage.js';

/**
 * A read-through cache in front of an ObjectStore, for one process, which also honours `defer`: an
 * intermediate output put with it stays in memory until flush() (or a delete that makes it moot).
 * Reads that a stage job makes (after a durable stage boundary) are kept for the next ones. Bounded by bytes; writes, renames and deletes
 * keep it coherent for this process (other processes only ever add objects under new keys).
 */
export class CachedStore implements ObjectStore {
  private readonly cache: SizedCache<Buffer>;
  /** Outputs kept in memory only (putDeferred), until flushed or deleted. */
  private readonly deferred = new Map<string, Buffer>();
  private deferredBytes = 0;
  private readonly writing = new Map<string, Promise<void>>();

  constructor(
    private readonly inner: ObjectStore,
    private readonly maxBytes = 64 * 1024 * 1024,
  ) {
    this.cache = new SizedCache(maxBytes, (b) => b.length);
  }

  private remember(key: string, data: Buffer): void {
    this.cache.set(key, data);
  }

  private forget(key: string): void {
    this.cache.delete(key);
  }

  async put(key: string, data: Uint8Array, opts?: PutOptions): Promise<void> {
    if (opts?.defer) return this.putDeferred(key, data);
    this.drop(key);
    await this.inner.put(key, data, opts);
    this.remember(key, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }

  /**
   * Keeps an intermediate output in memory without writing it (written through beyond half the
   * budget). Only for an output whose next job stays in this process's memory: a crash loses both,
   * and the object starts again from the spool. flush() writes what a job leaving memory needs.
   */
  async putDeferred(key: string, data: Uint8Array): Promise<void> {
    if (this.deferredBytes + data.byteLength > this.maxBytes / 2 || this.writing.has(key)) return this.put(key, data);
    this.drop(key);
    this.forget(key);
    this.deferred.set(key, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    this.deferredBytes += data.byteLength;
  }

  /** Writes deferred outputs (the given keys, or all) to the inner store. */
  async flush(keys?: readonly string[]): Promise<void> {
    await Promise.all((keys ?? [...this.deferred.keys()]).map((k) => this.write(k)));
  }

  private write(key: string): Promise<void> {
    const running = this.writing.get(key);
    if (running) return running;
    const data = this.deferred.get(key);
    if (!data) return Promise.resolve();
    const p = this.inner
      .put(key, data)
      .then(() => {
        if (this.deferred.get(key) !== data) return; // deleted or replaced meanwhile
        this.drop(key);
        this.remember(key, data);
      })
      .finally(() => this.writing.delete(key));
    this.writing.set(key, p);
    return p;
  }

  /** Removes a deferred entry; true when it existed. */
  private drop(key: string): boolean {
    const d = this.deferred.get(key);
    if (!d) return false;
    this.deferred.delete(key);
    this.deferredBytes -= d.length;
    return true;
  }

  async get(key: string): Promise<Buffer> {
    const held = this.deferred.get(key);
    if (held) return held;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const data = await this.inner.get(key);
    this.remember(key, data);
    return data;
  }

  async rename(from: string, to: string): Promise<void> {
    await this.write(from);
    await this.inner.rename(from, to);
    const data = this.cache.get(from);
    this.forget(from);
    if (data) this.remember(to, data);
  }

  async list(prefix: string): Promise<string[]> {
    const held = [...this.deferred.keys()].filter((k) => k.startsWith(prefix));
    return held.length ? [...new Set([...(await this.inner.list(prefix)), ...held])].sort() : this.inner.list(prefix);
  }

  async prune(prefix: string): Promise<void> {
    // A deferred output under it is still to be written there.
    if ([...this.deferred.keys()].some((k) => k.startsWith(`${prefix}/`))) return;
    await this.inner.prune?.(prefix);
  }

  async delete(key: string): Promise<void> {
    this.forget(key);
    const wasDeferred = this.drop(key);
    const running = this.writing.get(key);
    if (running) await running.catch(() => undefined);
    else if (wasDeferred) return; // never written: nothing on disk
    await this.inner.delete(key);
  }
}
