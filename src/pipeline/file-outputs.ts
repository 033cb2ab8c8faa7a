import { createHash } from 'node:crypto';
import { linkSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { ErrorCode } from '../errors.js';
import { writeFileAtomicSync, writeTempSync } from './durable-fs.js';

/**
 * Places a de-identified object at <out>/<study>/<series>/<sop>.dcm without ever overwriting a
 * different object: the same bytes again are a no-op; different bytes under the same UID (a source
 * that reused a UID) get a content-hash suffix. Returns the path written.
 */
export function placeOutput(outDir: string, study: string, series: string, sop: string, data: Uint8Array): string {
  const dir = join(outDir, study || 'no-study', series || 'no-series');
  const target = join(dir, `${sop}.dcm`);
  const tmp = writeTempSync(target, data);
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
  writeFileAtomicSync(target, original);
  writeFileAtomicSync(join(dir, `${id}.reason.json`), Buffer.from(JSON.stringify(reason, null, 2) + '\n'));
  return target;
}
