import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { findElement } from '../src/dicom/element.js';
import { Part10 } from '../src/dicom/part10.js';
import { readDicom } from '../src/dicom/reader.js';
import { TAG } from '../src/dicom/tag.js';
import { rawString } from '../src/dicom/values.js';
import { remapUid } from '../src/keyed.js';
import { JobIds, portableFacts } from '../src/pipeline/jobs.js';
import type { Destination, ExportInfo } from '../src/pipeline/ports.js';
import { processAndExport, processObject } from '../src/pipeline/process-object.js';
import { createQueue } from '../src/pipeline/queue/index.js';
import type { AddOptions, JobData, JobQueue } from '../src/pipeline/queue/types.js';
import { Pipeline } from '../src/pipeline/runtime.js';
import { runStages, stageList } from '../src/pipeline/stage-list.js';
import { LocalFolderStore, type ObjectStore } from '../src/pipeline/storage.js';
import { FileStudyTracker } from '../src/pipeline/studies.js';
import { loadProfile } from '../src/profiles/profile.js';
import { headerStage, sourceFacts } from '../src/stages/header-stage.js';
import type { StageObject } from '../src/stages/stage.js';
import { corpusFile, tempDir } from './helpers/corpus.js';
import { CountingStore } from './helpers/stores.js';
import { waitFor } from './helpers/ports.js';

const SECRET = Buffer.from('stage-contract-secret-0123456789');
const silent = pino({ level: 'silent' });
const ct = () => readFileSync(corpusFile('pydicom/CT_small.dcm'));

/** A destination that keeps what it gets. */
class Collecting implements Destination {
  readonly name = 'collect';
  readonly got: Array<{ bytes: Buffer; info: ExportInfo }> = [];
  async send(bytes: Uint8Array, info: ExportInfo) {
    this.got.push({ bytes: Buffer.from(bytes), info });
  }
  async close() {}
}

describe('the one stage list', () => {
  const basic = loadProfile('basic');

  it('should order filter, header, pixels, verify, export, with the filter only when configured and the pixels only for clean-pixel-data', () => {
    expect(stageList({ profile: basic })).toEqual(['header', 'verify', 'export']);
    expect(stageList({ profile: basic, filter: true })).toEqual(['filter', 'header', 'verify', 'export']);
    expect(stageList({ profile: loadProfile('basic', ['clean-pixel-data']), filter: true })).toEqual(['filter', 'header', 'pixels', 'verify', 'export']);
    expect(stageList({ profile: basic, through: 'verify' })).toEqual(['header', 'verify']);
  });

  it('should run synchronously while every stage is, and hand each stage the previous one\'s output and facts', () => {
    const bytes = ct();
    const source = readDicom(bytes);
    const start: StageObject = { source, current: Part10.of(source, bytes), facts: {}, origin: {} };
    const done = runStages(stageList({ profile: basic, through: 'verify' }), start, { profile: basic, secret: SECRET, destinations: [] });
    expect(done).not.toBeInstanceOf(Promise);
    const o = done as StageObject;
    // The source is never changed in place; the output is a new object.
    expect(o.source).toBe(source);
    expect(o.current).not.toBe(start.current);
    expect(o.facts.verify?.ok).toBe(true);
    const srcSop = rawString(findElement(source.dataset, TAG.SOPInstanceUID)?.value);
    expect(o.facts.identity?.sopInstanceUid).toBe(remapUid(SECRET, srcSop));
    expect(o.facts.original?.sopInstanceUid).toBe(srcSop);
    expect(o.facts.remappedUids?.has(srcSop)).toBe(true);
  });

  it('should derive the same source facts after a durable boundary as the header stage found', () => {
    for (const profile of [basic, loadProfile('research')]) {
      const source = readDicom(ct());
      const header = headerStage({ source, current: Part10.of(source, ct()), facts: {}, origin: {} }, { profile, secret: SECRET });
      const again = sourceFacts(source, { profile, secret: SECRET });
      const f = (header as { facts: StageObject['facts'] }).facts;
      expect(again.identifiers).toEqual(f.identifiers);
      expect([...again.remappedUids!].sort()).toEqual([...f.remappedUids!].sort());
      expect(again.original).toEqual(f.original);
      expect(again.dateOffsetDays).toEqual(f.dateOffsetDays);
    }
    // research shifts dates: the offset is a fact.
    const source = readDicom(ct());
    expect(sourceFacts(source, { profile: loadProfile('research'), secret: SECRET }).dateOffsetDays).toEqual(expect.any(Number));
  });

  it('should keep the source values out of the facts a job carries', () => {
    const r = processObject(ct(), { profile: basic, secret: SECRET });
    const carried = JSON.stringify(portableFacts(r.facts));
    const source = readDicom(ct()).dataset;
    for (const tag of [TAG.PatientID, TAG.StudyInstanceUID, TAG.SeriesInstanceUID, TAG.SOPInstanceUID]) {
      const v = rawString(findElement(source, tag)?.value);
      expect(v.length).toBeGreaterThan(3);
      expect(carried).not.toContain(v);
    }
    expect(JSON.parse(carried).identity.sopInstanceUid).toMatch(/^2\.25\./);
  });
});

describe('the service runs the same stages as deid run', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  function service(store: ObjectStore, queue: JobQueue, destination: Destination, tmp: string) {
    const tracker = new FileStudyTracker(join(tmp, 'studies.json'));
    const pipeline = new Pipeline(
      { stages: [{ name: 'filter' }, { name: 'header' }, { name: 'verify' }, { name: 'export' }], profile: loadProfile('basic'), filter: {}, destinations: [destination], maxAttempts: 3, backoffMs: 10, maxObjectBytes: 1 << 26 },
      store,
      queue,
      tracker,
      SECRET,
      silent,
    );
    cleanups.push(async () => {
      await queue.close();
      await pipeline.close();
      await tracker.close();
    });
    return pipeline;
  }

  it('should export the bytes deid run writes, having read nothing back from the spool, with jobs that carry no PHI', async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const store = new CountingStore(new LocalFolderStore(join(tmp.path, 'spool')));
    const inner = createQueue({ dir: join(tmp.path, 'queue') });
    const jobs: JobData[] = [];
    const queue: JobQueue = {
      add: (stage: string, job: JobData, o?: AddOptions) => (jobs.push(job), inner.add(stage, job, o)),
      process: (s, c, h) => inner.process(s, c, h),
      counts: (s) => inner.counts(s),
      pending: (s) => inner.pending(s),
      close: () => inner.close(),
    };
    const collect = new Collecting();
    const pipeline = service(store, queue, collect, tmp.path);
    pipeline.start();
    expect((await pipeline.ingest(ct(), { kind: 'dimse', callingAE: 'PACS' })).ok).toBe(true);
    await waitFor(() => collect.got.length === 1, 15_000, 'the export');
    // In one process the object is parsed at ingest and handed from stage to stage: never read back.
    expect(store.reads).toBe(0);
    // The same stages in memory (deid run) give the identical bytes, filed under the identity the facts carry.
    const out = new Collecting();
    const r = await processAndExport(ct(), { profile: loadProfile('basic'), secret: SECRET, destinations: [out] });
    expect(collect.got[0].bytes.equals(r.output)).toBe(true);
    expect(out.got[0].bytes.equals(r.output)).toBe(true);
    expect(collect.got[0].info).toEqual(r.facts.identity);
    // The jobs between stages name the object by keys and hashes, and carry only PHI-free facts.
    expect(jobs.map((j) => j.id).length).toBeGreaterThanOrEqual(4);
    const source = readDicom(ct()).dataset;
    const text = JSON.stringify(jobs);
    for (const tag of [TAG.PatientID, TAG.PatientName, TAG.StudyInstanceUID, TAG.SOPInstanceUID]) expect(text).not.toContain(rawString(findElement(source, tag)?.value));
    expect(readdirSync(join(tmp.path, 'spool', 'incoming'))).toEqual([]);
  });

  it('should derive the facts again from the spool when a stage runs in another process than the header stage', async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const store = new CountingStore(new LocalFolderStore(join(tmp.path, 'spool')));
    const queue = createQueue({ dir: join(tmp.path, 'queue') });
    const collect = new Collecting();
    // This process runs no stages: the job goes through the queue's files to the one below, as to another worker.
    const feeder = service(store, queue, collect, tmp.path);
    expect((await feeder.ingest(ct(), { kind: 'folder' })).ok).toBe(true);
    const worker = service(store, createQueue({ dir: join(tmp.path, 'queue') }), collect, tmp.path);
    worker.start();
    await waitFor(() => collect.got.length === 1, 15_000, 'the export');
    const r = processObject(ct(), { profile: loadProfile('basic'), secret: SECRET });
    expect(collect.got[0].bytes.equals(r.output)).toBe(true);
    // Read from the spool once, by the first stage of the other process.
    expect(store.reads).toBe(1);
  });

  it('should key its jobs by stage, object and configuration', () => {
    const a = new JobIds('filter');
    expect(a.id('header', 'h', 'c1')).toBe(a.id('header', 'h', 'c1'));
    expect(a.id('header', 'h', 'c1')).not.toBe(a.id('verify', 'h', 'c1'));
    expect(a.id('header', 'h', 'c1')).not.toBe(a.id('header', 'h', 'c2'));
    expect(a.firstJob({ hash: 'h', key: 'incoming/h.dcm', study: 's', origin: { kind: 'folder' }, receivedAt: 'now', config: 'c1' })).toMatchObject({ id: a.id('filter', 'h', 'c1'), source: 'incoming/h.dcm', input: 'incoming/h.dcm', work: [], config: 'c1' });
  });
});
