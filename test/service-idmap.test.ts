import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdMap, loadReidKey, type MapRow } from '../src/idmap/index.js';
import { remapUid, studyKey } from '../src/keyed.js';
import { tempDir } from './helpers/corpus.js';
import { runStorescu, spawnStorescu, storeResponses } from './helpers/dcmtk.js';
import { waitFor } from './helpers/ports.js';
import { startRedis, type RedisHandle } from './helpers/redis.js';
import { startServiceProcess, type ServiceProcess } from './helpers/service.js';
import { writeStudy } from './helpers/study.js';

const KEY_HEX = 'd4'.repeat(32);

async function rowsOf(map: IdMap): Promise<MapRow[]> {
  const out: MapRow[] = [];
  for await (const r of map.rows()) out.push(r);
  return out;
}

/** The SOP Instance UIDs of the files a folder destination holds (named <sop>.dcm). */
function exportedSops(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile() && d.name.endsWith('.dcm'))
      .map((d) => d.name.slice(0, -4));
  } catch {
    return [];
  }
}

const spooled = (data: string) => {
  try {
    return readdirSync(join(data, 'spool', 'incoming')).filter((n) => n.endsWith('.dcm')).length;
  } catch {
    return 0;
  }
};

/**
 * The map's promise in the service: a row is durable before any destination has its object, so a
 * kill -9 loses none; a retry after the crash records the same row again, which the map keeps once.
 */
describe('the re-identification map under a kill -9', () => {
  const tmp = tempDir('deid-map-crash-');
  const data = join(tmp.path, 'data');
  const keyFile = join(tmp.path, 'keys', 'reid-key');
  const services: ServiceProcess[] = [];
  const SECRET = 'map-crash-secret-0123456789abcdef';

  beforeAll(() => {
    writeFileSync(join(tmp.path, 'secret'), SECRET);
    // Pixel cleaning off: exports must be under way when the stream is 300 objects in, whatever the machine's speed.
    writeFileSync(join(tmp.path, 'deid.yaml'), 'idMap: { enabled: true, keyFile: keys/reid-key }\ncleanPixelData: false\n');
  });
  afterAll(async () => {
    for (const s of services) await s.kill9();
    tmp.cleanup();
  });

  const start = () =>
    startServiceProcess(['--config', join(tmp.path, 'deid.yaml'), '--data-dir', data, '--secret-file', join(tmp.path, 'secret')]).then((s) => (services.push(s), s));

  it('should lose no row and keep none twice when the service is killed -9 during a 1,000-object stream, and re-identify every object', async () => {
    const files = writeStudy(join(tmp.path, 'in'), {
      patientName: 'CRASH^MAP',
      patientId: 'CM-1000',
      studyUid: '1.2.826.0.1.3680043.10.1138.77.1',
      sources: [{ file: 'pydicom/CT_small.dcm', series: 1, copies: 900 }, { file: 'pydicom/MR_small.dcm', series: 2, copies: 100 }],
    });
    const first = await start();
    const sender = spawnStorescu({ port: first.dimsePort, files: files.map((f) => f.path), timeoutMs: 300_000 });
    await waitFor(() => storeResponses(sender.output()).length >= 300, 120_000, 'the first 300 acknowledgements');
    await first.kill9();
    await sender.result;
    const responses = storeResponses(sender.output());
    const acked = responses.findIndex((r) => r !== 'Success') === -1 ? responses.length : responses.findIndex((r) => r !== 'Success');
    expect(acked).toBeGreaterThanOrEqual(300);
    expect(acked).toBeLessThan(files.length);
    // At the moment of the kill, every object a destination holds has its row already (written before the export).
    const key = Buffer.from(SECRET);
    const atKill = exportedSops(join(data, 'export'));
    const exportedAtKill = atKill.length;
    const mapAtKill = await IdMap.open(join(data, 'idmap'), { key: loadReidKey({ file: keyFile }), actor: 'test' });
    const rowsAtKill = new Set((await rowsOf(mapAtKill)).map((r) => r.new.SOPInstanceUID));
    await mapAtKill.close();
    expect(atKill.filter((sop) => !rowsAtKill.has(sop))).toEqual([]);
    expect(exportedAtKill).toBeGreaterThan(0);

    // The rest of the stream, into the restarted service; then every spooled object leaves the pipeline.
    const second = await start();
    const rest = await runStorescu({ port: second.dimsePort, files: files.slice(acked).map((f) => f.path), timeoutMs: 300_000 });
    expect(storeResponses(rest.output)).toEqual(files.slice(acked).map(() => 'Success'));
    await waitFor(() => exportedSops(join(data, 'export')).length >= files.length && spooled(data) === 0, 180_000, 'every object exported');
    expect(await second.stop()).toBe(0);

    const exported = exportedSops(join(data, 'export'));
    const map = await IdMap.open(join(data, 'idmap'), { key: loadReidKey({ file: keyFile }), actor: 'test' });
    try {
      const rows = await rowsOf(map);
      const bySop = new Map<string, MapRow[]>();
      for (const r of rows) bySop.set(r.new.SOPInstanceUID, [...(bySop.get(r.new.SOPInstanceUID) ?? []), r]);
      const duplicates = rows.length - bySop.size;
      const lost = files.filter((f) => !bySop.has(remapUid(key, f.sopInstanceUid))).length;
      const withoutRow = exported.filter((sop) => !bySop.has(sop)).length;
      // Every row goes both ways: the original SOP Instance UID to the new one the secret gives, and back.
      const roundTrips = rows.filter((r) => remapUid(key, r.original.SOPInstanceUID) === r.new.SOPInstanceUID && r.original.PatientID === 'CM-1000').length;
      console.log(`map kill -9: ${files.length} sent, ${acked} acknowledged before the kill, ${exportedAtKill} exported at the kill (${rowsAtKill.size} rows); after: ${exported.length} exported, ${rows.length} rows, ${lost} lost, ${duplicates} duplicate(s), ${withoutRow} exported without a row, ${roundTrips} round trip(s)`);
      expect({ lost, duplicates, withoutRow }).toEqual({ lost: 0, duplicates: 0, withoutRow: 0 });
      expect(rows).toHaveLength(files.length);
      expect(new Set(exported)).toEqual(new Set(files.map((f) => remapUid(key, f.sopInstanceUid))));
      expect(roundTrips).toBe(files.length);
      // Through the keyed index too (a sample: each lookup reads the map).
      for (const f of files.filter((_, i) => i % 50 === 0 || i === acked - 1 || i === acked)) {
        expect(await map.lookupNew(remapUid(key, f.sopInstanceUid))).toEqual([{ field: 'SOPInstanceUID', value: f.sopInstanceUid, objects: 1 }]);
      }
      expect(await map.lookupOriginal('CM-1000')).toEqual([{ field: 'PatientID', value: expect.any(String), objects: files.length }]);
    } finally {
      await map.close();
    }
  }, 420_000);
});

/** Scale-out: two `deid worker` processes record into one map in Redis, through the service's Redis. */
describe('the re-identification map with two workers on Redis', () => {
  const tmp = tempDir('deid-map-redis-');
  const SECRET = 'map-redis-secret-0123456789abcdef';
  let redis: RedisHandle;
  let service: ServiceProcess;
  const workers: ServiceProcess[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    writeFileSync(join(tmp.path, 'secret'), SECRET);
    writeFileSync(join(tmp.path, 'deid.yaml'), ['workers: false', 'idMap: { enabled: true }', 'pipeline:', '  - { stage: header, concurrency: 2 }', '  - { stage: verify, concurrency: 2 }', '  - { stage: export, concurrency: 2 }', ''].join('\n'));
    const common = ['--config', join(tmp.path, 'deid.yaml'), '--redis', redis.url, '--data-dir', join(tmp.path, 'data'), '--secret-file', join(tmp.path, 'secret')];
    // The key in the environment: the workers of one deployment share it, and none is written to disk.
    const env = { DEID_REID_KEY: KEY_HEX };
    service = await startServiceProcess(common, env);
    for (let i = 0; i < 2; i++) workers.push(await startServiceProcess(common, env, 'worker'));
  }, 120_000);

  afterAll(async () => {
    for (const w of workers) await w.stop();
    await service?.stop();
    await redis?.stop();
    tmp.cleanup();
  });

  it('should keep every object\'s row once, written by both workers, and re-identify each', async () => {
    const files = writeStudy(join(tmp.path, 'in'), {
      patientName: 'REDIS^MAP',
      patientId: 'RM-77',
      studyUid: '1.2.826.0.1.3680043.10.1138.78.1',
      sources: [{ file: 'pydicom/CT_small.dcm', series: 1, copies: 40 }, { file: 'pydicom/MR_small.dcm', series: 2, copies: 20 }],
    });
    const sent = await runStorescu({ port: service.dimsePort, files: files.map((f) => f.path) });
    expect(storeResponses(sent.output)).toEqual(files.map(() => 'Success'));
    await waitFor(() => exportedSops(join(tmp.path, 'data', 'export')).length === files.length, 90_000, 'every object exported');
    const exportedBy = workers.map((w) => (w.logs().match(/object exported/g) ?? []).length);
    expect(exportedBy.every((n) => n > 0)).toBe(true);

    const key = Buffer.from(SECRET);
    const map = await IdMap.open(`unix:${redis.url}`, { key: { key: Buffer.from(KEY_HEX, 'hex'), source: '$DEID_REID_KEY', created: false }, actor: 'test' });
    try {
      const rows = await rowsOf(map);
      expect(rows).toHaveLength(files.length);
      expect(new Set(rows.map((r) => r.original.SOPInstanceUID))).toEqual(new Set(files.map((f) => f.sopInstanceUid)));
      for (const f of files) expect(await map.lookupNew(remapUid(key, f.sopInstanceUid))).toEqual([{ field: 'SOPInstanceUID', value: f.sopInstanceUid, objects: 1 }]);
      expect(await map.lookupOriginal('RM-77')).toEqual([{ field: 'PatientID', value: expect.any(String), objects: files.length }]);
    } finally {
      await map.close();
    }
    // No map folder was made: the rows are in Redis.
    expect(readdirSync(join(tmp.path, 'data'))).not.toContain('idmap');
    // The workers' records, on the shared data folder, make the study's manifest that the ingest node serves.
    const token = readFileSync(join(tmp.path, 'data', 'admin-token'), 'utf8').trim();
    const manifest = await waitFor(async () => {
      const res = await fetch(`${service.url}/api/studies/${studyKey(key, '1.2.826.0.1.3680043.10.1138.78.1')}/manifest`, { headers: { authorization: `Bearer ${token}` } });
      const rows = res.ok ? (await res.text()).split('\r\n').filter(Boolean).slice(1) : [];
      return rows.length === files.length ? rows : undefined;
    }, 30_000, 'the study manifest');
    expect(new Set(manifest.map((r) => r.split(',')[7]))).toEqual(new Set(files.map((f) => remapUid(key, f.sopInstanceUid))));
    expect(manifest.every((r) => r.split(',')[2] === 'written')).toBe(true);
  }, 180_000);
});
