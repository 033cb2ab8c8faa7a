/**
 * A map bounded by the total size of its values: setting beyond the budget evicts the oldest entries
 * first, and a value larger than a quarter of the budget is not kept at all.
 */
export class SizedCache<V> {
  private readonly map = new Map<string, { value: V; size: number }>();
  private total = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly sizeOf: (v: V) => number,
  ) {}

  /** The value; `touch` makes it the most recent, so that eviction takes it last. */
  get(key: string, touch = false): V | undefined {
    const e = this.map.get(key);
    if (e && touch) {
      this.map.delete(key);
      this.map.set(key, e);
    }
    return e?.value;
  }

  set(key: string, value: V): void {
    this.delete(key);
    const size = this.sizeOf(value);
    if (size > this.maxBytes / 4) return;
    this.map.set(key, { value, size });
    this.total += size;
    // Map order is insertion order: evict the oldest.
    for (const [k, e] of this.map) {
      if (this.total <= this.maxBytes) break;
      this.map.delete(k);
      this.total -= e.size;
    }
  }

  delete(key: string): void {
    const e = this.map.get(key);
    if (!e) return;
    this.map.delete(key);
    this.total -= e.size;
  }
}
