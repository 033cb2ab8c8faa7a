import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readDicom } from '../src/dicom/reader.js';
import { translatePixelScript } from '../src/profiles/ctp/pixel-script.js';
import { compileSignature, readSignatureFile } from '../src/profiles/pixel-settings.js';
import { loadProfile } from '../src/profiles/profile.js';
import { matchSignatures, signatureMatches } from '../src/stages/pixels/signatures.js';
import { CLI, corpusFile, tempDir } from './helpers/corpus.js';
import { imageFile, txt } from './helpers/pixels.js';

const tmp = tempDir('deid-ctp-pixels-');
afterAll(tmp.cleanup);

function deid(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** One signature from a condition, and whether it holds on a small image with these attributes. */
function sig(condition: string) {
  const t = translatePixelScript(`Label\n  { ${condition} }\n  (0,0,10,10)\n`);
  return { t, compiled: t.signatures.length ? compileSignature(t.signatures[0], 't') : undefined };
}
const image = imageFile({
  rows: 600,
  columns: 800,
  bitsAllocated: 8,
  photometric: 'MONOCHROME2',
  modality: 'US',
  extra: [txt(0x00080070, 'LO', 'SIEMENS'), txt(0x00081090, 'LO', 'ACUSON S2000'), txt(0x0008103e, 'LO', 'FFR Report'), txt(0x00281051, 'DS', '400')],
});
const holds = (condition: string) => signatureMatches(sig(condition).compiled!, image.dataset);

describe('CTP pixel conditions in our when language', () => {
  it('should keep CTP precedence (+ below *, ! highest), parentheses and negation', () => {
    expect(holds('Modality.equals("US") * Rows.equals("600")')).toBe(true);
    expect(holds('Modality.equals("CT") + Rows.equals("600") * Columns.equals("800")')).toBe(true);
    expect(holds('(Modality.equals("CT") + Rows.equals("600")) * Columns.equals("801")')).toBe(false);
    expect(holds('!Manufacturer.containsIgnoreCase("GE") * !(Rows.equals("1") + Rows.equals("2"))')).toBe(true);
    expect(holds('!(Manufacturer.containsIgnoreCase("siemens") * Rows.equals("600"))')).toBe(false);
    expect(holds('true. * // a comment\n Modality.equals("US")')).toBe(true);
    expect(sig('false.').t.accounts[0].outcome).toBe('untranslatable');
  });

  it('should keep case sensitivity where CTP has it, and anchor matches() as Java does', () => {
    expect(holds('Manufacturer.equals("SIEMENS")')).toBe(true);
    expect(holds('Manufacturer.equals("Siemens")')).toBe(false);
    expect(holds('Manufacturer.equalsIgnoreCase("Siemens")')).toBe(true);
    expect(holds('ManufacturerModelName.contains("acuson")')).toBe(false);
    expect(holds('ManufacturerModelName.containsIgnoreCase("acuson")')).toBe(true);
    expect(holds('ManufacturerModelName.startsWithIgnoreCase("acuson") * ManufacturerModelName.endsWith("S2000")')).toBe(true);
    expect(holds('ManufacturerModelName.matches("S2000")')).toBe(false);
    expect(holds('ManufacturerModelName.matches("ACUSON S[0-9]+")')).toBe(true);
    expect(holds('!ManufacturerModelName.endsWith("s2000")')).toBe(true);
  });

  it('should translate numeric comparisons, bracketed tags, missing attributes and attribute repeats', () => {
    expect(holds('WindowWidth.isGreaterThan("399") * WindowWidth.isLessThan("401")')).toBe(true);
    expect(sig('WindowWidth.isGreaterThan("399")').t.accounts[0].outcome).toBe('approximated');
    expect(holds('[0008,103E].containsIgnoreCase("ffr") * [0028,0010].equals("600")')).toBe(true);
    expect(sig('[0008,103E].containsIgnoreCase("ffr")').t.signatures[0].when).toEqual({ SeriesDescription: { contains: 'ffr' } });
    // CTP reads a missing element as "": equals("") holds, contains() does not.
    expect(holds('StationName.equals("")')).toBe(true);
    expect(holds('StationName.contains("X")')).toBe(false);
    expect(holds('SeriesDescription.containsIgnoreCase("FFR") * !SeriesDescription.containsIgnoreCase("CT")')).toBe(true);
    expect(sig('SeriesDescription.containsIgnoreCase("FFR") * !SeriesDescription.containsIgnoreCase("CT")').t.signatures[0].when).toHaveLength(2);
  });

  it('should factor common terms into when and the alternatives into anyOf', () => {
    const { t } = sig('Manufacturer.containsIgnoreCase("VITAL Images") * ( SeriesDescription.containsIgnoreCase("AAA") + SeriesDescription.containsIgnoreCase("Report") ) * Rows.equals("1041")');
    expect(t.signatures[0]).toMatchObject({
      when: { Manufacturer: { contains: 'VITAL Images' }, Rows: 1041 },
      anyOf: [{ SeriesDescription: { contains: 'AAA' } }, { SeriesDescription: { contains: 'Report' } }],
    });
  });

  it('should drop what it cannot express from its alternative (the signature then matches more images), and report it', () => {
    const { t, compiled } = sig('Modality.equals("US") * SequenceOfUltrasoundRegions::RegionLocationMinY0.equals("0") * Manufacturer.looksLike("X")');
    expect(t.accounts[0]).toMatchObject({ outcome: 'untranslatable', note: expect.stringMatching(/dropped.*::.*looksLike/s) });
    expect(t.signatures[0].when).toEqual({ Modality: { equals: 'US', caseSensitive: true } });
    expect(signatureMatches(compiled!, image.dataset)).toBe(true);
    expect(translatePixelScript('x\n { Modality.equals("US" }\n (0,0,1,1)').accounts[0]).toMatchObject({ outcome: 'untranslatable', note: expect.stringMatching(/skipped/) });
    expect(translatePixelScript('x\n { Modality.equals("US") }\n (0,0,1)').accounts.map((a) => a.outcome)).toEqual(['untranslatable', 'untranslatable']);
  });
});

describe.each(['DicomPixelAnonymizer.script', 'example-dicom-pixel-anonymizer.script'])('deid import ctp-pixels %s', (file) => {
  const out = join(tmp.path, file.replace(/\.script$/, '.yaml'));

  it('should translate every signature with its regions, and write a list a profile loads', () => {
    const text = readFileSync(corpusFile(`ctp/${file}`), 'utf8');
    const r = deid(['import', 'ctp-pixels', corpusFile(`ctp/${file}`), '-o', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { signatures: number; total: number; untranslatable: number; accounts: Array<{ line: number }> };
    const blocks = (text.match(/\{[^}]*\}/g) ?? []).length;
    expect(report.signatures).toBe(blocks);
    expect(report.total).toBe(blocks);
    expect(report.untranslatable).toBe(0);
    const lines = text.split('\n');
    for (const a of report.accounts) expect(lines[a.line - 1]).toContain('{');
    const sigs = readSignatureFile(out);
    expect(sigs).toHaveLength(blocks);
    // Regions as CTP wrote them, in order: every (x,y,w,h) after each condition.
    const regions = (text.match(/\(\s*\d+\s*,\s*\d+\s*,\s*\d+\s*,\s*\d+\s*\)/g) ?? []).length;
    expect(sigs.reduce((n, s) => n + s.regions.length, 0)).toBe(regions);
    console.log(`${file}: ${report.signatures} signatures, ${regions} regions, ${report.untranslatable} untranslatable`);
  });

  it('should match the corpus ultrasound devices to the regions CTP has for them', () => {
    const sigs = readSignatureFile(out);
    const names = (rel: string) => {
      const f = readDicom(readFileSync(corpusFile(rel)));
      return matchSignatures(sigs, f.dataset, 1024, 768, f.meta).map((h) => [h.name, h.boxes]);
    };
    expect(names('deid-data/ultrasounds/GREYSCALE_IMAGE.dcm')).toEqual([[expect.stringMatching(/^US \/ Philips \/ EPIQ 7G/), [{ x0: 0, y0: 0, x1: 1024, y1: 49 }]]]);
    expect(names('deid-data/ultrasounds/RGB_IMAGE.dcm')).toEqual([[expect.stringMatching(/^US \/ Siemens/), [{ x0: 0, y0: 0, x1: 1024, y1: 60 }]]]);
    expect(names('pydicom/CT_small.dcm')).toEqual([]);
  });
});

describe('CTP pixel regions in the pixel stage', () => {
  it('should clean the corpus ultrasound images with the imported regions alone (no OCR), and pass the re-read check', () => {
    const list = join(tmp.path, 'DicomPixelAnonymizer.yaml');
    if (!existsSync(list)) expect(deid(['import', 'ctp-pixels', corpusFile('ctp/DicomPixelAnonymizer.script'), '-o', list]).code).toBe(0);
    const profile = join(tmp.path, 'ctp-regions.yaml');
    writeFileSync(profile, 'name: ctp-regions\nextends: basic\noptions: [clean-pixel-data]\npixels:\n  ocr: false\n  builtinSignatures: false\n  signatureFiles: [DicomPixelAnonymizer.yaml]\n');
    expect(loadProfile(profile).pixels!.signatures.length).toBeGreaterThan(40);
    const secret = join(tmp.path, 'secret');
    writeFileSync(secret, 'ctp-pixels-test-secret-0123456789\n');
    const r = deid([
      'run',
      corpusFile('deid-data/ultrasounds/GREYSCALE_IMAGE.dcm'),
      corpusFile('deid-data/ultrasounds/RGB_IMAGE.dcm'),
      '--profile',
      profile,
      '--out',
      join(tmp.path, 'out'),
      '--quarantine',
      join(tmp.path, 'q'),
      '--secret-file',
      secret,
      '--json',
    ]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ files: 2, deidentified: 2, pixelsCleaned: 2 });
  });

  it('should stop on an untranslatable signature unless --allow-partial, and write nothing then', () => {
    const src = join(tmp.path, 'partial.script');
    writeFileSync(src, 'Vendor\n  { Modality.equals("US") * Manufacturer.looksLike("X") }\n  (0,0,100,20)\n');
    const out = join(tmp.path, 'partial.yaml');
    const r = deid(['import', 'ctp-pixels', src, '-o', out]);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/line 2: .*looksLike/);
    expect(r.stderr).toMatch(/DEID_ERR_IMPORT_PARTIAL/);
    expect(existsSync(out)).toBe(false);
    expect(deid(['import', 'ctp-pixels', src, '-o', out, '--allow-partial']).code).toBe(0);
    expect(readFileSync(out, 'utf8')).toMatch(/UNTRANSLATABLE:\n# {3}line 2: /);
    expect(readSignatureFile(out)[0].groups[0].map((c) => c.name)).toEqual(['Modality']);
  });
});
