import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ScratchBuffer } from '../dicom/scratch-buffer.js';
import { DeidError, toDeidError, type ErrorCode } from '../errors.js';
import { placeOutput, quarantineFile, writeFileAtomic, type QuarantineReason } from '../pipeline/file-outputs.js';
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

/**
 * Quarantines a file over the size limit without reading it into memory: hashed in chunks, copied by
 * the kernel, named by its content hash as quarantineFile names what it is given.
 */
function quarantineOversized(job: FileJob, s: RunSettings, size: number): FileResult {
  const err = new DeidError('DEID_ERR_HOSTILE_SIZE', `${size} bytes`);
  const hash = createHash('sha256');
  const chunk = Buffer.allocUnsafe(1 << 20);
  const fd = openSync(job.path, 'r');
  try {
    for (let n; (n = readSync(fd, chunk, 0, chunk.length, null)) > 0; ) hash.update(chunk.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  const id = hash.digest('hex').slice(0, 32);
  mkdirSync(s.quarantineDir, { recursive: true });
  const target = join(s.quarantineDir, `${id}.dcm`);
  copyFileSync(job.path, `${target}.tmp-${process.pid}`);
  renameSync(`${target}.tmp-${process.pid}`, target);
  const reason: QuarantineReason = { code: err.code, message: err.message, stage: 'deid run', source: job.rel, at: new Date().toISOString() };
  writeFileAtomic(join(s.quarantineDir, `${id}.reason.json`), Buffer.from(JSON.stringify(reason, null, 2) + '\n'));
  return { path: job.path, ok: false, code: err.code, bytesIn: size, bytesOut: 0 };
}

/** A file over the size limit: it is not read (quarantineOversized copies it as it is). */
class TooLarge {
  constructor(readonly size: number) {}
}

type Read = (path: string, maxBytes: number) => Buffer | TooLarge;

/** Reads an input within the size limit, or says why not (an unreadable file stays where it is). */
function readInput(job: FileJob, s: RunSettings, read: Read): Buffer | FileResult {
  let input: Buffer | TooLarge;
  try {
    input = read(job.path, s.maxBytes);
  } catch {
    return { path: job.path, ok: false, code: 'DEID_ERR_READ', bytesIn: 0, bytesOut: 0 };
  }
  // The size is checked before anything is allocated for it.
  return input instanceof TooLarge ? quarantineOversized(job, s, input.size) : input;
}

/** A whole file in a buffer of its own, for callers that keep several files at once. */
export function readWholeFile(path: string, maxBytes: number): Buffer | TooLarge {
  const size = statSync(path).size;
  return size > maxBytes ? new TooLarge(size) : readFileSync(path);
}

function quarantineInput(job: FileJob, s: RunSettings, input: Buffer, e: unknown): FileResult {
  const err = toDeidError(e);
  quarantineFile(s.quarantineDir, input, { code: err.code, message: err.message, stage: 'deid run', source: job.rel, at: new Date().toISOString() });
  return { path: job.path, ok: false, code: err.code, bytesIn: input.length, bytesOut: 0 };
}

/**
 * This thread's input and output areas, reused from file to file: processFile finishes each file (its
 * output written, or its input quarantined) before it reads the next. Fresh buffers per file cost a
 * tenth of a 1,000-file run in page faults and garbage collections.
 */
const inputArea = new ScratchBuffer();
const outputArea = new ScratchBuffer();

/** As readFileSync: a file this large is not read (it stays where it is, reported unreadable). */
const MAX_READ = 2 ** 31 - 1;

/** Reads a whole file into this thread's input area (valid until the next read on this thread). */
function readIntoInputArea(path: string, maxBytes: number): Buffer | TooLarge {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > maxBytes) return new TooLarge(size);
    if (size > MAX_READ) throw new RangeError('file too large to read');
    const buf = inputArea.take(size);
    let got = 0;
    while (got < size) {
      const n = readSync(fd, buf, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    return got === size ? buf : buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/**
 * De-identifies one file: output on success, original plus reason in quarantine on any failure.
 * Synchronous from read to write, so that it can use this thread's reused input and output areas.
 */
export function processFile(job: FileJob, s: RunSettings, profile: CompiledProfile, secret: Buffer): FileResult {
  const input = readInput(job, s, readIntoInputArea);
  if (!Buffer.isBuffer(input)) return input;
  try {
    const r = processObject(input, { profile, secret, scratch: outputArea, maxBytes: s.maxBytes });
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
 * Several files are in flight at once here, so each has buffers of its own.
 */
export async function processFileAsync(job: FileJob, s: RunSettings, profile: CompiledProfile, secret: Buffer, read: Read = readWholeFile): Promise<FileResult> {
  const input = readInput(job, s, read);
  if (!Buffer.isBuffer(input)) return input;
  try {
    const r: ProcessedObject & { previews?: { before: Buffer; after: Buffer } } = await processObjectAsync(input, { profile, secret, previews: !!s.previewsDir, maxBytes: s.maxBytes });
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
