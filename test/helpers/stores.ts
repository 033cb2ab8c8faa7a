import type { ObjectStore, PutOptions } from '../../src/pipeline/storage.js';

/** Counts the reads that reach the store it wraps. */
export class CountingStore implements ObjectStore {
  reads = 0;
  constructor(private readonly inner: ObjectStore) {}
  put(k: string, d: Uint8Array, o?: PutOptions) {
    return this.inner.put(k, d, o);
  }
  get(k: string) {
    this.reads++;
    return this.inner.get(k);
  }
  rename(a: string, b: string) {
    return this.inner.rename(a, b);
  }
  list(p: string) {
    return this.inner.list(p);
  }
  delete(k: string) {
    return this.inner.delete(k);
  }
}
