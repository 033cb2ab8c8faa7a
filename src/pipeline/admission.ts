/**
 * How objects enter the pipeline: ingest (parse, spool durably, queue the first stage), reconcile
 * (queue again what a crash left spooled without a job), requeue from quarantine, and the receiving
 * end of the hand-off to a pipeline thread.
 */
import { createHash } from 'node:crypto';
import { findElement, type DicomFile } from '../dicom/element.js';
import { readDicom } from '../dicom/reader.js';
import { TAG } from '../dicom/tag.js';
import { rawString } from '../dicom/values.js';
import { DeidError, isResourceError, toDeidError, type ErrorCode } from '../errors.js';
import { studyKey } from '../keyed.js';
import type { StageName } from '../stages/stage.js';
import type { ManualRegion, ObjectJob } from './jobs.js';
import type { PipelineParts } from './parts.js';
import type { Ingest, IngestOutcome, IngestSource } from './ports.js';
import type { ProfileChoice } from './profiles.js';
import type { JobData } from './queue/types.js';
import { mergeRegions, withPixelCleaning } from './review-desk.js';

/** What a requeue did: queued again (under the profile it names), or refused again with the object's code. */
export type RequeueOutcome = { readonly ok: true; readonly profile: string; readonly options: readonly string[] } | { readonly ok: false; readonly code: ErrorCode; readonly detail?: string };

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const studyOf = (secret: Uint8Array, file: DicomFile) => studyKey(secret, rawString(findElement(file.dataset, TAG.StudyInstanceUID)?.value));

export class Admission {
  /**
   * Set when a thread of this process runs the stages on the embedded queue: the first job and the
   * bytes go to it directly (no job file, no re-read). Like any non-durable job, a crash may lose it;
   * reconcile() puts the spooled object back at the start.
   */
  handoff?: (stage: StageName, job: JobData, bytes: Uint8Array) => void;
  /** This process runs the stages itself: a received object stays in memory, parsed, for its first stage. */
  runsStages = false;

  constructor(private readonly p: PipelineParts) {}

  private get first(): StageName {
    return this.p.list[0]!;
  }

  /** A refusal that keeps nothing: the sender keeps its copy (and may send it again). */
  private refuse(origin: IngestSource, code: ErrorCode, detail: string | undefined, obj?: string): IngestOutcome {
    this.p.observer.ingested(origin.kind, false);
    this.p.log.warn({ ...(obj ? { obj } : {}), code, detail, source: origin.kind }, 'object refused at ingest; not kept');
    return { ok: false, code, detail };
  }

  /** Accepts a received object: durable in the spool and queued before it resolves ok. */
  readonly ingest: Ingest = async (bytes: Uint8Array, origin: IngestSource): Promise<IngestOutcome> => {
    const { store, queue, quarantine, observer, log, disk } = this.p;
    // Before anything else, and without keeping the object: what no retry of ours could store.
    if (bytes.length > this.p.opts.maxObjectBytes) return this.refuse(origin, 'DEID_ERR_HOSTILE_SIZE', `${bytes.length} bytes, limit ${this.p.opts.maxObjectBytes}`);
    // Below the reserve the stages keep the room to finish what was acknowledged; the sender retries later.
    if (disk?.low) return this.refuse(origin, 'DEID_ERR_OUT_OF_RESOURCES', 'free space on the spool volume is below minFreeSpace');
    const hash = sha256(bytes);
    const receivedAt = new Date().toISOString();
    let file: DicomFile;
    try {
      // The limit caps an inflated (deflated transfer syntax) data set and every declared length too.
      file = readDicom(bytes, { maxBytes: this.p.opts.maxObjectBytes });
    } catch (e) {
      const { code, detail } = toDeidError(e);
      try {
        await quarantine.add(hash.slice(0, 32), { bytes }, { code, stage: 'ingest', origin, receivedAt, detail });
        observer.quarantined('ingest', code);
      } catch (q) {
        // Not kept: the sender must keep its copy, so it hears "out of resources", not "cannot understand".
        if (isResourceError(q)) disk?.noteFull();
        return this.refuse(origin, 'DEID_ERR_OUT_OF_RESOURCES', `the refused object (${code}) could not be kept in quarantine: ${toDeidError(q).detail}`, hash.slice(0, 16));
      }
      // The quarantine entry is the durable account of the object; a record that cannot be written is only logged.
      await this.p.opts.outcomes?.quarantined({ hash, origin }, 'ingest', code).catch((r: unknown) => log.warn({ obj: hash.slice(0, 16), err: (r as Error).name }, 'quarantine record not written'));
      observer.ingested(origin.kind, false);
      log.info({ obj: hash.slice(0, 16), code, detail, source: origin.kind }, 'object refused at ingest; kept in quarantine');
      return { ok: false, code, detail };
    }
    const ds = file.dataset;
    const sopInstanceUid = rawString(findElement(ds, TAG.SOPInstanceUID)?.value);
    const sopClassUid = rawString(findElement(ds, TAG.SOPClassUID)?.value);
    const key = `incoming/${hash}.dcm`;
    const study = studyOf(this.p.secret, file);
    try {
      // The object is durable once put resolves: that is what Success acknowledges. The job needs no
      // fsync of its own, since reconcile() re-queues any spooled object that lost its job.
      await store.put(key, bytes, { durable: true });
      const job = this.p.jobs.firstJob({ hash, key, study, origin, receivedAt, config: this.p.profiles.current.config });
      if (this.handoff) this.handoff(this.first, job, bytes);
      else {
        // Kept only when the bytes are a buffer of their own: a view would keep a whole request body alive.
        if (this.runsStages && bytes.byteLength === bytes.buffer.byteLength) this.p.objects.seed(hash, key, bytes, file);
        await queue.add(this.first, job, { durable: false });
      }
    } catch (e) {
      if (isResourceError(e)) disk?.noteFull();
      observer.ingested(origin.kind, false);
      const detail = `spool write failed: ${toDeidError(e).detail}`;
      log.error({ obj: hash.slice(0, 16), detail }, 'spool write failed');
      return { ok: false, code: 'DEID_ERR_OUT_OF_RESOURCES', detail, sopInstanceUid, sopClassUid };
    }
    await this.p.record(study, 'received', hash);
    observer.ingested(origin.kind, true);
    log.debug({ obj: hash.slice(0, 16), source: origin.kind }, 'object spooled');
    return { ok: true, key, sopInstanceUid, sopClassUid };
  };

  /** The receiving side of `handoff`: the bytes stay in memory for the first stage, and so does the job. */
  async accept(stage: StageName, job: JobData, bytes: Uint8Array): Promise<void> {
    const j = job as ObjectJob;
    this.p.objects.seed(j.hash, j.input, bytes);
    await this.p.queue.add(stage, job, { durable: false });
  }

  /**
   * Puts back at the start every spooled object that has no job in any stage: a crash between spool
   * and queue, or a power loss that took a job written without fsync. Jobs are idempotent, so a
   * duplicate is harmless; a lost object is not.
   */
  async reconcile(): Promise<number> {
    const { store, queue, log } = this.p;
    const live = new Set<string>();
    for (const s of this.p.list) for (const j of await queue.pending(s)) live.add(String(j.source));
    // Held for review: waiting for a person, not lost.
    for (const e of await this.p.review.list()) live.add(e.job.source);
    let added = 0;
    for (const key of await store.list('incoming')) {
      if (live.has(key) || !key.endsWith('.dcm')) continue;
      let bytes: Buffer;
      try {
        bytes = await store.get(key);
      } catch {
        continue; // finished meanwhile
      }
      let study = 'unknown';
      try {
        study = studyOf(this.p.secret, readDicom(bytes));
      } catch {
        /* ingest only spools what parses */
      }
      const hash = sha256(bytes);
      await queue.add(this.first, this.p.jobs.firstJob({ hash, key, study, origin: { kind: 'spool' }, receivedAt: new Date().toISOString(), config: this.p.profiles.current.config }));
      await this.p.record(study, 'received', hash);
      added++;
    }
    if (added) log.warn({ objects: added }, 'spooled objects without a job were queued again');
    return added;
  }

  /**
   * Puts a quarantined object back at the start of the pipeline, under the configured profile or
   * another one (`choice`: a profile error throws its coded error before anything moves). An object
   * quarantined at ingest is parsed again first: if it still cannot be read, it stays in quarantine
   * under the same id, with its attempt counted and the latest reason. Undefined: no such entry.
   */
  async requeue(id: string, choice?: ProfileChoice, regions?: readonly ManualRegion[]): Promise<RequeueOutcome | undefined> {
    const { quarantine, queue, log } = this.p;
    const entry = await quarantine.get(id);
    if (!entry) return undefined;
    let chosen = choice ? this.p.profiles.load(choice) : this.p.profiles.current;
    // Drawn regions are the pixel stage's to mask: the profile gets clean-pixel-data if it lacks it.
    if (regions?.length) chosen = withPixelCleaning(this.p, { config: chosen.config, profile: chosen.choice });
    const bytes = await quarantine.object(id);
    let file: DicomFile;
    try {
      if (bytes.length > this.p.opts.maxObjectBytes) throw new DeidError('DEID_ERR_HOSTILE_SIZE', `${bytes.length} bytes, limit ${this.p.opts.maxObjectBytes}`);
      file = readDicom(bytes, { maxBytes: this.p.opts.maxObjectBytes });
    } catch (e) {
      const { code, detail } = toDeidError(e);
      await quarantine.refused(id, { code, detail });
      log.info({ obj: id.slice(0, 16), code, detail }, 'requeue refused: the object still cannot be read');
      return { ok: false, code, detail };
    }
    const hash = sha256(bytes);
    const key = `incoming/${hash}.dcm`;
    const study = entry.study ?? studyOf(this.p.secret, file);
    const requeues = (entry.requeues ?? 0) + 1;
    const first = this.p.jobs.firstJob(
      { hash, key, study, origin: entry.origin ?? { kind: 'spool' }, receivedAt: entry.receivedAt ?? new Date().toISOString(), config: chosen.config, profile: chosen.choice, requeues },
      `.q${Date.now()}`,
    );
    const job: ObjectJob = regions?.length ? { ...first, regions: mergeRegions(undefined, regions) } : first;
    // Recorded before the job exists: the pipeline must not report the object's outcome first.
    await this.p.record(study, 'requeued', hash);
    try {
      await quarantine.release(id, key, () => queue.add(this.first, job));
    } catch (e) {
      await this.p.record(study, 'quarantined', hash);
      throw e;
    }
    log.info({ obj: hash.slice(0, 16), requeues, profile: chosen.profile.name }, 'quarantined object requeued');
    return { ok: true, profile: chosen.choice?.profile ?? chosen.profile.name, options: chosen.choice?.options ?? [...chosen.profile.options] };
  }
}
