/**
 * The console on the Redis engine: `deid serve --redis` (ingest and the console, no stages) and a
 * `deid worker` sharing the spool. The console's session, live feed, studies with their new identity
 * and the review hold work across processes: the worker de-identifies and holds, the console node
 * shows and approves, the worker exports.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers/corpus.js';
import { waitFor } from './helpers/ports.js';
import { startRedis, type RedisHandle } from './helpers/redis.js';
import { startServiceProcess, type ServiceProcess } from './helpers/service.js';
import { writeStudy } from './helpers/study.js';

const ADMIN = 'admin-token-for-console-redis';
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const filesUnder = (dir: string): string[] =>
  existsSync(dir) ? readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile() && d.name.endsWith('.dcm')).map((d) => join(d.parentPath, d.name)) : [];

describe('the console with BullMQ on Redis and a worker', () => {
  const tmp = tempDir('deid-console-redis-');
  const exportDir = join(tmp.path, 'export');
  let redis: RedisHandle;
  let service: ServiceProcess;
  let worker: ServiceProcess;
  let cookie = '';
  let csrf = '';

  beforeAll(async () => {
    redis = await startRedis();
    const config = join(tmp.path, 'deid.yaml');
    writeFileSync(
      config,
      [`auth: { adminToken: ${ADMIN}, stowToken: none }`, 'workers: false', 'review: all', 'studies: { quietSeconds: 1 }', 'pipeline:', '  - { stage: header }', '  - { stage: verify }', `  - { stage: export, destinations: ["${exportDir}"] }`, ''].join('\n'),
    );
    const common = ['--config', config, '--redis', redis.url, '--data-dir', join(tmp.path, 'data'), '--secret-file', join(tmp.path, 'secret')];
    service = await startServiceProcess(common);
    worker = await startServiceProcess(common, {}, 'worker');
  }, 60_000);

  afterAll(async () => {
    expect(await worker?.stop()).toBe(0);
    expect(await service?.stop()).toBe(0);
    await redis?.stop();
    tmp.cleanup();
  });

  const call = async (path: string, init: RequestInit = {}): Promise<Json> => {
    const r = await fetch(`${service.url}${path}`, { ...init, headers: { cookie, 'x-csrf-token': csrf, ...(init.body ? { 'content-type': 'application/json' } : {}), ...(init.headers ?? {}) } });
    expect(r.status, `${path}: ${r.status}`).toBeLessThan(300);
    return r.status === 204 ? null : r.json();
  };

  it('should show the whole cluster live, hold objects the worker made, and export them from the worker once approved in the console', async () => {
    const signIn = await fetch(`${service.url}/console/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: ADMIN }) });
    cookie = (signIn.headers.get('set-cookie') ?? '').split(';')[0]!;
    csrf = ((await signIn.json()) as Json).csrf;

    // The live feed, as the dashboard reads it.
    const feed = await fetch(`${service.url}/api/console/events`, { headers: { cookie } });
    const events: Array<{ event: string; data: Json }> = [];
    void (async () => {
      let buf = '';
      for await (const chunk of feed.body as unknown as AsyncIterable<Uint8Array>) {
        buf += Buffer.from(chunk).toString('utf8');
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = /^event: (\w+)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (ev && data) events.push({ event: ev, data: JSON.parse(data) });
        }
      }
    })().catch(() => undefined);

    const files = writeStudy(join(tmp.path, 'study'), { patientName: 'REDIS^RITA', patientId: 'RR-77', studyUid: '1.2.826.0.1.3680043.10.1138.12.9', sources: [{ file: 'pydicom/CT_small.dcm', series: 1, copies: 2 }] });
    for (const f of files) {
      const b = 'console-redis-b';
      const body = Buffer.concat([Buffer.from(`--${b}\r\nContent-Type: application/dicom\r\n\r\n`), readFileSync(f.path), Buffer.from(`\r\n--${b}--\r\n`)]);
      const r = await fetch(`${service.url}/dicomweb/studies`, { method: 'POST', body, headers: { cookie, 'x-csrf-token': csrf, 'content-type': `multipart/related; type="application/dicom"; boundary=${b}` } });
      expect(r.status).toBe(200);
    }

    // review: all — the worker holds both; the console node lists them.
    const held = await waitFor(async () => {
      const r = (await call('/api/console/review')).entries as Json[];
      return r.length === 2 ? r : undefined;
    }, 60_000, 'both objects to be held');
    expect(held.every((e: Json) => /^2\.25\./.test(e.identity.sopInstanceUid))).toBe(true);
    expect(filesUnder(exportDir)).toEqual([]);

    // The feed reports the cluster: the worker, alive, with the stages it ran.
    const status = await waitFor(() => [...events].reverse().find((e) => e.event === 'status' && e.data.review === 2 && e.data.workers?.some((w: Json) => w.role === 'worker' && w.stages?.verify?.done === 2))?.data, 20_000, 'a status event with the worker');
    expect(status.engine).toBe('bullmq');
    expect(status.workers.find((w: Json) => w.role === 'worker').alive).toBe(true);

    for (const e of held) await call(`/api/console/review/${e.id}/approve`, { method: 'POST' });
    await waitFor(() => filesUnder(exportDir).length === 2, 60_000, 'the worker to export both');
    expect((await call('/api/console/review')).entries).toEqual([]);

    // The study, complete, with its new identity from the worker's catalog entries.
    const study = await waitFor(async () => {
      const s = ((await call('/api/console/studies')).studies as Json[])[0];
      return s?.completedAt ? s : undefined;
    }, 30_000, 'the study to complete');
    expect(study.identity.studyInstanceUid).toMatch(/^2\.25\.\d+$/);
    expect(study).toMatchObject({ received: 2, exported: 2, state: 'complete' });
    expect(events.some((e) => e.event === 'changed' && e.data.studies)).toBe(true);
    for (const p of [service, worker]) expect(p.logs()).not.toMatch(/REDIS\^RITA|RR-77/);
  }, 120_000);
});
