import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * Starts the `deid run` worker threads before the main thread has loaded the CLI, so that their module
 * loading overlaps with the main thread's. They wait for their settings; unused ones are terminated.
 */
const pool: Worker[] = [];

/** One per core but the main thread's core: the main thread de-identifies too. */
export function prewarmRunWorkers(n = availableParallelism() - 1): void {
  for (let i = 0; i < n; i++) {
    const w = new Worker(new URL('./run-worker.js', import.meta.url));
    // Until taken, a prewarmed worker must not keep the process alive (e.g. after a usage error).
    w.unref();
    pool.push(w);
  }
}

/** Takes up to n prewarmed workers and terminates the rest. */
export function takeRunWorkers(n: number): Worker[] {
  const taken = pool.splice(0, n);
  for (const w of pool.splice(0)) void w.terminate();
  for (const w of taken) w.ref();
  return taken;
}
