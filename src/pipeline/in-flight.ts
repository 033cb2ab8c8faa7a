/**
 * The objects in flight in this process, parsed once. A stage job finds the object as the previous
 * stage of this process left it (source parsed, output and facts in memory); only a job that crossed
 * a durable stage boundary (another process, a restart, a retry from disk, an eviction) reads its
 * object from the store, parses it, and derives the source's facts again.
 */
import type { DicomFile } from '../dicom/element.js';
import { Part10 } from '../dicom/part10.js';
import { readDicom, type ReadOptions } from '../dicom/reader.js';
import type { CompiledProfile } from '../profiles/compile.js';
import { sourceFacts } from '../stages/header-stage.js';
import type { StageObject } from '../stages/stage.js';
import type { ObjectJob } from './jobs.js';
import { SizedCache } from './sized-cache.js';
import type { ObjectStore } from './storage.js';

interface Entry {
  /** The store key the object was at when remembered: a job for another key does not match. */
  readonly input: string;
  /** The object (an ingested one may be known by its bytes only, until its first stage parses them). */
  readonly object?: StageObject;
  readonly bytes?: Uint8Array;
  readonly size: number;
}

export class InFlightObjects {
  private readonly entries: SizedCache<Entry>;

  /** `read` gives the size limit objects are read back under (the configuration's, which a reload may change). */
  constructor(
    private readonly store: ObjectStore,
    private readonly secret: Uint8Array,
    private readonly read: () => ReadOptions = () => ({}),
    maxBytes = 64 * 1024 * 1024,
  ) {
    this.entries = new SizedCache(maxBytes, (e) => e.size);
  }

  /** A received object at its spool key, by its bytes (and its parse, when this thread has one). */
  seed(hash: string, key: string, bytes: Uint8Array, file?: DicomFile): void {
    if (file) this.entries.set(hash, { input: key, object: { source: file, current: Part10.of(file, bytes), facts: {}, origin: {} }, size: bytes.byteLength });
    else this.entries.set(hash, { input: key, bytes, size: bytes.byteLength });
  }

  /** The object after a stage, now at `input`. */
  keep(hash: string, input: string, object: StageObject): void {
    this.entries.set(hash, { input, object, size: sizeOf(object) });
  }

  forget(hash: string): void {
    this.entries.delete(hash);
  }

  /** The job's object with the job's facts: from memory, or read from the store and parsed (under the job's profile). */
  async load(job: ObjectJob, profile: CompiledProfile): Promise<StageObject> {
    const e = this.entries.get(job.hash, true);
    if (e && e.input === job.input) {
      if (e.object) return { ...e.object, facts: { ...e.object.facts, ...job.facts }, origin: job.origin };
      const source = readDicom(e.bytes!, this.read());
      return { source, current: Part10.of(source, e.bytes!), facts: { ...job.facts }, origin: job.origin };
    }
    const sourceBytes = await this.store.get(job.source);
    const source = readDicom(sourceBytes, this.read());
    const current = job.input === job.source ? Part10.of(source, sourceBytes) : Part10.ofBytes(await this.store.get(job.input), this.read());
    // Past the header stage (it found the new identity), the later stages need what it learned from the source.
    const facts = job.facts?.identity ? { ...sourceFacts(source, { profile, secret: this.secret }), ...job.facts } : { ...job.facts };
    return { source, current, facts, origin: job.origin };
  }
}

/** Roughly what an object holds: the source's values (the parse is views into its bytes) and the current encoding. */
function sizeOf(o: StageObject): number {
  let n = o.current.encoded?.byteLength ?? 0;
  for (const el of o.source.dataset) {
    if (el.value) n += el.value.byteLength;
    else if (el.fragments) for (const f of el.fragments) n += f.byteLength;
  }
  return n;
}
