import { statfsSync } from 'node:fs';
import type { StageName } from '../stages/stage.js';
import type { JobQueue } from './queue/types.js';

/** Ready to take objects: the queue answers, and the spool's volume has room (64 MiB free). */
export async function spoolReady(queue: JobQueue, firstStage: StageName, dataDir: string): Promise<boolean> {
  try {
    await queue.counts(firstStage);
    const fs = statfsSync(dataDir);
    return fs.bavail * fs.bsize > 64 * 1024 * 1024;
  } catch {
    return false;
  }
}
