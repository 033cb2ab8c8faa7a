import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { processObject } from '../src/pipeline/process-object.js';
import { loadProfile, withKeptIdentifiers } from '../src/profiles/profile.js';
import { createDestination } from '../src/export/index.js';
import { buildPipeline } from '../src/pipeline/assemble.js';
import { FileStudyTracker } from '../src/pipeline/studies.js';
import { CLI, corpusFile, tempDir } from './helpers/corpus.js';
import { SECRET, baseDataset, el, makeBytes } from './helpers/dicom-builder.js';

const tmp = tempDir();
afterAll(tmp.cleanup);

/** A site profile that keeps the birth date and the institution, and cleans the study description. */
const KEEPS = 'name: keeps\nextends: basic\nrules:\n  - { select: PatientBirthDate, action: K }\n  - { select: InstitutionName, action: keep }\n  - { select: StudyDescription, action: clean }\n';
const keepsPath = join(tmp.path, 'keeps.yaml');
writeFileSync(keepsPath, KEEPS);
const secretFile = join(tmp.path, 'secret');
writeFileSync(secretFile, 'a-site-secret-for-tests-0123456789\n');

function deid(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('profiles that keep what Table E.1-1 removes or replaces', () => {
  it('should list each such attribute with its name, its Table E.1-1 action and what the profile does', () => {
    const kept = withKeptIdentifiers(loadProfile(keepsPath)).keptIdentifiers!;
    expect(kept.map((k) => [k.select, k.name, k.tableAction, k.action])).toEqual([
      ['(0008,0080)', 'Institution Name', 'X/Z/D', 'keep'],
      ['(0008,1030)', 'Study Description', 'X', 'clean'],
      ['(0010,0030)', "Patient's Birth Date", 'Z', 'keep'],
    ]);
  });

  it('should list nothing for the built-in profiles, whose retains are options of the standard', () => {
    expect(withKeptIdentifiers(loadProfile('basic')).keptIdentifiers).toEqual([]);
    expect(withKeptIdentifiers(loadProfile('research')).keptIdentifiers).toEqual([]);
    expect(withKeptIdentifiers(loadProfile('basic', ['retain-institution-identity'])).keptIdentifiers).toEqual([]);
  });

  it('should list a private element a rule keeps, and every attribute for a profile that does not extend basic', () => {
    const p = join(tmp.path, 'private.yaml');
    writeFileSync(p, 'name: csa\nextends: basic\nrules:\n  - { select: \'(0029,"SIEMENS CSA HEADER",10)\', action: keep }\n');
    expect(withKeptIdentifiers(loadProfile(p)).keptIdentifiers!.map((k) => [k.select, k.tableAction])).toEqual([['(0029,"SIEMENS CSA HEADER",10)', 'X']]);
    const bare = join(tmp.path, 'bare.yaml');
    writeFileSync(bare, 'name: bare\nrules:\n  - { select: PatientName, action: Z }\n');
    const kept = withKeptIdentifiers(loadProfile(bare)).keptIdentifiers!;
    expect(kept.length).toBeGreaterThan(400);
    expect(kept.some((k) => k.name === 'Patient ID')).toBe(true);
    expect(kept.some((k) => k.name === "Patient's Name")).toBe(false);
  });

  it("should record in each object's facts, as warnings, the kept attributes it holds", () => {
    const profile = withKeptIdentifiers(loadProfile(keepsPath));
    const r = processObject(makeBytes(baseDataset([el('InstitutionName', 'LO', 'General Hospital')])), { profile, secret: SECRET });
    expect(r.facts.warnings).toEqual([
      { kind: 'kept-identifier', detail: '(0008,0080) Institution Name' },
      { kind: 'kept-identifier', detail: "(0010,0030) Patient's Birth Date" },
    ]);
    const none = processObject(makeBytes(baseDataset()), { profile: withKeptIdentifiers(loadProfile('basic')), secret: SECRET });
    expect(none.facts.warnings).toBeUndefined();
  });

  it('deid run should warn at start-up and still run; --strict should refuse before touching a file', () => {
    const input = corpusFile('pydicom/CT_small.dcm');
    const out = join(tmp.path, 'out');
    const r = deid(['run', input, '--out', out, '--quarantine', join(tmp.path, 'q'), '--profile', keepsPath, '--secret-file', secretFile]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("warning: profile 'keeps' keeps 3 attribute(s) that PS3.15 Table E.1-1 removes or replaces");
    expect(r.stderr).toMatch(/\(0010,0030\)\s+Patient's Birth Date \(Table E\.1-1: Z; profile: keep\)/);
    expect(r.stderr).toMatch(/\(0008,0080\)\s+Institution Name \(Table E\.1-1: X\/Z\/D; profile: keep\)/);

    const strictOut = join(tmp.path, 'strict-out');
    const s = deid(['run', input, '--out', strictOut, '--quarantine', join(tmp.path, 'q2'), '--profile', keepsPath, '--secret-file', secretFile, '--strict']);
    expect(s.code).toBe(1);
    expect(s.stderr).toContain('DEID_ERR_PROFILE_KEEPS_IDENTIFIERS');
    expect(s.stderr).toContain('(0010,0030)');
    expect(existsSync(strictOut) ? readdirSync(strictOut) : []).toEqual([]);

    const quiet = deid(['run', input, '--out', join(tmp.path, 'out3'), '--quarantine', join(tmp.path, 'q3'), '--secret-file', secretFile, '--strict']);
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stderr).not.toContain('warning');
  });

  it('deid profiles --check should validate a profile and list what it keeps', () => {
    const r = deid(['profiles', '--check', keepsPath]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("profile 'keeps': valid");
    expect(r.stdout).toContain('keeps 3 attribute(s)');
    expect(r.stderr).toContain("Patient's Birth Date");
    expect(deid(['profiles', '--check', keepsPath, '--strict']).code).toBe(1);
    const basic = deid(['profiles', '--check', 'basic']);
    expect(basic.code).toBe(0);
    expect(basic.stdout).toContain('keeps nothing that Table E.1-1 removes or replaces');
    const bad = join(tmp.path, 'bad.yaml');
    writeFileSync(bad, 'name: bad\nrules:\n  - { select: NoSuchKeyword, action: X }\n');
    const invalid = deid(['profiles', '--check', bad]);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain('DEID_ERR_PROFILE_INVALID');
  });

  it('the service should log the list at start-up, and refuse to start with strict: true', async () => {
    const dataDir = join(tmp.path, 'svc');
    mkdirSync(dataDir, { recursive: true });
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    const cfg = loadConfig({ dataDir, profile: keepsPath }, {});
    const tracker = new FileStudyTracker(join(dataDir, 'studies.json'));
    const built = buildPipeline(cfg, { tracker, log, destination: createDestination });
    await built.close();
    const warning = lines.map((l) => JSON.parse(l)).find((l) => l.kept);
    expect(warning.msg).toContain('keeps attributes that PS3.15 Table E.1-1 removes or replaces');
    expect(warning.kept).toHaveLength(3);

    const strict = loadConfig({ dataDir, profile: keepsPath, strict: true }, {});
    expect(() => buildPipeline(strict, { tracker, log, destination: createDestination })).toThrow(/DEID_ERR_PROFILE_KEEPS_IDENTIFIERS/);
    const cfgFile = join(tmp.path, 'deid.yaml');
    writeFileSync(cfgFile, `dataDir: ${dataDir}\nstrict: true\n`);
    expect(loadConfig({ config: cfgFile }, {}).strict).toBe(true);
  });
});
