import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findElement } from '../src/dicom/element.js';
import { readDicom } from '../src/dicom/reader.js';
import { TAG } from '../src/dicom/tag.js';
import { rawString } from '../src/dicom/values.js';
import { processObject } from '../src/pipeline/process-object.js';
import { loadProfile } from '../src/profiles/profile.js';
import { loadSecret } from '../src/secret.js';
import { CLI, corpusFile, tempDir } from './helpers/corpus.js';
import { writeStudy } from './helpers/study.js';

function deid(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name))
    .sort();
}

const uidOf = (path: string, tag: number) => rawString(findElement(readDicom(readFileSync(path)).dataset, tag)?.value);

describe('deid CLI', () => {
  const tmp = tempDir();
  const inDir = join(tmp.path, 'in');
  const secretFile = join(tmp.path, 'secret');
  afterAll(tmp.cleanup);

  beforeAll(() => {
    mkdirSync(join(inDir, 'nested'), { recursive: true });
    copyFileSync(corpusFile('pydicom/CT_small.dcm'), join(inDir, 'ct.dcm'));
    copyFileSync(corpusFile('pydicom/MR_small.dcm'), join(inDir, 'nested', 'mr.dcm'));
    writeFileSync(join(inDir, 'notes.txt'), 'not a DICOM file');
    writeFileSync(join(inDir, 'nested', 'cut.dcm'), readFileSync(corpusFile('pydicom/CT_small.dcm')).subarray(0, 3000));
    writeFileSync(secretFile, 'a-site-secret-for-tests-0123456789\n');
  });

  it('should de-identify good files, quarantine bad ones with a reason, and exit 2', () => {
    const out = join(tmp.path, 'out1');
    const q = join(tmp.path, 'q1');
    const r = deid(['run', inDir, '--out', out, '--quarantine', q, '--secret-file', secretFile]);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/4 file\(s\): 2 de-identified, 2 quarantined/);
    expect(r.stdout).toMatch(/DEID_ERR_NOT_DICOM/);
    expect(r.stdout).toMatch(/DEID_ERR_TRUNCATED/);
    expect(r.stdout).toMatch(/files\/s/);
    const outputs = listFiles(out);
    expect(outputs).toHaveLength(2);
    for (const f of outputs) {
      const ds = readDicom(readFileSync(f)).dataset;
      expect(rawString(findElement(ds, 0x00120062)?.value)).toBe('YES');
      expect(f).toMatch(/2\.25\.\d+\/2\.25\.\d+\/2\.25\.\d+\.dcm$/);
    }
    const quarantined = listFiles(q);
    expect(quarantined.filter((f) => f.endsWith('.reason.json'))).toHaveLength(2);
    const reasons = quarantined.filter((f) => f.endsWith('.reason.json')).map((f) => JSON.parse(readFileSync(f, 'utf8')).code).sort();
    expect(reasons).toEqual(['DEID_ERR_NOT_DICOM', 'DEID_ERR_TRUNCATED']);
    // The quarantined copy is the original, byte for byte.
    const notes = quarantined.find((f) => f.endsWith('.dcm') && readFileSync(f, 'utf8') === 'not a DICOM file');
    expect(notes).toBeDefined();
  });

  it('should exit 0 when every file is de-identified, and map the same way on the next run', () => {
    const a = deid(['run', join(inDir, 'ct.dcm'), '--out', join(tmp.path, 'a'), '--quarantine', join(tmp.path, 'qa'), '--secret-file', secretFile]);
    const b = deid(['run', join(inDir, 'ct.dcm'), '--out', join(tmp.path, 'b'), '--quarantine', join(tmp.path, 'qb'), '--secret-file', secretFile]);
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    const [fa] = listFiles(join(tmp.path, 'a'));
    const [fb] = listFiles(join(tmp.path, 'b'));
    expect(readFileSync(fa).equals(readFileSync(fb))).toBe(true);
    expect(uidOf(fa, TAG.SOPInstanceUID)).not.toBe(uidOf(corpusFile('pydicom/CT_small.dcm'), TAG.SOPInstanceUID));
  });

  it('should generate a secret when none is given, say where, and reuse it next time', () => {
    const config = join(tmp.path, 'config');
    const env = { XDG_CONFIG_HOME: config, DEID_SECRET_FILE: '' };
    const first = deid(['run', join(inDir, 'ct.dcm'), '--out', join(tmp.path, 'g1'), '--quarantine', join(tmp.path, 'qg1')], env);
    expect(first.code).toBe(0);
    const secretPath = join(config, 'deid', 'secret');
    expect(first.stderr).toContain(secretPath);
    expect(existsSync(secretPath)).toBe(true);
    const second = deid(['run', join(inDir, 'ct.dcm'), '--out', join(tmp.path, 'g2'), '--quarantine', join(tmp.path, 'qg2')], env);
    expect(second.stderr).not.toContain('generated');
    expect(uidOf(listFiles(join(tmp.path, 'g1'))[0], TAG.SOPInstanceUID)).toBe(uidOf(listFiles(join(tmp.path, 'g2'))[0], TAG.SOPInstanceUID));
    // A different secret maps differently.
    const other = join(tmp.path, 'other-secret');
    writeFileSync(other, 'another-secret-entirely-98765');
    deid(['run', join(inDir, 'ct.dcm'), '--out', join(tmp.path, 'g3'), '--quarantine', join(tmp.path, 'qg3'), '--secret-file', other]);
    expect(uidOf(listFiles(join(tmp.path, 'g3'))[0], TAG.SOPInstanceUID)).not.toBe(uidOf(listFiles(join(tmp.path, 'g1'))[0], TAG.SOPInstanceUID));
  });

  it('should keep one study together: the same source study maps to one new study across files', () => {
    const out = join(tmp.path, 'study');
    const src = join(tmp.path, 'study-in');
    mkdirSync(src);
    const dir = corpusFile('dicomparser/encapsulated/single-frame');
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.dcm'))) copyFileSync(join(dir, f), join(src, f));
    const r = deid(['run', src, '--out', out, '--quarantine', join(tmp.path, 'qs'), '--secret-file', secretFile]);
    expect(r.code).toBe(0);
    const files = listFiles(out).filter((f) => f.endsWith('.dcm'));
    // Two of the five inputs are byte-identical copies: identical objects are written once, never overwritten.
    const distinctInputs = new Set(readdirSync(src).map((f) => readFileSync(join(src, f)).toString('base64')));
    expect(distinctInputs.size).toBe(4);
    expect(files.length).toBe(distinctInputs.size);
    expect(new Set(files.map((f) => uidOf(f, TAG.StudyInstanceUID))).size).toBe(1);
  });

  it('should exit 1 with a coded message for usage and configuration errors', () => {
    const base = [join(inDir, 'ct.dcm'), '--out', join(tmp.path, 'x'), '--quarantine', join(tmp.path, 'qx'), '--secret-file', secretFile];
    expect(deid(['run', join(inDir, 'ct.dcm')]).stderr).toMatch(/DEID_ERR_USAGE/);
    expect(deid(['run', join(inDir, 'ct.dcm')]).code).toBe(1);
    const unknown = deid(['run', ...base, '--option', 'retain-everything']);
    expect([unknown.code, unknown.stderr]).toEqual([1, expect.stringMatching(/DEID_ERR_OPTION_UNKNOWN/)]);
    const profile = deid(['run', ...base, '--profile', 'no-such-profile']);
    expect([profile.code, profile.stderr]).toEqual([1, expect.stringMatching(/DEID_ERR_PROFILE_NOT_FOUND/)]);
    const bad = join(tmp.path, 'bad.yaml');
    writeFileSync(bad, 'name: bad\nrules:\n  - { select: NoSuchKeyword, action: X }\n');
    const invalid = deid(['run', ...base, '--profile', bad]);
    expect([invalid.code, invalid.stderr]).toEqual([1, expect.stringMatching(/DEID_ERR_PROFILE_INVALID.*NoSuchKeyword/)]);
    expect(deid(['run', ...base, '--secret-file', join(tmp.path, 'missing')]).stderr).toMatch(/DEID_ERR_SECRET/);
    expect(existsSync(join(tmp.path, 'x'))).toBe(false);
  });

  it('should share a large run between this thread and workers, each file once, as one thread would', () => {
    const many = join(tmp.path, 'many');
    // 156 distinct objects (more than FILES_PER_THREAD per thread for three threads), and two bad files.
    // Large and small objects alternate, so a reused buffer holding stale bytes would show in the outputs.
    const study = writeStudy(join(many, 'study'), {
      sources: [
        { file: 'pydicom/CT_small.dcm', series: 1, copies: 60 },
        { file: 'dicomparser/CT1_UNC.explicit_little_endian.dcm', series: 3, copies: 6 },
        { file: 'pydicom/CT_small.dcm', series: 1, copies: 60 },
        { file: 'pydicom/MR_small.dcm', series: 2, copies: 30 },
      ],
      patientName: 'MANY^FILES',
      patientId: 'MANY-1',
      studyUid: '1.2.826.0.1.3680043.8.498.77',
    });
    writeFileSync(join(many, 'junk.dcm'), 'not a DICOM file');
    writeFileSync(join(many, 'cut.dcm'), readFileSync(corpusFile('pydicom/MR_small.dcm')).subarray(0, 2000));
    const runWith = (jobs: string) => {
      const out = join(tmp.path, `many-out-${jobs}`);
      const r = deid(['run', many, '--out', out, '--quarantine', join(tmp.path, `many-q-${jobs}`), '--secret-file', secretFile, '--json', '--jobs', jobs]);
      expect(r.code).toBe(2);
      const files = listFiles(out);
      return { summary: JSON.parse(r.stdout.trim()), files: files.map((f) => f.slice(out.length)), bytes: files.map((f) => readFileSync(f)) };
    };
    const threaded = runWith('3');
    const single = runWith('1');
    expect(threaded.summary).toMatchObject({ files: 158, deidentified: 156, quarantined: 2 });
    expect(threaded.files).toHaveLength(156);
    expect(threaded.files).toEqual(single.files);
    threaded.bytes.forEach((b, i) => expect(b.equals(single.bytes[i])).toBe(true));
    // Each output is what the pipeline makes of its input in fresh buffers.
    const profile = loadProfile('basic');
    const key = loadSecret(secretFile).key;
    const expected = new Map(
      study.map((f) => {
        const r = processObject(readFileSync(f.path), { profile, secret: key });
        return [`/${r.studyInstanceUid}/${r.seriesInstanceUid}/${r.sopInstanceUid}.dcm`, r.output];
      }),
    );
    threaded.files.forEach((f, i) => expect(threaded.bytes[i].equals(expected.get(f)!), f).toBe(true));
    // Quarantined originals are kept whole, byte for byte.
    const quarantined = listFiles(join(tmp.path, 'many-q-3')).filter((f) => f.endsWith('.dcm')).map((f) => readFileSync(f));
    expect(quarantined.map((b) => b.length).sort((a, b) => a - b)).toEqual([16, 2000]);
    expect(quarantined.some((b) => b.equals(readFileSync(join(many, 'cut.dcm'))))).toBe(true);
  });

  it('should print the quality-check report for a pair of files', () => {
    const out = join(tmp.path, 'v');
    deid(['run', join(inDir, 'ct.dcm'), '--out', out, '--quarantine', join(tmp.path, 'qv'), '--secret-file', secretFile]);
    const [f] = listFiles(out);
    const pass = deid(['verify', join(inDir, 'ct.dcm'), f]);
    expect(pass.code).toBe(0);
    expect(pass.stdout).toMatch(/quality check: PASS/);
    const fail = deid(['verify', join(inDir, 'ct.dcm'), join(inDir, 'ct.dcm')]);
    expect(fail.code).toBe(2);
    expect(fail.stdout).toMatch(/quality check: FAIL/);
    expect(fail.stdout).toMatch(/DEID_ERR_VERIFY_LEAK\s+\(0010,0010\)/);
    expect(fail.stdout).toMatch(/DEID_ERR_VERIFY_UID/);
    // The report names places, never the patient's values.
    const name = rawString(findElement(readDicom(readFileSync(join(inDir, 'ct.dcm'))).dataset, TAG.PatientName)?.value);
    expect(fail.stdout).not.toContain(name.split('^')[0]);
  });

  it('should list the built-in profiles and every option', () => {
    const r = deid(['profiles']);
    expect(r.code).toBe(0);
    for (const s of ['basic', 'research', 'retain-safe-private', 'retain-uids', 'retain-device-identity', 'retain-institution-identity',
      'retain-patient-characteristics', 'retain-long-full-dates', 'retain-long-modified-dates', 'clean-descriptors',
      'clean-structured-content', 'clean-graphics', '113100']) {
      expect(r.stdout).toContain(s);
    }
  });
});
