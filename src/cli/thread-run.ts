import { readFileSync } from 'node:fs';
import { DeidError, toDeidError } from '../errors.js';
import { IdMap } from '../idmap/index.js';
import type { CompiledProfile } from '../profiles/compile.js';
import { SubmissionReport, type SubmissionState } from '../report/submission.js';
import { processFile, quarantineInput, type FileJob, type FileOutcome, type FileResult, type RunSettings } from './process-file.js';

/**
 * One thread's share of a `deid run`: its files through the pipeline, its map writer (each thread
 * appends to a segment of its own, or shares Redis) and its share of the report, merged by the main
 * thread at the end. A file is counted only once its map row is durable.
 */
export class ThreadRun {
  private map?: Promise<IdMap | undefined>;
  private readonly report?: SubmissionReport;
  private readonly secret: Buffer;

  constructor(
    private readonly s: RunSettings,
    private readonly profile: CompiledProfile,
  ) {
    this.secret = Buffer.from(s.secretHex, 'hex');
    if (s.report) this.report = new SubmissionReport();
  }

  private openMap(): Promise<IdMap | undefined> {
    const m = this.s.idMap;
    // The key was read (and the map checked against it) by the main thread before any file was touched.
    // Rows are fsynced when the map closes, before the run reports, not per batch: the outputs are not
    // fsynced either (a crashed run is run again), and an fsync per batch would make ext4 write back
    // the outputs early, in the middle of the run.
    this.map ??= m
      ? IdMap.open(m.location, { key: { key: Buffer.from(m.keyHex, 'hex'), source: m.keySource, created: false }, create: true, redisPrefix: m.redisPrefix, syncEachBatch: false })
      : Promise.resolve(undefined);
    return this.map;
  }

  /** The previous batch's work: batches that share this thread's buffers are processed one at a time. */
  private turn: Promise<unknown> = Promise.resolve();

  /**
   * Takes files through the pipeline: one after another with `reuseBuffers` (they share this thread's
   * buffers, so batches wait their turn), or one of several at once without. Their map rows are then
   * written together, and the results come once they are durable (a file whose row failed is
   * quarantined instead); the report counts them.
   */
  run(jobs: readonly FileJob[], opts: { reuseBuffers: boolean }): Promise<FileResult[]> {
    const work = async () => {
      const idMap = await this.openMap();
      const outcomes: Array<[FileJob, FileOutcome]> = [];
      for (const job of jobs) outcomes.push([job, await processFile(job, this.s, this.profile, this.secret, { reuseBuffers: opts.reuseBuffers })]);
      const rows = outcomes.flatMap(([, o]) => (o.row ? [o.row] : []));
      let rowsFailed: unknown;
      if (idMap) await idMap.recordAll(rows).catch((e: unknown) => (rowsFailed = e ?? new Error('map write failed')));
      return outcomes.map(([job, o]) => {
        const done = o.row && rowsFailed !== undefined ? this.rowFailed(job, rowsFailed) : o;
        if (done.record) this.report?.add(done.record);
        return done.result;
      });
    };
    if (!opts.reuseBuffers) return work();
    const done = this.turn.then(work);
    this.turn = done.catch(() => undefined);
    return done;
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

  /** Writes what is pending and closes the map; the report's share, for the main thread to merge. */
  async finish(): Promise<SubmissionState | undefined> {
    await (await this.map)?.close();
    return this.report?.state();
  }
}
