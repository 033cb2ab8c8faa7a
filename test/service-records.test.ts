import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDicom } from '../src/dicom/reader.js';
import { TAG } from '../src/dicom/tag.js';
import { rawString } from '../src/dicom/values.js';
import { IdMap, loadReidKey } from '../src/idmap/index.js';
import { remapUid, studyKey } from '../src/keyed.js';
import { MANIFEST_COLUMNS } from '../src/report/manifest.js';
import type { SubmissionReportJson } from '../src/report/submission.js';
import { CLI, tempDir } from './helpers/corpus.js';
import { runStorescu, storeResponses } from './helpers/dcmtk.js';
import { baseDataset, el, makeBytes } from './helpers/dicom-builder.js';
import { waitFor } from './helpers/ports.js';
import { startServiceProcess, type ServiceProcess } from './helpers/service.js';
import { writeStudy, type StudyFile } from './helpers/study.js';

const SECRET = 'service-records-secret-0123456789ab';
const ADMIN = 'records-admin-token-0123';
const STUDY_A = '1.2.826.0.1.3680043.10.1138.8801';
const STUDY_B = '1.2.826.0.1.3680043.10.1138.8802';

/** The service keeps a record of every object: per-study manifests, study and day reports, and the map. */
describe('the service\'s manifests, reports and re-identification map', () => {
  const tmp = tempDir('deid-svc-records-');
  const keyFile = join(tmp.path, 'keys', 'reid-key');
  const data = join(tmp.path, 'data');
  let service: ServiceProcess;
  let a: StudyFile[];
  let b: StudyFile[];
  let burned: string;
  const api = async (path: string) => fetch(`${service.url}${path}`, { headers: { authorization: `Bearer ${ADMIN}` } });
  const key = Buffer.from(SECRET);

  beforeAll(async () => {
    writeFileSync(join(tmp.path, 'secret'), SECRET);
    writeFileSync(join(tmp.path, 'deid.yaml'), [`auth: { adminToken: ${ADMIN} }`, 'idMap: { enabled: true, keyFile: keys/reid-key }', 'reports: { enabled: true, kThreshold: 3 }', 'studies: { quietSeconds: 0 }', 'cleanPixelData: false', ''].join('\n'));
    service = await startServiceProcess(['--config', join(tmp.path, 'deid.yaml'), '--data-dir', data, '--secret-file', join(tmp.path, 'secret'), '--profile', 'research']);
    a = writeStudy(join(tmp.path, 'a'), { patientName: 'MANIFEST^MARY', patientId: 'MM-1', studyUid: STUDY_A, sources: [{ file: 'pydicom/CT_small.dcm', series: 1, copies: 12 }, { file: 'pydicom/MR_small.dcm', series: 2, copies: 4 }] });
    b = writeStudy(join(tmp.path, 'b'), { patientName: 'MANIFEST^MARK', patientId: 'MM-2', studyUid: STUDY_B, sources: [{ file: 'pydicom/CT_small.dcm', series: 1, copies: 5 }] });
    // An image that says it has burned-in text: research does not clean pixels, so the header stage quarantines it.
    burned = join(tmp.path, 'burned.dcm');
    writeFileSync(burned, makeBytes(baseDataset([el('StudyInstanceUID', 'UI', STUDY_A), el('BurnedInAnnotation', 'CS', 'YES'), el('PatientID', 'LO', 'MM-1')], 77)));
    const sent = await runStorescu({ port: service.dimsePort, files: [...a, ...b].map((f) => f.path).concat(burned) });
    expect(storeResponses(sent.output)).toEqual(Array(22).fill('Success'));
    await waitFor(async () => {
      const { studies } = (await (await api('/api/studies')).json()) as { studies: Array<{ received: number; exported: number; quarantined: number }> };
      return studies.length === 2 && studies.every((s) => s.exported + s.quarantined === s.received);
    }, 60_000, 'both studies through the pipeline');
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
    tmp.cleanup();
  });

  it('should give a study\'s manifest: one row per object, with the hash of what was received, its outcome and its new UIDs as exported', async () => {
    const res = await api(`/api/studies/${studyKey(key, STUDY_A)}/manifest`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    const [header, ...rows] = (await res.text()).split('\r\n').filter(Boolean).map((l) => l.split(','));
    expect(header).toEqual([...MANIFEST_COLUMNS]);
    expect(rows).toHaveLength(a.length + 1);
    const records = rows.map((r) => Object.fromEntries(MANIFEST_COLUMNS.map((c, i) => [c, r[i]])) as Record<(typeof MANIFEST_COLUMNS)[number], string>);
    // The hash is of the object as received (a DIMSE sender's data set in a Part 10 file of ours), one per object.
    expect(new Set(records.map((r) => r.source_sha256)).size).toBe(records.length);
    expect(records.every((r) => /^[0-9a-f]{64}$/.test(r.source_sha256))).toBe(true);
    const exportDir = join(data, 'export');
    for (const f of a) {
      const r = records.find((x) => x.sop_instance_uid === remapUid(key, f.sopInstanceUid))!;
      expect(r).toMatchObject({ source_path: expect.stringMatching(/^dimse STORESCU from 127\.0\.0\.1:\d+$/), outcome: 'written', code: '', output_path: `folder:${exportDir}` });
      expect(r.sop_instance_uid).toBe(remapUid(key, f.sopInstanceUid));
      expect(r.series_instance_uid).toBe(remapUid(key, f.seriesInstanceUid));
      // The exported file is filed under the UIDs the manifest gives, and carries them.
      const patients = readdirSync(exportDir);
      const path = patients.map((p) => join(exportDir, p, r.study_instance_uid, r.series_instance_uid, `${r.sop_instance_uid}.dcm`)).find(existsSync)!;
      const ds = readDicom(readFileSync(path)).dataset;
      expect(rawString(ds.find((e) => e.tag === TAG.SOPInstanceUID)?.value)).toBe(r.sop_instance_uid);
    }
    const bad = records.find((r) => r.outcome === 'quarantined')!;
    expect(bad).toMatchObject({ code: 'DEID_ERR_BURNED_IN', output_path: '', sop_instance_uid: '' });
    // Its hash names its quarantine entry, whose object is the bytes hashed.
    const held = Buffer.from(await (await api(`/api/quarantine/${bad.source_sha256.slice(0, 32)}/object`)).arrayBuffer());
    expect(createHash('sha256').update(held).digest('hex')).toBe(bad.source_sha256);
    expect((await api('/api/studies/0123456789abcdef0123456789abcdef/manifest')).status).toBe(404);
    expect((await api('/api/studies/not-a-study/manifest')).status).toBe(404);
  });

  it('should report on a study and on the day, in JSON and as a page', async () => {
    const study = (await (await api(`/api/studies/${studyKey(key, STUDY_A)}/report.json`)).json()) as SubmissionReportJson;
    expect(study).toMatchObject({ objects: 17, outcomes: { written: 16, quarantined: 1, unreadable: 0 }, modalities: { CT: 12, MR: 4 }, profile: { name: 'research' } });
    expect(study.inventory.objects).toBe(16);
    expect(study.inventory.attributes.find((x) => x.attribute === 'PatientName')).toMatchObject({ objects: 16, dispositions: { replaced: 16 } });
    expect(study.quarantine.reasons).toEqual([expect.objectContaining({ code: 'DEID_ERR_BURNED_IN', stage: 'header', objects: 1 })]);
    // One subject in the study: k is 1, and its group is listed (threshold 3).
    expect(study.kAnonymity).toMatchObject({ subjects: 1, k: 1, threshold: 3 });
    const page = await api(`/api/studies/${studyKey(key, STUDY_A)}/report`);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain(`Study ${studyKey(key, STUDY_A)}`);
    expect(html.match(/<svg /g)).toHaveLength(3);
    expect(html).not.toMatch(/MANIFEST|MM-1/);
    const day = new Date().toISOString().slice(0, 10);
    const daily = (await (await api(`/api/days/${day}/report.json`)).json()) as SubmissionReportJson;
    expect(daily).toMatchObject({ objects: 22, outcomes: { written: 21, quarantined: 1 }, modalities: { CT: 17, MR: 4 } });
    expect(daily.kAnonymity.subjects).toBe(2);
    expect((await api(`/api/days/${day}/report`)).headers.get('content-type')).toMatch(/^text\/html/);
    expect((await api('/api/days/1999-01-01/report.json')).status).toBe(404);
    expect((await fetch(`${service.url}/api/days/${day}/report.json`)).status).toBe(401);
  });

  it('should record every exported object in the map, so that each re-identifies', async () => {
    // Lookups need the key and the map, and are audited; the service stays up (the file store takes readers at any time).
    const map = await IdMap.open(join(data, 'idmap'), { key: loadReidKey({ file: keyFile }), actor: 'test' });
    try {
      for (const f of [...a, ...b]) expect(await map.lookupNew(remapUid(key, f.sopInstanceUid))).toEqual([{ field: 'SOPInstanceUID', value: f.sopInstanceUid, objects: 1 }]);
      expect(await map.lookupOriginal('MM-2')).toEqual([{ field: 'PatientID', value: expect.stringMatching(/^\w+$/), objects: 5, dateOffsetDays: expect.any(Number) }]);
    } finally {
      await map.close();
    }
    const r = spawnSync(process.execPath, [CLI, 'reid', '--id-map', join(data, 'idmap'), '--reid-key', keyFile, '--original', STUDY_B], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(`StudyInstanceUID\t${remapUid(key, STUDY_B)}\n`);
    expect(service.logs()).not.toMatch(/MANIFEST|MM-[12]/);
  });
});
