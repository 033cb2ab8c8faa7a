/**
 * Runs the pipeline's stages in a worker thread: they get their own core, away from ingest. The main
 * thread keeps ingest, study tracking and metrics; the thread reports its events in batches.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { ServiceConfig } from '../config.js';
import type { PipelineObserver, Pipeline } from './runtime.js';
import type { StudyTracker } from './studies.js';
import type { MainMessage, ThreadInit, ThreadMessage } from './thread-protocol.js';

export interface ThreadHostOptions {
  /** The thread's entry module (src/pipeline-thread.ts, which builds its pipeline from `cfg`). */
  readonly entry: URL;
  readonly cfg: ServiceConfig;
  /** This process's pipeline: it hands received objects over to the thread. */
  readonly pipeline: Pipeline;
  readonly tracker: StudyTracker;
  readonly observer: PipelineObserver;
  readonly log: Logger;
}

export interface PipelineThread {
  /** Hands a reloaded configuration, applied here already, to the thread: it applies it before any later job. */
  reload(cfg: ServiceConfig): void;
  /** Stops it gracefully. */
  stop(): Promise<void>;
}

/** Starts the thread. */
export function startPipelineThread(o: ThreadHostOptions): PipelineThread {
  const { cfg, pipeline, tracker, observer, log } = o;
  // The thread gets the profile the main thread compiled: both must agree on every object's configuration.
  const thread = new Worker(o.entry, { workerData: { cfg, profile: pipeline.profile } satisfies ThreadInit });
  const exited = new Promise<void>((resolve) => thread.once('exit', () => resolve()));
  let closing = false;
  thread.on('message', (m: ThreadMessage) => {
    for (const e of m.events) {
      if (e.type === 'study') {
        void tracker
          .record(e.id, e.event, e.object)
          .then((now) => now && observer.studyChanged?.(now))
          .catch((err: Error) => log.warn({ study: e.id, event: e.event, err: err.name }, 'study tracking failed'));
      } else (observer[e.method] as ((...a: unknown[]) => void) | undefined)?.(...e.args);
    }
  });
  // Embedded queue: the thread is this host's stage runner, so received objects go to it directly
  // (a copy of the bytes; the sender's buffer stays the sender's).
  if (!cfg.redis) {
    pipeline.handoff = (stage, job, bytes) => {
      const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
      thread.postMessage({ type: 'job', stage, job, bytes: own } satisfies MainMessage);
    };
  }
  thread.on('error', (e) => {
    // The jobs are safe on disk; a supervisor restart picks them up again.
    log.fatal({ err: e.name }, 'pipeline thread failed; exiting');
    process.exit(70);
  });
  thread.on('exit', (code) => {
    if (!closing) {
      log.fatal({ code }, 'pipeline thread stopped unexpectedly; exiting');
      process.exit(70);
    }
  });
  return {
    reload: (next) => thread.postMessage({ type: 'reload', cfg: next, profile: pipeline.profile } satisfies MainMessage),
    async stop() {
      closing = true;
      pipeline.handoff = undefined;
      thread.postMessage('close' satisfies MainMessage);
      await exited;
    },
  };
}
