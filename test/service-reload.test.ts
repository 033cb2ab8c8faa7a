/**
 * SIGHUP reloads the configuration of a running service (issue 11): a changed profile while storescu
 * streams, destinations, tokens, log level and limits; a reload that does not validate is refused;
 * ports and the data directory wait for a restart, and the log says so.
 */
import { createServer, type Server } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findElement } from '../src/dicom/element.js';
import { readDicom } from '../src/dicom/reader.js';
import { rawString } from '../src/dicom/values.js';
import { corpusFile, tempDir } from './helpers/corpus.js';
import { runStorescu, spawnStorescu, storeResponses } from './helpers/dcmtk.js';
import { listenOnFreePort, waitFor } from './helpers/ports.js';
import { filesUnder } from './helpers/files.js';
import { startServiceProcess, type ServiceProcess } from './helpers/service.js';
import { writeStudy } from './helpers/study.js';

const ADMIN = 'admin-token-before-reload';
const ADMIN2 = 'admin-token-after-reload';
const INSTITUTION = 0x00080080;

describe('SIGHUP reloads the configuration', () => {
  const tmp = tempDir('deid-reload-');
  const exportA = join(tmp.path, 'export-a');
  const exportB = join(tmp.path, 'export-b');
  const profile = join(tmp.path, 'site.yaml');
  const config = join(tmp.path, 'deid.yaml');
  let service: ServiceProcess;
  let failing: Server;
  let failingPort = 0;

  const writeProfile = (institution: string) => writeFileSync(profile, `name: site\nextends: basic\nrules:\n  - { select: InstitutionName, action: { set: ${institution} } }\n`);
  const writeConfig = (o: { admin?: string; level?: string; destinations?: string[]; extra?: string[] } = {}) =>
    writeFileSync(
      config,
      [
        `auth: { adminToken: ${o.admin ?? ADMIN}, stowToken: none }`,
        `log: { level: ${o.level ?? 'info'} }`,
        ...(o.extra ?? []),
        'pipeline:',
        `  - { stage: header, profile: "${profile}" }`,
        '  - { stage: verify }',
        `  - { stage: export, destinations: ${JSON.stringify(o.destinations ?? [exportA])}, maxAttempts: 2, backoffMs: 100, maxBackoffMs: 200 }`,
        '',
      ].join('\n'),
    );
  const reloads = () => (service.logs().match(/"msg":"(configuration reloaded|reload refused)/g) ?? []).length;
  /** Sends SIGHUP and resolves the log lines of that reload. */
  const hup = async (): Promise<string> => {
    const before = reloads();
    const from = service.logs().length;
    service.child.kill('SIGHUP');
    await waitFor(() => reloads() > before, 20_000, 'the reload to be logged');
    return service.logs().slice(from);
  };
  const api = (path: string, token = ADMIN) => fetch(`${service.url}${path}`, { headers: { authorization: `Bearer ${token}` } });

  beforeAll(async () => {
    failing = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(503).end('busy'));
    });
    failingPort = await listenOnFreePort(failing);
    writeProfile('SITE-A');
    writeConfig();
    writeFileSync(join(tmp.path, 'secret'), 'reload-test-secret-0123456789abcdef');
    // The log level comes from the file here: the environment would override it.
    service = await startServiceProcess(['--config', config, '--data-dir', join(tmp.path, 'data'), '--secret-file', join(tmp.path, 'secret')], { DEID_LOG_LEVEL: '' });
  }, 60_000);

  afterAll(async () => {
    expect(await service?.stop()).toBe(0);
    failing?.close();
    tmp.cleanup();
  });

  it('should take a changed profile while storescu streams, dropping neither the association nor an object, each object under one profile', async () => {
    const files = writeStudy(join(tmp.path, 'stream'), { patientName: 'RELOAD^RHEA', patientId: 'RL-1', studyUid: '1.2.826.0.1.3680043.10.1138.66.1', sources: [{ file: 'pydicom/CT_small.dcm', series: 1, copies: 150 }] });
    const sender = spawnStorescu({ port: service.dimsePort, files: files.map((f) => f.path), timeoutMs: 120_000 });
    await waitFor(() => storeResponses(sender.output()).length >= 30, 60_000, 'the first 30 acknowledgements');
    writeProfile('SITE-B');
    const ackedBeforeSignal = storeResponses(sender.output()).length;
    const logged = await hup();
    const ackedAtReload = storeResponses(sender.output()).length;
    expect(logged).toMatch(/configuration reloaded/);
    const r = await sender.result;
    expect(r.code).toBe(0);
    // One association from the first object to the last, every object answered Success.
    expect((r.output.match(/Association Accepted/g) ?? []).length).toBe(1);
    expect(storeResponses(r.output)).toEqual(files.map(() => 'Success'));

    const outputs = await waitFor(() => {
      const found = filesUnder(exportA, '.dcm');
      return found.length === files.length ? found : undefined;
    }, 90_000, 'every object exported');
    const sites = outputs.map((f) => rawString(findElement(readDicom(readFileSync(f)).dataset, INSTITUTION)?.value).trim());
    const a = sites.filter((s) => s === 'SITE-A').length;
    const b = sites.filter((s) => s === 'SITE-B').length;
    expect(a + b).toBe(files.length);
    // Acknowledged before the signal: the old profile; after the reload was logged: the new one.
    expect(a).toBeGreaterThanOrEqual(ackedBeforeSignal);
    expect(a).toBeLessThanOrEqual(ackedAtReload + 1);
    expect(b).toBeGreaterThan(0);
    // No object was caught between two profiles (the quality check would have quarantined it).
    const q = (await (await api('/api/quarantine')).json()) as { entries: unknown[] };
    expect(q.entries).toEqual([]);
  }, 180_000);

  it('should refuse a reload that does not validate, log why, and keep the running configuration', async () => {
    writeFileSync(profile, 'name: site\nextends: basic\nrules:\n  - { select: InstitutionName, action: { bogus: 1 } }\n');
    expect(await hup()).toMatch(/"code":"DEID_ERR_PROFILE_INVALID".*reload refused: the running configuration stays/);
    writeFileSync(config, 'http: { prot: 1 }\n');
    expect(await hup()).toMatch(/"code":"DEID_ERR_CONFIG","detail":"[^"]*deid\.yaml: http\.prot: unknown setting".*reload refused/);
    // Still running, still SITE-B.
    const one = writeStudy(join(tmp.path, 'after-refusal'), { patientName: 'RELOAD^RHEA', patientId: 'RL-1', studyUid: '1.2.826.0.1.3680043.10.1138.66.2', sources: [{ file: 'pydicom/CT_small.dcm', series: 1 }] });
    const before = filesUnder(exportA, '.dcm').length;
    expect(storeResponses((await runStorescu({ port: service.dimsePort, files: [one[0].path] })).output)).toEqual(['Success']);
    const fresh = await waitFor(() => {
      const all = filesUnder(exportA, '.dcm');
      return all.length > before ? all : undefined;
    }, 20_000, 'the object exported');
    const sites = new Set(fresh.map((f) => rawString(findElement(readDicom(readFileSync(f)).dataset, INSTITUTION)?.value).trim()));
    expect(sites).toEqual(new Set(['SITE-A', 'SITE-B']));
    expect((await api('/api/status')).status).toBe(200);
  }, 60_000);

  it('should reload tokens, destinations, log level and limits, and name the settings that wait for a restart', async () => {
    writeProfile('SITE-B');
    writeConfig({ admin: ADMIN2, level: 'debug', destinations: [exportA, exportB], extra: ['dimse: { maxPduLength: 65536 }', 'maxObjectBytes: 20000'] });
    const logged = await hup();
    expect(logged).toMatch(/configuration reloaded/);
    expect(logged).toMatch(/"settings":\["dimse\.maxPduLength"\].*take effect only after a restart/);
    expect((await api('/api/status')).status).toBe(401);
    expect((await api('/api/status', ADMIN2)).status).toBe(200);

    const mr = writeStudy(join(tmp.path, 'two-destinations'), { patientName: 'RELOAD^RHEA', patientId: 'RL-1', studyUid: '1.2.826.0.1.3680043.10.1138.66.3', sources: [{ file: 'pydicom/MR_small.dcm', series: 1 }] });
    expect(storeResponses((await runStorescu({ port: service.dimsePort, files: [mr[0].path] })).output)).toEqual(['Success']);
    await waitFor(() => filesUnder(exportB, '.dcm').length === 1, 20_000, 'the new destination');
    // debug: the SCP's per-object line now shows.
    await waitFor(() => service.logs().includes('"msg":"C-STORE stored"'), 10_000, 'a debug line');
    // The new limit: CT_small (39 kB) is now too large.
    const ct = await runStorescu({ port: service.dimsePort, files: [corpusFile('pydicom/CT_small.dcm')] });
    expect(storeResponses(ct.output)).toEqual([expect.stringMatching(/OutOfResources/)]);
  }, 60_000);

  it('should take the free-space reserve on reload: below it ingest refuses with A700 or 503 and /readyz says not ready', async () => {
    writeConfig({ admin: ADMIN2, extra: ['minFreeSpace: "100%"'] });
    expect(await hup()).toMatch(/configuration reloaded/);
    expect((await fetch(`${service.url}/readyz`)).status).toBe(503);
    const mr = corpusFile('pydicom/MR_small.dcm');
    expect(storeResponses((await runStorescu({ port: service.dimsePort, files: [mr] })).output)).toEqual([expect.stringMatching(/OutOfResources/)]);
    const boundary = 'reserve-7a1';
    const stow = await fetch(`${service.url}/dicomweb/studies`, {
      method: 'POST',
      headers: { 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}` },
      body: Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), readFileSync(mr), Buffer.from(`\r\n--${boundary}--\r\n`)]),
    });
    expect(stow.status).toBe(503);
    expect(Number(stow.headers.get('retry-after'))).toBeGreaterThan(0);
    writeConfig({ admin: ADMIN2 });
    expect(await hup()).toMatch(/configuration reloaded/);
    expect((await fetch(`${service.url}/readyz`)).status).toBe(200);
  }, 60_000);

  it('should name the destination and the cause in its retry and quarantine logs, never its credentials', async () => {
    writeConfig({ admin: ADMIN2, destinations: [`http://archive:pw-in-url-9f2@127.0.0.1:${failingPort}/dicomweb`] });
    expect(await hup()).toMatch(/configuration reloaded/);
    const one = writeStudy(join(tmp.path, 'failing'), { patientName: 'RELOAD^RHEA', patientId: 'RL-1', studyUid: '1.2.826.0.1.3680043.10.1138.66.4', sources: [{ file: 'pydicom/MR_small.dcm', series: 1 }] });
    expect(storeResponses((await runStorescu({ port: service.dimsePort, files: [one[0].path] })).output)).toEqual(['Success']);
    const where = `stow:http://127.0.0.1:${failingPort}/dicomweb: STOW-RS HTTP 503`;
    await waitFor(() => service.logs().split('\n').some((l) => l.includes('"msg":"object quarantined"') && l.includes(where)), 20_000, 'the quarantine log');
    const retry = service.logs().split('\n').find((l) => l.includes('"msg":"stage failed; retrying"'));
    expect(retry).toContain(where);
    expect(retry).toContain('"code":"DEID_ERR_EXPORT_FAILED"');
    expect(service.logs()).not.toContain('pw-in-url-9f2');
    for (const phi of ['RELOAD', 'RHEA', 'RL-1']) expect(service.logs()).not.toContain(phi);
  }, 60_000);
});
