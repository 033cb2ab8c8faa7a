import { parentPort, workerData } from 'node:worker_threads';
import { compileProfile, type CompiledProfile } from '../profiles/compile.js';
import type { FileJob, RunSettings } from './process-file.js';
import { ThreadRun } from './thread-run.js';

/** What a worker starts from: the settings, and the profile the main thread compiled from them. */
export interface WorkerInit {
  readonly settings: RunSettings;
  readonly profile?: CompiledProfile;
}

/** Main → worker: its settings (a prewarmed worker), or a batch of files (answered with their Processed outcomes). */
export type WorkerRequest = FileJob[] | { init: WorkerInit };

/**
 * Worker thread: de-identifies the files it is sent, writing outputs and quarantine entries itself,
 * and hands the outcomes to the main thread, which records and counts them. Its settings come as
 * workerData, or as a first `init` message when it was started ahead of time.
 */
let run: ThreadRun | undefined;
const init = ({ settings, profile }: WorkerInit) => {
  run = new ThreadRun(settings, profile ?? compileProfile(settings.chain, settings.options));
};
if (workerData) init(workerData as WorkerInit);

parentPort!.on('message', (m: WorkerRequest) => {
  if (!Array.isArray(m)) init(m.init);
  // One file after another (they share this thread's buffers). Synchronous reads into one reused
  // buffer: reads run ahead of the work in libuv's pool cost more (a fresh buffer per file, four pool
  // round trips) than they overlapped, with every core busy anyway.
  else void run!.process(m, { reuseBuffers: true }).then((processed) => parentPort!.postMessage(processed));
});
