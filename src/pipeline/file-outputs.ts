import { createHash } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync, fsyncSync, openSync, closeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ErrorCode } from '../errors.js';

const made = new Set<string>();
function ensureDir(dir: string): void {
  if (made.has(dir)) return;
  mkdirSync(dir, { recursive: true });
  made.add(dir);
}

let tmpCounter = 0;
const tmpName = (target: string) => `${target}.tmp-${process.pid}-${process.hrtime.bigint()}-${tmpCounter++}`;

/** Writes a file durably: temp file, optional fsync, then an atomic rename into place. */
export function writeFileAtomic(target: string, data: Uint8Array, fsync = false): void {
  ensureDir(dirname(target));
  const tmp = tmpName(target);
  if (fsync) {
    const fd = openSync(tmp, 'w');
    try {
      writeFileSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } else writeFileSync(tmp, data);
  renameSync(tmp, target);
}

/**
 * Places a de-identified object at <out>/<study>/<series>/<sop>.dcm without ever overwriting a
 * different object: the same bytes again are a no-op; different bytes under the same UID (a source
 * that reused a UID) get a content-hash suffix. Returns the path written.
 */
export function placeOutput(outDir: string, study: string, series: string, sop: string, data: Uint8Array): string {
  const dir = join(outDir, study || 'no-study', series || 'no-series');
  ensureDir(dir);
  const target = join(dir, `${sop}.dcm`);
  const tmp = tmpName(target);
  writeFileSync(tmp, data);
  try {
    // The content-hash name is computed only on a collision: hashing every output would cost a pass over it.
    const candidates = [() => target, () => join(dir, `${sop}-${createHash('sha256').update(data).digest('hex').slice(0, 12)}.dcm`)];
    for (const name of candidates) {
      const candidate = name();
      try {
        linkSync(tmp, candidate);
        return candidate;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        if (Buffer.compare(readFileSync(candidate), Buffer.from(data.buffer, data.byteOffset, data.byteLength)) === 0) return candidate;
      }
    }
    throw new Error('output name collision');
  } finally {
    unlinkSync(tmp);
  }
}

export interface QuarantineReason {
  readonly code: ErrorCode;
  readonly message: string;
  readonly stage: string;
  readonly source?: string;
  readonly at: string;
}

/** Quarantines the original bytes under their content hash, with a reason file beside them. */
export function quarantineFile(dir: string, original: Uint8Array, reason: QuarantineReason): string {
  const id = createHash('sha256').update(original).digest('hex').slice(0, 32);
  const target = join(dir, `${id}.dcm`);
  writeFileAtomic(target, original);
  writeFileAtomic(join(dir, `${id}.reason.json`), Buffer.from(JSON.stringify(reason, null, 2) + '\n'));
  return target;
}
