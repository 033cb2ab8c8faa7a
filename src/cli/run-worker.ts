import { parentPort, workerData } from 'node:worker_threads';
import { compileProfile, type CompiledProfile } from '../profiles/compile.js';
import { processFile, type FileJob, type FileResult, type RunSettings } from './process-file.js';

/** What a worker starts from: the settings, and the profile the main thread compiled from them. */
export interface WorkerInit {
  readonly settings: RunSettings;
  readonly profile?: CompiledProfile;
}

/**
 * Worker thread: de-identifies the files it is sent, writing outputs and quarantine entries itself.
 * Its settings come as workerData, or as a first `init` message when it was started ahead of time.
 */
let state: { settings: RunSettings; profile: CompiledProfile; secret: Buffer } | undefined;
const init = ({ settings, profile }: WorkerInit) => {
  state = { settings, profile: profile ?? compileProfile(settings.chain, settings.options), secret: Buffer.from(settings.secretHex, 'hex') };
};
if (workerData) init(workerData as WorkerInit);

parentPort!.on('message', (m: FileJob[] | { init: WorkerInit }) => {
  if (!Array.isArray(m)) return init(m.init);
  void processBatch(m, state!).then((results) => parentPort!.postMessage(results));
});

/**
 * One file after another (they share this thread's buffers). Synchronous reads into one reused
 * buffer: reads run ahead of the work in libuv's pool cost more (a fresh buffer per file, four pool
 * round trips) than they overlapped, with every core busy anyway.
 */
async function processBatch(batch: FileJob[], s: NonNullable<typeof state>): Promise<FileResult[]> {
  const results: FileResult[] = [];
  for (const job of batch) results.push(await processFile(job, s.settings, s.profile, s.secret, { reuseBuffers: true }));
  return results;
}
