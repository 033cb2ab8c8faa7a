import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { compileProfile } from '../profiles/compile.js';
import { processFile, type FileJob, type RunSettings } from './process-file.js';

/** Worker thread: de-identifies the files it is sent, writing outputs and quarantine entries itself. */
const settings = workerData as RunSettings;
const secret = Buffer.from(settings.secretHex, 'hex');
const profile = compileProfile(settings.chain, settings.options);
parentPort!.on('message', (jobs: FileJob[]) => {
  parentPort!.postMessage(jobs.map((job) => processFile(job, settings, profile, secret, readFileSync)));
});
