/**
 * One buffer reused from object to object, for a caller that is done with each object's bytes (written
 * them out) before it takes the next: a fresh half-megabyte allocation per object cost page faults and
 * garbage collections. A taken area holds stale bytes: its user must fill all of it.
 */
export class ScratchBuffer {
  private buf = Buffer.alloc(0);

  /** Larger areas get an allocation of their own, so that one hostile file does not pin its size. */
  constructor(private readonly maxKept = 64 * 1024 * 1024) {}

  take(n: number): Buffer {
    if (n > this.maxKept) return Buffer.allocUnsafe(n);
    if (this.buf.length < n) this.buf = Buffer.allocUnsafe(Math.min(this.maxKept, Math.max(n, this.buf.length * 2)));
    return this.buf.subarray(0, n);
  }
}
