/**
 * Golden outputs of each built-in profile: a reviewable listing of what the pipeline writes for real
 * corpus files (test-data/golden/<profile>/<file>.txt), or the code it quarantines them with. Any change
 * to an output shows here, line by line. After an intended change, regenerate with
 * `UPDATE_GOLDEN=1 npx vitest run test/golden.test.ts` and review the diff.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { toDeidError } from '../src/errors.js';
import { processObject } from '../src/pipeline/process-object.js';
import { listBuiltinProfiles, loadProfile } from '../src/profiles/profile.js';
import { REPO_ROOT, corpusFile } from './helpers/corpus.js';
import { goldenListing } from './helpers/golden.js';

const GOLDEN = join(REPO_ROOT, 'test-data', 'golden');
const UPDATE = process.env.UPDATE_GOLDEN === '1';
// A fixed secret: the golden UIDs, pseudonyms and date offsets are its mapping.
const SECRET = Buffer.from('golden-files-secret-0123456789ab');

/** Explicit and big-endian images, a structured report, an RT plan with references, a private-sequence file and a real CT and XR with realistic header PHI. */
const INPUTS = [
  'pydicom/CT_small.dcm',
  'pydicom/MR_small_bigendian.dcm',
  'pydicom/reportsi.dcm',
  'pydicom/rtplan.dcm',
  'pydicom/nested_priv_SQ.dcm',
  'tcia-burned-in/3209648408_09-23-1999-CT_UROGRAM-31798_3_000000-PARENCHYMAL_PHASE_Sep1999-95798_1-001.dcm',
  'tcia-burned-in/292821506_07-13-2013-XR_CHEST_AP_PORTABLE_for_Douglas_Davidson-46198_1001_000000-37718_1-1.dcm',
];

/** A golden file's name: the corpus folder and file, without the descriptive (pseudo-PHI) part of TCIA's long names. */
function goldenName(rel: string): string {
  const base = basename(rel, '.dcm');
  return `${rel.split('/')[0]}-${base.length > 24 ? base.split('_')[0] : base}.txt`;
}

function outcome(profile: string, rel: string): string {
  try {
    return goldenListing(processObject(readFileSync(corpusFile(rel)), { profile: loadProfile(profile), secret: SECRET }).output);
  } catch (e) {
    return `quarantined: ${toDeidError(e).code}\n`;
  }
}

const profiles = listBuiltinProfiles().map((p) => p.name);

describe.each(profiles)('the golden outputs of the built-in profile %s', (profile) => {
  const dir = join(GOLDEN, profile);
  if (UPDATE) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
  }

  it.each(INPUTS)('should write %s as its golden file says', (rel) => {
    const path = join(dir, goldenName(rel));
    const got = outcome(profile, rel);
    if (UPDATE) writeFileSync(path, got);
    expect(existsSync(path), `${path} is missing: regenerate with UPDATE_GOLDEN=1`).toBe(true);
    expect(got).toBe(readFileSync(path, 'utf8'));
  });

  it('should have a golden file for every input and no other', () => {
    expect(readdirSync(dir).sort()).toEqual(INPUTS.map(goldenName).sort());
  });
});

describe('the golden files', () => {
  it('should cover every built-in profile', () => {
    expect(profiles.length).toBeGreaterThanOrEqual(2);
    expect(readdirSync(GOLDEN).sort()).toEqual([...profiles].sort());
  });
});
