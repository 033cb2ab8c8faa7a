/**
 * The review hold (`review: off | pixels | all`): objects that passed every check wait here, before
 * export, until a reviewer approves them (export), redacts more (the pixel stage runs again with the
 * drawn regions), or rejects them (quarantine, "rejected in review"). IHE's "delay export" step of
 * teaching-file export. Durable: an entry is the export job itself, with its input flushed to the
 * store, so a restart loses nothing that is held.
 */
import type { PixelFacts } from '../stages/stage.js';
import type { ObjectJob } from './jobs.js';
import { isNotFound, type ObjectStore } from './storage.js';

export type ReviewMode = 'off' | 'pixels' | 'all';

export interface ReviewEntry {
  /** The object's hash prefix (like a quarantine id). */
  readonly id: string;
  readonly heldAt: string;
  /** Why it is held, in words. */
  readonly reason: string;
  /** The export job that approval queues. */
  readonly job: ObjectJob;
}

const entryKey = (id: string) => `review/${id}.json`;
const isId = (id: string) => /^[0-9a-f]{8,64}$/.test(id);

/** Why an object is held under `mode`, or undefined when it goes straight on. */
export function holdReason(mode: ReviewMode | undefined, pixels: PixelFacts | undefined): string | undefined {
  if (!mode || mode === 'off') return undefined;
  if (mode === 'all') return 'every object is reviewed (review: all)';
  const r = pixels?.report;
  if (r?.action !== 'cleaned') return undefined;
  const n = r.boxes?.length ?? 0;
  if ((r.pixelsMasked ?? 0) > 0) return `pixels were masked (${n} region${n === 1 ? '' : 's'})`;
  // An image of a kind that commonly carries text (read whole), where text-like regions were found but none
  // could be read: a person should look.
  const t = r.text;
  if (t?.firstPass === 'whole-frame' && t.candidatesDropped > 0 && t.linesMasked + t.linesKept === 0) return 'the pixel stage could not read any text in the image';
  return undefined;
}

export class ReviewQueue {
  constructor(
    private readonly store: ObjectStore,
    private readonly onChange?: (change: { action: 'held' | 'approved' | 'rejected' | 'redacted'; id: string }) => void,
  ) {}

  async hold(job: ObjectJob, reason: string): Promise<ReviewEntry> {
    const entry: ReviewEntry = { id: job.hash.slice(0, 32), heldAt: new Date().toISOString(), reason, job };
    await this.store.put(entryKey(entry.id), Buffer.from(JSON.stringify(entry)), { durable: true });
    this.onChange?.({ action: 'held', id: entry.id });
    return entry;
  }

  async get(id: string): Promise<ReviewEntry | undefined> {
    if (!isId(id)) return undefined;
    try {
      return JSON.parse((await this.store.get(entryKey(id))).toString('utf8')) as ReviewEntry;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async list(): Promise<ReviewEntry[]> {
    const keys = (await this.store.list('review')).filter((k) => k.endsWith('.json'));
    const out: ReviewEntry[] = [];
    for (const k of keys) {
      try {
        out.push(JSON.parse((await this.store.get(k)).toString('utf8')) as ReviewEntry);
      } catch {
        /* decided meanwhile */
      }
    }
    return out.sort((a, b) => (a.heldAt < b.heldAt ? 1 : -1));
  }

  /** Removes a decided entry (after its decision was carried out). */
  async remove(id: string, action: 'approved' | 'rejected' | 'redacted'): Promise<void> {
    await this.store.delete(entryKey(id));
    this.onChange?.({ action, id });
  }
}
