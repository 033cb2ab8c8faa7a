import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, fstatSync, openSync, readFileSync, readSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ScratchBuffer } from '../dicom/scratch-buffer.js';
import { DeidError, toDeidError, type ErrorCode } from '../errors.js';
import { identityFactsOf, type MapRowInput } from '../idmap/index.js';
import { ensureDirSync, tempNameFor, unlinkQuietly, writeFileAtomicSync } from '../pipeline/durable-fs.js';
import { placeOutput, quarantineFile, type QuarantineReason } from '../pipeline/file-outputs.js';
import type { Destination } from '../pipeline/ports.js';
import { processAndExport } from '../pipeline/process-object.js';
import type { CompiledProfile, ProfileChain } from '../profiles/compile.js';
import { objectDetails, type ObjectRecord } from '../report/object-record.js';

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
  /** Record every object in the re-identification map (each thread opens it: a folder or a Redis URL). */
  readonly idMap?: { readonly location: string; readonly keyHex: string; readonly keySource: string; readonly redisPrefix?: string };
  /** Keep a record per file: for --manifest (with the input's SHA-256), and for --report (with the report's details of each written object). */
  readonly manifest?: boolean;
  readonly report?: boolean;
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

/** A file processed: its result, its full record (with a manifest or a report), and its map row (with a map). */
export interface FileOutcome {
  readonly result: FileResult;
  readonly record?: ObjectRecord;
  /** The row to record: the file is counted as written only once it is durable. */
  readonly row?: MapRowInput;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/**
 * Quarantines a file over the size limit without reading it into memory: hashed in chunks, copied by
 * the kernel, named by its content hash as quarantineFile names what it is given.
 */
function quarantineOversized(job: FileJob, s: RunSettings, size: number): FileOutcome {
  const err = new DeidError('DEID_ERR_HOSTILE_SIZE', `${size} bytes`);
  const hash = createHash('sha256');
  const chunk = Buffer.allocUnsafe(1 << 20);
  const fd = openSync(job.path, 'r');
  try {
    for (let n; (n = readSync(fd, chunk, 0, chunk.length, null)) > 0; ) hash.update(chunk.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  const digest = hash.digest('hex');
  const id = digest.slice(0, 32);
  ensureDirSync(s.quarantineDir);
  const target = join(s.quarantineDir, `${id}.dcm`);
  const tmp = tempNameFor(target);
  try {
    copyFileSync(job.path, tmp);
    renameSync(tmp, target);
  } catch (e) {
    unlinkQuietly(tmp);
    throw e;
  }
  const at = new Date().toISOString();
  const reason: QuarantineReason = { code: err.code, message: err.message, stage: STAGE, source: job.rel, at };
  writeFileAtomicSync(join(s.quarantineDir, `${id}.reason.json`), Buffer.from(JSON.stringify(reason, null, 2) + '\n'));
  // Its manifest hash is of the whole file, as for any other input.
  const record: ObjectRecord | undefined = keepsRecords(s) ? { source: job.path, sha256: digest, outcome: 'quarantined', code: err.code, stage: STAGE, at } : undefined;
  return outcome({ path: job.path, ok: false, code: err.code, bytesIn: size, bytesOut: 0 }, record);
}

/** A file over the size limit: it is not read (quarantineOversized copies it as it is). */
class TooLarge {
  constructor(readonly size: number) {}
}

type Read = (path: string, maxBytes: number) => Buffer | TooLarge;

/** Reads an input within the size limit, or says why not (an unreadable file stays where it is). */
function readInput(job: FileJob, s: RunSettings, read: Read): Buffer | FileOutcome {
  let input: Buffer | TooLarge;
  try {
    input = read(job.path, s.maxBytes);
  } catch {
    const code = 'DEID_ERR_READ';
    const record: ObjectRecord | undefined = keepsRecords(s) ? { source: job.path, sha256: '', outcome: 'unreadable', code, stage: STAGE, at: new Date().toISOString() } : undefined;
    return outcome({ path: job.path, ok: false, code, bytesIn: 0, bytesOut: 0 }, record);
  }
  // The size is checked before anything is allocated for it.
  return input instanceof TooLarge ? quarantineOversized(job, s, input.size) : input;
}

/** A whole file in a buffer of its own, for callers that keep several files at once. */
export function readWholeFile(path: string, maxBytes: number): Buffer | TooLarge {
  const size = statSync(path).size;
  return size > maxBytes ? new TooLarge(size) : readFileSync(path);
}

const STAGE = 'deid run';
const keepsRecords = (s: RunSettings) => !!(s.manifest || s.report);

/** The outcome of a file. */
const outcome = (result: FileResult, record?: ObjectRecord, row?: MapRowInput): FileOutcome => ({ result, record, row });

/** Quarantines an input (the original bytes and the reason); `hash` when it is known already. */
export function quarantineInput(job: FileJob, s: RunSettings, input: Buffer, e: unknown, hash?: string): FileOutcome {
  const err = toDeidError(e);
  const at = new Date().toISOString();
  quarantineFile(s.quarantineDir, input, { code: err.code, message: err.message, stage: STAGE, source: job.rel, at });
  const record: ObjectRecord | undefined = keepsRecords(s) ? { source: job.path, sha256: hash ?? sha256(input), outcome: 'quarantined', code: err.code, stage: STAGE, at } : undefined;
  return outcome({ path: job.path, ok: false, code: err.code, bytesIn: input.length, bytesOut: 0 }, record);
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

/** `deid run`'s destination: the output folder, where nothing is ever overwritten (file-outputs.ts). */
function outputFolder(outDir: string): Destination & { written?: string } {
  return {
    name: outDir,
    async send(part10, info) {
      try {
        this.written = placeOutput(outDir, info.studyInstanceUid, info.seriesInstanceUid, info.sopInstanceUid, part10);
      } catch (e) {
        throw new DeidError('DEID_ERR_OUTPUT', (e as NodeJS.ErrnoException).code ?? 'write failed');
      }
    },
    async close() {},
  };
}

/**
 * De-identifies one file through every stage, the output folder as the export's destination: output
 * on success, original plus reason in quarantine on any failure.
 *
 * With `reuseBuffers`, the input is read into this thread's input area and the output encoded into
 * its output area: the caller must finish each file before it starts the next (the header-only run,
 * one file after another per thread). Without, each file has buffers of its own (clean-pixel-data,
 * where files are processed concurrently and the OCR pool does the parallel work).
 */
export async function processFile(
  job: FileJob,
  s: RunSettings,
  profile: CompiledProfile,
  secret: Buffer,
  opts: { reuseBuffers: boolean },
): Promise<FileOutcome> {
  const input = readInput(job, s, opts.reuseBuffers ? readIntoInputArea : readWholeFile);
  if (!Buffer.isBuffer(input)) return input;
  // The manifest's source hash, taken before the stages (a quarantined input is hashed for its name anyway).
  const hash = s.manifest ? sha256(input) : undefined;
  const folder = outputFolder(s.outDir);
  try {
    const r = await processAndExport(input, {
      profile,
      secret,
      scratch: opts.reuseBuffers ? outputArea : undefined,
      maxBytes: s.maxBytes,
      previews: !!s.previewsDir,
      dispositions: s.report,
      destinations: [folder],
    });
    if (s.previewsDir && r.previews && r.pixels?.pixelsMasked) {
      try {
        // Named by the new SOP Instance UID, beside nothing that identifies the patient.
        writeFileAtomicSync(join(s.previewsDir, `${r.sopInstanceUid}.before.png`), r.previews.before);
        writeFileAtomicSync(join(s.previewsDir, `${r.sopInstanceUid}.after.png`), r.previews.after);
      } catch (e) {
        throw new DeidError('DEID_ERR_OUTPUT', (e as NodeJS.ErrnoException).code ?? 'write failed');
      }
    }
    const result: FileResult = { path: job.path, ok: true, bytesIn: input.length, bytesOut: r.output.length, pixels: r.pixels?.action };
    const record: ObjectRecord | undefined = keepsRecords(s)
      ? {
          source: job.path,
          sha256: hash ?? '',
          outcome: 'written',
          output: folder.written,
          studyInstanceUid: r.studyInstanceUid,
          seriesInstanceUid: r.seriesInstanceUid,
          sopInstanceUid: r.sopInstanceUid,
          at: new Date().toISOString(),
          ...(s.report ? { details: objectDetails(r.facts, r.outputFile.dataset, secret) } : {}),
        }
      : undefined;
    // Recorded by the caller: the rows of a batch share a write, and the file counts once its row is durable.
    return outcome(result, record, s.idMap ? identityFactsOf(r.facts) : undefined);
  } catch (e) {
    return quarantineInput(job, s, input, e, hash);
  }
}
