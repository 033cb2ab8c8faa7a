import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findElement, type Dataset } from '../src/dicom/element.js';
import { readDicom } from '../src/dicom/reader.js';
import { TAG } from '../src/dicom/tag.js';
import { rawString, textValue } from '../src/dicom/values.js';
import { remapUid } from '../src/keyed.js';
import { loadProfile } from '../src/profiles/profile.js';
import { charsetOf } from '../src/stages/identifiers.js';
import { verifyAgainstSource } from '../src/stages/verify.js';
import { CLI, corpusFile, corpusFiles, tempDir, TESTDATA } from './helpers/corpus.js';

/**
 * Every CTP anonymizer script and profile of ../shared/testdata/ctp/ through `deid import ctp`, and the
 * resulting profile through `deid run` over the whole shared corpus. Every output the run writes is
 * checked again, independently of the run, with the quality check `deid verify` uses.
 */

const tmp = tempDir('deid-ctp-');
afterAll(tmp.cleanup);
const SECRET_TEXT = 'ctp-import-test-secret-0123456789';
const secretFile = join(tmp.path, 'secret');

function deid(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The sources of the corpus that parse, by their SOP Instance UID. */
const sources = new Map<string, Array<{ rel: string; bytes: Buffer }>>();
const unUidSources: Array<{ rel: string; bytes: Buffer }> = [];
// HOSTILE_SIZE: pydicom/SC_rgb_jpeg.dcm declares a length beyond the 1 GiB object limit.
const REFUSALS = new Set(['DEID_ERR_NOT_DICOM', 'DEID_ERR_DICOMDIR', 'DEID_ERR_MISSING_SOP_INSTANCE_UID', 'DEID_ERR_TRUNCATED', 'DEID_ERR_MISSING_TRANSFER_SYNTAX', 'DEID_ERR_BURNED_IN', 'DEID_ERR_HOSTILE_SIZE', 'DEID_ERR_TEXT_PRONE']);

/** A CTP lookup table for TCIA-Basic's @lookup(this,ptid): every PatientID of the corpus, as a site would map them. */
function writeLookupTable(path: string): number {
  const ids = new Set<string>();
  for (const list of sources.values()) {
    for (const s of list) {
      const ds = readDicom(s.bytes).dataset;
      const e = findElement(ds, TAG.PatientID);
      if (e) ids.add(textValue(e, charsetOf(ds)).trim());
    }
  }
  const esc = (k: string) => k.replace(/([\\=: #!])/g, '\\$1');
  writeFileSync(path, ['# test table', ...[...ids].map((id, i) => `ptid/${esc(id)} = SUBJ-${String(i + 1).padStart(4, '0')}`)].join('\n') + '\n');
  return ids.size;
}

type Summary = { files: number; deidentified: number; quarantined: number; reasons: Record<string, number> };

function runCorpus(profile: string, name: string): Summary & { out: string } {
  const out = join(tmp.path, `out-${name}`);
  const r = deid(['run', TESTDATA, '--profile', profile, '--out', out, '--quarantine', join(tmp.path, `q-${name}`), '--secret-file', secretFile, '--json']);
  expect([0, 2], r.stderr).toContain(r.code);
  return { ...(JSON.parse(r.stdout) as Summary), out };
}

function listOutputs(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() && d.name.endsWith('.dcm'))
    .map((d) => join(d.parentPath, d.name));
}

/** Re-checks every written output against its source with the quality check of `deid verify`. */
function verifyOutputs(out: string, profilePath: string): number {
  const profile = loadProfile(profilePath);
  const secret = Buffer.from(SECRET_TEXT, 'utf8');
  const byNewUid = new Map<string, Array<{ rel: string; bytes: Buffer }>>();
  for (const [uid, list] of sources) byNewUid.set(remapUid(secret, uid), list);
  // A SOP Instance UID read as UN (pydicom's rtdose_rle*.dcm) comes out as a dummy: the output has no UID to be named by.
  byNewUid.set('', unUidSources);
  let checked = 0;
  for (const path of listOutputs(out)) {
    const uid = path.split('/').pop()!.replace(/(-[0-9a-f]{12})?\.dcm$/, '');
    const candidates = byNewUid.get(uid) ?? [];
    expect(candidates.length, `${path}: no source maps to it`).toBeGreaterThan(0);
    const output = readFileSync(path);
    const passes = candidates.some((c) => {
      return verifyAgainstSource(readDicom(c.bytes), output, profile).ok;
    });
    expect(passes, `${candidates[0].rel}: the output fails the quality check`).toBe(true);
    checked++;
  }
  return checked;
}

const sopOf = (ds: Dataset) => rawString(findElement(ds, TAG.SOPInstanceUID)?.value).trim();

/** The entries of a script counted from its text alone: every <e>, <k> and <r> element. */
const entriesIn = (text: string) => (text.replace(/<!--[\s\S]*?-->/g, '').match(/<(e|k|r)\s/g) ?? []).length;

let basic: Summary;
let lookupPath = '';

beforeAll(() => {
  writeFileSync(secretFile, SECRET_TEXT + '\n');
  for (const rel of corpusFiles()) {
    const bytes = readFileSync(corpusFile(rel));
    try {
      const ds = readDicom(bytes).dataset;
      const uid = sopOf(ds);
      if (!uid) continue;
      if (findElement(ds, TAG.SOPInstanceUID)?.vr !== 'UI') unUidSources.push({ rel, bytes });
      else sources.set(uid, [...(sources.get(uid) ?? []), { rel, bytes }]);
    } catch {
      // not a DICOM file the reader takes: the run refuses it too
    }
  }
  lookupPath = join(tmp.path, 'LookupTable.properties');
  expect(writeLookupTable(lookupPath)).toBeGreaterThan(20);
  basic = runCorpus('basic', 'basic');
}, 120_000);

interface Case {
  readonly file: string;
  /** Exit code of the plain import. */
  readonly exit: 0 | 2;
  /** The flags that complete the import, when the plain one stops. */
  readonly complete?: (lookup: string) => string[];
  readonly untranslatableAfter?: number;
  /** Quarantine codes the run may give beyond the corpus's own refusals (the same as the basic profile's). */
  readonly alsoQuarantined?: readonly string[];
}

const CASES: readonly Case[] = [
  { file: 'example-ctp-dicom-anonymizer.script', exit: 0 },
  { file: 'DicomServiceAnonymizer.script', exit: 0 },
  { file: 'DICOM-PS3.15-Basic', exit: 0 },
  // A placeholder DATEINC ("Change this to a negative number beyond -30000") and a conditional @quarantine.
  { file: 'NBIA.script', exit: 2, complete: () => ['--param', 'DATEINC=-30001', '--allow-partial'], untranslatableAfter: 1 },
  // A placeholder DATEINC, @lookup of PatientID, and PatientName looked up by PatientID (untranslatable).
  // The script keeps every private group: the quality check quarantines what they leak.
  { file: 'TCIA-Basic', exit: 2, complete: (l) => ['--param', 'DATEINC=-2000', '--lookup', l, '--allow-partial'], untranslatableAfter: 1, alsoQuarantined: ['DEID_ERR_VERIFY_LEAK'] },
];

describe.each(CASES)('deid import ctp $file', (c) => {
  const profilePath = join(tmp.path, `${c.file.replace(/\W+/g, '-')}.yaml`);
  let report: { written: boolean; total: number; enabled: number; untranslatable: number; share: number; accounts: Array<{ line: number; outcome: string; note?: string }> };

  it('should account for every rule of the script, each with its line, and stop when some rule has no translation', () => {
    const text = readFileSync(corpusFile(`ctp/${c.file}`), 'utf8');
    const r = deid(['import', 'ctp', corpusFile(`ctp/${c.file}`), '-o', profilePath, '--json']);
    expect(r.code, r.stderr).toBe(c.exit);
    report = JSON.parse(r.stdout);
    expect(report.total).toBe(entriesIn(text));
    const lines = text.split('\n');
    for (const a of report.accounts) {
      expect(lines[a.line - 1], `line ${a.line}`).toMatch(/<(e|k|r)\s/);
      if (a.outcome !== 'translated') expect(a.note, `line ${a.line}`).toBeTruthy();
    }
    expect(report.written).toBe(c.exit === 0);
    expect(existsSync(profilePath)).toBe(c.exit === 0);
    if (c.exit === 2) expect(r.stderr).toMatch(/DEID_ERR_IMPORT_PARTIAL/);
  });

  it.runIf(c.complete)('should write the profile once the missing parameters and tables are given, listing what is left', () => {
    const r = deid(['import', 'ctp', corpusFile(`ctp/${c.file}`), '-o', profilePath, '--json', ...c.complete!(lookupPath)]);
    expect(r.code, r.stderr).toBe(0);
    report = JSON.parse(r.stdout);
    expect(report.untranslatable).toBe(c.untranslatableAfter);
    const written = readFileSync(profilePath, 'utf8');
    for (const a of report.accounts.filter((x) => x.outcome === 'untranslatable')) expect(written).toContain(`line ${a.line}:`);
  });

  it('should run over the shared corpus with every output passing the quality check', () => {
    expect(loadProfile(profilePath).name).toBeTruthy();
    const run = runCorpus(profilePath, c.file.replace(/\W+/g, '-'));
    const allowed = new Set([...REFUSALS, ...(c.alsoQuarantined ?? [])]);
    const unexpected = Object.keys(run.reasons).filter((code) => !allowed.has(code));
    expect(unexpected).toEqual([]);
    if (!c.alsoQuarantined) {
      // Clean: every object the Basic Profile de-identifies, this profile does too.
      expect(run.deidentified).toBe(basic.deidentified);
      expect(run.reasons).toEqual(basic.reasons);
    }
    // Identical outputs (one image in several transfer syntaxes) are written once, so there are fewer files than objects.
    const checked = verifyOutputs(run.out, profilePath);
    expect(checked).toBeGreaterThan(0.9 * run.deidentified);
    expect(checked).toBeLessThanOrEqual(run.deidentified);
    console.log(`${c.file}: ${report.enabled} enabled rules, ${(100 * report.share).toFixed(1)}% translated; corpus: ${run.deidentified} de-identified, ${run.quarantined} quarantined ${JSON.stringify(run.reasons)}`);
  });
});

describe('deid import ctp --standalone', () => {
  it('should translate DicomServiceAnonymizer as CTP runs it, and the quality check quarantine what that lets out', () => {
    const profilePath = join(tmp.path, 'dicom-service-standalone.yaml');
    const r = deid(['import', 'ctp', corpusFile('ctp/DicomServiceAnonymizer.script'), '-o', profilePath, '--standalone']);
    expect(r.code, r.stderr).toBe(0);
    expect(loadProfile(profilePath).description).toMatch(/DicomServiceAnonymizer/);
    expect(readFileSync(profilePath, 'utf8')).not.toMatch(/^extends:/m);
    // Unnamed and unchecked attributes pass through as in CTP (ContentCreatorName, RequestedProcedureID, …):
    // the objects where they hold the patient's name or ID are quarantined, never written.
    const run = runCorpus(profilePath, 'dicom-service-standalone');
    expect(run.reasons.DEID_ERR_VERIFY_LEAK).toBeGreaterThan(0);
    expect(run.deidentified + run.reasons.DEID_ERR_VERIFY_LEAK).toBe(basic.deidentified);
    expect(verifyOutputs(run.out, profilePath)).toBeGreaterThan(0.9 * run.deidentified);
    console.log(`DicomServiceAnonymizer.script --standalone: ${run.deidentified} de-identified, ${run.reasons.DEID_ERR_VERIFY_LEAK} quarantined by the quality check`);
  });
});

describe('deid import ctp on bad input', () => {
  it('should refuse a file that is not a script, with the line, and leave nothing behind', () => {
    const bad = join(tmp.path, 'bad.script');
    writeFileSync(bad, '<script>\n <e en="T" t="00100010">@remove()\n');
    const out = join(tmp.path, 'bad.yaml');
    const r = deid(['import', 'ctp', bad, '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/DEID_ERR_IMPORT_SYNTAX.*line 3: <script> is not closed/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(tmp.path).filter((f) => f.includes('.tmp'))).toEqual([]);
    expect(deid(['import', 'ctp', bad]).stderr).toMatch(/DEID_ERR_USAGE/);
    const nowhere = deid(['import', 'ctp', corpusFile('ctp/DICOM-PS3.15-Basic'), '-o', join(tmp.path, 'no', 'such', 'dir.yaml')]);
    expect([nowhere.code, nowhere.stderr]).toEqual([1, expect.stringMatching(/DEID_ERR_OUTPUT/)]);
    expect(deid(['import', 'nonsense']).stderr).toMatch(/DEID_ERR_USAGE/);
  });
});
