import { statfs, statfsSync } from 'node:fs';
import { minFreeBytes } from '../config.js';
import type { StageName } from '../stages/stage.js';
import type { JobQueue } from './queue/types.js';

/** How long a free-space reading is trusted before ingest asks the filesystem again. */
const FRESH_MS = 500;

/**
 * Free space on the data directory's volume against the configured reserve (`minFreeSpace`: a share
 * of the volume or a size). Below it, ingest refuses new objects and /readyz says not ready, so that
 * the stages keep room to finish what was acknowledged; work goes on by itself once space is back.
 * Ingest asks `low` on every object: the answer comes from a reading at most FRESH_MS old, refreshed
 * in the background, and a write that met ENOSPC marks the volume full at once.
 */
export class DiskGuard {
  private freeBytes = Infinity;
  private reserveBytes = 0;
  private readAt = 0;
  private reading = false;

  constructor(
    private readonly dir: string,
    private spec: string | number,
  ) {
    this.readNow();
  }

  /** A reload may change the reserve. */
  setReserve(spec: string | number): void {
    this.spec = spec;
    this.readNow();
  }

  private apply(s: { bavail: number; bsize: number; blocks: number }): void {
    this.freeBytes = s.bavail * s.bsize;
    this.reserveBytes = minFreeBytes(this.spec, s.blocks * s.bsize);
    this.readAt = Date.now();
  }

  private readNow(): void {
    try {
      this.apply(statfsSync(this.dir));
    } catch {
      /* not there yet: ingest finds out when it writes */
    }
  }

  /** Whether the free space is below the reserve (from a recent reading). */
  get low(): boolean {
    if (Date.now() - this.readAt > FRESH_MS && !this.reading) {
      this.reading = true;
      statfs(this.dir, (err, s) => {
        this.reading = false;
        if (!err) this.apply(s);
      });
    }
    return this.freeBytes < this.reserveBytes;
  }

  /** A write failed for lack of space: refuse at once, until a reading shows room again. */
  noteFull(): void {
    this.freeBytes = 0;
    this.readAt = Date.now();
  }

  /** A fresh reading: free bytes and the reserve. */
  check(): { free: number; reserve: number; ok: boolean } {
    this.readNow();
    return { free: this.freeBytes, reserve: this.reserveBytes, ok: this.freeBytes >= this.reserveBytes };
  }
}

/** Ready to take objects: the queue answers, and the spool's volume has more free space than its reserve. */
export async function spoolReady(queue: JobQueue, firstStage: StageName, disk: DiskGuard): Promise<boolean> {
  try {
    await queue.counts(firstStage);
    return disk.check().ok;
  } catch {
    return false;
  }
}
