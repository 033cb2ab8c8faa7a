import { readFileSync } from 'node:fs';
import { DeidError, toDeidError } from '../errors.js';
import { IdMap, RowSealer, type ReidKey, type SealedRow } from '../idmap/index.js';
import type { CompiledProfile } from '../profiles/compile.js';
import { SubmissionReport } from '../report/submission.js';
import { processFile, quarantineInput, type FileJob, type FileOutcome, type RunSettings } from './process-file.js';

/**
 * Opens the map a run records into. Rows are fsynced when the map closes, before the run reports, not
 * per batch: the outputs are not fsynced either (a crashed run is run again), and an fsync per batch
 * would make ext4 write back the outputs early, in the middle of the run.
 */
export function openRunMap(m: NonNullable<RunSettings['idMap']>, key?: ReidKey): Promise<IdMap> {
  return IdMap.open(m.location, { key: key ?? { key: Buffer.from(m.keyHex, 'hex'), source: m.keySource, created: false }, create: true, redisPrefix: m.redisPrefix, syncEachBatch: false });
}

/** A file through the pipeline on some thread, on its way to be recorded and counted. */
export interface Processed {
  readonly job: FileJob;
  /** Its outcome, without the map row: that travels sealed. */
  readonly outcome: FileOutcome;
  /** Its map row, sealed by the thread that processed it. */
  readonly sealed?: SealedRow;
}

/**
 * A `deid run` on one thread. Every thread processes files (`process`: outputs and quarantine
 * entries written, map rows sealed); the main thread also records them all (`settle`): their sealed
 * rows, written a batch at a time, and their report. A file is counted only once its map row is
 * durable. One writer and one report per run: the workers hand their outcomes over rather than keep
 * shares to merge, but seal their own rows, the costly part of recording them.
 */
export class ThreadRun {
  private map?: Promise<IdMap | undefined>;
  private report?: SubmissionReport;
  private readonly secret: Buffer;
  /** Every thread seals the rows of the files it processed: the recording thread then only writes them. */
  private readonly sealer?: RowSealer;

  /** `map`: the run's map, opened by the caller (`openRunMap`), for the thread that records. */
  constructor(
    private readonly s: RunSettings,
    private readonly profile: CompiledProfile,
    map?: IdMap,
  ) {
    this.secret = Buffer.from(s.secretHex, 'hex');
    if (s.idMap) this.sealer = RowSealer.fromKey(Buffer.from(s.idMap.keyHex, 'hex'));
    if (map) this.map = Promise.resolve(map);
  }

  private openMap(): Promise<IdMap | undefined> {
    const m = this.s.idMap;
    // The key was read (and the map checked against it) before any file was touched.
    this.map ??= m ? openRunMap(m) : Promise.resolve(undefined);
    return this.map;
  }

  /** The previous batch's processing: batches that share this thread's buffers are processed one at a time. */
  private turn: Promise<unknown> = Promise.resolve();

  /**
   * Takes files through the pipeline: one after another with `reuseBuffers` (they share this thread's
   * buffers, so batches wait their turn), or one of several at once without.
   */
  process(jobs: readonly FileJob[], opts: { reuseBuffers: boolean }): Promise<Processed[]> {
    const work = async () => {
      const out: Processed[] = [];
      for (const job of jobs) {
        const { row, ...outcome } = await processFile(job, this.s, this.profile, this.secret, { reuseBuffers: opts.reuseBuffers });
        out.push({ job, outcome, sealed: row && this.sealer?.seal(row) });
      }
      return out;
    };
    if (!opts.reuseBuffers) return work();
    const done = this.turn.then(work);
    this.turn = done.catch(() => undefined);
    return done;
  }

  /**
   * Records processed files (of any thread): their map rows written together, and once they are
   * durable (a file whose row failed is quarantined instead) the report counts them.
   */
  async settle(processed: readonly Processed[]): Promise<FileOutcome[]> {
    const idMap = await this.openMap();
    let rowsFailed: unknown;
    if (idMap) await idMap.recordSealed(processed.flatMap(({ sealed }) => (sealed ? [sealed] : []))).catch((e: unknown) => (rowsFailed = e ?? new Error('map write failed')));
    return processed.map(({ job, outcome, sealed }) => {
      const done = sealed && rowsFailed !== undefined ? this.rowFailed(job, rowsFailed) : outcome;
      if (done.record && this.s.report) (this.report ??= new SubmissionReport()).add(done.record);
      return done;
    });
  }

  async run(jobs: readonly FileJob[], opts: { reuseBuffers: boolean }): Promise<FileOutcome[]> {
    return this.settle(await this.process(jobs, opts));
  }

  /**
   * A row that could not be made durable: the file is not counted as written but quarantined with the
   * map's code, so that running it again (after fixing the map) records it; its output may stay, as
   * it is de-identified, and the rerun writes the same bytes.
   */
  private rowFailed(job: FileJob, e: unknown): FileOutcome {
    const err = toDeidError(e);
    const cause = err.code === 'DEID_ERR_INTERNAL' ? new DeidError('DEID_ERR_IDMAP', err.detail) : err;
    let input: Buffer;
    try {
      input = readFileSync(job.path);
    } catch {
      return { result: { path: job.path, ok: false, code: cause.code, bytesIn: 0, bytesOut: 0 } };
    }
    return quarantineInput(job, this.s, input, cause);
  }

  /** Closes the map (its rows fsynced); the report, with a report in the settings. */
  async finish(): Promise<SubmissionReport | undefined> {
    await (await this.map)?.close();
    return this.s.report ? (this.report ?? new SubmissionReport()) : undefined;
  }
}
