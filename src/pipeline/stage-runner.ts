/**
 * Runs one stage job of the service: the stage from the one list (stage-list.ts) on the job's object,
 * under the profile the object is processed with (profiles.ts), its output kept under a key derived
 * from the object and that configuration, and the next stage's job queued with the PHI-free facts.
 * A failure is retried when the catalogue says a retry may help, and quarantined otherwise; an object
 * is never passed on after a failure. A full disk is waited out: resource errors are retried until
 * there is room again, never counted against the attempts.
 */
import type { ErrorCode } from '../errors.js';
import { isResourceError, toDeidError } from '../errors.js';
import { afterStage, type StageName, type StageObject } from '../stages/stage.js';
import { portableFacts, variantOf, type ObjectJob } from './jobs.js';
import type { PipelineParts } from './parts.js';
import type { ChosenProfile } from './profiles.js';
import type { AddOptions, JobInfo } from './queue/types.js';
import { holdReason } from './review.js';
import { STAGES, nextStage, type PipelineContext } from './stage-list.js';
import { isNotFound } from './storage.js';

/** What a retry of a failed job starts from: the job itself, or the progress the stage reported (export). */
interface RetryFrom {
  job: ObjectJob;
}

const DEFAULT_MAX_BACKOFF_MS = 300_000;

export class StageRunner {
  constructor(private readonly p: PipelineParts) {}

  async run(stage: StageName, job: ObjectJob, info: JobInfo): Promise<void> {
    const started = performance.now();
    const chosen = await this.profileOf(stage, job, info);
    if (!chosen) return;
    const own: ObjectJob = { ...job, config: chosen.config };
    const retry: RetryFrom = { job: own };
    try {
      await this.step(stage, own, chosen, retry);
      this.p.observer.stageDone(stage, performance.now() - started);
    } catch (e) {
      await this.failed(stage, own, info, retry, e);
    }
  }

  /**
   * The profile the job's object is processed under. A job made under a configuration this process
   * does not have (another process's, or one from before a reload or a restart) takes this process's
   * (or the profile its requeue chose) when no stage has produced anything yet; otherwise the object
   * starts again from its original, so that all of its stages run under one profile.
   */
  private async profileOf(stage: StageName, job: ObjectJob, info: JobInfo): Promise<ChosenProfile | undefined> {
    const { profiles } = this.p;
    const known = profiles.forJob(job.config, job.profile);
    if (known && this.p.listFor(known.profile).includes(stage)) return known;
    let target = profiles.current;
    if (job.profile) {
      try {
        target = profiles.load(job.profile);
      } catch (e) {
        await this.failed(stage, job, info, { job }, e);
        return undefined;
      }
    }
    if (job.work.length === 0 && !job.facts?.identity && this.p.listFor(target.profile).includes(stage)) return target;
    this.p.log.info({ obj: job.hash.slice(0, 16), stage }, 'object made under another configuration; started again under this one');
    await this.cleanup(job, false);
    await this.restart(job, target.config, info.attempt);
    return undefined;
  }

  private context(profile: ChosenProfile, job: ObjectJob, retry: RetryFrom): PipelineContext {
    const o = this.p.opts;
    return {
      profile: profile.profile,
      secret: this.p.secret,
      filter: o.filter,
      destinations: o.destinations,
      dispositions: !!o.outcomes?.dispositions,
      manualRegions: job.regions,
      delivered: (names) => (retry.job = { ...job, facts: { ...job.facts, delivered: names } }),
    };
  }

  private async step(stage: StageName, job: ObjectJob, chosen: ChosenProfile, retry: RetryFrom): Promise<void> {
    const { store, objects, jobs, log } = this.p;
    const object = await objects.load(job, chosen.profile);
    // The map row first: no destination ever holds an object that the map cannot reverse.
    if (stage === 'export') await this.p.opts.outcomes?.beforeExport(object);
    const result = await STAGES[stage](object, this.context(chosen, job, retry));
    const after: StageObject = afterStage(object, result);
    let { input, work } = job;
    // Drawn regions make another output of the same object under the same profile.
    const variant = variantOf(chosen.config, job.regions);
    if (result.output) {
      // Deterministic: a redelivery after a crash writes the identical bytes again.
      input = jobs.workKey(stage, job.hash, variant);
      await store.put(input, result.output.encode(), { defer: this.p.opts.deferWork });
      work = [...work, input];
    }
    if (stage === 'verify') await this.p.record(job.study, 'processed', job.hash);
    const next = nextStage(this.p.listFor(chosen.profile), stage);
    if (!next) {
      // Exported: the object leaves the pipeline, its records durable before its original is deleted.
      await this.p.opts.outcomes?.exported(job, after, chosen.profile);
      await this.p.record(job.study, 'exported', job.hash);
      await this.note(job, { state: 'exported', identity: after.facts.identity, pixelsMasked: after.facts.pixels?.report.pixelsMasked });
      // The original goes last, so that this job ends as it deletes it: the same object sent again and
      // spooled after this deletion is never taken for this job, still running, and dropped as its duplicate.
      objects.forget(job.hash);
      await this.cleanup(job, true);
      log.info({ obj: job.hash.slice(0, 16), destinations: this.p.opts.destinations.length }, 'object exported');
      return;
    }
    const base = jobs.id(next, job.hash, variant);
    const nextJob: ObjectJob = { ...job, id: base, base, input, work, facts: portableFacts(after.facts) };
    const hold = next === 'export' && !job.reviewed ? holdReason(this.p.opts.review, after.facts.pixels) : undefined;
    if (hold) return this.hold(nextJob, hold);
    objects.keep(job.hash, input, after);
    this.p.ensureStage(next);
    // Not durable (in memory when this process runs the next stage): a crash may lose the job, never
    // the object. The original is durable in the spool, and reconcile() puts it back at the start.
    await this.p.queue.add(next, nextJob, { durable: false });
  }

  /** Holds an object for a reviewer before export: its export job, durable, with the input written out. */
  private async hold(job: ObjectJob, reason: string): Promise<void> {
    await this.p.store.flush?.([job.input]);
    this.p.objects.forget(job.hash);
    const e = await this.p.review.hold(job, reason);
    await this.note(job, { state: 'held', identity: job.facts?.identity, review: e.id, pixelsMasked: job.facts?.pixels?.report.pixelsMasked });
    this.p.log.info({ obj: job.hash.slice(0, 16) }, 'object held for review');
  }

  /** The catalog entry of an object (the console's studies); a failure to write it never stops the object. */
  private async note(job: ObjectJob, entry: Parameters<PipelineParts['catalog']['note']>[2]): Promise<void> {
    await this.p.catalog.note(job.study, job.hash, entry).catch((e) => this.p.log.warn({ obj: job.hash.slice(0, 16), err: toDeidError(e).code }, 'catalog entry not written'));
  }

  /** The object from its original, at the first stage, under `config`. */
  private async restart(job: ObjectJob, config: string, attempt: number): Promise<void> {
    const first = this.p.list[0]!;
    const base = this.p.jobs.id(first, job.hash, config);
    this.p.objects.forget(job.hash);
    await this.add(first, { ...job, id: `${base}.r${attempt + 1}`, base, input: job.source, work: [], facts: undefined, config }, { attempt: attempt + 1 });
  }

  /** Never throws: what cannot be handled now is tried again later, and the original stays in the spool either way. */
  private async failed(stage: StageName, job: ObjectJob, info: JobInfo, retry: RetryFrom, e: unknown): Promise<void> {
    const { log, observer, opts } = this.p;
    const obj = job.hash.slice(0, 16);
    try {
      if (isNotFound(e) && !(await this.exists(job.source))) {
        // The object already left the pipeline (exported or quarantined by an earlier delivery).
        log.info({ obj, stage }, 'job for an object no longer in the pipeline; skipped');
        return;
      }
      if (isNotFound(e) && job.input !== job.source && info.attempt < opts.maxAttempts && !(await this.exists(job.input))) {
        // An intermediate output is gone (held in memory by a process that stopped, or lost to a power
        // loss) while the original is safe: the object starts again; stages are idempotent.
        log.warn({ obj, stage }, 'intermediate output missing; object restarted from the spool');
        await this.restart(job, job.config!, info.attempt);
        return;
      }
      const err = toDeidError(e);
      const resource = err.code === 'DEID_ERR_OUT_OF_RESOURCES';
      if (resource || (err.retryable && info.attempt < opts.maxAttempts)) {
        if (resource) this.p.disk?.noteFull();
        const delayMs = this.backoff(info.attempt);
        observer.stageRetried(stage);
        log.warn({ obj, stage, attempt: info.attempt, code: err.code, detail: err.detail, delayMs }, resource ? 'out of resources; retrying once there is room' : 'stage failed; retrying');
        await this.retry(stage, { ...retry.job, id: `${job.base}.r${info.attempt + 1}` }, { delayMs, attempt: info.attempt + 1 });
        return;
      }
      await this.toQuarantine(stage, job, err.code, err.detail);
    } catch (again) {
      // Not even the failure could be recorded (a full disk under the retry's job or the quarantine
      // entry): the same job runs again later, from memory.
      log.warn({ obj, stage, err: toDeidError(again).detail }, 'failure could not be recorded; trying the job again later');
      await this.p.queue
        .add(stage, { ...job, id: `${job.base}.r${info.attempt + 1}` }, { delayMs: this.backoff(info.attempt), attempt: info.attempt + 1, durable: false })
        .catch(() => log.error({ obj, stage }, 'job dropped; the original stays in the spool and is queued again at the next start'));
    }
  }

  private backoff(attempt: number): number {
    const o = this.p.opts;
    return Math.min(o.backoffMs * 2 ** (attempt - 1), o.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS);
  }

  /**
   * A retry: a durable job any process may take, so its input goes to disk first. When the disk is
   * full it stays in memory instead (this process runs the stage): a crash then loses only the job,
   * and the original, safe in the spool, is queued again at the next start.
   */
  private async retry(stage: StageName, job: ObjectJob, opts: AddOptions): Promise<void> {
    let durable = true;
    try {
      await this.p.store.flush?.([job.input]);
    } catch (e) {
      if (!isResourceError(e)) throw e;
      durable = false;
      this.keptInMemory(e);
    }
    await this.add(stage, job, { ...opts, durable });
  }

  private async add(stage: StageName, job: ObjectJob, opts: AddOptions): Promise<void> {
    try {
      await this.p.queue.add(stage, job, opts);
      if (this.inMemory && opts.durable !== false) {
        this.inMemory = false;
        this.p.log.info('retries are written to disk again');
      }
    } catch (e) {
      if (!isResourceError(e) || opts.durable === false) throw e;
      await this.p.queue.add(stage, job, { ...opts, durable: false });
      this.keptInMemory(e);
    }
  }

  /** Retries are kept in memory for want of disk space (logged once each way). */
  private inMemory = false;

  private keptInMemory(e: unknown): void {
    if (!this.inMemory) this.p.log.warn({ err: toDeidError(e).detail }, 'no room to write a retry: retries are kept in memory until there is');
    this.inMemory = true;
  }

  private async exists(key: string): Promise<boolean> {
    try {
      await this.p.store.get(key);
      return true;
    } catch {
      return false;
    }
  }

  private async toQuarantine(stage: string, job: ObjectJob, code: ErrorCode, detail?: string): Promise<void> {
    await this.p.quarantine.add(job.hash.slice(0, 32), { key: job.source }, { code, detail, stage, origin: job.origin, study: job.study, receivedAt: job.receivedAt, requeues: job.requeues });
    // The quarantine entry is the durable account of the object; a record that cannot be written is only logged.
    await this.p.opts.outcomes?.quarantined(job, stage, code).catch((e: unknown) => this.p.log.warn({ obj: job.hash.slice(0, 16), err: (e as Error).name }, 'quarantine record not written'));
    this.p.objects.forget(job.hash);
    await this.cleanup(job, false);
    await this.p.record(job.study, 'quarantined', job.hash);
    await this.note(job, { state: 'quarantined', identity: job.facts?.identity, quarantine: { id: job.hash.slice(0, 32), stage, code } });
    this.p.observer.quarantined(stage, code);
    this.p.log.info({ obj: job.hash.slice(0, 16), stage, code, detail }, 'object quarantined');
  }

  private async cleanup(job: ObjectJob, withSource: boolean): Promise<void> {
    for (const k of job.work) await this.p.store.delete(k);
    if (withSource) await this.p.store.delete(job.source);
  }
}
