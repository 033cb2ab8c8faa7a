import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { ObjectCatalog } from '../src/pipeline/catalog.js';
import { LocalFolderStore } from '../src/pipeline/storage.js';
import { FileStudyTracker, RedisStudyTracker, type StudyTracker } from '../src/pipeline/studies.js';
import { forgetOld } from '../src/pipeline/study-completion.js';
import { tempDir } from './helpers/corpus.js';
import { startRedis, type RedisHandle } from './helpers/redis.js';

/**
 * Retention: a service that runs for years keeps tracking only the studies completed within
 * `studies.keepDays`, and their catalog entries; open studies and recent ones stay.
 */
const DAY = 86_400_000;
const log = pino({ level: 'silent' });
const tmp = tempDir('deid-retention-');
let redis: RedisHandle;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
  tmp.cleanup();
});

/** Three studies: two completed (at the time returned, just after their last events), one still open (an object in the pipeline). */
async function threeStudies(tracker: StudyTracker): Promise<number> {
  for (const [study, objects] of [['aaaa0001', ['o1', 'o2']], ['aaaa0002', ['o3']]] as const) {
    for (const o of objects) {
      await tracker.record(study, 'received', o.padEnd(16, '0'));
      await tracker.record(study, 'exported', o.padEnd(16, '0'));
    }
  }
  await tracker.record('aaaa0003', 'received', 'o4'.padEnd(16, '0'));
  const now = Date.now() + 1000;
  expect((await tracker.completeQuiet(0, now)).map((s) => s.id).sort()).toEqual(['aaaa0001', 'aaaa0002']);
  return now;
}

describe.each([
  ['the embedded tracker', () => new FileStudyTracker(join(tmp.path, 'studies.json'))],
  ['the Redis tracker', () => new RedisStudyTracker(redis.url, 'retention')],
])('study retention with %s', (_, make) => {
  it('should forget the studies completed before the retention period, and keep open and recent ones', async () => {
    const tracker = make();
    const now = await threeStudies(tracker);
    // aaaa0002 gets another object: it is open again, and completes again 20 days later.
    await tracker.record('aaaa0002', 'received', 'o5'.padEnd(16, '0'));
    await tracker.record('aaaa0002', 'exported', 'o5'.padEnd(16, '0'));
    expect((await tracker.completeQuiet(0, now + 20 * DAY)).map((s) => s.id)).toEqual(['aaaa0002']);

    // 40 days on, with 30 days kept: aaaa0001 (completed 40 days ago) goes.
    const later = now + 40 * DAY;
    const forgotten: string[] = [];
    const gone = await forgetOld(tracker, 30, log, async (s) => void forgotten.push(s), later);
    expect(gone).toEqual(['aaaa0001']);
    expect(forgotten).toEqual(['aaaa0001']);
    expect((await tracker.list()).map((s) => s.id).sort()).toEqual(['aaaa0002', 'aaaa0003']);
    expect(await tracker.get('aaaa0001')).toBeUndefined();
    expect(await tracker.get('aaaa0002')).toMatchObject({ received: 2, exported: 2 });
    // Nothing more to forget until time passes.
    expect(await forgetOld(tracker, 30, log, undefined, later)).toEqual([]);
    // Kept for ever with keepDays 0 is the watcher's choice (it does not call this); a shorter period takes the next.
    expect(await forgetOld(tracker, 10, log, undefined, later)).toEqual(['aaaa0002']);
    await tracker.close();
  });
});

describe('study retention of the embedded tracker and the catalog', () => {
  it('should drop a forgotten study from the tracker\'s file', async () => {
    const path = join(tmp.path, 'file-only', 'studies.json');
    const tracker = new FileStudyTracker(path);
    const now = await threeStudies(tracker);
    await tracker.forgetCompletedBefore(now + 1);
    await tracker.close();
    const ids = (JSON.parse(readFileSync(path, 'utf8')) as { id: string }[]).map((s) => s.id).sort();
    expect(ids).toEqual(['aaaa0003']);
  });

  it('should remove a forgotten study\'s catalog entries and index, and leave other studies', async () => {
    const store = new LocalFolderStore(join(tmp.path, 'spool'));
    const catalog = new ObjectCatalog(store);
    const identity = (n: number) => ({ patientId: `PSEUDO${n}`, studyInstanceUid: `2.25.${n}`, seriesInstanceUid: `2.25.${n}.1`, sopInstanceUid: `2.25.${n}.1.1`, sopClassUid: '1.2.840.10008.5.1.4.1.1.2' });
    await catalog.note('bbbb0001', 'f'.repeat(64), { state: 'exported', identity: identity(1) });
    await catalog.note('bbbb0001', 'e'.repeat(64), { state: 'quarantined', quarantine: { id: 'q1', stage: 'verify', code: 'DEID_ERR_VERIFY_LEAK' } });
    await catalog.note('bbbb0002', 'd'.repeat(64), { state: 'exported', identity: identity(2) });
    await catalog.forget('bbbb0001');
    expect(await catalog.objects('bbbb0001')).toEqual([]);
    expect(await catalog.find('2.25.1')).toEqual([]);
    expect(await catalog.find('PSEUDO1')).toEqual([]);
    expect(await catalog.find('2.25.2')).toEqual(['bbbb0002']);
    expect(await catalog.objects('bbbb0002')).toHaveLength(1);
    // No empty folder is left behind for the forgotten study (a service forgets thousands a year).
    const spool = join(tmp.path, 'spool');
    expect(existsSync(join(spool, 'catalog', 'bbbb0001'))).toBe(false);
    expect(readdirSync(join(spool, 'catalog-index', 'study'))).toHaveLength(1);
    expect(readdirSync(join(spool, 'catalog-index', 'patient'))).toHaveLength(1);
    // The same study, back later: its folder is made again.
    await catalog.note('bbbb0001', 'c'.repeat(64), { state: 'exported', identity: identity(1) });
    expect(await catalog.objects('bbbb0001')).toHaveLength(1);
  });

  it('should index a forgotten study again when it comes back to a process that had indexed it', async () => {
    // The pipeline thread notes objects, the main thread forgets studies: two catalogs on one store.
    const store = new LocalFolderStore(join(tmp.path, 'spool-two'));
    let clock = Date.parse('2026-01-01T00:00:00Z');
    const noting = new ObjectCatalog(store, () => clock);
    const forgetting = new ObjectCatalog(store);
    const identity = { patientId: 'PSEUDO9', studyInstanceUid: '2.25.9', seriesInstanceUid: '2.25.9.1', sopInstanceUid: '2.25.9.1.1', sopClassUid: '1.2.840.10008.5.1.4.1.1.2' };
    await noting.note('cccc0001', 'f'.repeat(64), { state: 'exported', identity });
    await forgetting.forget('cccc0001');
    expect(await forgetting.find('2.25.9')).toEqual([]);
    // Forgotten only after its retention period: the object that reopens it comes days later.
    clock += 31 * DAY;
    await noting.note('cccc0001', 'e'.repeat(64), { state: 'exported', identity });
    expect(await forgetting.find('2.25.9')).toEqual(['cccc0001']);
    expect(await forgetting.find('PSEUDO9')).toEqual(['cccc0001']);
  });

  it('should keep completed studies 30 days by default', () => {
    expect(loadConfig({}).studies.keepDays).toBe(30);
  });
});
