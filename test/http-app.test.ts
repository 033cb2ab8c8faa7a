/**
 * buildApp() through app.inject(): the admin API, health, metrics and STOW-RS on a real pipeline
 * (embedded queue, spool and folder destination in a temp dir), with no port at all. The process
 * suites (service-e2e, service-redis) drive the same routes over real sockets.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOGUE } from '../src/errors.js';
import { FolderDestination } from '../src/export/folder.js';
import { buildApp } from '../src/http/app.js';
import { Metrics } from '../src/http/metrics.js';
import { registerStow } from '../src/http/stow.js';
import { createQueue } from '../src/pipeline/queue/index.js';
import { Pipeline } from '../src/pipeline/runtime.js';
import { LocalFolderStore } from '../src/pipeline/storage.js';
import { FileStudyTracker } from '../src/pipeline/studies.js';
import { loadProfile } from '../src/profiles/profile.js';
import { corpusFile, tempDir } from './helpers/corpus.js';
import { waitFor } from './helpers/ports.js';

const ADMIN = 'admin-token-for-inject-tests';
const STOW = 'stow-token-for-inject-tests';
const BOUNDARY = 'inject-boundary-0123456789';
const auth = (token = ADMIN) => ({ authorization: `Bearer ${token}` });

function multipart(...bodies: Uint8Array[]): Buffer {
  const parts = bodies.flatMap((b) => [Buffer.from(`--${BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n`), Buffer.from(b), Buffer.from('\r\n')]);
  return Buffer.concat([...parts, Buffer.from(`--${BOUNDARY}--\r\n`)]);
}
const stowHeaders = (token = STOW) => ({ 'content-type': `multipart/related; type="application/dicom"; boundary=${BOUNDARY}`, ...auth(token) });

const files = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name)) : []);

describe('buildApp: admin API, health, metrics and STOW-RS by inject()', () => {
  const tmp = tempDir('deid-app-');
  const exportDir = join(tmp.path, 'export');
  let app: FastifyInstance;
  let pipeline: Pipeline;
  let ready = true;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const queue = createQueue({ dir: join(tmp.path, 'queue') });
    const tracker = new FileStudyTracker(join(tmp.path, 'studies.json'));
    const metrics = new Metrics();
    pipeline = new Pipeline(
      {
        stages: [{ name: 'filter' }, { name: 'header' }, { name: 'verify' }, { name: 'export' }],
        profile: loadProfile('basic'),
        // MR objects are refused by the filter: quarantine entries to review, requeue and delete.
        filter: { reject: [{ Modality: ['MR'] }] },
        destinations: [new FolderDestination(exportDir)],
        maxAttempts: 3,
        backoffMs: 10,
        maxObjectBytes: 1 << 26,
      },
      new LocalFolderStore(join(tmp.path, 'spool')),
      queue,
      tracker,
      Buffer.from('inject-test-secret-0123456789'),
      pino({ level: 'silent' }),
      metrics,
    );
    pipeline.start();
    app = await buildApp({
      pipeline,
      tracker,
      metrics,
      adminToken: ADMIN,
      engine: 'embedded',
      ready: async () => ready,
      register: [(a) => registerStow(a, { ingest: pipeline.ingest, token: STOW, maxBodyBytes: 4_000_000 })],
    });
    close = async () => {
      await app.close();
      await queue.close();
      await pipeline.close();
      await tracker.close();
    };
  });

  afterAll(async () => {
    await close?.();
    tmp.cleanup();
  });

  it('should answer health and readiness without a token', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    ready = false;
    const notReady = await app.inject({ method: 'GET', url: '/readyz' });
    ready = true;
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json()).toEqual({ status: 'not ready' });
  });

  it('should refuse the admin API without the token, with the catalogue\'s status and text', async () => {
    for (const headers of [{}, auth('wrong-token'), { authorization: ADMIN }]) {
      const res = await app.inject({ method: 'GET', url: '/api/status', headers });
      expect(res.statusCode).toBe(CATALOGUE.DEID_ERR_UNAUTHORIZED.http);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(res.json()).toEqual({ code: 'DEID_ERR_UNAUTHORIZED', message: CATALOGUE.DEID_ERR_UNAUTHORIZED.message });
    }
    const status = await app.inject({ method: 'GET', url: '/api/status', headers: auth() });
    expect(status.statusCode).toBe(200);
    expect(status.json()).toMatchObject({ engine: 'embedded' });
    expect(Object.keys(status.json().stages)).toEqual(['filter', 'header', 'verify', 'export']);
  });

  it('should store a STOW-RS upload only with its own token, then export it and count it in the study', async () => {
    const ct = readFileSync(corpusFile('pydicom/CT_small.dcm'));
    const refused = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: stowHeaders('not-the-token'), payload: multipart(ct) });
    expect(refused.statusCode).toBe(401);
    // The admin token is not the STOW-RS token.
    expect((await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: stowHeaders(ADMIN), payload: multipart(ct) })).statusCode).toBe(401);
    const res = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: stowHeaders(), payload: multipart(ct) });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/dicom\+json/);
    expect(res.json()['00081199'].Value).toHaveLength(1);
    await waitFor(() => files(exportDir).length === 1, 15_000, 'the export');
    // The study counts the export once the object has left the pipeline, just after its file is written.
    const studies = await waitFor(async () => {
      const list = (await app.inject({ method: 'GET', url: '/api/studies', headers: auth() })).json().studies;
      return list[0]?.exported === 1 ? list : undefined;
    }, 15_000, 'the study counting the export');
    expect(studies).toHaveLength(1);
    expect(studies[0]).toMatchObject({ received: 1, exported: 1, quarantined: 0 });
    const one = await app.inject({ method: 'GET', url: `/api/studies/${studies[0].id}`, headers: auth() });
    expect(one.json()).toMatchObject({ id: studies[0].id, exported: 1 });
    const missing = await app.inject({ method: 'GET', url: '/api/studies/not-a-study', headers: auth() });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().code).toBe('DEID_ERR_NOT_FOUND');
  });

  it('should answer a wrong media type and a malformed body with the catalogue\'s HTTP statuses', async () => {
    const wrongType = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: { 'content-type': 'application/json', ...auth(STOW) }, payload: '{}' });
    expect(wrongType.statusCode).toBe(CATALOGUE.DEID_ERR_MEDIA_TYPE.http);
    expect(wrongType.json().code).toBe('DEID_ERR_MEDIA_TYPE');
    const noParts = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: stowHeaders(), payload: Buffer.from(`--${BOUNDARY}--\r\n`) });
    expect(noParts.statusCode).toBe(CATALOGUE.DEID_ERR_MULTIPART.http);
    const notDicom = await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: stowHeaders(), payload: multipart(Buffer.from('plain text, not DICOM')) });
    expect(notDicom.statusCode).toBe(409);
    expect(notDicom.json()['00081198'].Value[0]['00081197'].Value).toEqual([CATALOGUE.DEID_ERR_NOT_DICOM.stow]);
  });

  it('should list, show, hand out, requeue and delete quarantine entries', async () => {
    const mr = readFileSync(corpusFile('pydicom/MR_small.dcm'));
    expect((await app.inject({ method: 'POST', url: '/dicomweb/studies', headers: stowHeaders(), payload: multipart(mr) })).statusCode).toBe(200);
    const list = async () => (await app.inject({ method: 'GET', url: '/api/quarantine', headers: auth() })).json().entries as Array<{ id: string; code: string; stage: string; quarantinedAt: string }>;
    const filtered = await waitFor(async () => (await list()).find((e) => e.code === 'DEID_ERR_FILTERED'), 15_000, 'the filtered MR in quarantine');
    expect(filtered).toMatchObject({ stage: 'filter' });
    const entry = await app.inject({ method: 'GET', url: `/api/quarantine/${filtered.id}`, headers: auth() });
    expect(entry.json()).toMatchObject({ id: filtered.id, code: 'DEID_ERR_FILTERED', message: CATALOGUE.DEID_ERR_FILTERED.message, origin: { kind: 'stow' } });
    const object = await app.inject({ method: 'GET', url: `/api/quarantine/${filtered.id}/object`, headers: auth() });
    expect(object.headers['content-type']).toBe('application/dicom');
    expect(object.rawPayload.equals(mr)).toBe(true);
    // Requeued, it meets the same filter and comes back: nothing is lost on the way.
    const requeued = await app.inject({ method: 'POST', url: `/api/quarantine/${filtered.id}/requeue`, headers: auth() });
    expect(requeued.statusCode).toBe(202);
    await waitFor(async () => (await list()).some((e) => e.id === filtered.id && e.quarantinedAt !== filtered.quarantinedAt), 15_000, 'the MR back in quarantine');
    expect((await app.inject({ method: 'DELETE', url: `/api/quarantine/${filtered.id}`, headers: auth() })).statusCode).toBe(204);
    for (const url of [`/api/quarantine/${filtered.id}`, `/api/quarantine/${filtered.id}/object`]) {
      expect((await app.inject({ method: 'GET', url, headers: auth() })).statusCode).toBe(404);
    }
    expect((await app.inject({ method: 'POST', url: `/api/quarantine/${filtered.id}/requeue`, headers: auth() })).statusCode).toBe(404);
    expect((await app.inject({ method: 'DELETE', url: `/api/quarantine/${filtered.id}`, headers: auth() })).statusCode).toBe(404);
  });

  it('should serve Prometheus metrics of what went through, by source, stage and code, without PHI', async () => {
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    const text = res.body;
    expect(text).toMatch(/deid_ingest_objects_total\{source="stow",outcome="stored"\} [1-9]/);
    expect(text).toMatch(/deid_quarantined_total\{stage="filter",code="DEID_ERR_FILTERED"\} [1-9]/);
    expect(text).toMatch(/deid_stage_duration_seconds_count\{stage="export"\} [1-9]/);
    expect(text).toMatch(/deid_queue_jobs\{stage="header",state="queued"\} 0/);
    expect(text).not.toMatch(/1\.3\.6\.1\.4\.1\.5962|CompressedSamples/);
  });
});
