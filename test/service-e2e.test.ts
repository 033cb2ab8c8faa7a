import { request } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { remapUid } from '../src/keyed.js';
import { corpusFile, tempDir } from './helpers/corpus.js';
import { runStorescu, storeResponses } from './helpers/dcmtk.js';
import { startOrthanc, type OrthancHandle } from './helpers/orthanc.js';
import { waitFor } from './helpers/ports.js';
import { startWebhookReceiver } from './helpers/webhook.js';
import { dicomMultipart } from './helpers/multipart.js';
import { startServiceProcess, type ServiceProcess } from './helpers/service.js';
import { writeStudy, type StudyFile } from './helpers/study.js';

const SECRET = 'e2e-site-secret-0123456789abcdef';
const ADMIN = 'admin-token-for-e2e-tests';
const STOW = 'stow-token-for-e2e-tests';
const PATIENT = { patientName: 'GRAYSON^ELEANOR^MAE', patientId: 'MRN8675309' };

type Tags = Record<string, unknown>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const jsonOf = async (r: Response): Promise<any> => r.json();

/**
 * Declares a large body and sends only its first bytes: a server that checks the length answers 413
 * at once. (Writing the whole body races the server closing the socket, so the answer can be lost.)
 */
function postOversized(url: string, body: Buffer, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { ...headers, 'content-length': String(body.length) } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
      req.destroy();
    });
    req.setTimeout(15_000, () => req.destroy(new Error('no answer to an oversized body')));
    req.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'EPIPE' || (e as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(e)));
    req.write(body.subarray(0, 65536));
  });
}

describe('the service end to end, with real peers (embedded queue)', () => {
  const tmp = tempDir('deid-e2e-');
  let orthanc: OrthancHandle;
  let service: ServiceProcess;
  let webhook: Awaited<ReturnType<typeof startWebhookReceiver>>;
  let study: StudyFile[];
  const studyUid = '1.2.826.0.1.3680043.10.1138.77.1';

  beforeAll(async () => {
    orthanc = await startOrthanc();
    webhook = await startWebhookReceiver();
    const secretFile = join(tmp.path, 'secret');
    writeFileSync(secretFile, SECRET);
    const config = join(tmp.path, 'deid.yaml');
    writeFileSync(
      config,
      [
        'dimse:',
        '  allowedCallingAEs: [STORESCU, PACS2]',
        'http:',
        '  maxBodyBytes: 4000000',
        'auth:',
        `  adminToken: ${ADMIN}`,
        `  stowToken: ${STOW}`,
        'studies:',
        '  quietSeconds: 1',
        `  webhook: ${webhook.url}`,
        'pipeline:',
        '  - { stage: filter }',
        '  - { stage: header, profile: basic }',
        '  - { stage: verify }',
        '  - { stage: export, maxAttempts: 4, backoffMs: 200 }',
        '',
      ].join('\n'),
    );
    service = await startServiceProcess([
      '--config', config,
      '--data-dir', join(tmp.path, 'data'),
      '--secret-file', secretFile,
      '--export', `dicom://${orthanc.aet}:DEID@127.0.0.1:${orthanc.dicomPort}`,
    ]);
    study = writeStudy(
      join(tmp.path, 'study'),
      {
        ...PATIENT,
        studyUid,
        sources: [
          { file: 'pydicom/CT_small.dcm', series: 1, copies: 3 },
          { file: 'pydicom/MR_small.dcm', series: 2, copies: 2 },
          { file: 'pydicom/MR_small_RLE.dcm', series: 3 },
          { file: 'pydicom/SC_rgb_jpeg_dcmtk.dcm', series: 4 },
          { file: 'dicomparser/encapsulated/multi-frame/CT0012.fragmented_no_bot_jpeg_lossless.70.dcm', series: 5 },
        ],
      },
      { referenceFirst: true },
    );
  }, 120_000);

  afterAll(async () => {
    const code = await service?.stop();
    expect(code).toBe(0);
    await orthanc?.stop();
    webhook?.close();
    tmp.cleanup();
  });

  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${service.url}${path}`, { ...init, headers: { authorization: `Bearer ${ADMIN}`, ...(init.headers ?? {}) } });

  it('should take a multi-series study over DIMSE (JPEG and RLE included) and export it de-identified, with consistent new UIDs, to Orthanc', async () => {
    const byTs = (ts: string) => study.filter((f) => f.transferSyntaxUid === ts).map((f) => f.path);
    const sends: Array<[string[], string[]]> = [
      [byTs('1.2.840.10008.1.2.1'), []],
      [byTs('1.2.840.10008.1.2.5'), ['-xr']],
      [byTs('1.2.840.10008.1.2.4.50'), ['-xy']],
      [byTs('1.2.840.10008.1.2.4.70'), ['-xs']],
    ];
    expect(sends.reduce((n, [f]) => n + f.length, 0)).toBe(study.length);
    for (const [files, args] of sends) {
      const r = await runStorescu({ port: service.dimsePort, files, args, timeoutMs: 60_000 });
      expect(storeResponses(r.output)).toEqual(files.map(() => 'Success'));
    }
    const ids = await waitFor(async () => {
      const list = await orthanc.get<string[]>('/instances');
      return list.length === study.length ? list : undefined;
    }, 60_000, 'every instance in Orthanc');

    const key = Buffer.from(SECRET);
    const tags = await Promise.all(ids.map((id) => orthanc.get<Tags>(`/instances/${id}/simplified-tags`)));
    const expectedSops = new Set(study.map((f) => remapUid(key, f.sopInstanceUid)));
    expect(new Set(tags.map((t) => t.SOPInstanceUID))).toEqual(expectedSops);
    expect(new Set(tags.map((t) => t.StudyInstanceUID))).toEqual(new Set([remapUid(key, studyUid)]));
    expect(new Set(tags.map((t) => t.SeriesInstanceUID))).toEqual(new Set(study.map((f) => remapUid(key, f.seriesInstanceUid))));
    for (const t of tags) {
      expect(t.PatientIdentityRemoved).toBe('YES');
      expect(JSON.stringify(t)).not.toMatch(/GRAYSON|ELEANOR|8675309/);
      // Every reference to the first object points at its new UID.
      const refs = t.ReferencedImageSequence as Tags[] | undefined;
      if (refs) expect(refs[0].ReferencedSOPInstanceUID).toBe(remapUid(key, study[0].sopInstanceUid));
    }
    expect(tags.filter((t) => t.ReferencedImageSequence).length).toBe(study.length - 1);
  }, 180_000);

  it('should mark the study complete after the quiet period and call the webhook', async () => {
    const res = await waitFor(async () => {
      const r = await jsonOf(await api('/api/studies'));
      const done = r.studies.find((s: { exported: number }) => s.exported === study.length);
      return done?.completedAt ? done : undefined;
    }, 20_000, 'study completion');
    expect(res).toMatchObject({ received: study.length, processed: study.length, exported: study.length, quarantined: 0 });
    expect(res.id).toMatch(/^[0-9a-f]{32}$/);
    await waitFor(() => webhook.received.length > 0, 10_000, 'the webhook');
    expect(webhook.received[0]).toMatchObject({ event: 'study.completed', study: { id: res.id } });
  });

  it('should take STOW-RS uploads end to end and answer with the stored instances', async () => {
    const files = writeStudy(join(tmp.path, 'stow'), { ...PATIENT, studyUid: `${studyUid}.9`, sources: [{ file: 'pydicom/CT_small.dcm', series: 1, copies: 2 }] });
    const { body, type } = dicomMultipart(files.map((f) => readFileSync(f.path)));
    const res = await fetch(`${service.url}/dicomweb/studies`, { method: 'POST', body, headers: { 'content-type': type, authorization: `Bearer ${STOW}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/dicom\+json/);
    const json = await jsonOf(res);
    expect(json['00081199'].Value.map((i: Tags) => (i['00081155'] as { Value: string[] }).Value[0]).sort()).toEqual(files.map((f) => f.sopInstanceUid).sort());
    const key = Buffer.from(SECRET);
    for (const f of files) {
      await waitFor(async () => {
        const r = await fetch(`${orthanc.httpUrl}/tools/lookup`, { method: 'POST', body: remapUid(key, f.sopInstanceUid) });
        return ((await r.json()) as unknown[]).length === 1;
      }, 30_000, 'the STOW-RS upload in Orthanc');
    }
  }, 60_000);

  it('should answer bad input with a clear error, quarantine what it received, and stay undisturbed', async () => {
    const stow = (body: Buffer, headers: Record<string, string>) => fetch(`${service.url}/dicomweb/studies`, { method: 'POST', body, headers, signal: AbortSignal.timeout(20_000) });
    const good = readFileSync(corpusFile('pydicom/MR_small.dcm'));

    const wrongToken = dicomMultipart([good]);
    const unauthorized = await stow(wrongToken.body, { 'content-type': wrongToken.type, authorization: 'Bearer not-the-token' });
    expect(unauthorized.status).toBe(401);
    expect((await jsonOf(unauthorized)).code).toBe('DEID_ERR_UNAUTHORIZED');

    const junk = dicomMultipart([Buffer.from('this is not a DICOM file at all'), good.subarray(0, 1500)]);
    const refused = await stow(junk.body, { 'content-type': junk.type, authorization: `Bearer ${STOW}` });
    expect(refused.status).toBe(409);
    const failed = (await jsonOf(refused))['00081198'].Value as Tags[];
    expect(failed.map((f) => (f['00081197'] as { Value: number[] }).Value[0])).toEqual([0xc000, 0xc000]);

    const big = dicomMultipart([Buffer.alloc(5_000_000)]);
    expect(await postOversized(`${service.url}/dicomweb/studies`, big.body, { 'content-type': big.type, authorization: `Bearer ${STOW}` })).toBe(413);

    const notMultipart = await stow(good, { 'content-type': 'application/dicom', authorization: `Bearer ${STOW}` });
    expect(notMultipart.status).toBe(415);

    // An unknown calling AE is turned away at association time.
    const stranger = await runStorescu({ port: service.dimsePort, callingAE: 'STRANGER', files: [corpusFile('pydicom/CT_small.dcm')], timeoutMs: 30_000 });
    expect(stranger.output).toMatch(/Association Rejected|Calling AE Title Not Recognized/i);
    expect(storeResponses(stranger.output)).toEqual([]);

    // Nothing else was disturbed: a good object still goes through.
    const after = writeStudy(join(tmp.path, 'after'), { ...PATIENT, studyUid: `${studyUid}.10`, sources: [{ file: 'pydicom/CT_small.dcm', series: 1 }] });
    const ok = await runStorescu({ port: service.dimsePort, files: [after[0].path], callingAE: 'PACS2' });
    expect(storeResponses(ok.output)).toEqual(['Success']);
    await waitFor(async () => {
      const r = await fetch(`${orthanc.httpUrl}/tools/lookup`, { method: 'POST', body: remapUid(Buffer.from(SECRET), after[0].sopInstanceUid) });
      return ((await r.json()) as unknown[]).length === 1;
    }, 30_000, 'the good object after the bad ones');

    // What was received but unusable is in quarantine, with its code.
    const q = (await jsonOf(await api('/api/quarantine'))).entries as Array<{ code: string; stage: string }>;
    const codes = q.filter((e) => e.stage === 'ingest').map((e) => e.code).sort();
    expect(codes).toEqual(['DEID_ERR_NOT_DICOM', 'DEID_ERR_TRUNCATED']);
  }, 120_000);

  it('should guard the admin API with the token and report status and metrics', async () => {
    expect((await fetch(`${service.url}/api/status`)).status).toBe(401);
    expect((await fetch(`${service.url}/api/status`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const status = await jsonOf(await api('/api/status'));
    expect(status.engine).toBe('embedded');
    for (const stage of ['filter', 'header', 'verify', 'export']) {
      expect(status.stages[stage]).toEqual(expect.objectContaining({ queued: expect.any(Number), active: expect.any(Number), done: expect.any(Number), failed: expect.any(Number), throughput: expect.any(Number) }));
    }
    expect(status.stages.export.done).toBeGreaterThanOrEqual(study.length);
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    expect(metrics).toMatch(/deid_ingest_objects_total\{source="dimse",outcome="stored"\} \d+/);
    expect(metrics).toMatch(/deid_stage_duration_seconds_count\{stage="header"\} \d+/);
    expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${service.url}/readyz`)).status).toBe(200);

    // Quarantine get, requeue and delete.
    const [entry] = (await jsonOf(await api('/api/quarantine'))).entries as Array<{ id: string }>;
    expect((await api(`/api/quarantine/${entry.id}`)).status).toBe(200);
    expect((await api(`/api/quarantine/${entry.id}/object`)).headers.get('content-type')).toMatch(/application\/dicom/);
    expect((await api(`/api/quarantine/${entry.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await api(`/api/quarantine/${entry.id}`)).status).toBe(404);
  });

  it('should never write patient values to its logs', () => {
    const logs = service.logs();
    expect(logs.length).toBeGreaterThan(100);
    for (const phi of ['GRAYSON', 'ELEANOR', 'MRN8675309', studyUid, study[0].sopInstanceUid]) expect(logs).not.toContain(phi);
  });
});
