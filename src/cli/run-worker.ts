import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { compileProfile, type CompiledProfile } from '../profiles/compile.js';
import { processFile, type FileJob, type RunSettings } from './process-file.js';

/**
 * Worker thread: de-identifies the files it is sent, writing outputs and quarantine entries itself.
 * Its settings come as workerData, or as a first `init` message when it was started ahead of time.
 */
let state: { settings: RunSettings; profile: CompiledProfile; secret: Buffer } | undefined;
const init = (settings: RunSettings) => {
  state = { settings, profile: compileProfile(settings.chain, settings.options), secret: Buffer.from(settings.secretHex, 'hex') };
};
if (workerData) init(workerData as RunSettings);
parentPort!.on('message', (m: FileJob[] | { init: RunSettings }) => {
  if (!Array.isArray(m)) return init(m.init);
  const s = state!;
  parentPort!.postMessage(m.map((job) => processFile(job, s.settings, s.profile, s.secret, readFileSync)));
});
