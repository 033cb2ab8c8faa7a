import { afterAll, describe, expect, it } from 'vitest';
import type { Element } from '../src/dicom/element.js';
import { makeTag } from '../src/dicom/tag.js';
import { TS } from '../src/dicom/transfer-syntax.js';
import { writeDicom } from '../src/dicom/writer.js';
import { processObject } from '../src/pipeline/process-object.js';
import { loadProfile, type CompiledProfile } from '../src/profiles/profile.js';
import { deidentifyHeader } from '../src/stages/header.js';
import { collectIdentifiers } from '../src/stages/identifiers.js';
import { verifyDataset, verifyOutput, type VerifyReport } from '../src/stages/verify.js';
import { SECRET, baseDataset, el, makeBytes, makeFile, privateBlock, seq, tempFolder, thrown } from './helpers/dicom-builder.js';

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

  it('should refuse output it cannot parse again', () => {
    const e = thrown(() => verifyOutput(Buffer.from('not dicom at all'), { identifiers: [], remappedUids: new Set(), profile: loadProfile('basic') }));
    expect(e.code).toBe('DEID_ERR_VERIFY_REPARSE');
  });
});
