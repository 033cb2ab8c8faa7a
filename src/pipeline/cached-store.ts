import type { ObjectStore } from './storage.js';

/**
 * A read-through cache in front of an ObjectStore, for one process. The stages of one object run one
 * after another in the same thread and read the same few objects (the original, the header output),
 * so keeping the most recent ones saves most reads. Bounded by bytes; writes, renames and deletes
 * keep it coherent for this process (other processes only ever add objects under new keys).
 */
export class CachedStore implements ObjectStore {
  private readonly cache = new Map<string, Buffer>();
  private bytes = 0;

  constructor(
    private readonly inner: ObjectStore,
    private readonly maxBytes = 64 * 1024 * 1024,
  ) {}

  private remember(key: string, data: Buffer): void {
    this.forget(key);
    if (data.length > this.maxBytes / 4) return;
    this.cache.set(key, data);
    this.bytes += data.length;
    // Map order is insertion order: evict the oldest.
    for (const [k, v] of this.cache) {
      if (this.bytes <= this.maxBytes) break;
      this.cache.delete(k);
      this.bytes -= v.length;
    }
  }

  private forget(key: string): void {
    const old = this.cache.get(key);
    if (old) {
      this.cache.delete(key);
      this.bytes -= old.length;
    }
  }

  /** Remembers bytes another thread already stored under `key` (they arrive with the job). */
  prime(key: string, data: Uint8Array): void {
    this.remember(key, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }

  async put(key: string, data: Uint8Array, opts?: { durable?: boolean }): Promise<void> {
    await this.inner.put(key, data, opts);
    this.remember(key, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }

  async get(key: string): Promise<Buffer> {
    const hit = this.cache.get(key);
    if (hit) return hit;
    const data = await this.inner.get(key);
    this.remember(key, data);
    return data;
  }

  async rename(from: string, to: string): Promise<void> {
    await this.inner.rename(from, to);
    const data = this.cache.get(from);
    this.forget(from);
    if (data) this.remember(to, data);
  }

  list(prefix: string): Promise<string[]> {
    return this.inner.list(prefix);
  }

  async delete(key: string): Promise<void> {
    this.forget(key);
    await this.inner.delete(key);
  }
}
