import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeText, parseCharacterSet } from '../src/dicom/charset.js';
import { findElement, withElement, type Element } from '../src/dicom/element.js';
import { readDicom } from '../src/dicom/reader.js';
import { TAG, makeTag } from '../src/dicom/tag.js';
import { TS } from '../src/dicom/transfer-syntax.js';
import { rawString } from '../src/dicom/values.js';
import { writeDicom } from '../src/dicom/writer.js';
import { dateOffsetDays, remapUid } from '../src/keyed.js';
import { processObject } from '../src/pipeline/process-object.js';
import { optionCode, type OptionName } from '../src/profiles/options.js';
import { loadProfile, type CompiledProfile } from '../src/profiles/profile.js';
import { deidentifyHeader, type HeaderResult } from '../src/stages/header.js';
import { collectIdentifiers } from '../src/stages/identifiers.js';
import {
  CT_IMAGE_STORAGE,
  REPO_ROOT,
  SECRET,
  allElements,
  baseDataset,
  el,
  get,
  latin1,
  makeBytes,
  makeFile,
  privateBlock,
  seq,
  tagOf,
  tempFolder,
  testDataFile,
  text,
  thrownCode,
  u16,
  utf8,
} from './helpers/dicom-builder.js';

const folders: Array<{ cleanup: () => void }> = [];
afterAll(() => folders.forEach((f) => f.cleanup()));

function profileFromYaml(yaml: string, extra: string[] = []): CompiledProfile {
  const f = tempFolder({ 'profile.yaml': yaml });
  folders.push(f);
  return loadProfile(f.path('profile.yaml'), extra);
}

const basic = (options: OptionName[] = []) => loadProfile('basic', options);

function deid(ds: readonly Element[], profile: CompiledProfile = basic(), secret: Uint8Array = SECRET): HeaderResult {
  return deidentifyHeader(makeFile(ds), { profile, secret });
}

const isOddGroup = (tag: number) => ((tag >>> 16) & 1) === 1;

/** The Basic Profile action code of a row of profiles/basic.yaml, as the file states it. */
function basicYamlAction(tag: string): string {
  const yaml = readFileSync(join(REPO_ROOT, 'profiles', 'basic.yaml'), 'utf8');
  const m = new RegExp(`select: "\\(${tag.replace(/[(),]/g, (c) => `\\${c}`)}\\)", action: ([A-Z/*]+)`).exec(yaml);
  if (!m) throw new Error(`basic.yaml has no row for (${tag})`);
  return m[1];
}

function addDays(da: string, days: number): string {
  const d = new Date(Date.UTC(Number(da.slice(0, 4)), Number(da.slice(4, 6)) - 1, Number(da.slice(6, 8))));
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10).replace(/-/g, '');
}

describe('PS3.15 action codes', () => {
  it('should write a VR-valid dummy for D, per VR', () => {
    const p = profileFromYaml(`name: dummies
rules:
  - { select: PatientName, action: D }
  - { select: InstitutionName, action: D }
  - { select: StudyDate, action: D }
  - { select: StudyTime, action: D }
  - { select: AcquisitionDateTime, action: D }
  - { select: BodyPartExamined, action: D }
  - { select: PatientAge, action: D }
  - { select: StationName, action: D }
  - { select: PatientWeight, action: D }
  - { select: StudyID, action: D }
  - { select: FrameOfReferenceUID, action: D }
  - { select: StudyComments, action: D }
`);
    const src = baseDataset([
      el('InstitutionName', 'LO', 'General Hospital'),
      el('StudyTime', 'TM', '101500.123'),
      el('AcquisitionDateTime', 'DT', '20200115101500.000000+0100'),
      el('BodyPartExamined', 'CS', 'HEAD'),
      el('PatientAge', 'AS', '050Y'),
      el('StationName', 'SH', 'CT-ROOM-3'),
      el('PatientWeight', 'DS', '71.5'),
      el('StudyID', 'SH', 'S1'),
      el('FrameOfReferenceUID', 'UI', '1.2.826.0.1.3680043.2.1125.9.9'),
      el('StudyComments', 'LT', 'call Dr. Who'),
    ]);
    const out = deid(src, p).file.dataset;
    const checks: Array<[string, RegExp]> = [
      ['PatientName', /^[A-Z]{1,64}$/],
      ['InstitutionName', /^[^\\]{1,64}$/],
      ['StudyDate', /^(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$/],
      ['StudyTime', /^([01]\d|2[0-3])([0-5]\d)([0-5]\d)(\.\d{1,6})?$/],
      ['AcquisitionDateTime', /^\d{14}(\.\d{1,6})?([+-]\d{4})?$/],
      ['BodyPartExamined', /^[A-Z0-9 _]{1,16}$/],
      ['PatientAge', /^\d{3}[DWMY]$/],
      ['StationName', /^.{1,16}$/],
      ['PatientWeight', /^[+-]?\d+(\.\d+)?$/],
      ['StudyID', /^.{1,16}$/],
      ['StudyComments', /^.+$/],
    ];
    for (const [kw, re] of checks) {
      const v = text(out, kw)!;
      expect(v, kw).toMatch(re);
      expect(v, kw).not.toBe(text(src, kw));
      expect(get(out, kw)!.value!.length % 2, kw).toBe(0);
      expect(get(out, kw)!.vr, kw).toBe(get(src, kw)!.vr);
    }
    // D on a UID is a remap, never a text dummy.
    expect(text(out, 'FrameOfReferenceUID')).toBe(remapUid(SECRET, '1.2.826.0.1.3680043.2.1125.9.9'));
  });

  it("should dummy the Basic Profile's D attributes", () => {
    const src = baseDataset([
      el('InstitutionName', 'LO', 'General Hospital'),
      el('StationName', 'SH', 'CTROOM3'),
      el('DeviceSerialNumber', 'LO', 'SN-0042'),
      el('PersonName', 'PN', 'Doe^Jane'),
      el('ContentDate', 'DA', '20200116'),
    ]);
    const out = deid(src).file.dataset;
    for (const kw of ['InstitutionName', 'StationName', 'DeviceSerialNumber', 'PersonName', 'ContentDate', 'PatientID']) {
      expect(text(out, kw), kw).toBeTruthy();
      expect(text(out, kw), kw).not.toBe(text(src, kw));
    }
    expect(text(out, 'ContentDate')).toMatch(/^\d{8}$/);
  });

  it('should write zero length for Z', () => {
    const out = deid(baseDataset([el('AccessionNumber', 'SH', 'ACC0001'), el('ReferringPhysicianName', 'PN', 'Who^Doctor')])).file.dataset;
    // PatientName is Z too, but the generated basic profile gives it a keyed pseudonym (Z allows a dummy).
    for (const kw of ['PatientBirthDate', 'AccessionNumber', 'ReferringPhysicianName']) {
      expect(get(out, kw), kw).toBeDefined();
      expect(get(out, kw)!.value!.length, kw).toBe(0);
    }
  });

  it('should remove X attributes, sequences included', () => {
    const src = baseDataset([
      el('OtherPatientIDs', 'LO', 'OTHER1'),
      el('IssuerOfPatientID', 'LO', 'HOSPITAL'),
      el('StudyDescription', 'LO', 'CT HEAD'),
      seq('OtherPatientIDsSequence', [[el('PatientID', 'LO', 'ALT1')]]),
    ]);
    const out = deid(src).file.dataset;
    for (const kw of ['OtherPatientIDs', 'IssuerOfPatientID', 'StudyDescription', 'OtherPatientIDsSequence']) expect(get(out, kw), kw).toBeUndefined();
  });

  it('should keep K attributes and attributes no rule names byte for byte', () => {
    const src = baseDataset([el('WindowCenter', 'DS', '40'), el('ImageType', 'CS', 'ORIGINAL\\PRIMARY\\AXIAL')]);
    const out = deid(src).file.dataset;
    for (const kw of ['Modality', 'Rows', 'Columns', 'PixelData', 'WindowCenter', 'ImageType', 'SOPClassUID']) expect(get(out, kw), kw).toEqual(get(src, kw));
    const keepName = profileFromYaml('name: keep-name\nextends: basic\nrules:\n  - { select: PatientName, action: K }\n');
    expect(get(deid(src, keepName).file.dataset, 'PatientName')).toEqual(get(src, 'PatientName'));
  });

  it('should clean identifying values of the same data set out of free text for C', () => {
    const src = baseDataset([
      el('StudyDescription', 'LO', 'CT for John Smith 19700101'),
      el('SeriesDescription', 'LO', 'smith, john - follow-up of 1970-01-01 (PID12345)'),
      el('ProtocolName', 'LO', 'HEAD ROUTINE'),
      el('ImageComments', 'LT', 'prior study ALT98765'),
      seq('OtherPatientIDsSequence', [[el('PatientID', 'LO', 'ALT98765')]]),
    ]);
    const out = deid(src, basic(['clean-descriptors'])).file.dataset;
    const study = text(out, 'StudyDescription')!;
    expect(study).toMatch(/^CT for /);
    for (const leak of ['John', 'Smith', '19700101']) expect(study).not.toContain(leak);
    const series = text(out, 'SeriesDescription')!.toUpperCase();
    for (const leak of ['JOHN', 'SMITH', '1970-01-01', 'PID12345']) expect(series).not.toContain(leak);
    expect(series).toContain('FOLLOW-UP');
    // An identifier found only inside a sequence is cleaned too.
    expect(text(out, 'ImageComments')).toBe('prior study ***');
    // Text with nothing identifying is kept as it is.
    expect(get(out, 'ProtocolName')).toEqual(get(src, 'ProtocolName'));
  });

  it('should remap UIDs for U', () => {
    const src = baseDataset();
    const out = deid(src).file.dataset;
    for (const kw of ['SOPInstanceUID', 'StudyInstanceUID', 'SeriesInstanceUID']) {
      expect(text(out, kw)).toBe(remapUid(SECRET, text(src, kw)!));
    }
  });
});

describe('rules at every depth', () => {
  /** Three levels of sequences that no rule names (so they are kept and walked). */
  const nested = (inner: Element[]) =>
    seq('ReferencedSeriesSequence', [[seq('PerformedProtocolCodeSequence', [[el('CodeValue', 'SH', 'P1'), seq('RadiopharmaceuticalInformationSequence', [inner])]])]]);
  const deep = (ds: readonly Element[], kw: string) =>
    get(ds, 'ReferencedSeriesSequence', 0, 'PerformedProtocolCodeSequence', 0, 'RadiopharmaceuticalInformationSequence', 0, kw);

  it('should apply the same rule to PatientName three levels deep as at the top', () => {
    const src = baseDataset([nested([el('PatientName', 'PN', 'Smith^John'), el('PersonName', 'PN', 'Doe^Jane'), el('OtherPatientIDs', 'LO', 'X1')])]);
    const out = deid(src).file.dataset;
    // The same pseudonym as at the top, for the same name.
    expect(rawString(deep(out, 'PatientName')!.value)).toMatch(/^ANON\^[0-9A-HJ-NP-Z]{10}$/);
    expect(rawString(deep(out, 'PatientName')!.value)).toBe(rawString(get(out, 'PatientName')!.value));
    expect(rawString(deep(out, 'PersonName')!.value)).not.toBe('Doe^Jane'); // D
    expect(deep(out, 'PersonName')!.value!.length).toBeGreaterThan(0);
    expect(deep(out, 'OtherPatientIDs')).toBeUndefined(); // X
    expect(get(out, 'ReferencedSeriesSequence', 0, 'PerformedProtocolCodeSequence', 0, 'CodeValue')).toEqual(el('CodeValue', 'SH', 'P1'));

    const dummyName = profileFromYaml('name: dummy-name\nextends: basic\nrules:\n  - { select: PatientName, action: D }\n');
    const out2 = deid(src, dummyName).file.dataset;
    expect(rawString(deep(out2, 'PatientName')!.value)).toBe(rawString(get(out2, 'PatientName')!.value));
    expect(rawString(deep(out2, 'PatientName')!.value)).not.toMatch(/Smith|John/);
  });

  it('should remap a referenced UID in a sequence to the same new UID as the referenced object', () => {
    const a = baseDataset([], 1);
    const sopA = text(a, 'SOPInstanceUID')!;
    const b = baseDataset(
      [
        seq('ReferencedImageSequence', [[el('ReferencedSOPClassUID', 'UI', CT_IMAGE_STORAGE), el('ReferencedSOPInstanceUID', 'UI', sopA)]]),
        // An element no rule names still follows a UID that the profile remaps elsewhere in the object.
        seq('ReferencedSeriesSequence', [[el('SeriesInstanceUID', 'UI', text(a, 'SeriesInstanceUID')!)]]),
        el('FrameOfReferenceUID', 'UI', '1.2.826.0.1.3680043.2.1125.7'),
        seq('ReferencedSOPSequence', [[el('ReferencedSOPClassUID', 'UI', '1.2.840.10008.3.1.2.3.1'), el('MultiFrameSourceSOPInstanceUID', 'UI', '1.2.826.0.1.3680043.2.1125.7')]]),
      ],
      2,
    );
    const outA = deid(a).file.dataset;
    const outB = deid(b).file.dataset;
    expect(text(outB, 'ReferencedImageSequence', 0, 'ReferencedSOPInstanceUID')).toBe(text(outA, 'SOPInstanceUID'));
    expect(text(outB, 'ReferencedImageSequence', 0, 'ReferencedSOPClassUID')).toBe(CT_IMAGE_STORAGE);
    expect(text(outB, 'ReferencedSeriesSequence', 0, 'SeriesInstanceUID')).toBe(text(outA, 'SeriesInstanceUID'));
    expect(text(outB, 'ReferencedSOPSequence', 0, 'MultiFrameSourceSOPInstanceUID')).toBe(text(outB, 'FrameOfReferenceUID'));
    expect(text(outB, 'FrameOfReferenceUID')).toBe(remapUid(SECRET, '1.2.826.0.1.3680043.2.1125.7'));
  });
});

describe('private elements', () => {
  it('should remove private elements by default, inside sequences and nested private sequences too', () => {
    const src = baseDataset([
      privateBlock(0x0009, 'ACME 1.0', 0x10, [
        [0x01, 'LO', 'Smith'],
        [0x02, 'SQ', [[...privateBlock(0x0011, 'ACME 1.0', 0x10, [[0x01, 'SQ', [[el(makeTag(0x0011, 0x1002), 'LO', 'deep')]]]])]]],
      ]),
      seq('ReferencedSeriesSequence', [[el('SeriesInstanceUID', 'UI', '1.2.3.4'), ...privateBlock(0x0029, 'SIEMENS CSA HEADER', 0x10, [[0x10, 'OB', 'CSA'], [0x20, 'UN', 'x']])]]),
      el(makeTag(0x0019, 0x1001), 'LO', 'orphan element without a creator'),
    ]);
    const result = deid(src);
    const odd = allElements(result.file.dataset).filter((e) => isOddGroup(e.tag));
    expect(odd).toEqual([]);
    expect(get(result.file.dataset, 'ReferencedSeriesSequence', 0, 'SeriesInstanceUID')).toBeDefined();
    expect(result.report.privateRemoved).toBeGreaterThanOrEqual(4);
  });

  it('should remove elements of the odd groups 0001-0007, which are neither standard nor private', () => {
    const src = baseDataset([el(makeTag(0x0001, 0x0001), 'UN', 'Smith'), el(makeTag(0x0003, 0x0010), 'LO', 'ACME'), el(makeTag(0x0003, 0x1001), 'LO', 'John')]);
    expect(deid(src).file.dataset.filter((e) => isOddGroup(e.tag))).toEqual([]);
  });

  for (const name of ['pydicom/nested_priv_SQ.dcm', 'pydicom/priv_SQ.dcm']) {
    it(`should remove the private sequences of ${name}`, () => {
      const bytes = readFileSync(testDataFile(name));
      // Without a SOP Instance UID the pipeline quarantines the object, as intended.
      expect(thrownCode(() => processObject(bytes, { profile: basic(), secret: SECRET }))).toBe('DEID_ERR_MISSING_SOP_INSTANCE_UID');
      const file = readDicom(bytes);
      expect(allElements(file.dataset).some((e) => isOddGroup(e.tag))).toBe(true);
      const withUid = { ...file, dataset: withElement(file.dataset, el('SOPInstanceUID', 'UI', '1.2.826.0.1.3680043.2.1125.5')) };
      for (const profile of [basic(), basic(['retain-safe-private'])]) {
        const out = deidentifyHeader(withUid, { profile, secret: SECRET }).file;
        expect(allElements(out.dataset).filter((e) => isOddGroup(e.tag)).map((e) => e.tag.toString(16))).toEqual([]);
        const written = writeDicom(out);
        expect(written.includes(Buffer.from('Nested SQ'))).toBe(false);
        expect(written.includes(Buffer.from('MEDICAL SYSTEMS'))).toBe(false);
      }
    });
  }

  describe('with retain-safe-private', () => {
    const SAFE = 0x27; // (0043,xx27) GEMS_PARM_01 Scan Pitch Ratio, PS3.15 Table E.3.10-1
    const UNSAFE = 0x05; // not in E.3.10-1 nor in the TCIA keep list
    const profile = () => basic(['retain-safe-private']);

    it('should keep a safe (creator, element) pair and match the creator by name in any block', () => {
      for (const block of [0x10, 0x11]) {
        const src = baseDataset([
          // Another creator takes block 0x10 when GEMS_PARM_01 is in 0x11, so the block number differs from the table's.
          ...(block === 0x11 ? [privateBlock(0x0043, 'ACME 1.0', 0x10, [[SAFE, 'SH', '1.375:1']])] : []),
          privateBlock(0x0043, 'GEMS_PARM_01', block, [
            [SAFE, 'SH', '1.375:1'],
            [UNSAFE, 'SH', 'unsafe'],
          ]),
        ]);
        const out = deid(src, profile()).file.dataset;
        expect(text(out, makeTag(0x0043, (block << 8) | SAFE))).toBe('1.375:1');
        expect(text(out, makeTag(0x0043, block))).toBe('GEMS_PARM_01');
        expect(get(out, makeTag(0x0043, (block << 8) | UNSAFE))).toBeUndefined();
        // The same element byte under another creator is not safe.
        expect(out.filter((e) => e.tag >>> 16 === 0x0043).map((e) => e.tag)).toEqual([makeTag(0x0043, block), makeTag(0x0043, (block << 8) | SAFE)]);
      }
    });

    it('should remove unsafe elements, their orphaned creators and elements without a creator', () => {
      const src = baseDataset([
        privateBlock(0x0043, 'GEMS_PARM_01', 0x10, [[UNSAFE, 'SH', 'unsafe']]),
        el(makeTag(0x0043, 0x1227), 'SH', 'no creator'),
      ]);
      // The element (0043,1227) has no creator in block 0x12, so it is not the safe pair even though its byte is.
      const out = deid(src, profile()).file.dataset;
      expect(out.filter((e) => isOddGroup(e.tag))).toEqual([]);
      // Without the option, the safe one goes too.
      const safe = baseDataset([privateBlock(0x0043, 'GEMS_PARM_01', 0x10, [[SAFE, 'SH', '1.375:1']])]);
      expect(deid(safe).file.dataset.filter((e) => isOddGroup(e.tag))).toEqual([]);
      expect(deid(safe, profile()).file.dataset.filter((e) => isOddGroup(e.tag))).toHaveLength(2);
    });

    it('should keep safe private elements inside sequences', () => {
      const src = baseDataset([seq('ReferencedSeriesSequence', [[privateBlock(0x0043, 'GEMS_PARM_01', 0x10, [[SAFE, 'SH', '1.0:1'], [UNSAFE, 'SH', 'x']])].flat()])]);
      const item = get(deid(src, profile()).file.dataset, 'ReferencedSeriesSequence')!.items![0].elements;
      expect(item.map((e) => e.tag)).toEqual([makeTag(0x0043, 0x0010), makeTag(0x0043, 0x1000 | SAFE)]);
    });
  });

  it('should remove overlays (60xx,3000 and the rest of their group) and curves (50xx,xxxx)', () => {
    const src = baseDataset([
      el(makeTag(0x6000, 0x0010), 'US', u16(2)),
      el(makeTag(0x6000, 0x4000), 'LT', 'overlay comment'),
      el(makeTag(0x6000, 0x3000), 'OW', u16(0xffff, 0)),
      el(makeTag(0x6002, 0x3000), 'OW', u16(0xffff, 0)),
      el(makeTag(0x5000, 0x0005), 'US', u16(1)),
      el(makeTag(0x5000, 0x3000), 'OB', Uint8Array.of(1, 2)),
      el(makeTag(0x5002, 0x0022), 'LO', 'curve description'),
    ]);
    const out = deid(src).file.dataset;
    expect(out.filter((e) => e.tag >>> 24 === 0x50)).toEqual([]);
    expect(get(out, makeTag(0x6000, 0x3000))).toBeUndefined();
    expect(get(out, makeTag(0x6002, 0x3000))).toBeUndefined();
    // Without its data the rest of the overlay group would be an invalid Overlay Plane, so it goes too.
    expect(out.filter((e) => e.tag >>> 24 === 0x60)).toEqual([]);
    // Clean Graphics keeps what it can clean (text) and still removes binary overlay and curve data.
    const cleaned = deid(src, basic(['clean-graphics'])).file.dataset;
    expect(get(cleaned, makeTag(0x5000, 0x3000))).toBeUndefined();
    expect(get(cleaned, makeTag(0x6000, 0x3000))).toBeUndefined();
    expect(get(cleaned, makeTag(0x6002, 0x3000))).toBeUndefined();
    expect(text(cleaned, makeTag(0x5002, 0x0022))).toBe('curve description');
  });
});

describe('UID validation', () => {
  it('should refuse a UID attribute whose VR is not UI or whose value is not a UID, at any depth', () => {
    const bad = [
      el('SOPInstanceUID', 'US', u16(7)),
      el('SeriesInstanceUID', 'AT', u16(0x0008, 0x0018)),
      el('SOPInstanceUID', 'UI', ''),
      el('SOPClassUID', 'UI', 'CT Image Storage'),
      el('FrameOfReferenceUID', 'LO', '1.2.3.4'),
      seq('ReferencedImageSequence', [[el('ReferencedSOPInstanceUID', 'UI', '1.2.3.abc')]]),
    ];
    for (const e of bad) expect(thrownCode(() => deid(baseDataset([e]))), JSON.stringify(e.tag)).toBe('DEID_ERR_BAD_UID');
  });

  it('should keep the other codes: no SOP Instance UID at all, and private elements, which their rules decide', () => {
    const noSop = baseDataset().filter((e) => e.tag !== TAG.SOPInstanceUID);
    expect(thrownCode(() => deid(noSop))).toBe('DEID_ERR_MISSING_SOP_INSTANCE_UID');
    expect(thrownCode(() => deid(baseDataset([privateBlock(0x0009, 'ACME', 0x10, [[0x01, 'UI', 'not a uid']])])))).toBeUndefined();
    // Multi-valued and padded UIDs, leading zeros included, are UIDs.
    expect(thrownCode(() => deid(baseDataset([el('ReferencedSOPClassUID', 'UI', '1.2.840.10008.5.1.4.1.1.2\\1.2.03.4')])))).toBeUndefined();
  });
});

describe('UID remapping', () => {
  const distKeyed = join(REPO_ROOT, 'dist', 'keyed.js');
  beforeAll(() => {
    const src = join(REPO_ROOT, 'src', 'keyed.ts');
    if (!existsSync(distKeyed) || statSync(distKeyed).mtimeMs < statSync(src).mtimeMs) {
      execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO_ROOT, stdio: 'ignore' });
    }
  }, 120_000);

  const uid = '1.2.826.0.1.3680043.2.1125.1.1.1';

  it("should make '2.25.' plus a decimal of at most 64 characters", () => {
    for (const u of [uid, '1.2.3', '9'.repeat(64), '']) {
      const r = remapUid(SECRET, u);
      expect(r).toMatch(/^2\.25\.(0|[1-9]\d*)$/);
      expect(r.length).toBeLessThanOrEqual(64);
      expect(BigInt(r.slice(5))).toBeLessThan(1n << 128n);
    }
  });

  it('should be deterministic across calls and across processes', () => {
    const a = deid(baseDataset()).file.dataset;
    const b = deid(baseDataset()).file.dataset;
    expect(text(a, 'SOPInstanceUID')).toBe(text(b, 'SOPInstanceUID'));
    const script = `import { remapUid, dateOffsetDays } from ${JSON.stringify('file://' + distKeyed)};
const secret = Buffer.from(process.argv[1], 'hex');
console.log(JSON.stringify({ uid: remapUid(secret, process.argv[2]), days: dateOffsetDays(secret, 'PID12345', -3650, -1) }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, SECRET.toString('hex'), uid], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const other = JSON.parse(r.stdout);
    expect(other.uid).toBe(remapUid(SECRET, uid));
    expect(other.uid).toBe(text(a, 'SOPInstanceUID'));
    expect(other.days).toBe(dateOffsetDays(SECRET, 'PID12345', -3650, -1));
  });

  it('should give different UIDs for different secrets and different inputs', () => {
    expect(remapUid(Buffer.from('secret-one-0123456789'), uid)).not.toBe(remapUid(Buffer.from('secret-two-0123456789'), uid));
    expect(remapUid(SECRET, uid)).not.toBe(remapUid(SECRET, uid + '1'));
    const a = deid(baseDataset(), basic(), Buffer.from('secret-one-0123456789')).file.dataset;
    const b = deid(baseDataset(), basic(), Buffer.from('secret-two-0123456789')).file.dataset;
    expect(text(a, 'StudyInstanceUID')).not.toBe(text(b, 'StudyInstanceUID'));
  });

  it('should never remap registry UIDs: SOP classes, transfer syntaxes, coding schemes', () => {
    const src = baseDataset([
      seq('ProcedureCodeSequence', [[el('CodeValue', 'SH', '113100'), el('CodingSchemeDesignator', 'SH', 'DCM'), el('CodingSchemeUID', 'UI', '1.2.840.10008.2.16.4')]]),
      seq('AnatomicRegionSequence', [[el('CodeValue', 'SH', '69536005'), el('CodingSchemeDesignator', 'SH', 'SCT'), el('CodingSchemeUID', 'UI', '2.16.840.1.113883.6.96')]]),
      seq('ReferencedSOPSequence', [[el('ReferencedSOPClassUID', 'UI', '1.2.840.10008.3.1.2.3.1'), el('ReferencedSOPInstanceUID', 'UI', '1.2.826.0.1.3680043.2.1125.8')]]),
    ]);
    const res = deid(src);
    const out = res.file.dataset;
    expect(text(out, 'SOPClassUID')).toBe(CT_IMAGE_STORAGE);
    expect(text(out, 'ProcedureCodeSequence', 0, 'CodingSchemeUID')).toBe('1.2.840.10008.2.16.4');
    expect(text(out, 'AnatomicRegionSequence', 0, 'CodingSchemeUID')).toBe('2.16.840.1.113883.6.96');
    expect(text(out, 'ReferencedSOPSequence', 0, 'ReferencedSOPClassUID')).toBe('1.2.840.10008.3.1.2.3.1');
    expect(text(out, 'ReferencedSOPSequence', 0, 'ReferencedSOPInstanceUID')).toBe(remapUid(SECRET, '1.2.826.0.1.3680043.2.1125.8'));
    for (const u of res.remappedUids) expect(u.startsWith('1.2.840.10008.')).toBe(false);

    for (const ts of [TS.ExplicitLE, TS.ImplicitLE]) {
      const written = readDicom(writeDicom(deidentifyHeader(readDicom(makeBytes(src, ts)), { profile: basic(), secret: SECRET }).file));
      expect(written.transferSyntaxUID).toBe(ts);
      expect(rawString(written.meta.find((e) => e.tag === 0x00020002)?.value)).toBe(CT_IMAGE_STORAGE);
    }
  });

  it('should write the new SOP Instance UID as the MediaStorageSOPInstanceUID of the meta group', () => {
    const src = readDicom(makeBytes(baseDataset()));
    expect(rawString(src.meta.find((e) => e.tag === TAG.MediaStorageSOPInstanceUID)?.value)).toBe(text(src.dataset, 'SOPInstanceUID'));
    const res = deidentifyHeader(src, { profile: basic(), secret: SECRET });
    const written = readDicom(writeDicom(res.file));
    const newUid = text(written.dataset, 'SOPInstanceUID');
    expect(newUid).toBe(remapUid(SECRET, text(src.dataset, 'SOPInstanceUID')!));
    expect(rawString(written.meta.find((e) => e.tag === TAG.MediaStorageSOPInstanceUID)?.value)).toBe(newUid);
    expect(res.remappedUids.has(text(src.dataset, 'SOPInstanceUID')!)).toBe(true);
  });

  it('should keep UIDs with retain-uids', () => {
    const src = baseDataset([seq('ReferencedImageSequence', [[el('ReferencedSOPClassUID', 'UI', CT_IMAGE_STORAGE), el('ReferencedSOPInstanceUID', 'UI', '1.2.826.0.1.3680043.2.1125.8')]])]);
    const res = deid(src, basic(['retain-uids']));
    for (const kw of ['SOPInstanceUID', 'StudyInstanceUID', 'SeriesInstanceUID']) expect(get(res.file.dataset, kw)).toEqual(get(src, kw));
    expect(text(res.file.dataset, 'ReferencedImageSequence', 0, 'ReferencedSOPInstanceUID')).toBe('1.2.826.0.1.3680043.2.1125.8');
    expect(res.remappedUids.size).toBe(0);
  });
});

describe('dates', () => {
  const datedDataset = (patientId: string, n = 1) =>
    baseDataset(
      [
        el('PatientID', 'LO', patientId),
        el('SeriesDate', 'DA', '20200115'),
        el('ContentDate', 'DA', '20200116'),
        el('AcquisitionDateTime', 'DT', '20200115123000.123456+0100'),
        el('ExpiryDate', 'DA', '20210301'),
        seq('ReferencedSeriesSequence', [[el('ExpiryDate', 'DA', '20220228'), el('ExpirationDateTime', 'DT', '20200229235959-0500')]]),
      ],
      n,
    );

  it('should shift every DA and DT at every depth by the same per-patient offset with retain-long-modified-dates', () => {
    const src = datedDataset('PID12345');
    const res = deid(src, basic(['retain-long-modified-dates']));
    const out = res.file.dataset;
    const days = res.report.dateOffsetDays!;
    expect(days).toBe(dateOffsetDays(SECRET, 'PID12345', -3650, -1));
    expect(days).toBeGreaterThanOrEqual(-3650);
    expect(days).toBeLessThanOrEqual(-1);
    expect(text(out, 'StudyDate')).toBe(addDays('20200115', days));
    expect(text(out, 'SeriesDate')).toBe(addDays('20200115', days));
    expect(text(out, 'ContentDate')).toBe(addDays('20200116', days));
    expect(text(out, 'ExpiryDate')).toBe(addDays('20210301', days));
    expect(text(out, 'AcquisitionDateTime')).toBe(addDays('20200115', days) + '123000.123456+0100');
    expect(text(out, 'ReferencedSeriesSequence', 0, 'ExpiryDate')).toBe(addDays('20220228', days));
    expect(text(out, 'ReferencedSeriesSequence', 0, 'ExpirationDateTime')).toBe(addDays('20200229', days) + '235959-0500');
    // Every remaining DA and DT was shifted: none keeps its source value.
    const srcDates = new Set(allElements(src).filter((e) => e.vr === 'DA' || e.vr === 'DT').map((e) => rawString(e.value)));
    for (const e of allElements(out).filter((x) => x.vr === 'DA' || x.vr === 'DT')) if (e.value?.length) expect(srcDates.has(rawString(e.value))).toBe(false);
    expect(text(out, 'LongitudinalTemporalInformationModified')).toBe('MODIFIED');
  });

  it('should shift two files of the same patient identically and different patients differently', () => {
    const p = basic(['retain-long-modified-dates']);
    const one = deid(datedDataset('PAT-A', 1), p);
    const two = deid(datedDataset('PAT-A', 2), p);
    expect(one.report.dateOffsetDays).toBe(two.report.dateOffsetDays);
    expect(text(one.file.dataset, 'StudyDate')).toBe(text(two.file.dataset, 'StudyDate'));
    const offsets = new Set(Array.from({ length: 20 }, (_, i) => deid(datedDataset(`PAT-${i}`), p).report.dateOffsetDays));
    expect(offsets.size).toBeGreaterThan(15);
  });

  it("should keep the offset within the profile's dateShift range", () => {
    const p = profileFromYaml('name: narrow-shift\nextends: basic\noptions: [retain-long-modified-dates]\ndateShift: { minDays: -10, maxDays: -5 }\n');
    const seen = new Set<number>();
    for (let i = 0; i < 60; i++) {
      const res = deid(datedDataset(`P${i}`), p);
      const d = res.report.dateOffsetDays!;
      expect(d).toBeGreaterThanOrEqual(-10);
      expect(d).toBeLessThanOrEqual(-5);
      expect(text(res.file.dataset, 'StudyDate')).toBe(addDays('20200115', d));
      seen.add(d);
    }
    expect(seen.size).toBe(6);
    const fixed = profileFromYaml('name: fixed-shift\nextends: basic\noptions: [retain-long-modified-dates]\ndateShift: { minDays: -7, maxDays: -7 }\n');
    expect(text(deid(datedDataset('P1'), fixed).file.dataset, 'StudyDate')).toBe('20200108');
  });

  it('should follow Table E.1-1 for dates without a dates option', () => {
    const src = datedDataset('PID12345');
    const out = deid(src).file.dataset;
    const cases: Array<[string, string]> = [
      ['StudyDate', '0008,0020'],
      ['SeriesDate', '0008,0021'],
      ['ContentDate', '0008,0023'],
      ['AcquisitionDateTime', '0008,002A'],
      ['PatientBirthDate', '0010,0030'],
    ];
    for (const [kw, tag] of cases) {
      const code = basicYamlAction(tag);
      const e = get(out, kw);
      // Compound codes resolve to the least destructive member that keeps the IOD valid.
      const effective = code.includes('D') ? 'D' : code.includes('Z') ? 'Z' : code;
      if (effective === 'X') expect(e, kw).toBeUndefined();
      if (effective === 'Z') expect(e?.value?.length, kw).toBe(0);
      if (effective === 'D') {
        expect(text(out, kw), kw).toMatch(/^\d{8}/);
        expect(text(out, kw), kw).not.toBe(text(src, kw));
      }
    }
    expect(basicYamlAction('0008,0020')).toBe('Z');
    expect(get(out, 'StudyDate')!.value!.length).toBe(0);
    expect(text(out, 'LongitudinalTemporalInformationModified')).toBe('REMOVED');
  });

  it('should keep dates with retain-long-full-dates and mark them UNMODIFIED', () => {
    const src = datedDataset('PID12345');
    const out = deid(src, basic(['retain-long-full-dates'])).file.dataset;
    for (const kw of ['StudyDate', 'SeriesDate', 'ContentDate', 'AcquisitionDateTime']) expect(get(out, kw), kw).toEqual(get(src, kw));
    expect(text(out, 'LongitudinalTemporalInformationModified')).toBe('UNMODIFIED');
  });
});

describe('marking', () => {
  const cid7050 = JSON.parse(readFileSync(testDataFile('standard/cid_7050.json'), 'utf8')) as {
    rows: Array<{ code_value: string; scheme_designator: string; code_meaning: string }>;
  };
  const byMeaning = new Map(cid7050.rows.map((r) => [r.code_meaning.toLowerCase(), r]));

  it.each([
    ['basic', [] as OptionName[]],
    ['basic', ['retain-uids', 'clean-descriptors'] as OptionName[]],
    ['research', [] as OptionName[]],
  ])('should mark %s %j as de-identified with 113100 plus one CID 7050 code per option', (name, extra) => {
    const profile = loadProfile(name, extra);
    const out = deid(baseDataset([el('PatientIdentityRemoved', 'CS', 'NO')]), profile).file.dataset;
    expect(text(out, 'PatientIdentityRemoved')).toBe('YES');
    expect(text(out, 'DeidentificationMethod')).toContain(name);
    const items = get(out, 'DeidentificationMethodCodeSequence')!.items!.map((i) => ({
      value: text(i.elements, 'CodeValue'),
      scheme: text(i.elements, 'CodingSchemeDesignator'),
      meaning: text(i.elements, 'CodeMeaning'),
    }));
    expect(items).toHaveLength(1 + profile.options.size);
    expect(items[0]).toEqual({ value: '113100', scheme: 'DCM', meaning: 'Basic Application Confidentiality Profile' });
    const expected = [...profile.options].map((o) => byMeaning.get(optionCode(o).meaning.toLowerCase())!);
    for (const row of [cid7050.rows.find((r) => r.code_value === '113100')!, ...expected]) {
      expect(items).toContainEqual({ value: row.code_value, scheme: row.scheme_designator, meaning: row.code_meaning });
    }
    // Each code appears once.
    expect(new Set(items.map((i) => i.value)).size).toBe(items.length);
  });

  it('should mark longitudinal temporal information per the dates option', () => {
    const mark = (opts: OptionName[]) => text(deid(baseDataset(), basic(opts)).file.dataset, 'LongitudinalTemporalInformationModified');
    expect(mark([])).toBe('REMOVED');
    expect(mark(['retain-long-modified-dates'])).toBe('MODIFIED');
    expect(mark(['retain-long-full-dates'])).toBe('UNMODIFIED');
  });
});

describe('character sets', () => {
  /** JIS X 0208 code points of the few kanji used here (row/cell + 0x20), checked against Node's decoder below. */
  const JIS: Record<string, [number, number]> = { 山: [0x3b, 0x33], 田: [0x45, 0x44], 太: [0x42, 0x40], 郎: [0x4f, 0x3a] };
  /** ISO 2022 IR 87 bytes: ESC $ B before each kanji run, ESC ( B after it (so delimiters are ASCII). */
  function iso2022jp(s: string): Uint8Array {
    const out: number[] = [];
    let kanji = false;
    for (const ch of s) {
      const code = JIS[ch];
      if (code && !kanji) out.push(0x1b, 0x24, 0x42);
      if (!code && kanji) out.push(0x1b, 0x28, 0x42);
      kanji = Boolean(code);
      if (code) out.push(...code);
      else out.push(ch.charCodeAt(0));
    }
    if (kanji) out.push(0x1b, 0x28, 0x42);
    return Uint8Array.from(out);
  }

  const CASES = [
    { charset: 'ISO_IR 100', name: 'Müller^Jürgen', parts: ['Müller', 'Jürgen'], description: 'MR Kopf Müller Jürgen', cleaned: 'MR Kopf *** ***', encode: latin1 },
    { charset: 'ISO_IR 192', name: 'Ωμέγα^Ελένη', parts: ['Ωμέγα', 'Ελένη'], description: 'CT Ωμέγα Ελένη', cleaned: 'CT *** ***', encode: utf8 },
    { charset: 'ISO 2022 IR 6\\ISO 2022 IR 87', name: '山田^太郎', parts: ['山田', '太郎'], description: 'CT 山田 太郎', cleaned: 'CT *** ***', encode: iso2022jp },
  ];

  it('should build ISO 2022 IR 87 bytes that a standard decoder reads back', () => {
    expect(new TextDecoder('iso-2022-jp').decode(iso2022jp('山田^太郎'))).toBe('山田^太郎');
    expect(Array.from(iso2022jp('山^'))).toEqual([0x1b, 0x24, 0x42, 0x3b, 0x33, 0x1b, 0x28, 0x42, 0x5e]);
  });

  it.each(CASES)('should decode, collect, clean and keep the character set for $charset', ({ charset, name, parts, description, cleaned: expectedClean, encode }) => {
    const src = baseDataset([
      el('SpecificCharacterSet', 'CS', charset),
      el('PatientName', 'PN', encode(name)),
      el('StudyDescription', 'LO', encode(description)),
      el('SeriesDescription', 'LO', encode('no names here')),
    ]);
    // (a) decoding
    const cs = parseCharacterSet(charset);
    expect(decodeText(get(src, 'PatientName')!.value!, cs, 'PN').replace(/ +$/, '')).toBe(name);
    expect(text(src, 'StudyDescription')).toBe(description);
    // (b) the name parts are identifiers
    const names = collectIdentifiers(src).filter((i) => i.kind === 'name').map((i) => i.value);
    for (const part of parts) expect(names).toContain(part);
    // (c) clean-descriptors removes them from text in the same character set
    const res = deid(src, basic(['clean-descriptors']));
    const cleaned = text(res.file.dataset, 'StudyDescription')!;
    for (const part of parts) expect(cleaned).not.toContain(part);
    expect(cleaned).toBe(expectedClean);
    expect(get(res.file.dataset, 'SeriesDescription')).toEqual(get(src, 'SeriesDescription'));
    // (d) the output keeps the source's Specific Character Set, and still reads back the same way
    expect(get(res.file.dataset, 'SpecificCharacterSet')).toEqual(get(src, 'SpecificCharacterSet'));
    const written = readDicom(writeDicom(res.file));
    expect(rawString(findElement(written.dataset, TAG.SpecificCharacterSet)?.value)).toBe(charset);
    expect(text(written.dataset, 'StudyDescription')).toBe(cleaned);
    // The whole pipeline agrees: nothing of the name is left.
    const processed = processObject(makeBytes(src), { profile: basic(['clean-descriptors']), secret: SECRET });
    expect(processed.verify.ok).toBe(true);
  });

  it('should clean a name written in the data set character set out of a nested item that declares none', () => {
    const src = baseDataset([
      el('SpecificCharacterSet', 'CS', 'ISO_IR 192'),
      el('PatientName', 'PN', utf8('Ωμέγα^Ελένη')),
      seq('RequestAttributesSequence', [[el('RequestedProcedureDescription', 'LO', utf8('Έλεγχος Ωμέγα'))]]),
    ]);
    const out = deid(src, basic(['clean-descriptors'])).file.dataset;
    const item = get(out, 'RequestAttributesSequence')!.items![0].elements;
    const v = decodeText(findElement(item, tagOf('RequestedProcedureDescription'))!.value!, parseCharacterSet('ISO_IR 192'), 'LO');
    expect(v).not.toContain('Ωμέγα');
    expect(v).toContain('Έλεγχος');
  });
});
