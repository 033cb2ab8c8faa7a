/**
 * The embedded queue's files: a folder per stage with `ready/`, `active/` and `tmp/`, and one small
 * JSON record per job. Shared by the queue (adding, counting) and its stage runners (claiming).
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readdir } from 'node:fs/promises';
import { errorCode } from './common.js';
import type { JobData } from './types.js';

export interface JobRecord {
  readonly v: 1;
  readonly job: JobData;
  readonly attempt: number;
  readonly enqueuedAt: number;
  readonly notBefore: number;
  readonly seq: number;
}

/** A ready job as a runner indexes it. */
export interface Entry {
  readonly name: string;
  readonly key: string;
  readonly at: number;
  readonly enqueuedAt: number;
  readonly seq: number;
  /** Scan epoch when the entry was indexed: a scan only drops entries it could have seen. */
  readonly epoch: number;
  /** The job file's content, when this process wrote or read it already (saves reading it again at claim). */
  readonly record?: JobRecord;
}

export interface StageDirs {
  readonly root: string;
  readonly ready: string;
  readonly active: string;
  readonly tmp: string;
  /** fsyncs ready/ (coalesced). */
  readonly syncReady: () => Promise<void>;
}

/** A job file's key: any id becomes a safe name, and the attempt tells retries apart. */
export const jobKey = (id: string, attempt: number): string => `${createHash('sha256').update(id).digest('hex')}.${attempt}`;

/** Same-process wakeups: a job added by any instance reaches this process's runners at once (keyed by ready/ path). */
export const BUS = new EventEmitter().setMaxListeners(0);

export const byDeliveryOrder = (a: Entry, b: Entry): number =>
  a.at - b.at || a.enqueuedAt - b.enqueuedAt || a.seq - b.seq || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

export const ignoreMissing = (e: unknown): void => {
  if (errorCode(e) !== 'ENOENT') throw e;
};

export async function countJson(dir: string): Promise<number> {
  try {
    return (await readdir(dir)).filter((n) => n.endsWith('.json')).length;
  } catch (e) {
    ignoreMissing(e);
    return 0;
  }
}
