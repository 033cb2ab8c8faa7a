/**
 * What a reviewer decides on a held object (review.ts): approve (export it), reject (quarantine it,
 * "rejected in review"), or redact more (start it again with the drawn regions added, so that the
 * pixel stage masks them and verification runs as always). Also the profile choice a redaction needs:
 * drawn regions are masked by the pixel stage, so the object's profile gets clean-pixel-data.
 */
import type { ManualRegion, ObjectJob } from './jobs.js';
import type { PipelineParts } from './parts.js';
import type { ChosenProfile, ProfileChoice } from './profiles.js';
import type { ReviewEntry } from './review.js';

/** At most this many regions per object: a bound on what a request can make the pixel stage do. */
export const MAX_REGIONS = 64;

/** Regions as given, checked: whole pixels, positive size, at most MAX_REGIONS; merged with `before`. */
export function mergeRegions(before: readonly ManualRegion[] | undefined, added: readonly ManualRegion[]): ManualRegion[] {
  const out = [...(before ?? [])];
  for (const r of added) {
    const b = { x0: Math.round(Math.min(r.x0, r.x1)), y0: Math.round(Math.min(r.y0, r.y1)), x1: Math.round(Math.max(r.x0, r.x1)), y1: Math.round(Math.max(r.y0, r.y1)) };
    if (b.x1 - b.x0 < 1 || b.y1 - b.y0 < 1 || b.x0 < 0 || b.y0 < 0) continue;
    if (!out.some((o) => o.x0 === b.x0 && o.y0 === b.y0 && o.x1 === b.x1 && o.y1 === b.y1)) out.push(b);
  }
  return out.slice(0, MAX_REGIONS);
}

/** The profile an object with drawn regions runs under: its own, with clean-pixel-data. */
export function withPixelCleaning(parts: PipelineParts, job: Pick<ObjectJob, 'config' | 'profile'>): ChosenProfile {
  const own = parts.profiles.forJob(job.config, job.profile) ?? parts.profiles.current;
  if (own.profile.pixels) return own;
  const base: ProfileChoice = own.choice ?? parts.opts.choice ?? { profile: own.profile.name, options: [...own.profile.options] };
  return parts.profiles.load({ profile: base.profile, options: [...base.options, 'clean-pixel-data'] });
}

export class ReviewDesk {
  constructor(private readonly p: PipelineParts) {}

  list(): Promise<ReviewEntry[]> {
    return this.p.review.list();
  }

  get(id: string): Promise<ReviewEntry | undefined> {
    return this.p.review.get(id);
  }

  /** A held object as received (PHI) and as it would be exported. */
  async objects(e: ReviewEntry): Promise<{ original: Buffer; output: Buffer }> {
    return { original: await this.p.store.get(e.job.source), output: await this.p.store.get(e.job.input) };
  }

  /** Export it: the held export job goes on, marked reviewed. */
  async approve(id: string): Promise<ReviewEntry | undefined> {
    const e = await this.p.review.get(id);
    if (!e) return undefined;
    this.p.ensureStage('export');
    await this.p.queue.add('export', { ...e.job, id: `${e.job.base}.a${Date.now()}`, reviewed: true } satisfies ObjectJob);
    await this.p.review.remove(id, 'approved');
    this.p.log.info({ obj: e.job.hash.slice(0, 16) }, 'held object approved in review');
    return e;
  }

  /** Quarantine it with the reason "rejected in review"; its intermediate outputs go. */
  async reject(id: string): Promise<ReviewEntry | undefined> {
    const e = await this.p.review.get(id);
    if (!e) return undefined;
    const j = e.job;
    const code = 'DEID_ERR_REJECTED_IN_REVIEW' as const;
    await this.p.quarantine.add(id, { key: j.source }, { code, stage: 'review', origin: j.origin, study: j.study, receivedAt: j.receivedAt, requeues: j.requeues });
    await this.p.review.remove(id, 'rejected');
    for (const k of j.work) await this.p.store.delete(k);
    await this.p.record(j.study, 'quarantined', j.hash);
    await this.p.catalog.note(j.study, j.hash, { state: 'quarantined', identity: j.facts?.identity, quarantine: { id, stage: 'review', code } }).catch(() => undefined);
    this.p.observer.quarantined('review', code);
    this.p.log.info({ obj: j.hash.slice(0, 16), code }, 'held object rejected in review');
    return e;
  }

  /** Start it again from its original with `regions` added: the pixel stage masks them, verification checks the result, and it is held again. */
  async redact(id: string, regions: readonly ManualRegion[]): Promise<ReviewEntry | undefined> {
    const e = await this.p.review.get(id);
    if (!e) return undefined;
    const j = e.job;
    const chosen = withPixelCleaning(this.p, j);
    const first = this.p.listFor(chosen.profile)[0]!;
    const base = this.p.jobs.firstJob(
      { hash: j.hash, key: j.source, study: j.study, origin: j.origin, receivedAt: j.receivedAt, config: chosen.config, profile: chosen.choice, requeues: j.requeues },
      `.m${Date.now()}`,
    );
    const job: ObjectJob = { ...base, regions: mergeRegions(j.regions, regions) };
    await this.p.record(j.study, 'requeued', j.hash);
    this.p.ensureStage(first);
    await this.p.queue.add(first, job);
    await this.p.review.remove(id, 'redacted');
    for (const k of j.work) await this.p.store.delete(k);
    this.p.log.info({ obj: j.hash.slice(0, 16), regions: job.regions!.length }, 'held object sent back to the pixel stage with drawn regions');
    return e;
  }
}
