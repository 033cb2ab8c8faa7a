/**
 * The pipeline thread's entry (started by pipeline/thread-host.ts): it builds its own pipeline from
 * the configuration and runs the stages; study events and metrics go back to the main thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createDestination } from './export/index.js';
import { createLogger, setLogLevel } from './logger.js';
import { buildPipeline, type BuiltPipeline } from './pipeline/assemble.js';
import { openServiceIdMap } from './pipeline/outcomes.js';
import type { PipelineObserver } from './pipeline/runtime.js';
import { RedisStudyTracker, type StudyEvent, type StudyRecord, type StudyTracker } from './pipeline/studies.js';
import type { MainMessage, ThreadEvent, ThreadInit, ThreadMessage } from './pipeline/thread-protocol.js';

let pending: ThreadEvent[] = [];
let flushTimer: NodeJS.Timeout | undefined;
const flush = (): void => {
  clearTimeout(flushTimer);
  flushTimer = undefined;
  if (pending.length === 0) return;
  parentPort!.postMessage({ type: 'events', events: pending } satisfies ThreadMessage);
  pending = [];
};
const post = (e: ThreadEvent): void => {
  pending.push(e);
  flushTimer ??= setTimeout(flush, 20);
};

/** Study events go to the main thread's tracker (the embedded tracker is one file with one writer). */
class ForwardingTracker implements StudyTracker {
  async record(id: string, event: StudyEvent, object: string): Promise<undefined> {
    post({ type: 'study', id, event, object });
    return undefined;
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
  async forgetCompletedBefore(): Promise<string[]> {
    return [];
  }
  async close(): Promise<void> {
    flush();
  }
}

/** Every observed event goes to the main thread, whose metrics and status port count it. */
const observer: PipelineObserver = {
  ingested: () => undefined,
  stageDone: (...args) => post({ type: 'observe', method: 'stageDone', args }),
  stageRetried: (...args) => post({ type: 'observe', method: 'stageRetried', args }),
  quarantined: (...args) => post({ type: 'observe', method: 'quarantined', args }),
  studyChanged: (...args) => post({ type: 'observe', method: 'studyChanged', args }),
  quarantineChanged: (...args) => post({ type: 'observe', method: 'quarantineChanged', args }),
};

if (parentPort) {
  const { cfg, profile } = workerData as ThreadInit;
  const log = createLogger('deid-pipeline', cfg.log);
  const tracker: StudyTracker = cfg.redis ? new RedisStudyTracker(cfg.redis) : new ForwardingTracker();
  // The map opens asynchronously; messages that come meanwhile wait for the pipeline.
  const ready: Promise<BuiltPipeline> = openServiceIdMap(cfg, log).then((idMap) => {
    const built = buildPipeline(cfg, { tracker, observer, log, cacheReads: true, destination: createDestination, profile, idMap });
    built.pipeline.start();
    return built;
  });
  ready.catch((e: unknown) => {
    log.fatal({ err: (e as Error).name, code: (e as { code?: string }).code }, 'the pipeline thread could not start');
    // The host sees the thread fail, and stops the process (the jobs are safe on disk).
    setImmediate(() => {
      throw e;
    });
  });
  parentPort.on('message', (m: MainMessage) => void ready.then((built) => onMessage(built, m), () => undefined));
  const onMessage = (built: BuiltPipeline, m: MainMessage) => {
    if (m !== 'close' && m.type === 'reload') {
      setLogLevel(log, m.cfg.log.level);
      built.reconfigure(m.cfg, m.profile).catch((e: unknown) => log.error({ err: (e as Error).message }, 'reload failed in the pipeline thread; the previous configuration stays'));
      return;
    }
    if (m !== 'close') {
      // The object is durable in the spool already: a job that cannot be queued now is found again by reconcile().
      built.pipeline.accept(m.stage, m.job, m.bytes).catch((e: unknown) => log.error({ err: (e as Error).name }, 'handed-over job not queued'));
      return;
    }
    // Graceful: finish the jobs in flight; anything not started stays queued for the next start.
    void built
      .close()
      .then(() => tracker.close())
      .then(() => {
        flush();
        process.exit(0);
      });
  };
}
