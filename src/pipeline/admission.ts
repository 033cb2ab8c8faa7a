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
import { DeidError, isDeidError } from '../errors.js';
import { studyKey } from '../keyed.js';
import type { StageName } from '../stages/stage.js';
import type { ObjectJob } from './jobs.js';
import type { PipelineParts } from './parts.js';
import type { Ingest, IngestOutcome, IngestSource } from './ports.js';
import type { JobData } from './queue/types.js';

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

  /** Accepts a received object: durable in the spool and queued before it resolves ok. */
  readonly ingest: Ingest = async (bytes: Uint8Array, origin: IngestSource): Promise<IngestOutcome> => {
    const { store, queue, quarantine, observer, log } = this.p;
    const hash = sha256(bytes);
    const receivedAt = new Date().toISOString();
    let file: DicomFile;
    try {
      if (bytes.length > this.p.opts.maxObjectBytes) throw new DeidError('DEID_ERR_HOSTILE_SIZE', `${bytes.length} bytes`);
      file = readDicom(bytes);
    } catch (e) {
      const code = isDeidError(e) ? e.code : 'DEID_ERR_INTERNAL';
      try {
        await quarantine.add(hash.slice(0, 32), { bytes }, { code, stage: 'ingest', origin, receivedAt, detail: isDeidError(e) ? e.detail : undefined });
        observer?.quarantined('ingest', code);
        await this.p.opts.outcomes?.quarantined({ hash, origin }, 'ingest', code);
      } catch {
        /* the sender is told it failed and keeps its copy */
      }
      observer?.ingested(origin.kind, false);
      log.info({ obj: hash.slice(0, 16), code, source: origin.kind }, 'object refused at ingest');
      return { ok: false, code };
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
      const job = this.p.jobs.firstJob({ hash, key, study, origin, receivedAt });
      if (this.handoff) this.handoff(this.first, job, bytes);
      else {
        // Kept only when the bytes are a buffer of their own: a view would keep a whole request body alive.
        if (this.runsStages && bytes.byteLength === bytes.buffer.byteLength) this.p.objects.seed(hash, key, bytes, file);
        await queue.add(this.first, job, { durable: false });
      }
    } catch (e) {
      observer?.ingested(origin.kind, false);
      log.error({ obj: hash.slice(0, 16), err: (e as NodeJS.ErrnoException).code ?? (e as Error).name }, 'spool write failed');
      return { ok: false, code: 'DEID_ERR_OUT_OF_RESOURCES', sopInstanceUid, sopClassUid };
    }
    await this.p.record(study, 'received');
    observer?.ingested(origin.kind, true);
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
      await queue.add(this.first, this.p.jobs.firstJob({ hash: sha256(bytes), key, study, origin: { kind: 'folder' }, receivedAt: new Date().toISOString() }));
      added++;
    }
    if (added) log.warn({ objects: added }, 'spooled objects without a job were queued again');
    return added;
  }

  /** Puts a quarantined object back at the start of the pipeline. */
  async requeue(id: string): Promise<boolean> {
    const { quarantine, queue, log } = this.p;
    const entry = await quarantine.get(id);
    if (!entry) return false;
    const bytes = await quarantine.object(id);
    const hash = sha256(bytes);
    const key = `incoming/${hash}.dcm`;
    await quarantine.release(id, key);
    const study = entry.study ?? studyOf(this.p.secret, readDicom(bytes));
    const origin = entry.origin ?? { kind: 'folder' as const };
    await queue.add(this.first, this.p.jobs.firstJob({ hash, key, study, origin, receivedAt: entry.receivedAt ?? new Date().toISOString() }, `.q${Date.now()}`));
    await this.p.record(study, 'received');
    log.info({ obj: hash.slice(0, 16) }, 'quarantined object requeued');
    return true;
  }
}
