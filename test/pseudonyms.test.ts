import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readDicom } from '../src/dicom/reader.js';
import { processObject } from '../src/pipeline/process-object.js';
import { loadProfile } from '../src/profiles/profile.js';
import { CLI, REPO_ROOT, tempDir } from './helpers/corpus.js';
import { startOrthanc } from './helpers/orthanc.js';
import { SECRET, baseDataset, el, makeBytes, tempFolder, text } from './helpers/dicom-builder.js';

const PATIENT_ID = /^[0-9A-HJ-NP-Z]{16}$/;
const PATIENT_NAME = /^ANON\^[0-9A-HJ-NP-Z]{10}$/;
const STUDY_ID = /^[0-9A-HJ-NP-Z]{10}$/;

/** One object of a patient: the identity elements and a study of its own. */
const objectOf = (patient: string, name: string, study: number) =>
  baseDataset([el('PatientID', 'LO', patient), el('PatientName', 'PN', name), el('StudyID', 'SH', `S${study}`)], study);

const identityOf = (out: Buffer) => {
  const ds = readDicom(out).dataset;
  return { id: text(ds, 'PatientID')!, name: text(ds, 'PatientName')!, study: text(ds, 'StudyID')! };
};

describe('keyed pseudonyms of the basic profile', () => {
  const basic = () => loadProfile('basic');

  it('should give PatientID, PatientName and StudyID VR-valid keyed pseudonyms', () => {
    const out = identityOf(processObject(makeBytes(objectOf('PID12345', 'Smith^John', 1)), { profile: basic(), secret: SECRET }).output);
    expect(out.id).toMatch(PATIENT_ID);
    expect(out.name).toMatch(PATIENT_NAME);
    expect(out.study).toMatch(STUDY_ID);
  });

  it('should keep two patients apart and the same patient the same, across objects and studies', () => {
    const a1 = identityOf(processObject(makeBytes(objectOf('PID-A', 'Smith^John', 1)), { profile: basic(), secret: SECRET }).output);
    const a2 = identityOf(processObject(makeBytes(objectOf('PID-A', 'Smith^John', 2)), { profile: basic(), secret: SECRET }).output);
    const b = identityOf(processObject(makeBytes(objectOf('PID-B', 'Doe^Jane', 3)), { profile: basic(), secret: SECRET }).output);
    expect(a2.id).toBe(a1.id);
    expect(a2.name).toBe(a1.name);
    expect(b.id).not.toBe(a1.id);
    expect(b.name).not.toBe(a1.name);
    expect(a2.study).not.toBe(a1.study);
    // Another site secret, other pseudonyms.
    const other = identityOf(processObject(makeBytes(objectOf('PID-A', 'Smith^John', 1)), { profile: basic(), secret: Buffer.from('another-site-secret-0123456789') }).output);
    expect(other.id).not.toBe(a1.id);
  });

  it('should map the same way in separate runs of the CLI, and give one output folder per patient', () => {
    const tmp = tempDir();
    try {
      const inDir = join(tmp.path, 'in');
      mkdirSync(inDir);
      const patients = [['PID-A', 'Smith^John'], ['PID-B', 'Doe^Jane'], ['PID-C', 'Roe^Richard']];
      patients.forEach(([id, name], i) => {
        writeFileSync(join(inDir, `${i}a.dcm`), makeBytes(objectOf(id, name, 10 + i)));
        writeFileSync(join(inDir, `${i}b.dcm`), makeBytes(objectOf(id, name, 20 + i)));
      });
      const secretFile = join(tmp.path, 'secret');
      writeFileSync(secretFile, 'a-site-secret-for-tests-0123456789\n');
      const runOnce = (name: string) => {
        const r = spawnSync(process.execPath, [CLI, 'run', inDir, '--out', join(tmp.path, name), '--quarantine', join(tmp.path, `q-${name}`), '--secret-file', secretFile], { encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        const ids = readdirSync(join(tmp.path, name), { recursive: true, withFileTypes: true })
          .filter((d) => d.isFile())
          .map((d) => identityOf(readFileSync(join(d.parentPath, d.name))).id);
        return new Set(ids);
      };
      const first = runOnce('a');
      expect(first.size).toBe(3);
      expect(runOnce('b')).toEqual(first);
    } finally {
      tmp.cleanup();
    }
  });

  it('should show one patient per source patient in a real PACS (Orthanc)', async () => {
    const orthanc = await startOrthanc();
    try {
      let study = 100;
      for (const [id, name] of [['PID-A', 'Smith^John'], ['PID-B', 'Doe^Jane'], ['PID-C', 'Smith^John']]) {
        for (let i = 0; i < 2; i++) {
          const out = processObject(makeBytes(objectOf(id, name, study++)), { profile: loadProfile('basic'), secret: SECRET }).output;
          const r = await fetch(`${orthanc.httpUrl}/instances`, { method: 'POST', body: out });
          expect(r.ok).toBe(true);
        }
      }
      const stats = await orthanc.get<{ CountPatients: number; CountStudies: number; CountInstances: number }>('/statistics');
      // Two patients of the same name stay two: PACS tell patients apart by PatientID.
      expect(stats).toMatchObject({ CountPatients: 3, CountStudies: 6, CountInstances: 6 });
    } finally {
      await orthanc.stop();
    }
  });

  it('should let a profile of the user choose a fixed dummy instead', () => {
    const f = tempFolder({ 'p.yaml': 'name: fixed\nextends: basic\nrules:\n  - { select: PatientID, action: { set: "SUBJECT-01" } }\n' });
    try {
      const out = identityOf(processObject(makeBytes(objectOf('PID-A', 'Smith^John', 1)), { profile: loadProfile(f.path('p.yaml')), secret: SECRET }).output);
      expect(out.id).toBe('SUBJECT-01');
      expect(out.name).toMatch(PATIENT_NAME);
    } finally {
      f.cleanup();
    }
  });

  it('should record the pseudonyms in the generated profile next to the Table E.1-1 code', () => {
    const yaml = readFileSync(join(REPO_ROOT, 'profiles/basic.yaml'), 'utf8');
    expect(yaml).toContain('- { select: "(0010,0020)", action: Z/D, pseudonym: { length: 16 }, name: "Patient ID" }');
    expect(yaml).toContain('- { select: "(0010,0010)", action: Z, pseudonym: { prefix: "ANON^", length: 10 }, name: "Patient\'s Name" }');
    expect(yaml).toContain('- { select: "(0020,0010)", action: Z, pseudonym: { length: 10 }, name: "Study ID" }');
    // Only these three: every other row writes what Table E.1-1 says.
    expect(yaml.match(/pseudonym:/g)).toHaveLength(4); // three rules and the header comment
  });
});
