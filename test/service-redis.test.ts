import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { remapUid } from '../src/keyed.js';
import { tempDir } from './helpers/corpus.js';
import { runStorescu, storeResponses } from './helpers/dcmtk.js';
import { startOrthanc, type OrthancHandle } from './helpers/orthanc.js';
import { waitFor } from './helpers/ports.js';
import { startRedis, type RedisHandle } from './helpers/redis.js';
import { startServiceProcess, type ServiceProcess } from './helpers/service.js';
import { writeStudy } from './helpers/study.js';

const SECRET = 'redis-mode-secret-0123456789abcdef';

/** Scale-out: ingest in `deid serve --redis`, the pipeline in two `deid worker` processes sharing the spool. */
/* eslint-disable @typescript-eslint/no-explicit-any */
describe('the service with BullMQ on Redis and two workers', () => {
  const tmp = tempDir('deid-redis-');
  let orthanc: OrthancHandle;
  let redis: RedisHandle;
  let service: ServiceProcess;
  const workers: ServiceProcess[] = [];

  beforeAll(async () => {
    [orthanc, redis] = await Promise.all([startOrthanc(), startRedis()]);
    writeFileSync(join(tmp.path, 'secret'), SECRET);
    const config = join(tmp.path, 'deid.yaml');
    writeFileSync(config, ['workers: false', 'pipeline:', '  - { stage: filter }', '  - { stage: header, concurrency: 2 }', '  - { stage: verify, concurrency: 2 }', '  - { stage: export, concurrency: 2 }', ''].join('\n'));
    const common = ['--config', config, '--redis', redis.url, '--data-dir', join(tmp.path, 'data'), '--secret-file', join(tmp.path, 'secret'), '--export', `dicom://${orthanc.aet}:DEID@127.0.0.1:${orthanc.dicomPort}`];
    service = await startServiceProcess(common);
    // Workers serve health, readiness and metrics on a port of their own.
    for (let i = 0; i < 2; i++) workers.push(await startServiceProcess([...common, '--http-port', '0'], {}, 'worker'));
  }, 120_000);

  afterAll(async () => {
    for (const w of workers) expect(await w.stop()).toBe(0);
    expect(await service?.stop()).toBe(0);
    await orthanc?.stop();
    await redis?.stop();
    tmp.cleanup();
  });

  it('should share the work between the workers and export every object once, de-identified', async () => {
    const files = writeStudy(join(tmp.path, 'in'), {
      patientName: 'REDIS^ROSALIND',
      patientId: 'RR-0042',
      studyUid: '1.2.826.0.1.3680043.10.1138.55.1',
      sources: [
        { file: 'pydicom/CT_small.dcm', series: 1, copies: 24 },
        { file: 'pydicom/MR_small_RLE.dcm', series: 2, copies: 6 },
      ],
    });
    const plain = await runStorescu({ port: service.dimsePort, files: files.filter((f) => f.transferSyntaxUid !== '1.2.840.10008.1.2.5').map((f) => f.path) });
    const rle = await runStorescu({ port: service.dimsePort, files: files.filter((f) => f.transferSyntaxUid === '1.2.840.10008.1.2.5').map((f) => f.path), args: ['-xr'] });
    expect([...storeResponses(plain.output), ...storeResponses(rle.output)]).toEqual(files.map(() => 'Success'));

    const ids = await waitFor(async () => {
      const list = await orthanc.get<string[]>('/instances');
      return list.length === files.length ? list : undefined;
    }, 90_000, 'every instance in Orthanc');
    const key = Buffer.from(SECRET);
    const sops = new Set(await Promise.all(ids.map(async (id) => (await orthanc.get<Record<string, string>>(`/instances/${id}/simplified-tags`)).SOPInstanceUID)));
    expect(sops).toEqual(new Set(files.map((f) => remapUid(key, f.sopInstanceUid))));
    // Both workers took part; the ingest node ran no pipeline stage.
    const exportedBy = workers.map((w) => (w.logs().match(/object exported/g) ?? []).length);
    expect(exportedBy.every((n) => n > 0)).toBe(true);
    expect(exportedBy.reduce((a, b) => a + b, 0)).toBe(files.length);
    expect(service.logs()).not.toMatch(/object exported/);
    for (const w of [service, ...workers]) expect(w.logs()).not.toMatch(/ROSALIND|RR-0042/);
  }, 180_000);

  it('should show the whole cluster on the ingest node: per stage, per worker, in /api/status and /metrics', async () => {
    const token = readFileSync(join(tmp.path, 'data', 'admin-token'), 'utf8').trim();
    const workerIds = workers.map((w) => `${hostname()}:${w.child.pid}`);
    // Counts are published about once a second: the last of them may still be on their way.
    const status: any = await waitFor(async () => {
      const s: any = await (await fetch(`${service.url}/api/status`, { headers: { authorization: `Bearer ${token}` } })).json();
      return ['filter', 'header', 'verify', 'export'].every((stage) => s.stages[stage].done === 30) ? s : undefined;
    }, 20_000, 'every stage counted on the ingest node');
    expect(status.engine).toBe('bullmq');
    for (const stage of ['filter', 'header', 'verify', 'export']) expect(status.stages[stage]).toMatchObject({ done: 30, failed: 0, queued: 0, active: 0 });
    expect(status.stages.export.throughput).toBeGreaterThan(0);
    expect(status.ingest.dimse).toMatchObject({ stored: 30, refused: 0 });
    // Every process reports: the ingest node ran no stage, the two workers shared them.
    const byId = new Map<string, any>(status.workers.map((w: any) => [w.id, w]));
    expect(byId.get(`${hostname()}:${service.child.pid}`)).toMatchObject({ role: 'serve', alive: true, stages: {} });
    const perWorker = workerIds.map((id) => byId.get(id));
    for (const w of perWorker) expect(w).toMatchObject({ role: 'worker', alive: true });
    expect(perWorker.map((w) => w.stages.export?.done ?? 0).reduce((a: number, b: number) => a + b, 0)).toBe(30);
    expect(perWorker.every((w) => (w.stages.export?.done ?? 0) > 0)).toBe(true);

    // Prometheus on the ingest node: the cluster's stage and worker series.
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    expect(metrics).toMatch(/deid_cluster_stage_jobs\{stage="export",outcome="done"\} 30/);
    expect(metrics).toMatch(/deid_cluster_workers\{role="worker",alive="true"\} 2/);
    for (const id of workerIds) expect(metrics).toMatch(new RegExp(`deid_cluster_worker_stage_jobs\\{worker="${id}",role="worker",stage="export",outcome="done"\\} [1-9]`));
    // Each worker serves its own health, readiness and process metrics.
    for (const w of workers) {
      expect((await fetch(`${w.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${w.url}/readyz`)).status).toBe(200);
      const own = await (await fetch(`${w.url}/metrics`)).text();
      expect(own).toMatch(/deid_stage_duration_seconds_count\{stage="export"\} [1-9]/);
      expect(own).toMatch(/deid_cluster_stage_jobs\{stage="export",outcome="done"\} 30/);
      expect((await fetch(`${w.url}/api/status`)).status).toBe(404);
    }
  }, 60_000);
});
