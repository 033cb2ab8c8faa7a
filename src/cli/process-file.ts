import { DeidError, toDeidError, type ErrorCode } from '../errors.js';
import { placeOutput, quarantineFile } from '../pipeline/file-outputs.js';
import { processObject } from '../pipeline/process-object.js';
import type { CompiledProfile, ProfileChain } from '../profiles/compile.js';

export interface RunSettings {
  /** The profile, already read and validated by the main thread. */
  readonly chain: ProfileChain;
  readonly options: readonly string[];
  readonly secretHex: string;
  readonly outDir: string;
  readonly quarantineDir: string;
  readonly maxBytes: number;
}

export interface FileJob {
  readonly path: string;
  /** Path relative to the input root, recorded in the quarantine reason. */
  readonly rel: string;
}

export interface FileResult {
  readonly path: string;
  readonly ok: boolean;
  readonly code?: ErrorCode;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/** De-identifies one file: output on success, original plus reason in quarantine on any failure. */
export function processFile(job: FileJob, s: RunSettings, profile: CompiledProfile, secret: Buffer, read: (p: string) => Buffer): FileResult {
  let input: Buffer;
  try {
    input = read(job.path);
  } catch {
    return { path: job.path, ok: false, code: 'DEID_ERR_READ', bytesIn: 0, bytesOut: 0 };
  }
  try {
    if (input.length > s.maxBytes) throw new DeidError('DEID_ERR_HOSTILE_SIZE', `${input.length} bytes`);
    const r = processObject(input, { profile, secret });
    try {
      placeOutput(s.outDir, r.studyInstanceUid, r.seriesInstanceUid, r.sopInstanceUid, r.output);
    } catch (e) {
      throw new DeidError('DEID_ERR_OUTPUT', (e as NodeJS.ErrnoException).code ?? 'write failed');
    }
    return { path: job.path, ok: true, bytesIn: input.length, bytesOut: r.output.length };
  } catch (e) {
    const err = toDeidError(e);
    quarantineFile(s.quarantineDir, input, { code: err.code, message: err.message, stage: 'deid run', source: job.rel, at: new Date().toISOString() });
    return { path: job.path, ok: false, code: err.code, bytesIn: input.length, bytesOut: 0 };
  }
}
