/**
 * Runs one stage job of the service: the stage from the one list (stage-list.ts) on the job's object,
 * its output kept under a key derived from the object and the configuration, and the next stage's job
 * queued with the PHI-free facts. A failure is retried when the catalogue says a retry may help, and
 * quarantined otherwise; an object is never passed on after a failure.
 */
import type { ErrorCode } from '../errors.js';
import { toDeidError } from '../errors.js';
import { afterStage, type StageName, type StageObject } from '../stages/stage.js';
import { portableFacts, type ObjectJob } from './jobs.js';
import type { PipelineParts } from './parts.js';
import type { JobInfo } from './queue/types.js';
import { STAGES, nextStage, type PipelineContext } from './stage-list.js';
import type { StageStats } from './stage-stats.js';
import { isNotFound } from './storage.js';

/** What a retry of a failed job starts from: the job itself, or the progress the stage reported (export). */
interface RetryFrom {
  job: ObjectJob;
}

export class StageRunner {
  constructor(
    private readonly p: PipelineParts,
    private readonly stats: StageStats,
  ) {}

  async run(stage: StageName, job: ObjectJob, info: JobInfo): Promise<void> {
    const started = performance.now();
    const retry: RetryFrom = { job };
    try {
      await this.step(stage, job, retry);
      this.stats.noteDone(stage);
      this.p.observer?.stageDone(stage, performance.now() - started);
    } catch (e) {
      await this.failed(stage, job, info, retry, e);
    }
  }

  private context(job: ObjectJob, retry: RetryFrom): PipelineContext {
    const o = this.p.opts;
    return {
      profile: o.profile,
      secret: this.p.secret,
      filter: o.filter,
      destinations: o.destinations,
      // Before/after review images, kept with the object for the console.
      previews: true,
      dispositions: !!o.outcomes?.dispositions,
      delivered: (names) => (retry.job = { ...job, facts: { ...job.facts, delivered: names } }),
    };
  }

  private async step(stage: StageName, job: ObjectJob, retry: RetryFrom): Promise<void> {
    const { store, objects, jobs, log } = this.p;
    const object = await objects.load(job);
    // The map row first: no destination ever holds an object that the map cannot reverse.
    if (stage === 'export') await this.p.opts.outcomes?.beforeExport(object);
    const result = await STAGES[stage](object, this.context(job, retry));
    let after: StageObject = afterStage(object, result);
    let { input, work } = job;
    if (result.output) {
      // Deterministic: a redelivery after a crash writes the identical bytes again.
      input = jobs.workKey(stage, job.hash);
      await store.put(input, result.output.encode(), { defer: this.p.opts.deferWork });
      work = [...work, input];
    }
    const previews = after.facts.previews;
    if (previews) {
      await store.put(`previews/${job.hash.slice(0, 32)}/before.png`, previews.before);
      await store.put(`previews/${job.hash.slice(0, 32)}/after.png`, previews.after);
      after = { ...after, facts: { ...after.facts, previews: undefined } };
    }
    if (stage === 'verify') await this.p.record(job.study, 'processed');
    const next = nextStage(this.p.list, stage);
    if (!next) {
      // Exported: the object leaves the pipeline, its record durable before its original is deleted.
      await this.p.opts.outcomes?.exported(job, after);
      objects.forget(job.hash);
      await this.cleanup(job, true);
      await this.p.record(job.study, 'exported');
      log.info({ obj: job.hash.slice(0, 16), destinations: this.p.opts.destinations.length }, 'object exported');
      return;
    }
    objects.keep(job.hash, input, after);
    const base = jobs.id(next, job.hash);
    // Not durable (in memory when this process runs the next stage): a crash may lose the job, never
    // the object. The original is durable in the spool, and reconcile() puts it back at the start.
    await this.p.queue.add(next, { ...job, id: base, base, input, work, facts: portableFacts(after.facts) } satisfies ObjectJob, { durable: false });
  }

  private async failed(stage: StageName, job: ObjectJob, info: JobInfo, retry: RetryFrom, e: unknown): Promise<void> {
    const { queue, jobs, log, observer, opts } = this.p;
    if (isNotFound(e) && !(await this.exists(job.source))) {
      // The object already left the pipeline (exported or quarantined by an earlier delivery).
      log.info({ obj: job.hash.slice(0, 16), stage }, 'job for an object no longer in the pipeline; skipped');
      return;
    }
    if (isNotFound(e) && job.input !== job.source && info.attempt < opts.maxAttempts && !(await this.exists(job.input))) {
      // An intermediate output is gone (held in memory by a process that stopped, or lost to a power
      // loss) while the original is safe: the object starts again; stages are idempotent.
      const first = this.p.list[0]!;
      const base = jobs.id(first, job.hash);
      log.warn({ obj: job.hash.slice(0, 16), stage }, 'intermediate output missing; object restarted from the spool');
      this.p.objects.forget(job.hash);
      await queue.add(first, { ...job, id: `${base}.r${info.attempt + 1}`, base, input: job.source, work: [], facts: undefined } satisfies ObjectJob, { attempt: info.attempt + 1 });
      return;
    }
    const err = toDeidError(e);
    if (err.retryable && info.attempt < opts.maxAttempts) {
      const delayMs = opts.backoffMs * 2 ** (info.attempt - 1);
      const again = retry.job;
      observer?.stageRetried(stage);
      log.warn({ obj: job.hash.slice(0, 16), stage, attempt: info.attempt, code: err.code, delayMs }, 'stage failed; retrying');
      // The retry is a durable job that any process may take: its input must be on disk.
      await this.p.store.flush?.([again.input]);
      await queue.add(stage, { ...again, id: `${job.base}.r${info.attempt + 1}` }, { delayMs, attempt: info.attempt + 1 });
      return;
    }
    await this.toQuarantine(stage, job, err.code, err.detail);
    this.stats.noteDone(stage, true);
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
    await this.p.quarantine.add(job.hash.slice(0, 32), { key: job.source }, { code, detail, stage, origin: job.origin, study: job.study, receivedAt: job.receivedAt });
    // The quarantine entry is the durable account of the object; a record that cannot be written is only logged.
    await this.p.opts.outcomes?.quarantined(job, stage, code).catch((e: unknown) => this.p.log.warn({ obj: job.hash.slice(0, 16), err: (e as Error).name }, 'quarantine record not written'));
    this.p.objects.forget(job.hash);
    await this.cleanup(job, false);
    await this.p.record(job.study, 'quarantined');
    this.p.observer?.quarantined(stage, code);
    this.p.log.info({ obj: job.hash.slice(0, 16), stage, code }, 'object quarantined');
  }

  private async cleanup(job: ObjectJob, withSource: boolean): Promise<void> {
    for (const k of job.work) await this.p.store.delete(k);
    if (withSource) await this.p.store.delete(job.source);
  }
}
