import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { withElement, withElements, type Element } from '../src/dicom/element.js';
import { readDicom } from '../src/dicom/reader.js';
import { formatTag, makeTag } from '../src/dicom/tag.js';
import { TS } from '../src/dicom/transfer-syntax.js';
import { writeDicom } from '../src/dicom/writer.js';
import { processObject } from '../src/pipeline/process-object.js';
import { loadProfile, type CompiledProfile } from '../src/profiles/profile.js';
import { deidentifyHeader } from '../src/stages/header.js';
import { IdentifierMatcher, searchable } from '../src/stages/identifier-matcher.js';
import { IdentifierList, addReplacedValueOf, collectIdentifiers } from '../src/stages/identifiers.js';
import { verifyDataset, verifyOutput, type VerifyReport } from '../src/stages/verify.js';
import { CLI, corpusFile, tempDir } from './helpers/corpus.js';
import { SECRET, baseDataset, el, makeBytes, makeFile, parseCharacterSet, privateBlock, seq, tagOf, tempFolder, text, thrown } from './helpers/dicom-builder.js';

const folders: Array<{ cleanup: () => void }> = [];
afterAll(() => folders.forEach((f) => f.cleanup()));

function profileFromYaml(yaml: string): CompiledProfile {
  const f = tempFolder({ 'profile.yaml': yaml });
  folders.push(f);
  return loadProfile(f.path('profile.yaml'));
}

/** The PHI of baseDataset(); none of it may ever appear in a report or an error. */
const PHI = ['Smith', 'John', 'PID12345', '19700101'];

function expectNoPhi(value: unknown): void {
  const json = JSON.stringify(value instanceof Error ? { message: value.message, detail: (value as { detail?: string }).detail } : value);
  for (const s of PHI) expect(json.toUpperCase()).not.toContain(s.toUpperCase());
}

/** Runs the header stage and the quality check on its written output, as the pipeline does. */
function deidAndVerify(ds: readonly Element[], profile: CompiledProfile, ts: string = TS.ExplicitLE): VerifyReport {
  const header = deidentifyHeader(makeFile(ds, ts), { profile, secret: SECRET });
  return verifyOutput(writeDicom(header.file), { identifiers: header.identifiers, remappedUids: header.remappedUids, profile });
}

const GEMS = (value: string) => privateBlock(0x0043, 'GEMS_PARM_01', 0x10, [[0x27, 'SH', value]]);

describe('quality check', () => {
  it('should pass a clean output and say what it checked', () => {
    const src = baseDataset([
      el('StudyDescription', 'LO', 'CT for John Smith'),
      el('InstitutionName', 'LO', 'General Hospital'),
      seq('ReferencedImageSequence', [[el('ReferencedSOPClassUID', 'UI', '1.2.840.10008.5.1.4.1.1.2'), el('ReferencedSOPInstanceUID', 'UI', '1.2.826.0.1.3680043.2.1125.1.1.9')]]),
      GEMS('1.375:1'),
    ]);
    for (const profile of [loadProfile('basic'), loadProfile('research')]) {
      const r = processObject(makeBytes(src), { profile, secret: SECRET });
      expect(r.verify.ok).toBe(true);
      expect(r.verify.findings).toEqual([]);
      expect(r.verify.elementsScanned).toBeGreaterThan(10);
      expect(r.verify.identifiersChecked).toBeGreaterThanOrEqual(3);
      expect(r.verify.uidsChecked).toBeGreaterThanOrEqual(4);
    }
  });

  it('should find a name part left in a kept safe private element', () => {
    const profile = loadProfile('basic', ['retain-safe-private']);
    const src = baseDataset([GEMS('Smith 1.375:1')]);
    const report = deidAndVerify(src, profile);
    expect(report.ok).toBe(false);
    expect(report.findings).toContainEqual({ code: 'DEID_ERR_VERIFY_LEAK', path: '(0043,1027)', kind: 'name' });
    expectNoPhi(report);

    const e = thrown(() => processObject(makeBytes(src), { profile, secret: SECRET }));
    expect(e.code).toBe('DEID_ERR_VERIFY_LEAK');
    expect(e.message).toContain('(0043,1027)');
    expectNoPhi(e);
  });

  it('should find a name in a kept private element that an implicit VR file gives as UN', () => {
    const profile = loadProfile('basic', ['retain-safe-private']);
    const report = deidAndVerify(baseDataset([GEMS('JOHN 1.0:1')]), profile, TS.ImplicitLE);
    expect(report.findings).toContainEqual({ code: 'DEID_ERR_VERIFY_LEAK', path: '(0043,1027)', kind: 'name' });
    expectNoPhi(report);
  });

  it('should find a name in a UN element', () => {
    // (0018,9999) is in no dictionary and no rule names it, so the header stage keeps it as it is.
    const src = baseDataset([el(makeTag(0x0018, 0x9999), 'UN', 'Smith^John')]);
    const report = deidAndVerify(src, loadProfile('basic'));
    expect(report.findings.filter((f) => f.path === '(0018,9999)').map((f) => f.kind)).toContain('name');
    expectNoPhi(report);
    expect(thrown(() => processObject(makeBytes(src), { profile: loadProfile('basic'), secret: SECRET })).code).toBe('DEID_ERR_VERIFY_LEAK');
  });

  it('should find a name in a nested sequence and give its path', () => {
    const src = baseDataset([
      seq('ReferencedSeriesSequence', [[seq('PerformedProtocolCodeSequence', [[el('CodeValue', 'SH', 'P1'), el('CodeMeaning', 'LO', 'protocol for SMITH')]])]]),
    ]);
    const report = deidAndVerify(src, loadProfile('basic'));
    expect(report.findings).toEqual([{ code: 'DEID_ERR_VERIFY_LEAK', path: '(0008,1115)[0]/(0040,0260)[0]/(0008,0104)', kind: 'name' }]);
    expectNoPhi(report);

    // verifyDataset on its own, one level deeper in a second item.
    const identifiers = collectIdentifiers(src);
    const out = [seq('ReferencedSeriesSequence', [[el('CodeValue', 'SH', 'P0')], [seq('ReferencedImageSequence', [[el('CodeMeaning', 'LO', 'John')]])]])];
    const direct = verifyDataset(out, { identifiers, remappedUids: new Set(), profile: loadProfile('basic') });
    expect(direct.findings).toEqual([{ code: 'DEID_ERR_VERIFY_LEAK', path: '(0008,1115)[1]/(0008,1140)[0]/(0008,0104)', kind: 'name' }]);
  });

  it('should find other identifiers: an ID and a birth date in free text', () => {
    const identifiers = collectIdentifiers(baseDataset());
    const out = [el('StudyDescription', 'LO', 'MRN PID12345'), el('ImageComments', 'LT', 'born 01/01/1970')];
    const report = verifyDataset(out, { identifiers, remappedUids: new Set(), profile: loadProfile('basic') });
    // 01/01/1970 is both a day-first and a month-first spelling, so it may be found twice.
    const distinct = [...new Set(report.findings.map((f) => JSON.stringify(f)))].map((f) => JSON.parse(f));
    expect(distinct).toEqual([
      { code: 'DEID_ERR_VERIFY_LEAK', path: '(0008,1030)', kind: 'id' },
      { code: 'DEID_ERR_VERIFY_LEAK', path: '(0020,4000)', kind: 'date' },
    ]);
    expectNoPhi(report);
  });

  it('should find a source UID left in an element, in text, in a sequence and in the meta group', () => {
    const src = baseDataset();
    const uid = '1.2.826.0.1.3680043.2.1125.1.1.1';
    const out = [
      el('SOPInstanceUID', 'UI', '2.25.1'),
      el('ImageComments', 'LT', `derived from ${uid}`),
      seq('ReferencedImageSequence', [[el('ReferencedSOPInstanceUID', 'UI', uid)]]),
    ];
    const meta = [el('MediaStorageSOPInstanceUID', 'UI', uid)];
    const report = verifyDataset(out, { identifiers: collectIdentifiers(src), remappedUids: new Set([uid]), profile: loadProfile('basic') }, meta);
    expect(report.findings).toEqual([
      { code: 'DEID_ERR_VERIFY_UID', path: '(0002,0003)', kind: 'uid' },
      { code: 'DEID_ERR_VERIFY_UID', path: '(0020,4000)', kind: 'uid' },
      { code: 'DEID_ERR_VERIFY_UID', path: '(0008,1140)[0]/(0008,1155)', kind: 'uid' },
    ]);
    expect(JSON.stringify(report)).not.toContain(uid);
  });

  it('should stop the pipeline when cleaned text still quotes a source UID', () => {
    const src = baseDataset();
    const uid = '1.2.826.0.1.3680043.2.1125.1.1.1'; // the SOP Instance UID of baseDataset()
    const withComment = baseDataset([el('ImageComments', 'LT', `derived from ${uid}`)]);
    expect(src.length + 1).toBe(withComment.length);
    const e = thrown(() => processObject(makeBytes(withComment), { profile: loadProfile('basic', ['clean-descriptors']), secret: SECRET }));
    expect(e.code).toBe('DEID_ERR_VERIFY_UID');
    expect(e.message).not.toContain(uid);
  });

  it('should stop the pipeline with DEID_ERR_VERIFY_LEAK when a user profile keeps a description that names the patient', () => {
    const profile = profileFromYaml('name: keeps-description\nextends: basic\nrules:\n  - { select: StudyDescription, action: keep }\n');
    const src = baseDataset([el('StudyDescription', 'LO', 'CT for John Smith')]);
    const e = thrown(() => processObject(makeBytes(src), { profile, secret: SECRET }));
    expect(e.code).toBe('DEID_ERR_VERIFY_LEAK');
    expect(e.message).toContain('(0008,1030)');
    expectNoPhi(e);
    // Without the description the same profile passes.
    expect(processObject(makeBytes(baseDataset()), { profile, secret: SECRET }).verify.ok).toBe(true);
  });

  it('should not report an identifier that the profile deliberately keeps', () => {
    const profile = profileFromYaml('name: keeps-name\nextends: basic\nrules:\n  - { select: PatientName, action: keep }\n');
    const r = processObject(makeBytes(baseDataset()), { profile, secret: SECRET });
    expect(r.verify.ok).toBe(true);
  });

  it('should not report a removed time that an element the profile keeps holds as its own value, but report it anywhere else', () => {
    // CTP scripts keep ContentTime and remove InstanceCreationTime; the two are often the same instant.
    const profile = profileFromYaml('name: keeps-time\nextends: basic\nrules:\n  - { select: ContentTime, action: keep }\n  - { select: ImageComments, action: keep }\n');
    const same = [el('InstanceCreationTime', 'TM', '160527'), el('ContentTime', 'TM', '160527.250')];
    expect(processObject(makeBytes(baseDataset(same)), { profile, secret: SECRET }).verify.findings).toEqual([]);
    const quoted = processObject.bind(null, makeBytes(baseDataset([...same, el('ImageComments', 'LT', 'created 160527')])), { profile, secret: SECRET });
    expect(thrown(quoted)).toMatchObject({ code: 'DEID_ERR_VERIFY_LEAK' });
  });

  it('should refuse output it cannot parse again', () => {
    const e = thrown(() => verifyOutput(Buffer.from('not dicom at all'), { identifiers: [], remappedUids: new Set(), profile: loadProfile('basic') }));
    expect(e.code).toBe('DEID_ERR_VERIFY_REPARSE');
  });
});

describe('quality check: every attribute the profile removes or replaces', () => {
  /** A CT with a value in every category the check covers, nothing identifying anywhere else. */
  const source = () =>
    baseDataset([
      el('InstitutionName', 'LO', 'Scott Community Hospital'),
      el('InstitutionAddress', 'ST', '334 Michael Manor Sarahview, PA 56560'),
      el('StudyTime', 'TM', '085957'),
      el('StationName', 'SH', 'CTAWP73396'),
      el('DeviceSerialNumber', 'LO', 'SN-0042-77'),
      el('PerformingPhysicianName', 'PN', 'Brown^Peter'),
      el('OperatorsName', 'PN', 'Hughes^Kathleen'),
      el('ImageComments', 'LT', 'follow-up of the left lung nodule'),
      el('StudyDescription', 'LO', 'CT CHEST W CONTRAST'),
      privateBlock(0x0009, 'ACME_IDEN_01', 0x10, [[0x01, 'LO', 'Ward 7B bed 12']]),
    ]);

  /** The de-identified output with one source element put back, and the check's findings on it. */
  function putBack(tag: string | number, profile = loadProfile('basic')) {
    const src = source();
    const header = deidentifyHeader(makeFile(src), { profile, secret: SECRET });
    const original = src.find((e) => e.tag === tagOf(tag))!;
    const output = writeDicom({ ...header.file, dataset: withElement(header.file.dataset, original) });
    return verifyOutput(output, { identifiers: header.identifiers, remappedUids: header.remappedUids, profile });
  }

  it('should pass the de-identified output itself', () => {
    const src = source();
    const r = processObject(makeBytes(src), { profile: loadProfile('basic'), secret: SECRET });
    expect(r.verify.findings).toEqual([]);
  });

  it.each([
    ['InstitutionName', 'institution'],
    ['InstitutionAddress', 'institution'],
    ['StudyDate', 'date'],
    ['StudyTime', 'time'],
    ['StationName', 'device'],
    ['DeviceSerialNumber', 'device'],
    ['PerformingPhysicianName', 'name'],
    ['OperatorsName', 'name'],
    ['ImageComments', 'description'],
    ['StudyDescription', 'description'],
    ['(0009,1001)', 'private'],
  ])('should find %s put back into a de-identified CT, as a %s, without its value', (tag, kind) => {
    const report = putBack(tag);
    expect(report.ok).toBe(false);
    expect(report.findings).toContainEqual({ code: 'DEID_ERR_VERIFY_LEAK', path: formatTag(tagOf(tag)), kind });
    const json = JSON.stringify(report).toUpperCase();
    for (const v of ['SCOTT', 'MICHAEL', '085957', 'CTAWP73396', 'SN-0042', 'BROWN', 'HUGHES', 'NODULE', 'CONTRAST', 'WARD 7B']) expect(json).not.toContain(v);
  });

  it('should find a removed value copied into another element the header stage wrote', () => {
    const src = source();
    const header = deidentifyHeader(makeFile(src), { profile: loadProfile('basic'), secret: SECRET });
    const leaked = withElement(header.file.dataset, el('PatientID', 'LO', 'CTAWP73396'));
    const report = verifyDataset(leaked, { identifiers: header.identifiers, remappedUids: header.remappedUids, profile: loadProfile('basic') });
    expect(report.findings).toContainEqual({ code: 'DEID_ERR_VERIFY_LEAK', path: '(0010,0020)', kind: 'device' });
  });

  it('should quarantine the object in the pipeline when a kept private element quotes a removed value', () => {
    const profile = profileFromYaml('name: keeps-private\nextends: basic\nrules:\n  - { select: \'(0011,"ACME_NOTES",01)\', action: keep }\n');
    const src = baseDataset([el('StationName', 'SH', 'CTAWP73396'), privateBlock(0x0011, 'ACME_NOTES', 0x10, [[0x01, 'LO', 'scanned on CTAWP73396']])]);
    const e = thrown(() => processObject(makeBytes(src), { profile, secret: SECRET }));
    expect(e.code).toBe('DEID_ERR_VERIFY_LEAK');
    expect(e.message).toContain('(0011,1001)');
    expect(e.message).not.toContain('CTAWP73396');
  });

  it('should not report a removed description that a code meaning the standard keeps repeats, but report it put back', () => {
    const src = baseDataset([
      el('AcquisitionDeviceProcessingDescription', 'LO', 'CHEST AP PORT X-WISE GRID'),
      seq('PerformedProtocolCodeSequence', [[el('CodeValue', 'SH', 'FCR0200'), el('CodingSchemeDesignator', 'SH', '99FUJI'), el('CodeMeaning', 'LO', 'CHEST AP PORT X-WISE GRID')]]),
    ]);
    const profile = loadProfile('basic');
    expect(processObject(makeBytes(src), { profile, secret: SECRET }).verify.ok).toBe(true);
    const report = putBackInto(src, 'AcquisitionDeviceProcessingDescription', profile);
    expect(report.findings.map((f) => f.path)).toEqual(['(0018,1400)']);
  });

  it('should keep in cleaned text a removed private value that the object keeps in a standard attribute', () => {
    // research cleans descriptions; WHOLE BODY is in BodyPartExamined, which the standard keeps.
    const src = baseDataset([
      el('BodyPartExamined', 'CS', 'WHOLE BODY'),
      el('StudyDescription', 'LO', 'Whole Body Bone'),
      privateBlock(0x0009, 'ACME_ACQ_01', 0x10, [[0x20, 'LO', 'WHOLE BODY']]),
      privateBlock(0x0019, 'ACME_ACQ_02', 0x10, [[0x20, 'LO', 'Bed 7 Scott']]),
      el('SeriesDescription', 'LO', 'Whole Body from Bed 7 Scott'),
    ]);
    const r = processObject(makeBytes(src), { profile: loadProfile('research'), secret: SECRET });
    const out = readDicom(r.output).dataset;
    expect(text(out, 'StudyDescription')).toBe('Whole Body Bone');
    // A removed private value kept nowhere else is cleaned out of the description.
    expect(text(out, 'SeriesDescription')).toBe('Whole Body from ***');
    expect(r.verify.ok).toBe(true);
  });
});

describe('the skip rule for values too short or too common to search', () => {
  it.each([
    ['other', 'MR1', false],
    ['other', 'T2', false],
    ['private', '1.375:1', false],
    ['private', '512', false],
    ['device', '12345', false],
    ['device', '123456', true],
    ['description', 'CHEST', false],
    ['description', 'ROUTINE', false],
    ['description', 'YES', false],
    ['other', 'RADIOLOGY', false],
    ['description', 'CHEST AP', true],
    ['device', 'CTAWP73396', true],
    ['device', 'ANGIO1', true],
    ['private', 'Ward 7B', true],
    ['time', '085957', true],
    ['time', '0859', false],
    ['time', '000000', false],
    ['date', '20130713', true],
    ['date', '2013', false],
    ['name', 'DR', false],
    ['name', 'Li', true],
    ['id', 'S1', false],
    ['institution', 'TOSHIBA', true],
  ] as const)('should treat %s %j as searchable: %s', (kind, value, expected) => {
    expect(searchable({ kind, value })).toBe(expected);
  });

  it('should never take code strings, ages, numbers or UIDs as replaced values', () => {
    const ids = new IdentifierList();
    for (const e of [el('BodyPartExamined', 'CS', 'WHOLE BODY'), el('PatientAge', 'AS', '037Y'), el('PatientWeight', 'DS', '71.500'), el('StudyInstanceUID', 'UI', '1.2.3.4')]) addReplacedValueOf(e, parseCharacterSet(undefined), ids);
    expect(ids.list).toEqual([]);
  });

  it('should look for a whole value as its words, not inside other words', () => {
    const m = new IdentifierMatcher([{ kind: 'institution', value: 'TOSHIBA', tag: 0x00080080 }, { kind: 'description', value: 'CHEST AP', tag: 0x00081030 }]);
    expect(m.find('TOSHIBA_MEC')).toEqual([]);
    expect(m.find('made by Toshiba').map((h) => h.kind)).toEqual(['institution']);
    expect(m.find('XR CHEST-AP portable').map((h) => h.kind)).toEqual(['description']);
    expect(m.find('CHESTAP')).toEqual([]);
  });
});

function putBackInto(src: Element[], keyword: string, profile: CompiledProfile): VerifyReport {
  const header = deidentifyHeader(makeFile(src), { profile, secret: SECRET });
  const original = src.find((e) => e.tag === tagOf(keyword))!;
  return verifyOutput(writeDicom({ ...header.file, dataset: withElement(header.file.dataset, original) }), {
    identifiers: header.identifiers,
    remappedUids: header.remappedUids,
    profile,
  });
}

describe('deid verify on a de-identified CT with four source values put back', () => {
  it('should fail on each of them, naming path and kind and never the value, and pass the untouched output', () => {
    const tmp = tempDir();
    try {
      const ct = corpusFile('pydicom/CT_small.dcm');
      const secretFile = join(tmp.path, 'secret');
      writeFileSync(secretFile, 'a-site-secret-for-tests-0123456789\n');
      const run = spawnSync(process.execPath, [CLI, 'run', ct, '--out', join(tmp.path, 'out'), '--quarantine', join(tmp.path, 'q'), '--secret-file', secretFile], { encoding: 'utf8' });
      expect(run.status, run.stderr).toBe(0);
      const outPath = readdirSync(join(tmp.path, 'out'), { recursive: true, withFileTypes: true }).find((d) => d.isFile())!;
      const output = join(outPath.parentPath, outPath.name);
      const src = readDicom(readFileSync(ct)).dataset;
      const back = [0x00080080, 0x00080020, 0x00081010, 0x00090010, 0x00091004].map((tag) => src.find((e) => e.tag === tag)!);
      const tampered = join(tmp.path, 'tampered.dcm');
      const out = readDicom(readFileSync(output));
      writeFileSync(tampered, writeDicom({ ...out, dataset: withElements(out.dataset, back) }));

      const verify = (file: string) => spawnSync(process.execPath, [CLI, 'verify', ct, file], { encoding: 'utf8' });
      const bad = verify(tampered);
      expect(bad.status).toBe(2);
      expect(bad.stdout).toContain('quality check: FAIL');
      for (const line of ['(0008,0080)  (institution)', '(0008,0020)  (date)', '(0008,1010)  (device)', '(0009,1004)  (private)']) expect(bad.stdout).toContain(`DEID_ERR_VERIFY_LEAK  ${line}`);
      for (const value of ['JFK', '20040119', 'CT01_OC0', 'HiSpeed']) expect(bad.stdout).not.toContain(value);
      const good = verify(output);
      expect(good.status, good.stdout).toBe(0);
      expect(good.stdout).toContain('quality check: PASS');
    } finally {
      tmp.cleanup();
    }
  });
});
