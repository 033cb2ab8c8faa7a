import { parentPort, workerData } from 'node:worker_threads';
import type { ServiceConfig } from './config.js';
import { createLogger } from './logger.js';
import type { PipelineObserver } from './pipeline/runtime.js';
import { RedisStudyTracker, type StudyEvent, type StudyRecord, type StudyTracker } from './pipeline/studies.js';
import { buildPipeline } from './server.js';

/** Messages from the pipeline thread to the main thread, which owns study tracking and metrics. */
export type ThreadMessage =
  | { type: 'study'; id: string; event: StudyEvent }
  | { type: 'observe'; method: 'stageDone' | 'stageRetried' | 'quarantined'; args: unknown[] };

const post = (m: ThreadMessage) => parentPort!.postMessage(m);

/** Study events go to the main thread's tracker (the embedded tracker is one file with one writer). */
class ForwardingTracker implements StudyTracker {
  async record(id: string, event: StudyEvent): Promise<void> {
    post({ type: 'study', id, event });
  }
  async list(): Promise<StudyRecord[]> {
    return [];
  }
  async get(): Promise<StudyRecord | undefined> {
    return undefined;
  }
  async completeQuiet(): Promise<StudyRecord[]> {
    return [];
  }
  async close(): Promise<void> {}
}

const observer: PipelineObserver = {
  ingested: () => undefined,
  stageDone: (...args) => post({ type: 'observe', method: 'stageDone', args }),
  stageRetried: (...args) => post({ type: 'observe', method: 'stageRetried', args }),
  quarantined: (...args) => post({ type: 'observe', method: 'quarantined', args }),
};

if (parentPort) {
  const cfg = (workerData as { cfg: ServiceConfig }).cfg;
  const log = createLogger('deid-pipeline');
  const tracker: StudyTracker = cfg.redis ? new RedisStudyTracker(cfg.redis) : new ForwardingTracker();
  const built = buildPipeline(cfg, { tracker, observer, log, cacheReads: true });
  built.pipeline.start();
  parentPort.on('message', (m) => {
    if (m !== 'close') return;
    // Graceful: finish the jobs in flight; anything not started stays queued for the next start.
    void built
      .close()
      .then(() => tracker.close())
      .then(() => process.exit(0));
  });
}
