import { createHash, createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import { findElement, type DicomFile } from '../dicom/element.js';
import { readDicom } from '../dicom/reader.js';
import { TAG } from '../dicom/tag.js';
import { rawString, textValue } from '../dicom/values.js';
import { writeDicom } from '../dicom/writer.js';
import { DeidError, isDeidError, type ErrorCode } from '../errors.js';
import { ExportError, type Destination, type ExportInfo } from './ports.js';
import type { Ingest, IngestOutcome, IngestSource } from './ports.js';
import type { CompiledProfile } from '../profiles/compile.js';
import { filterObject, type FilterConfig } from '../stages/filter.js';
import { deidentifyHeader } from '../stages/header.js';
import { charsetOf } from '../stages/identifiers.js';
import { assertVerified, verifyAgainstSource } from '../stages/verify.js';
import { Quarantine } from './quarantine.js';
import type { JobData, JobInfo, JobQueue, StageCounts } from './queue/types.js';
import { CachedStore } from './cached-store.js';
import { isNotFound, type ObjectStore } from './storage.js';
import type { StudyEvent, StudyTracker } from './studies.js';

/** A stage that runs on a queue: its jobs carry store keys, never objects. */
export type StageName = 'filter' | 'header' | 'pixels' | 'verify' | 'export';

export interface StageSettings {
  readonly name: StageName;
  readonly concurrency: number;
}

export interface PipelineOptions {
  readonly stages: readonly StageSettings[];
  readonly profile: CompiledProfile;
  readonly filter: FilterConfig;
  readonly destinations: readonly Destination[];
  readonly maxAttempts: number;
  readonly backoffMs: number;
  readonly maxObjectBytes: number;
  /**
   * Keep intermediate outputs in memory when the store can (embedded queue: the next stage's job
   * stays in this process too). They are written when a job leaves memory (a retry, a shutdown).
   */
  readonly deferWork?: boolean;
}

/** Events the metrics and logs observe. */
export interface PipelineObserver {
  ingested(kind: IngestSource['kind'], ok: boolean): void;
  stageDone(stage: StageName, ms: number): void;
  stageRetried(stage: StageName): void;
  quarantined(stage: string, code: ErrorCode): void;
}

interface ObjectJob extends JobData {
  readonly id: string;
  /** Base id of the job in this stage; retries and requeues derive their ids from it. */
  readonly base: string;
  /** sha256 of the received bytes: the object's PHI-free identity in logs and keys. */
  readonly hash: string;
  readonly source: string;
  readonly input: string;
  readonly study: string;
  readonly origin: IngestSource;
  readonly receivedAt: string;
  /** Intermediate outputs to delete once the object has left the pipeline. */
  readonly work: readonly string[];
  readonly exportInfo?: ExportInfo;
  /** Destinations that already have the object (a retry sends only to the rest). */
  readonly delivered?: readonly string[];
}

class RetryableError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly job?: ObjectJob,
  ) {
    super(code);
  }
}

const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

function exportInfoOf(file: DicomFile): ExportInfo {
  const ds = file.dataset;
  const s = (tag: number) => rawString(findElement(ds, tag)?.value);
  const pid = findElement(ds, TAG.PatientID);
  return {
    sopClassUid: s(TAG.SOPClassUID),
    sopInstanceUid: s(TAG.SOPInstanceUID),
    studyInstanceUid: s(TAG.StudyInstanceUID),
    seriesInstanceUid: s(TAG.SeriesInstanceUID),
    patientId: pid ? textValue(pid, charsetOf(ds)) : '',
    transferSyntaxUid: file.transferSyntaxUID,
  };
}

/**
 * The staged pipeline: filter → header → verify → export, each stage a queue worker. Stages never
 * change their input: each writes its output under a key derived from the input hash and the
 * configuration hash, so a retry after a crash finds or recomputes the identical result.
 */
export class Pipeline {
  readonly quarantine: Quarantine;
  private readonly configHash: string;
  private readonly order: StageName[];
  private readonly samples: Array<{ at: number; done: Record<string, number> }> = [];
  /** Jobs finished per stage by this process's workers, or reported by its pipeline thread. */
  private readonly finished = new Map<string, { done: number; failed: number }>();
  private sampler?: NodeJS.Timeout;
  private readonly deferrable?: CachedStore;

  constructor(
    private readonly opts: PipelineOptions,
    private readonly store: ObjectStore,
    private readonly queue: JobQueue,
    private readonly tracker: StudyTracker,
    private readonly secret: Uint8Array,
    private readonly log: Logger,
    private readonly observer?: PipelineObserver,
  ) {
    this.quarantine = new Quarantine(store);
    this.deferrable = opts.deferWork && store instanceof CachedStore ? store : undefined;
    this.order = opts.stages.map((s) => s.name);
    // Everything that changes an output: the profile, the options, the secret (by an HMAC, not its value).
    this.configHash = sha256(`${opts.profile.fingerprint}|${createHmac('sha256', secret).update('config').digest('hex')}`).slice(0, 16);
  }

  private jobId(stage: StageName, hash: string): string {
    return sha256(`${stage}|${hash}|${this.configHash}`).slice(0, 40);
  }

  /** The first stage's job for a spooled object; `suffix` tells a requeue apart from the first delivery. */
  private firstJob(hash: string, key: string, study: string, origin: IngestSource, receivedAt: string, suffix = ''): ObjectJob {
    const base = `${this.jobId(this.order[0], hash)}${suffix}`;
    return { id: base, base, hash, source: key, input: key, study, origin, receivedAt, work: [] };
  }

  private studyKey(ds: DicomFile['dataset']): string {
    const uid = rawString(findElement(ds, TAG.StudyInstanceUID)?.value) || 'no-study';
    return createHmac('sha256', this.secret).update(`study|${uid}`).digest('hex').slice(0, 32);
  }

  get stageNames(): readonly StageName[] {
    return this.order;
  }

  /** Counts a job finished elsewhere (the pipeline thread) in this process's status. */
  noteDone(stage: StageName, failed = false): void {
    const c = this.finished.get(stage) ?? { done: 0, failed: 0 };
    if (failed) c.failed++;
    else c.done++;
    this.finished.set(stage, c);
  }

  private next(stage: StageName): StageName | undefined {
    return this.order[this.order.indexOf(stage) + 1];
  }

  private async record(study: string, event: StudyEvent): Promise<void> {
    try {
      await this.tracker.record(study, event);
    } catch (e) {
      this.log.warn({ study, event, err: (e as Error).name }, 'study tracking failed');
    }
  }

  /** Accepts a received object: durable in the spool and queued before it resolves ok. */
  readonly ingest: Ingest = async (bytes: Uint8Array, origin: IngestSource): Promise<IngestOutcome> => {
    const hash = sha256(bytes);
    const receivedAt = new Date().toISOString();
    let file: DicomFile;
    try {
      if (bytes.length > this.opts.maxObjectBytes) throw new DeidError('DEID_ERR_HOSTILE_SIZE', `${bytes.length} bytes`);
      file = readDicom(bytes, { maxBytes: this.opts.maxObjectBytes });
    } catch (e) {
      const code = isDeidError(e) ? e.code : 'DEID_ERR_INTERNAL';
      try {
        await this.quarantine.add(hash.slice(0, 32), { bytes }, { code, stage: 'ingest', origin, receivedAt, detail: isDeidError(e) ? e.detail : undefined });
        this.observer?.quarantined('ingest', code);
      } catch {
        /* the sender is told it failed and keeps its copy */
      }
      this.observer?.ingested(origin.kind, false);
      this.log.info({ obj: hash.slice(0, 16), code, source: origin.kind }, 'object refused at ingest');
      return { ok: false, code };
    }
    const ds = file.dataset;
    const sopInstanceUid = rawString(findElement(ds, TAG.SOPInstanceUID)?.value);
    const sopClassUid = rawString(findElement(ds, TAG.SOPClassUID)?.value);
    const key = `incoming/${hash}.dcm`;
    const study = this.studyKey(ds);
    const first = this.order[0];
    try {
      // The object is durable once put resolves: that is what Success acknowledges. The job needs no
      // fsync of its own, since reconcile() re-queues any spooled object that lost its job.
      await this.store.put(key, bytes, { durable: true });
      const job = this.firstJob(hash, key, study, origin, receivedAt);
      if (this.handoff) this.handoff(first, job, bytes);
      else await this.queue.add(first, job, { durable: false });
    } catch (e) {
      this.observer?.ingested(origin.kind, false);
      this.log.error({ obj: hash.slice(0, 16), err: (e as NodeJS.ErrnoException).code ?? (e as Error).name }, 'spool write failed');
      return { ok: false, code: 'DEID_ERR_OUT_OF_RESOURCES', sopInstanceUid, sopClassUid };
    }
    await this.record(study, 'received');
    this.observer?.ingested(origin.kind, true);
    this.log.debug({ obj: hash.slice(0, 16), source: origin.kind }, 'object spooled');
    return { ok: true, key, sopInstanceUid, sopClassUid };
  };

  /**
   * Puts back at the start every spooled object that has no job in any stage: a crash between spool
   * and queue, or a power loss that took a job written without fsync. Jobs are idempotent, so a
   * duplicate is harmless; a lost object is not.
   */
  async reconcile(): Promise<number> {
    const live = new Set<string>();
    for (const s of this.order) for (const j of await this.queue.pending(s)) live.add(String(j.source));
    let added = 0;
    for (const key of await this.store.list('incoming')) {
      if (live.has(key) || !key.endsWith('.dcm')) continue;
      let bytes: Buffer;
      try {
        bytes = await this.store.get(key);
      } catch {
        continue; // finished meanwhile
      }
      let study = 'unknown';
      try {
        study = this.studyKey(readDicom(bytes).dataset);
      } catch {
        /* ingest only spools what parses */
      }
      await this.queue.add(this.order[0], this.firstJob(sha256(bytes), key, study, { kind: 'folder' }, new Date().toISOString()));
      added++;
    }
    if (added) this.log.warn({ objects: added }, 'spooled objects without a job were queued again');
    return added;
  }

  /**
   * Set when a thread of this process runs the stages on the embedded queue: the first job and the
   * bytes go to it directly (no job file, no re-read). Like any non-durable job, a crash may lose it;
   * reconcile() puts the spooled object back at the start.
   */
  handoff?: (stage: StageName, job: JobData, bytes: Uint8Array) => void;

  /** The receiving side of `handoff`: the bytes seed the read cache, the job stays in memory. */
  async accept(stage: StageName, job: JobData, bytes: Uint8Array): Promise<void> {
    if (this.store instanceof CachedStore) this.store.prime(String(job.input), bytes);
    await this.queue.add(stage, job, { durable: false });
  }

  /** Starts a queue worker for every stage. */
  start(): void {
    this.startSampler();
    for (const s of this.opts.stages) this.queue.process(s.name, s.concurrency, (job, info) => this.run(s.name, job as ObjectJob, info));
  }

  /** Samples done counts every 5 s for the throughput figure (started by workers and by the status owner). */
  startSampler(): void {
    if (this.sampler) return;
    this.sampler = setInterval(() => void this.sample(), 5000);
    this.sampler.unref();
  }

  private async enqueue(stage: StageName, from: ObjectJob, fields: Partial<ObjectJob>): Promise<void> {
    const base = this.jobId(stage, from.hash);
    // Not durable (in memory when this process runs the next stage): a crash may lose the job, never
    // the object. The original is durable in the spool, and reconcile() puts it back at the start.
    await this.queue.add(stage, { ...from, delivered: undefined, ...fields, id: base, base } satisfies ObjectJob, { durable: false });
  }

  private async run(stage: StageName, job: ObjectJob, info: JobInfo): Promise<void> {
    const started = performance.now();
    try {
      await this.handlers[stage](job);
      this.noteDone(stage);
      this.observer?.stageDone(stage, performance.now() - started);
    } catch (e) {
      if (isNotFound(e) && !(await this.exists(job.source))) {
        // The object already left the pipeline (exported or quarantined by an earlier delivery).
        this.log.info({ obj: job.hash.slice(0, 16), stage }, 'job for an object no longer in the pipeline; skipped');
        return;
      }
      if (isNotFound(e) && job.input !== job.source && info.attempt < this.opts.maxAttempts && !(await this.exists(job.input))) {
        // An intermediate output is gone (held in memory by a process that stopped, or lost to a power
        // loss) while the original is safe: the object starts again; stages are idempotent.
        const first = this.order[0]!;
        const base = this.jobId(first, job.hash);
        this.log.warn({ obj: job.hash.slice(0, 16), stage }, 'intermediate output missing; object restarted from the spool');
        await this.queue.add(first, { ...job, id: `${base}.r${info.attempt + 1}`, base, input: job.source, work: [], exportInfo: undefined, delivered: undefined } satisfies ObjectJob, { attempt: info.attempt + 1 });
        return;
      }
      const retryable = e instanceof RetryableError || (e instanceof ExportError && e.retryable) || (!isDeidError(e) && !(e instanceof ExportError));
      const code: ErrorCode = isDeidError(e)
        ? e.code
        : e instanceof RetryableError
          ? e.code
          : e instanceof ExportError
            ? e.retryable
              ? 'DEID_ERR_EXPORT_FAILED'
              : 'DEID_ERR_EXPORT_REFUSED'
            : 'DEID_ERR_INTERNAL';
      if (retryable && info.attempt < this.opts.maxAttempts) {
        const delayMs = this.opts.backoffMs * 2 ** (info.attempt - 1);
        const again = e instanceof RetryableError && e.job ? e.job : job;
        this.observer?.stageRetried(stage);
        this.log.warn({ obj: job.hash.slice(0, 16), stage, attempt: info.attempt, code, delayMs }, 'stage failed; retrying');
        // The retry is a durable job that any process may take: its input must be on disk.
        await this.deferrable?.flush([again.input]);
        await this.queue.add(stage, { ...again, id: `${job.base}.r${info.attempt + 1}` }, { delayMs, attempt: info.attempt + 1 });
        return;
      }
      const detail = isDeidError(e) ? e.detail : e instanceof ExportError ? e.message : (e as NodeJS.ErrnoException)?.code;
      await this.toQuarantine(stage, job, code, detail);
      this.noteDone(stage, true);
    }
  }

  private async exists(key: string): Promise<boolean> {
    try {
      await this.store.get(key);
      return true;
    } catch {
      return false;
    }
  }

  private async toQuarantine(stage: string, job: ObjectJob, code: ErrorCode, detail?: string): Promise<void> {
    await this.quarantine.add(
      job.hash.slice(0, 32),
      { key: job.source },
      { code, detail, stage, origin: job.origin, study: job.study, receivedAt: job.receivedAt },
    );
    await this.cleanup(job, false);
    await this.record(job.study, 'quarantined');
    this.observer?.quarantined(stage, code);
    this.log.info({ obj: job.hash.slice(0, 16), stage, code }, 'object quarantined');
  }

  private async cleanup(job: ObjectJob, withSource: boolean): Promise<void> {
    for (const k of job.work) await this.store.delete(k);
    if (withSource) await this.store.delete(job.source);
  }

  private readonly handlers: Record<StageName, (job: ObjectJob) => Promise<void>> = {
    filter: async (job) => {
      const file = readDicom(await this.store.get(job.input));
      const decision = filterObject({ dataset: file.dataset, callingAE: job.origin.callingAE }, this.opts.filter);
      if (!decision.accept) throw new DeidError('DEID_ERR_FILTERED', decision.rule);
      await this.enqueue(this.next('filter')!, job, { input: job.source });
    },

    header: async (job) => {
      const out = `work/header/${this.jobId('header', job.hash)}.dcm`;
      // Deterministic: a redelivery after a crash writes the identical bytes again.
      const result = deidentifyHeader(readDicom(await this.store.get(job.input)), { profile: this.opts.profile, secret: this.secret });
      if (this.deferrable) await this.deferrable.putDeferred(out, writeDicom(result.file));
      else await this.store.put(out, writeDicom(result.file));
      await this.enqueue(this.next('header')!, job, { input: out, work: [...job.work, out] });
    },

    pixels: async (job) => {
      const out = `work/pixels/${this.jobId('pixels', job.hash)}.dcm`;
      if (!(await this.exists(out))) {
        // Masks burned-in text (Clean Pixel Data) and re-reads the result; a leak throws a coded error.
        const { runPixelStage } = await import('../stages/pixels/pixel-stage.js');
        const r = await runPixelStage(await this.store.get(job.source), await this.store.get(job.input), this.opts.profile, { previews: true });
        if (r.previews) {
          // Before/after review images, kept with the object's report for the console.
          await this.store.put(`previews/${job.hash.slice(0, 32)}/before.png`, r.previews.before);
          await this.store.put(`previews/${job.hash.slice(0, 32)}/after.png`, r.previews.after);
        }
        await this.store.put(out, r.output);
      }
      await this.enqueue(this.next('pixels')!, job, { input: out, work: [...job.work, out] });
    },

    verify: async (job) => {
      const source = readDicom(await this.store.get(job.source));
      const output = await this.store.get(job.input);
      assertVerified(verifyAgainstSource(source, output, this.opts.profile));
      await this.record(job.study, 'processed');
      await this.enqueue(this.next('verify')!, job, { exportInfo: exportInfoOf(readDicom(output)) });
    },

    export: async (job) => {
      const bytes = await this.store.get(job.input);
      const delivered = new Set(job.delivered ?? []);
      for (const d of this.opts.destinations) {
        if (delivered.has(d.name)) continue;
        try {
          await d.send(bytes, job.exportInfo!);
        } catch (e) {
          if (e instanceof ExportError && e.retryable) throw new RetryableError('DEID_ERR_EXPORT_FAILED', { ...job, delivered: [...delivered] });
          throw e;
        }
        delivered.add(d.name);
      }
      await this.cleanup(job, true);
      await this.record(job.study, 'exported');
      this.log.info({ obj: job.hash.slice(0, 16), destinations: this.opts.destinations.length }, 'object exported');
    },
  };

  /** Puts a quarantined object back at the start of the pipeline. */
  async requeue(id: string): Promise<boolean> {
    const entry = await this.quarantine.get(id);
    if (!entry) return false;
    const bytes = await this.quarantine.object(id);
    const hash = sha256(bytes);
    const key = `incoming/${hash}.dcm`;
    await this.quarantine.release(id, key);
    const study = entry.study ?? this.studyKey(readDicom(bytes).dataset);
    const origin = entry.origin ?? { kind: 'folder' as const };
    await this.queue.add(this.order[0], this.firstJob(hash, key, study, origin, entry.receivedAt ?? new Date().toISOString(), `.q${Date.now()}`));
    await this.record(study, 'received');
    this.log.info({ obj: hash.slice(0, 16) }, 'quarantined object requeued');
    return true;
  }

  private async sample(): Promise<void> {
    const done: Record<string, number> = {};
    for (const s of this.order) done[s] = this.finished.get(s)?.done ?? 0;
    this.samples.push({ at: Date.now(), done });
    while (this.samples.length > 13) this.samples.shift();
  }

  /** Per stage: queued, active, done, failed, and throughput (objects/s over the last minute). */
  async status(): Promise<Record<string, StageCounts & { throughput: number }>> {
    const out: Record<string, StageCounts & { throughput: number }> = {};
    const oldest = this.samples[0];
    for (const s of this.order) {
      const c = await this.queue.counts(s);
      const f = this.finished.get(s) ?? { done: 0, failed: 0 };
      const throughput = oldest ? (f.done - oldest.done[s]) / Math.max((Date.now() - oldest.at) / 1000, 1) : 0;
      // queued and active come from the queue (every process); done and failed from this process and its thread.
      out[s] = { queued: c.queued, active: c.active, done: f.done, failed: f.failed, throughput: Math.round(throughput * 100) / 100 };
    }
    return out;
  }

  /** After the queue closed: jobs it kept for the next start may name outputs held in memory. */
  async close(): Promise<void> {
    if (this.sampler) clearInterval(this.sampler);
    await this.deferrable?.flush();
  }
}
