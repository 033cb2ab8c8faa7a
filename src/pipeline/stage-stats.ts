import type { StageName } from '../stages/stage.js';
import type { JobQueue, StageCounts } from './queue/types.js';

export type StageStatus = StageCounts & { throughput: number };

/**
 * Per stage: jobs finished by this process's workers (or reported by its pipeline thread), and the
 * throughput over the last minute from samples every 5 s.
 */
export class StageStats {
  private readonly finished = new Map<string, { done: number; failed: number }>();
  private readonly samples: Array<{ at: number; done: Record<string, number> }> = [];
  private sampler?: NodeJS.Timeout;

  constructor(
    private readonly list: readonly StageName[],
    private readonly queue: JobQueue,
  ) {}

  noteDone(stage: StageName, failed = false): void {
    const c = this.finished.get(stage) ?? { done: 0, failed: 0 };
    if (failed) c.failed++;
    else c.done++;
    this.finished.set(stage, c);
  }

  /** Samples done counts every 5 s for the throughput figure (started by workers and by the status owner). */
  start(): void {
    if (this.sampler) return;
    this.sampler = setInterval(() => this.sample(), 5000);
    this.sampler.unref();
  }

  stop(): void {
    if (this.sampler) clearInterval(this.sampler);
  }

  private sample(): void {
    const done: Record<string, number> = {};
    for (const s of this.list) done[s] = this.finished.get(s)?.done ?? 0;
    this.samples.push({ at: Date.now(), done });
    while (this.samples.length > 13) this.samples.shift();
  }

  /** Per stage: queued, active, done, failed, and throughput (objects/s over the last minute). */
  async status(): Promise<Record<string, StageStatus>> {
    const out: Record<string, StageStatus> = {};
    const oldest = this.samples[0];
    for (const s of this.list) {
      const c = await this.queue.counts(s);
      const f = this.finished.get(s) ?? { done: 0, failed: 0 };
      const throughput = oldest ? (f.done - oldest.done[s]) / Math.max((Date.now() - oldest.at) / 1000, 1) : 0;
      // queued and active come from the queue (every process); done and failed from this process and its thread.
      out[s] = { queued: c.queued, active: c.active, done: f.done, failed: f.failed, throughput: Math.round(throughput * 100) / 100 };
    }
    return out;
  }
}
