/**
 * The service as a hospital runs it (issue 11), through its real protocols with real peers: dcmtk's
 * storescu, STOW-RS over HTTP, a watched folder, a webhook receiver, and the process restarted.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findElement } from '../src/dicom/element.js';
import { readDicom } from '../src/dicom/reader.js';
import { TAG } from '../src/dicom/tag.js';
import { rawString } from '../src/dicom/values.js';
import { remapUid, studyKey } from '../src/keyed.js';
import { CLI, corpusFile, tempDir } from './helpers/corpus.js';
import { runStorescu, storeResponses } from './helpers/dcmtk.js';
import { baseDataset, el, makeBytes, u16 } from './helpers/dicom-builder.js';
import { waitFor } from './helpers/ports.js';
import { dirsUnder, filesUnder } from './helpers/files.js';
import { startWebhookReceiver } from './helpers/webhook.js';
import { dicomMultipart } from './helpers/multipart.js';
import { startServiceProcess, type ServiceProcess } from './helpers/service.js';
import { writeStudy } from './helpers/study.js';

const SECRET = 'production-test-secret-0123456789';
const ADMIN = 'admin-token-for-production-tests';
const METRICS = 'metrics-token-for-production-tests';
const PATIENT = { patientName: 'PRODUCTION^PAULINE', patientId: 'PROD-7731' };
const MAX_OBJECT = 600_000;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);

describe('the service in production (embedded queue, real peers)', () => {
  const tmp = tempDir('deid-prod-');
  const dataDir = join(tmp.path, 'data');
  const exportDir = join(tmp.path, 'export');
  const inbox = join(tmp.path, 'inbox');
  const secretFile = join(tmp.path, 'secret');
  const config = join(tmp.path, 'deid.yaml');
  let service: ServiceProcess;
  let webhook: Awaited<ReturnType<typeof startWebhookReceiver<Json>>>;
  const args = () => ['--config', config, '--data-dir', dataDir, '--secret-file', secretFile];

  beforeAll(async () => {
    webhook = await startWebhookReceiver<Json>();
    mkdirSync(inbox);
    writeFileSync(secretFile, SECRET);
    writeFileSync(
      config,
      [
        `auth: { adminToken: ${ADMIN}, metricsToken: ${METRICS} }`,
        `studies: { quietSeconds: 1, webhook: "${webhook.url}" }`,
        `maxObjectBytes: ${MAX_OBJECT}`,
        // Header-stage refusals are part of what this suite checks: with pixel cleaning on (the default),
        // the image that declares burned-in text would be cleaned instead of refused.
        'cleanPixelData: false',
        `folder: { path: ${inbox}, settleMs: 300 }`,
        'pipeline:',
        '  - { stage: filter }',
        '  - { stage: header, profile: basic }',
        '  - { stage: verify }',
        `  - { stage: export, destinations: ["${exportDir}"], maxAttempts: 3, backoffMs: 100 }`,
        '',
      ].join('\n'),
    );
    service = await startServiceProcess(args());
  }, 60_000);

  afterAll(async () => {
    expect(await service?.stop()).toBe(0);
    webhook?.close();
    tmp.cleanup();
  });

  const api = (path: string, init: RequestInit = {}) => fetch(`${service.url}${path}`, { ...init, headers: { authorization: `Bearer ${ADMIN}`, ...(init.headers ?? {}) } });
  const studies = async () => (await (await api('/api/studies')).json() as Json).studies as Json[];
  const quarantine = async () => (await (await api('/api/quarantine')).json() as Json).entries as Json[];
  const stowToken = () => readFileSync(join(dataDir, 'stow-token'), 'utf8').trim();
  const stow = (parts: Buffer[], token = stowToken()) => {
    const { body, type } = dicomMultipart(parts);
    return fetch(`${service.url}/dicomweb/studies`, { method: 'POST', body, headers: { 'content-type': type, ...(token ? { authorization: `Bearer ${token}` } : {}) } });
  };
  const studyOf = (sopInstanceUid: string) => remapUid(Buffer.from(SECRET), sopInstanceUid);

  it('should bind HTTP to the loopback interface, check the called AE title, and guard STOW-RS and /metrics with tokens', async () => {
    expect(service.logs()).toMatch(/"host":"127\.0\.0\.1","port":\d+,"msg":"HTTP listening/);
    // DIMSE listens on every interface (PACS must reach it), and says so once.
    expect(service.logs().match(/"msg":"DIMSE SCP listening"/g)).toHaveLength(1);
    expect(service.logs()).toMatch(/"host":"0\.0\.0\.0","port":\d+,"aeTitle":"DEID","msg":"DIMSE SCP listening/);
    const files = writeStudy(join(tmp.path, 'ae'), { ...PATIENT, studyUid: '1.2.826.0.1.3680043.10.1138.11.1', sources: [{ file: 'pydicom/MR_small.dcm', series: 1 }] });
    const wrongCalled = await runStorescu({ port: service.dimsePort, calledAE: 'NOT-DEID', files: [files[0].path] });
    expect(wrongCalled.output).toMatch(/Association Rejected|Called AE Title Not Recognized/i);
    expect(storeResponses(wrongCalled.output)).toEqual([]);

    // STOW-RS: a token was generated next to the admin token, private to the service's user.
    expect(mode(join(dataDir, 'stow-token'))).toBe('600');
    expect(service.logs()).toMatch(/generated a token for STOW-RS uploads/);
    const part = readFileSync(files[0].path);
    expect((await stow([part], '')).status).toBe(401);
    expect((await stow([part], ADMIN)).status).toBe(401);
    expect((await stow([part])).status).toBe(200);

    const metrics = await fetch(`${service.url}/metrics`);
    expect(metrics.status).toBe(401);
    expect(metrics.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await fetch(`${service.url}/metrics`, { headers: { authorization: `Bearer ${METRICS}` } })).status).toBe(200);
    // Health and readiness stay open for probes.
    expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${service.url}/readyz`)).status).toBe(200);
  });

  it('should refuse an object over maxObjectBytes while receiving it, over DIMSE and from the folder, with A700, and keep nothing', async () => {
    const big = join(tmp.path, 'big.dcm');
    writeFileSync(big, makeBytes(baseDataset([el('Rows', 'US', u16(700)), el('Columns', 'US', u16(512)), el('PixelData', 'OW', new Uint8Array(700 * 512 * 2))], 41)));
    expect(statSync(big).size).toBeGreaterThan(MAX_OBJECT);
    const r = await runStorescu({ port: service.dimsePort, files: [big] });
    expect(storeResponses(r.output)).toEqual([expect.stringMatching(/OutOfResources|Out of Resources/i)]);
    expect(service.logs()).toMatch(/"code":"DEID_ERR_HOSTILE_SIZE"/);
    // Not kept: neither spooled nor quarantined.
    expect((await quarantine()).filter((e) => e.code === 'DEID_ERR_HOSTILE_SIZE')).toEqual([]);
    expect(filesUnder(join(dataDir, 'spool')).filter((f) => statSync(f).size > MAX_OBJECT)).toEqual([]);

    // The folder leaves a file over the limit where it is, unread; a small one next to it is taken.
    writeFileSync(join(inbox, 'big.dcm'), readFileSync(big));
    const small = writeStudy(join(tmp.path, 'folder'), { ...PATIENT, studyUid: '1.2.826.0.1.3680043.10.1138.11.2', sources: [{ file: 'pydicom/MR_small.dcm', series: 1 }] });
    writeFileSync(join(inbox, 'small.dcm'), readFileSync(small[0].path));
    await waitFor(() => !existsSync(join(inbox, 'small.dcm')), 20_000, 'the small file taken from the folder');
    await waitFor(() => service.logs().includes('a file larger than maxObjectBytes was left in the watch folder'), 10_000, 'the warning');
    expect(existsSync(join(inbox, 'big.dcm'))).toBe(true);
  });

  it('should complete every study after its quiet period, counting a re-sent object once and each distinct encoding once', async () => {
    const resent = writeStudy(join(tmp.path, 'resent'), { ...PATIENT, studyUid: '1.2.826.0.1.3680043.10.1138.11.3', sources: [{ file: 'pydicom/CT_small.dcm', series: 1 }] });
    for (let i = 0; i < 2; i++) expect(storeResponses((await runStorescu({ port: service.dimsePort, files: [resent[0].path] })).output)).toEqual(['Success']);
    // Three encodings of one SOP instance; storescu may send two of them as the same bytes.
    const encodings = ['explicit_little_endian', 'implicit_little_endian', 'explicit_big_endian'].map((e) => corpusFile(`dicomparser/CT1_UNC.${e}.dcm`));
    expect(storeResponses((await runStorescu({ port: service.dimsePort, files: [...encodings, encodings[0]] })).output)).toEqual(['Success', 'Success', 'Success', 'Success']);

    const key = Buffer.from(SECRET);
    const id = (file: string) => studyKey(key, rawString(findElement(readDicom(readFileSync(file)).dataset, TAG.StudyInstanceUID)?.value));
    const one = async (file: string) => (await (await api(`/api/studies/${id(file)}`)).json()) as Json;
    const [resentStudy, ct1] = await waitFor(async () => {
      const both = [await one(resent[0].path), await one(encodings[0])];
      return both.every((s) => s.completedAt) ? both : undefined;
    }, 30_000, 'both studies complete');
    // The identical re-send is one object.
    expect(resentStudy).toMatchObject({ received: 1, processed: 1, exported: 1, quarantined: 0 });
    // Every distinct encoding counts once, and every one is accounted for.
    expect(ct1.received).toBeGreaterThanOrEqual(2);
    expect(ct1.received).toBeLessThanOrEqual(3);
    expect(ct1).toMatchObject({ exported: ct1.received, processed: ct1.received, quarantined: 0 });
    await waitFor(() => webhook.received.some((c) => c.study?.id === ct1.id), 10_000, 'the webhook');
    expect(webhook.received.map((c) => c.event)).toEqual(expect.arrayContaining(['study.completed']));
  });

  it('should keep two different objects with one SOP Instance UID side by side in the folder export, and count both', async () => {
    const studyUid = '1.2.826.0.1.3680043.10.1138.11.4';
    const a = writeStudy(join(tmp.path, 'same-a'), { ...PATIENT, studyUid, sources: [{ file: 'pydicom/CT_small.dcm', series: 1 }] });
    const b = writeStudy(join(tmp.path, 'same-b'), { ...PATIENT, studyUid, sources: [{ file: 'pydicom/MR_small.dcm', series: 1 }] });
    expect(a[0].sopInstanceUid).toBe(b[0].sopInstanceUid);
    for (const f of [a[0], b[0]]) expect(storeResponses((await runStorescu({ port: service.dimsePort, files: [f.path] })).output)).toEqual(['Success']);
    const sop = studyOf(a[0].sopInstanceUid);
    const outputs = await waitFor(() => {
      // A write in progress shows as a temporary file beside its target: only finished files count.
      const found = filesUnder(exportDir).filter((f) => f.includes(sop) && f.endsWith('.dcm'));
      return found.length === 2 ? found : undefined;
    }, 30_000, 'both objects in the export folder');
    expect(outputs.some((f) => f.endsWith(`${sop}.dcm`))).toBe(true);
    expect(outputs.some((f) => new RegExp(`${sop.replace(/\./g, '\\.')}-[0-9a-f]{12}\\.dcm$`).test(f))).toBe(true);
    const bytes = outputs.map((f) => readFileSync(f));
    expect(bytes[0].equals(bytes[1])).toBe(false);
    for (const f of outputs) expect(rawString(findElement(readDicom(readFileSync(f)).dataset, TAG.SOPInstanceUID)?.value)).toBe(sop);
    const study = await waitFor(async () => (await studies()).find((s) => s.received === 2 && s.exported === 2), 20_000, 'the study counting both');
    expect(study.quarantined).toBe(0);
  });

  it('should requeue from every stage: an unreadable object stays listed with its attempt counted, a fixed profile releases a refused one, and the counts stay exact', async () => {
    // An ingest-stage entry (over STOW-RS): not DICOM.
    const junk = await stow([Buffer.from('this is not a DICOM object')]);
    expect(junk.status).toBe(409);
    const notDicom = await waitFor(async () => (await quarantine()).find((e) => e.code === 'DEID_ERR_NOT_DICOM'), 10_000, 'the non-DICOM entry');
    expect(notDicom).toMatchObject({ stage: 'ingest', origin: { kind: 'stow' } });
    const again = await api(`/api/quarantine/${notDicom.id}/requeue`, { method: 'POST' });
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ code: 'DEID_ERR_NOT_DICOM' });
    const kept = (await quarantine()).find((e) => e.id === notDicom.id);
    expect(kept).toMatchObject({ id: notDicom.id, stage: 'ingest', code: 'DEID_ERR_NOT_DICOM', requeues: 1, origin: { kind: 'stow' } });
    // Nothing of it is left in the spool (objects of earlier tests may still be finishing: their originals go last).
    await waitFor(() => filesUnder(join(dataDir, 'spool', 'incoming')).length === 0, 20_000, 'an empty spool/incoming');

    // A header-stage entry: an image that declares burned-in text, refused by the basic profile.
    const burned = join(tmp.path, 'burned.dcm');
    writeFileSync(burned, makeBytes(baseDataset([el('BurnedInAnnotation', 'CS', 'YES'), el('StudyInstanceUID', 'UI', '1.2.826.0.1.3680043.10.1138.11.5')], 42)));
    expect(storeResponses((await runStorescu({ port: service.dimsePort, files: [burned] })).output)).toEqual(['Success']);
    const refused = await waitFor(async () => (await quarantine()).find((e) => e.code === 'DEID_ERR_BURNED_IN'), 20_000, 'the burned-in image in quarantine');
    expect(refused).toMatchObject({ stage: 'header', origin: { kind: 'dimse' } });
    const studyId = refused.study as string;
    const count = async () => (await (await api(`/api/studies/${studyId}`)).json()) as Json;
    await waitFor(async () => (await count()).quarantined === 1, 10_000, 'the study counts');
    expect(await count()).toMatchObject({ received: 1, quarantined: 1, exported: 0 });

    // Requeued as it is: refused again, counted once.
    expect((await api(`/api/quarantine/${refused.id}/requeue`, { method: 'POST' })).status).toBe(202);
    await waitFor(async () => (await quarantine()).find((e) => e.id === refused.id && e.requeues === 1), 20_000, 'the image back in quarantine');
    await waitFor(async () => (await count()).quarantined === 1, 10_000, 'the study counts');
    expect(await count()).toMatchObject({ received: 1, quarantined: 1, exported: 0 });

    // A profile that does not fit is refused before anything moves.
    const missing = await api(`/api/quarantine/${refused.id}/requeue`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ profile: join(tmp.path, 'no-such.yaml') }) });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toMatchObject({ code: 'DEID_ERR_PROFILE_NOT_FOUND' });
    const badBody = await api(`/api/quarantine/${refused.id}/requeue`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ options: [{}] }) });
    expect(badBody.status).toBe(400);
    expect(await badBody.json()).toMatchObject({ code: 'DEID_ERR_BAD_REQUEST' });
    // A JSON request with an empty or malformed body is the caller's error too, and its text is not echoed.
    for (const body of ['', '{"profile": "Doe^Jane']) {
      const broken = await api(`/api/quarantine/${refused.id}/requeue`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(broken.status).toBe(400);
      const answer = (await broken.json()) as Json;
      expect(answer).toMatchObject({ code: 'DEID_ERR_BAD_REQUEST' });
      expect(JSON.stringify(answer)).not.toContain('Doe');
    }

    // The operator writes a profile that lets it through knowingly, and requeues the object with it.
    const fixed = join(tmp.path, 'pass-burned-in.yaml');
    writeFileSync(fixed, 'name: pass-burned-in\nextends: basic\npassBurnedInAnnotation: true\n');
    const ok = await api(`/api/quarantine/${refused.id}/requeue`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ profile: fixed }) });
    expect(ok.status).toBe(202);
    expect(await ok.json()).toMatchObject({ requeued: refused.id, profile: fixed, options: [] });
    await waitFor(async () => (await count()).exported === 1, 20_000, 'the released image exported');
    expect(await count()).toMatchObject({ received: 1, quarantined: 0, exported: 1 });
    expect((await quarantine()).find((e) => e.id === refused.id)).toBeUndefined();
  });

  it('should answer STOW-RS failures with the reason in words: Error Comment and Warning header', async () => {
    const ct = readFileSync(corpusFile('pydicom/CT_small.dcm'));
    const res = await stow([ct.subarray(0, 5964)]);
    expect(res.status).toBe(409);
    const item = ((await res.json()) as Json)['00081198'].Value[0];
    expect(item['00000902'].Value[0]).toMatch(/^DEID_ERR_TRUNCATED \(.*\d+/);
    expect(res.headers.get('warning')).toMatch(/^299 deid "part 1: DEID_ERR_TRUNCATED: The file ends before its last element is complete/);
  });

  it('should show the whole pipeline in /api/status and /metrics, with this process as its one worker', async () => {
    const status = (await (await api('/api/status')).json()) as Json;
    expect(status.engine).toBe('embedded');
    expect(status.stages.export.done).toBeGreaterThanOrEqual(5);
    expect(status.stages.header.failed).toBeGreaterThanOrEqual(2);
    expect(status.workers).toHaveLength(1);
    expect(status.workers[0]).toMatchObject({ role: 'serve', alive: true, stages: { export: { done: status.stages.export.done } } });
    expect(status.ingest.dimse.stored).toBeGreaterThanOrEqual(5);
    expect(status.quarantined).toEqual(expect.arrayContaining([expect.objectContaining({ stage: 'header', code: 'DEID_ERR_BURNED_IN' })]));
    expect(status.history).toHaveLength(60);
    const metrics = await (await fetch(`${service.url}/metrics`, { headers: { authorization: `Bearer ${METRICS}` } })).text();
    expect(metrics).toMatch(new RegExp(`deid_cluster_stage_jobs\\{stage="export",outcome="done"\\} ${status.stages.export.done}`));
    expect(metrics).toMatch(/deid_cluster_workers\{role="serve",alive="true"\} 1/);
  });

  it('should keep PHI private on disk: data files 0600, folders 0700', async () => {
    const paths = [...filesUnder(dataDir), ...filesUnder(exportDir)];
    expect(paths.some((p) => p.includes('/quarantine/'))).toBe(true);
    expect(paths.some((p) => p.startsWith(exportDir))).toBe(true);
    expect(paths.filter((p) => mode(p) !== '600')).toEqual([]);
    expect([...dirsUnder(dataDir), ...dirsUnder(exportDir)].filter((d) => mode(d) !== '700')).toEqual([]);
  });

  it('should keep a quarantine entry with its origin and stage across a restart, and never write patient values to its logs', async () => {
    const before = await quarantine();
    expect(await service.stop()).toBe(0);
    service = await startServiceProcess(args());
    const after = await quarantine();
    expect(after.map((e) => [e.id, e.stage, e.origin?.kind]).sort()).toEqual(before.map((e) => [e.id, e.stage, e.origin?.kind]).sort());
    for (const phi of ['PRODUCTION', 'PAULINE', 'PROD-7731', 'Smith^John', 'PID12345']) expect(service.logs()).not.toContain(phi);
  }, 60_000);
});

describe('deid serve and worker on the command line', () => {
  const tmp = tempDir('deid-cmd-');
  afterAll(tmp.cleanup);
  const deid = (args: string[], env: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: tmp.path, env: { ...process.env, ...env }, timeout: 30_000 });
    return { code: r.status, out: `${r.stdout}${r.stderr}` };
  };

  it('should print every command\'s usage with --help, serve and worker included', () => {
    for (const cmd of ['run', 'verify', 'profiles', 'import', 'serve', 'worker', 'reid', 'map']) {
      const r = deid([cmd, '--help']);
      expect(r.code, cmd).toBe(0);
      expect(r.out, cmd).toMatch(new RegExp(`^Usage:\\n\\s+deid ${cmd}`));
    }
    expect(deid(['serve', '--help']).out).toMatch(/--log-format json\|pretty/);
    expect(deid(['worker', '--help']).out).toMatch(/--http-port N/);
    const all = deid(['--help']);
    expect(all.code).toBe(0);
    expect(all.out).toMatch(/deid serve/);
    expect(all.out).toMatch(/deid worker/);
  });

  it('should stop at start-up on a destination it does not know, naming it, and write nothing', () => {
    for (const dest of ['ftp://x', 'dicom:/PACS@host:104', 'relative/folder']) {
      const r = deid(['serve', '--data-dir', join(tmp.path, 'data'), '--export', dest]);
      expect(r.code, dest).toBe(1);
      expect(r.out, dest).toContain('DEID_ERR_CONFIG');
      expect(r.out, dest).toContain(`destination "${dest}"`);
    }
    expect(readdirSync(tmp.path)).toEqual([]);
  });

  it('should name the file and the setting of a configuration error, and the path of an input it cannot read', () => {
    const cfg = join(tmp.path, '..', `deid-cmd-typo-${process.pid}.yaml`);
    writeFileSync(cfg, 'http: { prot: 8080 }\n');
    try {
      const r = deid(['serve', '--config', cfg]);
      expect(r.code).toBe(1);
      expect(r.out).toContain(`${cfg}: http.prot: unknown setting`);
    } finally {
      spawnSync('rm', ['-f', cfg]);
    }
    const missing = join(tmp.path, '..', `no-such-input-${process.pid}`);
    const run = deid(['run', missing, '--out', join(tmp.path, '..', 'o'), '--quarantine', join(tmp.path, '..', 'q')]);
    expect(run.code).toBe(1);
    expect(run.out).toContain(`cannot read input ${missing}: ENOENT`);
  });

  it('should log readable lines with --log-format pretty, and JSON by default', async () => {
    const dataDir = join(tmp.path, '..', `deid-pretty-${process.pid}`);
    try {
      const pretty = await startServiceProcess(['--data-dir', dataDir, '--log-format', 'pretty'], {}, 'worker');
      const lines = pretty.logs().trim().split('\n');
      expect(await pretty.stop()).toBe(0);
      expect(lines.some((l) => /INFO.*deid worker started/.test(l))).toBe(true);
      expect(lines.filter((l) => l.startsWith('{'))).toEqual([]);
      const json = await startServiceProcess(['--data-dir', dataDir], {}, 'worker');
      expect(await json.stop()).toBe(0);
      expect(JSON.parse(json.logs().split('\n').find((l) => l.includes('deid worker started'))!)).toMatchObject({ level: 30, msg: 'deid worker started' });
    } finally {
      spawnSync('rm', ['-rf', dataDir]);
    }
  }, 60_000);
});
