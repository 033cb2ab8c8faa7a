import { join } from 'node:path';
import { DeidError, toDeidError, type ErrorCode } from '../errors.js';
import { placeOutput, quarantineFile, writeFileAtomic } from '../pipeline/file-outputs.js';
import { processObject, processObjectAsync, type ProcessedObject } from '../pipeline/process-object.js';
import type { CompiledProfile, ProfileChain } from '../profiles/compile.js';

export interface RunSettings {
  /** The profile, already read and validated by the main thread. */
  readonly chain: ProfileChain;
  readonly options: readonly string[];
  readonly secretHex: string;
  readonly outDir: string;
  readonly quarantineDir: string;
  readonly maxBytes: number;
  /** clean-pixel-data: where to write the before/after preview PNGs of masked images. */
  readonly previewsDir?: string;
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
  /** clean-pixel-data: what the pixel stage did. */
  readonly pixels?: 'cleaned' | 'skipped';
}

/** Reads an input within the size limit, or says why not (an unreadable file stays where it is). */
function readInput(job: FileJob, s: RunSettings, read: (p: string) => Buffer): Buffer | FileResult {
  let input: Buffer;
  try {
    input = read(job.path);
  } catch {
    return { path: job.path, ok: false, code: 'DEID_ERR_READ', bytesIn: 0, bytesOut: 0 };
  }
  return input.length > s.maxBytes ? quarantineInput(job, s, input, new DeidError('DEID_ERR_HOSTILE_SIZE', `${input.length} bytes`)) : input;
}

function quarantineInput(job: FileJob, s: RunSettings, input: Buffer, e: unknown): FileResult {
  const err = toDeidError(e);
  quarantineFile(s.quarantineDir, input, { code: err.code, message: err.message, stage: 'deid run', source: job.rel, at: new Date().toISOString() });
  return { path: job.path, ok: false, code: err.code, bytesIn: input.length, bytesOut: 0 };
}

/** De-identifies one file: output on success, original plus reason in quarantine on any failure. */
export function processFile(job: FileJob, s: RunSettings, profile: CompiledProfile, secret: Buffer, read: (p: string) => Buffer): FileResult {
  const input = readInput(job, s, read);
  if (!Buffer.isBuffer(input)) return input;
  try {
    const r = processObject(input, { profile, secret });
    try {
      placeOutput(s.outDir, r.studyInstanceUid, r.seriesInstanceUid, r.sopInstanceUid, r.output);
    } catch (e) {
      throw new DeidError('DEID_ERR_OUTPUT', (e as NodeJS.ErrnoException).code ?? 'write failed');
    }
    return { path: job.path, ok: true, bytesIn: input.length, bytesOut: r.output.length };
  } catch (e) {
    return quarantineInput(job, s, input, e);
  }
}

/**
 * The same for profiles with clean-pixel-data: the pixel stage is asynchronous (OCR in a pool of
 * workers), so files are processed concurrently on one thread and the pool does the parallel work.
 */
export async function processFileAsync(job: FileJob, s: RunSettings, profile: CompiledProfile, secret: Buffer, read: (p: string) => Buffer): Promise<FileResult> {
  const input = readInput(job, s, read);
  if (!Buffer.isBuffer(input)) return input;
  try {
    const r: ProcessedObject & { previews?: { before: Buffer; after: Buffer } } = await processObjectAsync(input, { profile, secret, previews: !!s.previewsDir });
    try {
      placeOutput(s.outDir, r.studyInstanceUid, r.seriesInstanceUid, r.sopInstanceUid, r.output);
      if (s.previewsDir && r.previews && r.pixels?.pixelsMasked) {
        // Named by the new SOP Instance UID, beside nothing that identifies the patient.
        writeFileAtomic(join(s.previewsDir, `${r.sopInstanceUid}.before.png`), r.previews.before);
        writeFileAtomic(join(s.previewsDir, `${r.sopInstanceUid}.after.png`), r.previews.after);
      }
    } catch (e) {
      throw new DeidError('DEID_ERR_OUTPUT', (e as NodeJS.ErrnoException).code ?? 'write failed');
    }
    return { path: job.path, ok: true, bytesIn: input.length, bytesOut: r.output.length, pixels: r.pixels?.action };
  } catch (e) {
    return quarantineInput(job, s, input, e);
  }
}
