import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { findElement } from '../src/dicom/element.js';
import { readDicom } from '../src/dicom/reader.js';
import { TAG } from '../src/dicom/tag.js';
import { rawString } from '../src/dicom/values.js';
import { FolderDestination } from '../src/export/folder.js';
import { exportFailure, type Destination, type ExportInfo } from '../src/pipeline/ports.js';
import { createQueue } from '../src/pipeline/queue/index.js';
import type { JobQueue } from '../src/pipeline/queue/types.js';
import { Pipeline, type StageName } from '../src/pipeline/runtime.js';
import { CachedStore } from '../src/pipeline/cached-store.js';
import { LocalFolderStore } from '../src/pipeline/storage.js';
import { FileStudyTracker } from '../src/pipeline/studies.js';
import { loadProfile } from '../src/profiles/profile.js';
import { shutdownSharedOcrPool } from '../src/stages/pixels/ocr-pool.js';
import { corpusFile, tempDir } from './helpers/corpus.js';
import { waitFor } from './helpers/ports.js';

const silent = pino({ level: 'silent' });
const STAGES: StageName[] = ['filter', 'header', 'verify', 'export'];

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name));
}

const until = (check: () => boolean | Promise<boolean>, ms = 15000): Promise<unknown> => waitFor(check, ms, 'the pipeline');

/** A destination that fails a given number of times, then records what it gets. */
class FlakyDestination implements Destination {
  readonly name = 'flaky';
  readonly received: ExportInfo[] = [];
  constructor(
    private failures: number,
    private readonly retryable = true,
  ) {}
  async send(_b: Uint8Array, info: ExportInfo): Promise<void> {
    if (this.failures-- > 0) throw exportFailure(this.retryable, 'destination unavailable');
    this.received.push(info);
  }
  async close(): Promise<void> {}
}

describe('the staged pipeline (embedded queue)', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  function setup(opts: { destinations?: Destination[]; accept?: Array<Record<string, string[]>>; maxAttempts?: number; options?: string[]; stages?: StageName[]; defer?: boolean } = {}) {
    const tmp = tempDir();
    const folder = new LocalFolderStore(join(tmp.path, 'spool'));
    const store = opts.defer ? new CachedStore(folder) : folder;
    const queue: JobQueue = createQueue({ dir: join(tmp.path, 'queue') });
    const tracker = new FileStudyTracker(join(tmp.path, 'studies.json'));
    const exportDir = join(tmp.path, 'export');
    const destinations = opts.destinations ?? [new FolderDestination(exportDir)];
    const pipeline = new Pipeline(
      {
        stages: (opts.stages ?? STAGES).map((name) => ({ name, concurrency: 2 })),
        profile: loadProfile('basic', opts.options ?? []),
        filter: { accept: opts.accept },
        destinations,
        maxAttempts: opts.maxAttempts ?? 3,
        backoffMs: 10,
        maxObjectBytes: 64 * 1024 * 1024,
        deferWork: opts.defer,
      },
      store,
      queue,
      tracker,
      Buffer.from('pipeline-test-secret-0123456789'),
      silent,
    );
    pipeline.start();
    cleanups.push(async () => {
      await queue.close();
      await pipeline.close();
      await tracker.close();
      tmp.cleanup();
    });
    return { tmp, store, queue, tracker, pipeline, exportDir };
  }

  it('should de-identify and export every ingested object, then clear the spool', async () => {
    const { pipeline, exportDir, store, tracker } = setup();
    for (const f of ['pydicom/CT_small.dcm', 'pydicom/MR_small.dcm']) {
      const r = await pipeline.ingest(readFileSync(corpusFile(f)), { kind: 'folder' });
      expect(r.ok).toBe(true);
    }
    await until(() => filesUnder(exportDir).length === 2);
    for (const f of filesUnder(exportDir)) {
      const ds = readDicom(readFileSync(f)).dataset;
      expect(rawString(findElement(ds, 0x00120062)?.value)).toBe('YES');
      expect(rawString(findElement(ds, TAG.SOPInstanceUID)?.value)).toMatch(/^2\.25\./);
    }
    await until(async () => (await store.list('incoming')).length === 0 && (await store.list('work')).length === 0);
    const studies = await tracker.list();
    expect(studies).toHaveLength(2);
    for (const s of studies) expect(s).toMatchObject({ received: 1, processed: 1, exported: 1, quarantined: 0 });
    // Only a keyed hash of the StudyInstanceUID is stored.
    const original = rawString(findElement(readDicom(readFileSync(corpusFile('pydicom/CT_small.dcm'))).dataset, TAG.StudyInstanceUID)?.value);
    expect(JSON.stringify(studies)).not.toContain(original);
  });

  it('should quarantine what it cannot parse, answer with a code, and keep the bytes', async () => {
    const { pipeline } = setup();
    const r = await pipeline.ingest(Buffer.from('definitely not DICOM'), { kind: 'stow' });
    expect(r).toMatchObject({ ok: false, code: 'DEID_ERR_NOT_DICOM' });
    const [entry] = await pipeline.quarantine.list();
    expect(entry).toMatchObject({ code: 'DEID_ERR_NOT_DICOM', stage: 'ingest' });
    expect((await pipeline.quarantine.object(entry.id)).toString()).toBe('definitely not DICOM');
  });

  it('should reject by filter conditions into quarantine, and requeue from there', async () => {
    const { pipeline, exportDir } = setup({ accept: [{ Modality: ['MR'] }] });
    await pipeline.ingest(readFileSync(corpusFile('pydicom/CT_small.dcm')), { kind: 'dimse', callingAE: 'PACS' });
    await pipeline.ingest(readFileSync(corpusFile('pydicom/MR_small.dcm')), { kind: 'dimse', callingAE: 'PACS' });
    await until(async () => filesUnder(exportDir).length === 1 && (await pipeline.quarantine.list()).length === 1);
    const [entry] = await pipeline.quarantine.list();
    expect(entry).toMatchObject({ code: 'DEID_ERR_FILTERED', stage: 'filter', origin: { kind: 'dimse', callingAE: 'PACS' } });
    // Requeued, it meets the same filter again and comes back to quarantine: nothing is lost on the way.
    expect(await pipeline.requeue(entry.id)).toMatchObject({ ok: true, profile: 'basic' });
    await until(async () => (await pipeline.quarantine.list()).length === 1 && (await pipeline.quarantine.list())[0].quarantinedAt !== entry.quarantinedAt);
  });

  it('should retry export with backoff and deliver once the destination is back', async () => {
    const flaky = new FlakyDestination(2);
    const { pipeline } = setup({ destinations: [flaky], maxAttempts: 5 });
    await pipeline.ingest(readFileSync(corpusFile('pydicom/CT_small.dcm')), { kind: 'folder' });
    await until(() => flaky.received.length === 1);
    expect(await pipeline.quarantine.list()).toHaveLength(0);
  });

  it('should keep intermediate outputs in memory, write one for a retry, and leave nothing behind', async () => {
    const flaky = new FlakyDestination(2);
    const { pipeline, tmp } = setup({ destinations: [flaky], maxAttempts: 5, defer: true });
    await pipeline.ingest(readFileSync(corpusFile('pydicom/CT_small.dcm')), { kind: 'folder' });
    await until(() => flaky.received.length === 1);
    expect(await pipeline.quarantine.list()).toHaveLength(0);
    await until(() => filesUnder(join(tmp.path, 'spool', 'incoming')).length === 0 && filesUnder(join(tmp.path, 'spool', 'work')).length === 0);
  });

  it('should start an object again from the spool when a kept job names an output that was never written', async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const received: ExportInfo[] = [];
    const gated: Destination = { name: 'gated', send: async (_b, info) => { await gate; received.push(info); }, close: async () => {} };
    const build = (destination: Destination) => {
      const queue = createQueue({ dir: join(tmp.path, 'queue') });
      const pipeline = new Pipeline(
        { stages: STAGES.map((name) => ({ name, concurrency: 1 })), profile: loadProfile('basic', []), filter: {}, destinations: [destination], maxAttempts: 3, backoffMs: 10, maxObjectBytes: 64 * 1024 * 1024, deferWork: true },
        new CachedStore(new LocalFolderStore(join(tmp.path, 'spool'))),
        queue,
        new FileStudyTracker(join(tmp.path, 'studies.json')),
        Buffer.from('pipeline-test-secret-0123456789'),
        silent,
      );
      pipeline.start();
      return { queue, pipeline };
    };
    const first = build(gated);
    for (const f of ['pydicom/CT_small.dcm', 'pydicom/MR_small.dcm']) await first.pipeline.ingest(readFileSync(corpusFile(f)), { kind: 'folder' });
    // One export is held at the gate, the other waits in memory behind it with its header output unwritten.
    await until(async () => (await first.queue.counts('export')).queued === 1);
    const closing = first.queue.close();
    release();
    await closing; // keeps the waiting job for the next start; the process "dies" before pipeline.close() writes the output
    expect(received).toHaveLength(1);
    const second = build({ name: 'gated', send: async (_b, info) => void received.push(info), close: async () => {} });
    cleanups.push(async () => {
      await second.queue.close();
      await second.pipeline.close();
    });
    await until(() => received.length === 2);
    expect(new Set(received.map((r) => r.sopInstanceUid)).size).toBe(2);
    expect(await second.pipeline.quarantine.list()).toHaveLength(0);
  });

  it('should quarantine after the last attempt, and at once for a non-retryable refusal', async () => {
    const down = new FlakyDestination(100);
    const a = setup({ destinations: [down], maxAttempts: 3 });
    await a.pipeline.ingest(readFileSync(corpusFile('pydicom/CT_small.dcm')), { kind: 'folder' });
    await until(async () => (await a.pipeline.quarantine.list()).length === 1);
    expect((await a.pipeline.quarantine.list())[0]).toMatchObject({ code: 'DEID_ERR_EXPORT_FAILED', stage: 'export' });

    const refusing = new FlakyDestination(100, false);
    const b = setup({ destinations: [refusing], maxAttempts: 3 });
    await b.pipeline.ingest(readFileSync(corpusFile('pydicom/MR_small.dcm')), { kind: 'folder' });
    await until(async () => (await b.pipeline.quarantine.list()).length === 1);
    expect((await b.pipeline.quarantine.list())[0]).toMatchObject({ code: 'DEID_ERR_EXPORT_REFUSED' });
  });

  it('should mask burned-in text in the pixel stage and leave no image of the original on disk', async () => {
    const { pipeline, exportDir, store } = setup({ options: ['clean-pixel-data'], stages: ['filter', 'header', 'pixels', 'verify', 'export'] });
    cleanups.push(() => shutdownSharedOcrPool());
    const us = readFileSync(corpusFile('deid-data/ultrasounds/GREYSCALE_IMAGE.dcm'));
    expect((await pipeline.ingest(us, { kind: 'folder' })).ok).toBe(true);
    await until(() => filesUnder(exportDir).length === 1, 60_000);
    const out = readDicom(readFileSync(filesUnder(exportDir)[0]));
    expect(rawString(findElement(out.dataset, 0x00280301)?.value)).toBe('NO');
    const codes = findElement(out.dataset, 0x00120064)!.items!.map((i) => rawString(findElement(i.elements, 0x00080100)?.value));
    expect(codes).toEqual(expect.arrayContaining(['113100', '113101']));
    // The pixels changed where the banner was (the source has the patient's name burned in at the top).
    const before = findElement(readDicom(us).dataset, TAG.PixelData)!.value!;
    const after = findElement(out.dataset, TAG.PixelData)!.value!;
    expect(Buffer.compare(before, after)).not.toBe(0);
    // The console renders its previews from the held or quarantined object when asked: no PNG of the
    // burned-in original is kept anywhere in the store.
    expect((await store.list('')).filter((k) => k.endsWith('.png'))).toEqual([]);
  }, 90_000);

  it('should give the identical result for the same object sent twice', async () => {
    const { pipeline, exportDir } = setup();
    const bytes = readFileSync(corpusFile('pydicom/CT_small.dcm'));
    await pipeline.ingest(bytes, { kind: 'folder' });
    await until(() => filesUnder(exportDir).length === 1);
    const first = readFileSync(filesUnder(exportDir)[0]);
    await pipeline.ingest(bytes, { kind: 'folder' });
    await new Promise((r) => setTimeout(r, 300));
    await until(async () => (await pipeline.status()).export.active === 0 && (await pipeline.status()).export.queued === 0);
    expect(filesUnder(exportDir)).toHaveLength(1);
    expect(readFileSync(filesUnder(exportDir)[0]).equals(first)).toBe(true);
  });
});
