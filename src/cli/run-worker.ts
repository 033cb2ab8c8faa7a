import { readFile } from 'node:fs';
import { promisify } from 'node:util';
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
const readWhole = promisify(readFile);

parentPort!.on('message', async (m: FileJob[] | { init: RunSettings }) => {
  if (!Array.isArray(m)) return init(m.init);
  const s = state!;
  // Reads run ahead in libuv's pool while this thread de-identifies: I/O overlaps with the CPU work.
  const reads = m.map((job) => readWhole(job.path).catch((e: unknown) => e as Error));
  const results = [];
  for (let i = 0; i < m.length; i++) {
    const input = await reads[i];
    results.push(
      processFile(m[i], s.settings, s.profile, s.secret, () => {
        if (input instanceof Error) throw input;
        return input;
      }),
    );
  }
  parentPort!.postMessage(results);
});
