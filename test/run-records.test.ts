import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Dataset } from '../src/dicom/element.js';
import { readDicom } from '../src/dicom/reader.js';
import { isPrivateCreatorTag, isPrivateTag, makeTag, tagGroup, tagElement, TAG } from '../src/dicom/tag.js';
import { rawString } from '../src/dicom/values.js';
import { IdMap, loadReidKey, type MapRow } from '../src/idmap/index.js';
import { remapUid } from '../src/keyed.js';
import { loadProfile } from '../src/profiles/profile.js';
import { MANIFEST_COLUMNS } from '../src/report/manifest.js';
import type { SubmissionReportJson } from '../src/report/submission.js';
import { CLI, corpusFile, dcmdump, tempDir } from './helpers/corpus.js';
import { baseDataset, el, makeBytes } from './helpers/dicom-builder.js';
import { openInBrowser } from './helpers/browser.js';
import { writeStudy, type StudyFile } from './helpers/study.js';

const SECRET = 'run-records-secret-0123456789abcdef';

function deid(args: string[], env: Record<string, string> = {}) {
  const e: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete e.DEID_REID_KEY;
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: e, maxBuffer: 1 << 26 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The rows of a CSV as RFC 4180 writes them (quoted fields with doubled quotes). */
function readCsv(path: string): string[][] {
  const text = readFileSync(path, 'utf8');
  expect(text.endsWith('\r\n')).toBe(true);
  const rows: string[][] = [];
  for (const line of text.split('\r\n').slice(0, -1)) {
    const fields: string[] = [];
    for (const m of line.matchAll(/(?:^|,)(?:"((?:[^"]|"")*)"|([^,]*))/g)) fields.push(m[1] !== undefined ? m[1].replace(/""/g, '"') : m[2]);
    rows.push(fields);
  }
  return rows;
}

/** The manifest's rows as objects, checked against the header. */
function manifestOf(path: string): Array<Record<(typeof MANIFEST_COLUMNS)[number], string>> {
  const [header, ...rows] = readCsv(path);
  expect(header).toEqual([...MANIFEST_COLUMNS]);
  return rows.map((r) => Object.fromEntries(MANIFEST_COLUMNS.map((c, i) => [c, r[i]])) as Record<(typeof MANIFEST_COLUMNS)[number], string>);
}

async function rowsOf(map: IdMap): Promise<MapRow[]> {
  const out: MapRow[] = [];
  for await (const r of map.rows()) out.push(r);
  return out;
}

/** dcmdump's values of a file's top-level elements, by tag: an independent reading of what was written. */
function dumped(path: string): (tag: string) => string {
  const lines = dcmdump(path)!.split('\n');
  return (tag) => /\[([^\]]*)\]/.exec(lines.find((l) => l.startsWith(tag))!)![1].replace(/\0/g, '');
}

const sha256 = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

describe('deid run --id-map and --manifest', () => {
  const tmp = tempDir('deid-run-map-');
  const secretFile = join(tmp.path, 'secret');
  const keyFile = join(tmp.path, 'keys', 'reid-key');
  const mapDir = join(tmp.path, 'map');
  let files: StudyFile[];
  let run: ReturnType<typeof deid>;
  afterAll(tmp.cleanup);

  beforeAll(() => {
    writeFileSync(secretFile, SECRET);
    // 140 objects of two patients: enough for a worker thread next to the main thread (--jobs 2), each writing its own segment.
    files = [
      ...writeStudy(join(tmp.path, 'in', 'a'), { patientName: 'DOE^JANE', patientId: 'MRN-7001', studyUid: '1.2.826.0.1.3680043.10.1138.9101', sources: [{ file: 'pydicom/CT_small.dcm', series: 1, copies: 50 }, { file: 'pydicom/MR_small.dcm', series: 2, copies: 20 }] }),
      ...writeStudy(join(tmp.path, 'in', 'b'), { patientName: 'ROE^RICHARD', patientId: 'MRN-7002', studyUid: '1.2.826.0.1.3680043.10.1138.9102', sources: [{ file: 'pydicom/CT_small.dcm', series: 1, copies: 50 }, { file: 'pydicom/MR_small.dcm', series: 2, copies: 20 }] }),
    ];
    writeFileSync(join(tmp.path, 'in', 'not-dicom.dcm'), 'this is not DICOM at all, just text that is long enough to be read as a file');
    run = deid(['run', join(tmp.path, 'in'), '--out', join(tmp.path, 'out'), '--quarantine', join(tmp.path, 'q'), '--secret-file', secretFile, '--profile', 'research',
      '--id-map', mapDir, '--reid-key', keyFile, '--manifest', join(tmp.path, 'manifest.csv'), '--jobs', '2']);
  });

  it('should record every written object once, and re-identify each by its new UIDs and its original', async () => {
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toContain(`generated a new re-identification key at ${keyFile}`);
    expect(run.stdout).toContain(`id map:     ${mapDir} (140 object(s) recorded)`);
    expect(statMode(keyFile)).toBe(0o600);
    // Two threads processed the files; the main thread recorded every row, into one segment.
    expect(readdirSync(join(mapDir, 'segments')).filter((n) => n.endsWith('.seg')).length).toBe(1);
    const map = await IdMap.open(mapDir, { key: loadReidKey({ file: keyFile }), actor: 'test' });
    try {
      const rows = await rowsOf(map);
      expect(rows).toHaveLength(140);
      expect(new Set(rows.map((r) => r.original.SOPInstanceUID))).toEqual(new Set(files.map((f) => f.sopInstanceUid)));
      const key = Buffer.from(SECRET);
      for (const f of files) {
        const newSop = remapUid(key, f.sopInstanceUid);
        expect(await map.lookupNew(newSop)).toEqual([{ field: 'SOPInstanceUID', value: f.sopInstanceUid, objects: 1 }]);
        expect(await map.lookupOriginal(f.sopInstanceUid)).toEqual([{ field: 'SOPInstanceUID', value: newSop, objects: 1 }]);
      }
      // A patient, by the pseudonym the output carries, with the accession number and the date offset.
      const out = manifestOf(join(tmp.path, 'manifest.csv')).find((r) => r.source_path === files[0].path)!;
      const newPatientId = dumped(out.output_path)('(0010,0020)');
      const patient = await map.lookupNew(newPatientId);
      expect(patient).toEqual([{ field: 'PatientID', value: 'MRN-7001', objects: 70, dateOffsetDays: expect.any(Number) }]);
      const row = rows.find((r) => r.original.SOPInstanceUID === files[0].sopInstanceUid)!;
      expect(row.original).toMatchObject({ PatientName: 'DOE^JANE', AccessionNumber: 'ACCMRN-7001', StudyInstanceUID: '1.2.826.0.1.3680043.10.1138.9101' });
      expect(row.new.StudyInstanceUID).toBe(out.study_instance_uid);
    } finally {
      await map.close();
    }
    // The command-line lookup gives the same answer.
    const r = deid(['reid', '--id-map', mapDir, '--reid-key', keyFile, remapUid(Buffer.from(SECRET), files[7].sopInstanceUid)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`SOPInstanceUID\t${files[7].sopInstanceUid}\n`);
  });

  it('should keep one row per object when the same files are run again', async () => {
    const again = deid(['run', join(tmp.path, 'in', 'a'), '--out', join(tmp.path, 'out'), '--quarantine', join(tmp.path, 'q'), '--secret-file', secretFile, '--profile', 'research', '--id-map', mapDir, '--reid-key', keyFile]);
    expect(again.code, again.stderr).toBe(0);
    const map = await IdMap.open(mapDir, { key: loadReidKey({ file: keyFile }), actor: 'test' });
    try {
      expect(await rowsOf(map)).toHaveLength(140);
    } finally {
      await map.close();
    }
  });

  it('should write one manifest row per input file that matches the run\'s outputs and quarantine', () => {
    const rows = manifestOf(join(tmp.path, 'manifest.csv'));
    expect(rows).toHaveLength(files.length + 1);
    expect(new Set(rows.map((r) => r.source_path)).size).toBe(rows.length);
    const bad = rows.find((r) => r.source_path.endsWith('not-dicom.dcm'))!;
    expect(bad).toMatchObject({ outcome: 'quarantined', code: 'DEID_ERR_NOT_DICOM', output_path: '', sop_instance_uid: '' });
    expect(bad.source_sha256).toBe(sha256(bad.source_path));
    const reason = JSON.parse(readFileSync(join(tmp.path, 'q', `${bad.source_sha256.slice(0, 32)}.reason.json`), 'utf8')) as { code: string };
    expect(reason.code).toBe('DEID_ERR_NOT_DICOM');
    const outputs = new Set<string>();
    for (const [i, f] of files.entries()) {
      const r = rows.find((x) => x.source_path === f.path)!;
      expect(r.outcome).toBe('written');
      expect(r.code).toBe('');
      expect(r.source_sha256).toBe(sha256(f.path));
      // The output is where the manifest says, and carries the UIDs it names (read by dcmdump for every seventh).
      const ds = readDicom(readFileSync(r.output_path)).dataset;
      const uid = (tag: number) => rawString(ds.find((e) => e.tag === tag)?.value);
      expect([uid(TAG.StudyInstanceUID), uid(TAG.SeriesInstanceUID), uid(TAG.SOPInstanceUID)]).toEqual([r.study_instance_uid, r.series_instance_uid, r.sop_instance_uid]);
      if (i % 7 === 0) {
        const value = dumped(r.output_path);
        expect([value('(0020,000d)'), value('(0020,000e)'), value('(0008,0018)')]).toEqual([r.study_instance_uid, r.series_instance_uid, r.sop_instance_uid]);
      }
      expect(r.sop_instance_uid).toBe(remapUid(Buffer.from(SECRET), f.sopInstanceUid));
      outputs.add(r.output_path);
    }
    expect(outputs.size).toBe(files.length);
    // Nothing but what the manifest lists was written.
    const written = readdirSync(join(tmp.path, 'out'), { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name));
    expect(new Set(written)).toEqual(outputs);
  });

  it('should refuse a key that is not the map\'s before touching any file', () => {
    const wrong = join(tmp.path, 'keys', 'wrong');
    writeFileSync(wrong, 'c3'.repeat(32), { mode: 0o600 });
    const out = join(tmp.path, 'out-wrong');
    const r = deid(['run', join(tmp.path, 'in', 'a'), '--out', out, '--quarantine', join(tmp.path, 'q-wrong'), '--secret-file', secretFile, '--id-map', mapDir, '--reid-key', wrong, '--manifest', join(tmp.path, 'wrong.csv')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('DEID_ERR_REID_KEY_MISMATCH');
    expect(existsSync(out)).toBe(false);
    expect(existsSync(join(tmp.path, 'wrong.csv'))).toBe(false);
  });
});

const statMode = (p: string): number => statSync(p).mode & 0o777;

/** Every element of a data set at every depth, private creators aside, as (tag, creator) with its count per object. */
function countElements(ds: Dataset, into: Map<string, number>): void {
  const creators = new Map<number, string>();
  for (const e of ds) if (isPrivateCreatorTag(e.tag)) creators.set(makeTag(tagGroup(e.tag), tagElement(e.tag)), rawString(e.value).trim());
  for (const e of ds) {
    if (isPrivateCreatorTag(e.tag)) continue;
    const creator = isPrivateTag(e.tag) ? creators.get(makeTag(tagGroup(e.tag), (tagElement(e.tag) >>> 8) & 0xff)) : undefined;
    const key = `${e.tag}|${creator ?? ''}`;
    into.set(key, (into.get(key) ?? 0) + 1);
    for (const item of e.items ?? []) countElements(item.elements, into);
  }
}

describe('deid run --report on the corpus', () => {
  const tmp = tempDir('deid-run-report-');
  let report: SubmissionReportJson;
  let manifest: ReturnType<typeof manifestOf>;
  afterAll(tmp.cleanup);

  beforeAll(() => {
    writeFileSync(join(tmp.path, 'secret'), SECRET);
    const r = deid(['run', corpusFile('pydicom'), corpusFile('tcia-burned-in'), '--out', join(tmp.path, 'out'), '--quarantine', join(tmp.path, 'q'), '--secret-file', join(tmp.path, 'secret'),
      '--profile', 'research', '--report', join(tmp.path, 'report.html'), '--manifest', join(tmp.path, 'manifest.csv'), '--jobs', '2', '--json']);
    expect(r.code, r.stderr).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ report: join(tmp.path, 'report.html'), reportJson: join(tmp.path, 'report.json') });
    report = JSON.parse(readFileSync(join(tmp.path, 'report.json'), 'utf8')) as SubmissionReportJson;
    manifest = manifestOf(join(tmp.path, 'manifest.csv'));
  });

  it('should count in its inventory exactly the elements of the objects it wrote, at every depth', () => {
    const written = manifest.filter((r) => r.outcome === 'written');
    expect(written.length).toBeGreaterThan(150);
    expect(report.outcomes).toEqual({ written: written.length, quarantined: manifest.length - written.length, unreadable: 0 });
    expect(report.inventory.objects).toBe(written.length);
    const occurrences = new Map<string, number>();
    const objects = new Map<string, number>();
    for (const r of written) {
      const mine = new Map<string, number>();
      countElements(readDicom(readFileSync(r.source_path)).dataset, mine);
      for (const [k, n] of mine) {
        occurrences.set(k, (occurrences.get(k) ?? 0) + n);
        objects.set(k, (objects.get(k) ?? 0) + 1);
      }
    }
    const inventoried = new Map(report.inventory.attributes.map((a) => [`${parseInt(a.tag.slice(1, 5) + a.tag.slice(6, 10), 16)}|${a.creator ?? ''}`, a]));
    expect(new Set(inventoried.keys())).toEqual(new Set(occurrences.keys()));
    for (const [k, n] of occurrences) {
      expect(inventoried.get(k)!.occurrences, k).toBe(n);
      expect(inventoried.get(k)!.objects, k).toBe(objects.get(k));
    }
    // The actions chart adds up to every occurrence; the modalities to every written object.
    expect(Object.values(report.actions).reduce((a, b) => a + b, 0)).toBe([...occurrences.values()].reduce((a, b) => a + b, 0));
    expect(Object.values(report.modalities).reduce((a, b) => a + b, 0)).toBe(written.length);
    const pn = report.inventory.attributes.find((a) => a.attribute === 'PatientName')!;
    expect(pn.dispositions).toEqual({ replaced: pn.occurrences });
  });

  it('should list the private creators with their disposition and the quarantine reasons with their counts', () => {
    const codes = new Map<string, number>();
    for (const r of manifest) if (r.outcome !== 'written') codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
    expect(new Map(report.quarantine.reasons.map((q) => [q.code, q.objects]))).toEqual(codes);
    expect(report.quarantine.objects.map((o) => o.id).sort()).toEqual(manifest.filter((r) => r.outcome !== 'written').map((r) => r.source_sha256.slice(0, 32)).sort());
    const creators = report.inventory.privateCreators;
    expect(creators.length).toBeGreaterThan(5);
    expect(creators.some((c) => c.dispositions['kept (E.3.10-1)'] || c.dispositions['kept (TCIA knowledge base)'])).toBe(true);
    expect(creators.some((c) => c.verdict === 'removed')).toBe(true);
    // No pixel stage in research without clean-pixel-data.
    expect(report.pixels).toMatchObject({ ran: false, examined: 0, images: [] });
    expect(report.profile?.name).toBe('research');
  });

  it('should warn of no attribute for research: what its options retain is what the options are for (a rule keeping against Table E.1-1 is warned of, report-builders.test.ts)', () => {
    expect(report.warnings).toEqual([]);
  });

  it('should be one self-contained page that a browser shows with its three charts, fetching nothing', async () => {
    const page = await openInBrowser(join(tmp.path, 'report.html'));
    try {
      expect(page.requests).toEqual([page.url]);
      // Run in the page (a string: the tests are type-checked without the DOM's types).
      const charts = (await page.evaluate(`[...document.querySelectorAll('svg.chart')].map((svg) => ({
        title: svg.getAttribute('aria-label'),
        bars: [...svg.querySelectorAll('g.bar title')].map((t) => t.textContent),
        width: svg.getBoundingClientRect().width,
      }))`)) as Array<{ title: string; bars: string[]; width: number }>;
      expect(charts.map((c) => c.title)).toEqual(['Actions on elements', 'Modalities (written objects)', 'Outcomes']);
      expect(charts.every((c) => c.width > 100)).toBe(true);
      const fmt = (n: number) => n.toLocaleString('en-US');
      expect(charts[0].bars).toEqual(Object.entries(report.actions).map(([k, v]) => `${k}: ${fmt(v)}`));
      expect(charts[1].bars).toEqual(Object.entries(report.modalities).map(([k, v]) => `${k}: ${fmt(v)}`));
      expect(charts[2].bars).toEqual(Object.entries(report.outcomes).map(([k, v]) => `${k}: ${fmt(v)}`));
      const text = (await page.evaluate('document.body.innerText')) as string;
      expect(text).toContain(`k = ${report.kAnonymity.k}`);
      expect(text).toContain('Tag inventory');
      // The report names no patient: none of the corpus's patient names (whole, as stored) is on the page.
      const names = new Set<string>();
      for (const r of manifest.filter((m) => m.outcome === 'written')) {
        const pn = rawString(readDicom(readFileSync(r.source_path)).dataset.find((e) => e.tag === TAG.PatientName)?.value).trim();
        if (pn.includes('^')) names.add(pn);
      }
      expect(names.size).toBeGreaterThan(3);
      for (const n of names) expect(text, n).not.toContain(n);
    } finally {
      await page.close();
    }
  }, 60_000);
});

describe('k-anonymity in the report of a built batch', () => {
  const tmp = tempDir('deid-run-k-');
  afterAll(tmp.cleanup);

  /** One object of a subject with the quasi-identifiers given. */
  const object = (n: number, subject: string, age: string, sex: string, studyDate: string, weight = '70') =>
    makeBytes(
      baseDataset(
        [el('PatientID', 'LO', subject), el('PatientName', 'PN', `SUBJECT^${subject}`), el('PatientAge', 'AS', age), el('PatientSex', 'CS', sex), el('PatientSize', 'DS', '1.70'), el('PatientWeight', 'DS', weight), el('StudyDate', 'DA', studyDate)],
        n,
      ),
    );

  it('should show the smallest group k over the kept quasi-identifiers, the groups below the threshold by their values, and Safe Harbor ages', () => {
    // Research top-codes ages over 89 by default (Safe Harbor).
    expect(loadProfile('research').generalize).toMatchObject({ ageOver89: true });
    const batch: Array<[string, string, string, string, number?]> = [
      ['A', '045Y', 'F', '20200615'], ['A', '045Y', 'F', '20200615'], ['B', '045Y', 'F', '20200301'], ['C', '045Y', 'F', '20201201'],
      ['D', '045Y', 'F', '20210615'],
      ['E', '095Y', 'M', '20200615'], ['F', '092Y', 'M', '20200615'],
      ['G', '030Y', 'M', '20200615'], ['G', '030Y', 'M', '20200615'], ['G', '030Y', 'M', '20200615'],
    ];
    mkdirSync(join(tmp.path, 'in'));
    batch.forEach(([s, age, sex, date], i) => writeFileSync(join(tmp.path, 'in', `${i}.dcm`), object(i + 1, s, age, sex, date)));
    // Dates move by one day for everyone, so that the study year is the one written above.
    writeFileSync(join(tmp.path, 'k.yaml'), 'name: k-test\nextends: research\ndateShift: { minDays: -1, maxDays: -1 }\n');
    writeFileSync(join(tmp.path, 'secret'), SECRET);
    const r = deid(['run', join(tmp.path, 'in'), '--out', join(tmp.path, 'out'), '--quarantine', join(tmp.path, 'q'), '--secret-file', join(tmp.path, 'secret'),
      '--profile', join(tmp.path, 'k.yaml'), '--report', join(tmp.path, 'k.html'), '--k-threshold', '3']);
    expect(r.code, r.stderr).toBe(0);
    const k = (JSON.parse(readFileSync(join(tmp.path, 'k.json'), 'utf8')) as SubmissionReportJson).kAnonymity;
    expect(k).toMatchObject({ objects: 10, subjects: 7, groups: 4, k: 1, threshold: 3, subjectsBelowThreshold: 4 });
    const group = (age: string, sex: string, year: string) => ({ age, sex, size: '1.7', weight: '70', ethnicGroup: null, studyYear: year });
    expect(k.belowThreshold).toEqual([
      { values: group('030Y', 'M', '2020'), subjects: 1, objects: 3 },
      { values: group('045Y', 'F', '2021'), subjects: 1, objects: 1 },
      { values: group('090Y', 'M', '2020'), subjects: 2, objects: 2 },
    ]);
    const html = readFileSync(join(tmp.path, 'k.html'), 'utf8');
    expect(html).toContain('<b>k = 1</b>');
    expect(html).toContain('090Y');
    expect(html).not.toMatch(/09[25]Y/);
    // The threshold is the command's: at 1, no group is below it.
    const r1 = deid(['run', join(tmp.path, 'in'), '--out', join(tmp.path, 'out'), '--quarantine', join(tmp.path, 'q'), '--secret-file', join(tmp.path, 'secret'),
      '--profile', join(tmp.path, 'k.yaml'), '--report', join(tmp.path, 'k1.html'), '--k-threshold', '1']);
    expect(r1.code, r1.stderr).toBe(0);
    expect((JSON.parse(readFileSync(join(tmp.path, 'k1.json'), 'utf8')) as SubmissionReportJson).kAnonymity.belowThreshold).toEqual([]);
    // basic keeps none of them, and empties PatientID: subjects are still told apart (by a keyed hash), and all share one group.
    const b = deid(['run', join(tmp.path, 'in'), '--out', join(tmp.path, 'out-basic'), '--quarantine', join(tmp.path, 'q'), '--secret-file', join(tmp.path, 'secret'), '--report', join(tmp.path, 'basic.html')]);
    expect(b.code, b.stderr).toBe(0);
    const kb = (JSON.parse(readFileSync(join(tmp.path, 'basic.json'), 'utf8')) as SubmissionReportJson).kAnonymity;
    expect(kb).toMatchObject({ objects: 10, subjects: 7, groups: 1, k: 7, belowThreshold: [] });
  });
});

describe('pixel outcomes in the report', () => {
  const tmp = tempDir('deid-run-pixels-');
  afterAll(tmp.cleanup);

  it('should list each image with what the pixel stage did: examined, and masked or left as it was', () => {
    mkdirSync(join(tmp.path, 'in'));
    for (const f of ['deid-data/ultrasounds/GREYSCALE_IMAGE.dcm', 'pydicom/CT_small.dcm']) writeFileSync(join(tmp.path, 'in', f.split('/').pop()!), readFileSync(corpusFile(f)));
    writeFileSync(join(tmp.path, 'secret'), SECRET);
    const r = deid(['run', join(tmp.path, 'in'), '--out', join(tmp.path, 'out'), '--quarantine', join(tmp.path, 'q'), '--secret-file', join(tmp.path, 'secret'),
      '--option', 'clean-pixel-data', '--report', join(tmp.path, 'px.html'), '--manifest', join(tmp.path, 'px.csv')]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(tmp.path, 'px.json'), 'utf8')) as SubmissionReportJson;
    const rows = manifestOf(join(tmp.path, 'px.csv'));
    const sopOf = (name: string) => rows.find((x) => x.source_path.endsWith(name))!.sop_instance_uid;
    // Every image is examined (scope: all, the default); the text-free CT is left as it was.
    expect(report.pixels).toMatchObject({ ran: true, examined: 2, masked: 1, skipped: 0, imagesNotListed: 0 });
    const us = report.pixels.images.find((i) => i.sopInstanceUid === sopOf('GREYSCALE_IMAGE.dcm'))!;
    expect(us).toMatchObject({ examined: true, masked: true, verified: true });
    expect(us.boxes).toBeGreaterThan(0);
    expect(us.pixelsMasked).toBeGreaterThan(0);
    const ct = report.pixels.images.find((i) => i.sopInstanceUid === sopOf('CT_small.dcm'))!;
    expect(ct).toMatchObject({ examined: true, masked: false, boxes: 0 });
    const html = readFileSync(join(tmp.path, 'px.html'), 'utf8');
    expect(html).toContain('2 image(s) examined, 1 masked');
    expect(html).toContain(us.sopInstanceUid);
  }, 120_000);
});
