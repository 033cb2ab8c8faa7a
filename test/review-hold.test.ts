/**
 * The review hold in the pipeline (embedded queue, in process): held objects are durable across a
 * restart and are not started again, approval exports them, rejection quarantines them with
 * DEID_ERR_REJECTED_IN_REVIEW; and the catalog records where each object ended, with its new identity.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FolderDestination } from '../src/export/folder.js';
import { CachedStore } from '../src/pipeline/cached-store.js';
import { createQueue } from '../src/pipeline/queue/index.js';
import { Pipeline } from '../src/pipeline/runtime.js';
import { LocalFolderStore } from '../src/pipeline/storage.js';
import { FileStudyTracker } from '../src/pipeline/studies.js';
import { loadProfile } from '../src/profiles/profile.js';
import { corpusFile, tempDir } from './helpers/corpus.js';
import { waitFor } from './helpers/ports.js';

const silent = pino({ level: 'silent' });
const filesUnder = (dir: string): string[] =>
  existsSync(dir) ? readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile() && d.name.endsWith('.dcm')).map((d) => join(d.parentPath, d.name)) : [];

describe('the review hold', () => {
  const tmp = tempDir('deid-review-');
  const running: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of running.splice(0)) await c();
  });

  /** A pipeline on the temp folders (the same ones each time: a second call is a restart). */
  function start() {
    const store = new CachedStore(new LocalFolderStore(join(tmp.path, 'spool')));
    const queue = createQueue({ dir: join(tmp.path, 'queue') });
    const tracker = new FileStudyTracker(join(tmp.path, 'studies.json'));
    const pipeline = new Pipeline(
      {
        stages: ['header', 'verify', 'export'].map((name) => ({ name: name as 'header' })),
        profile: loadProfile('basic', []),
        filter: {},
        destinations: [new FolderDestination(join(tmp.path, 'export'))],
        maxAttempts: 2,
        backoffMs: 10,
        maxObjectBytes: 64 * 1024 * 1024,
        deferWork: true,
        review: 'all',
      },
      store,
      queue,
      tracker,
      Buffer.from('review-test-secret-0123456789'),
      silent,
    );
    pipeline.start();
    const stop = async () => {
      await queue.close();
      await pipeline.close();
      await tracker.close();
    };
    running.push(stop);
    return { pipeline, stop };
  }

  it('should hold every object under review: all, keep it through a restart, and export it once approved', async () => {
    const first = start();
    for (const f of ['pydicom/CT_small.dcm', 'pydicom/MR_small.dcm']) expect((await first.pipeline.ingest(readFileSync(corpusFile(f)), { kind: 'folder' })).ok).toBe(true);
    const held = await waitFor(async () => {
      const l = await first.pipeline.review.list();
      return l.length === 2 ? l : undefined;
    }, 20_000, 'both objects held');
    expect(held.map((e) => e.reason)).toEqual(['every object is reviewed (review: all)', 'every object is reviewed (review: all)']);
    expect(filesUnder(join(tmp.path, 'export'))).toEqual([]);
    await first.stop();
    running.splice(0);

    // A restart: what is held is neither lost nor started again.
    const second = start();
    expect(await second.pipeline.reconcile()).toBe(0);
    expect((await second.pipeline.review.list()).map((e) => e.id).sort()).toEqual(held.map((e) => e.id).sort());

    const [approve, reject] = held;
    await second.pipeline.review.approve(approve!.id);
    await waitFor(() => filesUnder(join(tmp.path, 'export')).length === 1, 20_000, 'the approved object exported');
    await second.pipeline.review.reject(reject!.id);
    const q = await second.pipeline.quarantine.get(reject!.id);
    expect(q).toMatchObject({ code: 'DEID_ERR_REJECTED_IN_REVIEW', stage: 'review' });
    expect(q!.message).toMatch(/rejected in review/);
    expect(await second.pipeline.review.list()).toEqual([]);

    // The catalog: one exported with its new identity, one quarantined with its code.
    const study = approve!.job.study;
    const objects = await second.pipeline.catalog.objects(study);
    const states = Object.fromEntries(objects.map((o) => [o.state, o]));
    if (study === reject!.job.study) {
      expect(states.exported!.identity!.sopInstanceUid).toMatch(/^2\.25\./);
      expect(states.quarantined!.quarantine).toMatchObject({ code: 'DEID_ERR_REJECTED_IN_REVIEW' });
    } else expect(objects.map((o) => o.state)).toEqual(['exported']);
    expect(await second.pipeline.catalog.find(states.exported!.identity!.studyInstanceUid)).toEqual([study]);
    tmp.cleanup();
  }, 60_000);
});
