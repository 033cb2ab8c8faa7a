import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { ErrorCode } from '../errors.js';
import { placeFileSync, writeFileAtomicSync } from './durable-fs.js';

/**
 * Places a de-identified object at <out>/<study>/<series>/<sop>.dcm without ever overwriting a
 * different object: the same bytes again are a no-op; different bytes under the same UID (a source
 * that reused a UID) get a content-hash suffix. Returns the path written.
 */
export function placeOutput(outDir: string, study: string, series: string, sop: string, data: Uint8Array): string {
  return placeFileSync(join(outDir, study || 'no-study', series || 'no-series', `${sop}.dcm`), data);
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
