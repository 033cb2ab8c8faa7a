import { appendFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../src/config.js';
import { Part10 } from '../src/dicom/part10.js';
import { readDicom } from '../src/dicom/reader.js';
import type { ObjectJob } from '../src/pipeline/jobs.js';
import { idMapLocation, ObjectOutcomes } from '../src/pipeline/outcomes.js';
import type { CompiledProfile } from '../src/profiles/compile.js';
import { loadProfile } from '../src/profiles/profile.js';
import type { StageObject } from '../src/stages/stage.js';
import { RecordLog, watchRecordRetention } from '../src/pipeline/record-log.js';
import type { ObjectRecord } from '../src/report/object-record.js';
import { packDispositions, unpackDispositions } from '../src/stages/element-dispositions.js';
import { corpusFile, tempDir } from './helpers/corpus.js';

const elements = (n: number) =>
  packDispositions([
    { tag: 0x00100010, disposition: 'replaced' },
    { tag: 0x00190010 + 0x1000 + n, creator: 'GEMS_ACQU_01', disposition: 'kept', keptBy: 'TCIA' },
    { tag: 0x00290010 + 0x1000, creator: '', disposition: 'removed' },
  ]);
const record = (sha: string, at: string, over: Partial<ObjectRecord> = {}): ObjectRecord => ({
  source: 'dimse PACS',
  sha256: sha,
  outcome: 'written',
  study: 's1',
  at,
  details: { modality: 'CT', elements: elements(0), subject: 'P1', quasiIdentifiers: { age: '045Y' } },
  ...over,
});

describe('the service\'s record log', () => {
  const tmp = tempDir('deid-records-');
  afterAll(tmp.cleanup);

  it('should store a series\' shared dispositions once, and read every record back whole', async () => {
    const log = new RecordLog(tmp.path);
    await Promise.all(Array.from({ length: 50 }, (_, i) => log.append(record(`a${i}`, `2026-03-04T10:00:${String(i).padStart(2, '0')}.000Z`))));
    await log.append(record('b0', '2026-03-04T11:00:00.000Z', { details: { modality: 'MR', elements: elements(1), subject: 'P2', quasiIdentifiers: {} } }));
    await log.close();
    const [file] = readdirSync(join(tmp.path, '2026-03-04'));
    const lines = readFileSync(join(tmp.path, '2026-03-04', file), 'utf8').trim().split('\n');
    expect(lines.filter((l) => l.startsWith('{"d":'))).toHaveLength(2);
    expect(lines).toHaveLength(53);
    const read = await new RecordLog(tmp.path).read(['2026-03-04']);
    expect(read).toHaveLength(51);
    expect(read[0]).toEqual(record('a0', '2026-03-04T10:00:00.000Z'));
    expect(read[50].details?.elements).toEqual(elements(1));
  });

  it('should count an object recorded twice (a retry, a requeue) once, by its last outcome, and skip a line torn by a crash', async () => {
    const log = new RecordLog(tmp.path);
    await log.append(record('c0', '2026-03-05T09:00:00.000Z', { outcome: 'quarantined', code: 'DEID_ERR_EXPORT_FAILED', details: undefined }));
    await log.append(record('c0', '2026-03-05T09:30:00.000Z'));
    await log.append(record('c1', '2026-03-05T09:40:00.000Z', { study: 's2' }));
    await log.close();
    const [file] = readdirSync(join(tmp.path, '2026-03-05'));
    appendFileSync(join(tmp.path, '2026-03-05', file), '{"r":{"source":"dimse","sha256":"c2","outc');
    const reader = new RecordLog(tmp.path);
    expect(await reader.days()).toEqual(['2026-03-04', '2026-03-05']);
    const read = await reader.read(['2026-03-05'], (r) => r.study === 's1');
    expect(read.map((r) => [r.sha256, r.outcome])).toEqual([['c0', 'written']]);
    expect(await reader.read(['../etc', '2026-03-06'])).toEqual([]);
  });

  it('should remove the days of records older than reports.keepDays, and keep the others and the day being written', async () => {
    const dir = join(tmp.path, 'retention');
    const log = new RecordLog(dir);
    for (const day of ['2026-01-01', '2026-01-30', '2026-02-20', '2026-03-01']) await log.append(record(`r${day}`, `${day}T12:00:00.000Z`));
    // Another process's file in a day about to go (workers share the folder).
    writeFileSync(join(dir, '2026-01-01', 'other-writer.jsonl'), '');
    const logger = pino({ level: 'silent' });
    const now = () => Date.parse('2026-03-01T08:00:00Z');
    // 0: kept for ever.
    watchRecordRetention(log, () => 0, logger, now).close();
    expect(await log.days()).toEqual(['2026-01-01', '2026-01-30', '2026-02-20', '2026-03-01']);
    // 30 days before 2026-03-01T08:00 is 2026-01-30: the days before it go.
    watchRecordRetention(log, () => 30, logger, now).close();
    await vi.waitFor(async () => expect(await log.days()).toEqual(['2026-01-30', '2026-02-20', '2026-03-01']));
    expect((await log.read(await log.days())).map((r) => r.sha256)).toEqual(['r2026-01-30', 'r2026-02-20', 'r2026-03-01']);
    // The day this log is writing stays whatever the period.
    expect(await log.forgetDaysBefore('2027-01-01')).toEqual(['2026-01-30', '2026-02-20']);
    expect(await log.days()).toEqual(['2026-03-01']);
    await log.close();
  });
});

describe('the map and report settings of the service', () => {
  const tmp = tempDir('deid-records-config-');
  afterAll(tmp.cleanup);

  it('should keep reports on and the map off by default, place the map by the queue engine, and refuse unknown keys', () => {
    const cfg = loadConfig({}, {});
    expect(cfg.reports).toEqual({ enabled: true, kThreshold: 5, keepDays: 0 });
    expect(cfg.idMap).toBeUndefined();
    const file = join(tmp.path, 'deid.yaml');
    writeFileSync(file, 'idMap: { enabled: true, keyFile: keys/reid-key }\nreports: { kThreshold: 11 }\n');
    const on = loadConfig({ config: file, dataDir: '/srv/deid' }, {});
    expect(on.idMap).toEqual({ enabled: true, keyFile: join(tmp.path, 'keys', 'reid-key') });
    expect(on.reports).toEqual({ enabled: true, kThreshold: 11, keepDays: 0 });
    expect(idMapLocation(on)).toBe('/srv/deid/idmap');
    // Redis mode: the map goes where the queue is, a socket path as `unix:`.
    expect(idMapLocation({ ...on, redis: '/run/redis/redis.sock' })).toBe('unix:/run/redis/redis.sock');
    expect(idMapLocation({ ...on, redis: 'redis://queue:6379' })).toBe('redis://queue:6379');
    expect(idMapLocation({ ...on, redis: 'redis://queue:6379', idMap: { enabled: true, path: '/shared/idmap' } })).toBe('/shared/idmap');
    for (const bad of ['idMap: { path: /x }\n', 'idMap: { enabled: true, colour: red }\n', 'reports: { kThreshold: 0 }\n', 'reports: { keepDays: -1 }\n']) {
      writeFileSync(file, bad);
      expect(() => loadConfig({ config: file }, {})).toThrow(/DEID_ERR_CONFIG/);
    }
  });
});

describe('the records of exported objects', () => {
  const tmp = tempDir('deid-outcomes-');
  afterAll(tmp.cleanup);

  it('should derive a record\'s dispositions under the profile the object was processed with, not the one of start-up', async () => {
    // A job that crossed processes arrives without its dispositions: they are derived again from the source.
    const source = readDicom(readFileSync(corpusFile('pydicom/CT_small.dcm')));
    const log = new RecordLog(tmp.path);
    const outcomes = new ObjectOutcomes({ secret: Buffer.from('outcomes-secret'), records: log });
    const job = { hash: 'h1', study: 's1', origin: { kind: 'dimse' } } as unknown as ObjectJob;
    const object: StageObject = { source, current: Part10.ofFile(source), facts: {}, origin: {} };
    const sexOf = async (profile: CompiledProfile, hash: string) => {
      await outcomes.exported({ ...job, hash }, object, profile);
      await log.close();
      const [r] = await new RecordLog(tmp.path).read(await log.days(), (x) => x.sha256 === hash);
      return unpackDispositions(r.details!.elements!).find((e) => e.tag === 0x00100040)?.disposition;
    };
    // Basic removes PatientSex; a profile that retains patient characteristics (reloaded, or a requeue's) keeps it.
    expect(await sexOf(loadProfile('basic'), 'h1')).not.toBe('kept');
    expect(await sexOf(loadProfile('basic', ['retain-patient-characteristics']), 'h2')).toBe('kept');
  });
});
