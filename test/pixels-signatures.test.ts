import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import jsYaml from 'js-yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { findElement, withElement } from '../src/dicom/element.js';
import { readDicom } from '../src/dicom/reader.js';
import { rawString } from '../src/dicom/values.js';
import { BUILTIN_SIGNATURES, compileSignature, readSignatureFile } from '../src/profiles/pixel-settings.js';
import { loadProfile } from '../src/profiles/profile.js';
import { PROFILE_SCHEMA } from '../src/profiles/schema.js';
import { deidentifyHeader } from '../src/stages/header.js';
import { cleanPixels } from '../src/stages/pixels/clean-pixels.js';
import { selectImage } from '../src/stages/pixels/select.js';
import { matchSignatures, resolveRect, signatureMatches } from '../src/stages/pixels/signatures.js';
import { ultrasoundRegions } from '../src/stages/pixels/us-regions.js';
import { corpusFile } from './helpers/corpus.js';
import { imageFile, pixelSettings, txt, us } from './helpers/pixels.js';

const corpus = (rel: string) => readDicom(readFileSync(corpusFile(rel)));
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function folder(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'deid-sig-'));
  dirs.push(d);
  for (const [k, v] of Object.entries(files)) writeFileSync(join(d, k), v);
  return d;
}
const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
};

describe('signature parsing', () => {
  it('should validate the built-in signature file against the profile schema and compile every entry', () => {
    const doc = jsYaml.load(readFileSync(BUILTIN_SIGNATURES, 'utf8')) as { signatures: unknown[] };
    const validate = new Ajv({ strict: false }).compile({ ...PROFILE_SCHEMA, $id: 'sig-test', $ref: '#/$defs/pixelSignature', type: undefined, required: undefined, properties: undefined, additionalProperties: undefined });
    for (const s of doc.signatures) expect(validate(s), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ name: 'no-regions' })).toBe(false);
    expect(readSignatureFile(BUILTIN_SIGNATURES).length).toBe(doc.signatures.length);
  });

  it('should compile conditions, OR groups and CTP-style rectangles', () => {
    const s = compileSignature(
      {
        name: 'x',
        when: { Manufacturer: { contains: 'acme' }, Rows: 480, '(0008,1090)': { matches: '^model-[0-9]+$' } },
        anyOf: [{ Columns: 640 }, { Columns: { equals: 800 } }],
        regions: [[0, 0, 640, 40], [-200, -30, 200, 30]],
      },
      'test',
    );
    expect(s.groups).toHaveLength(2);
    expect(s.groups[0].map((c) => c.op)).toEqual(['contains', 'equals', 'matches', 'equals']);
    expect(s.regions[1]).toEqual({ x: -200, y: -30, width: 200, height: 30 });
  });

  it.each<[unknown, string]>([
    [{ name: 'a', regions: [[0, 0, 10]] }, 'region with three numbers'],
    [{ name: 'a', regions: [[0, 0, 0, 10]] }, 'zero width'],
    [{ name: 'a', regions: [] }, 'no regions'],
    [{ name: 'a', when: { NotAnAttribute: 'x' }, regions: [[0, 0, 1, 1]] }, 'unknown attribute'],
    [{ name: 'a', when: { Modality: { resembles: 'US' } }, regions: [[0, 0, 1, 1]] }, 'unknown operator'],
    [{ name: 'a', when: { Modality: { equals: 'US', contains: 'U' } }, regions: [[0, 0, 1, 1]] }, 'two operators'],
    [{ name: 'a', when: { Modality: { not: true } }, regions: [[0, 0, 1, 1]] }, 'a modifier without an operator'],
    [{ name: 'a', when: { Modality: { equals: 'US', not: 'yes' } }, regions: [[0, 0, 1, 1]] }, 'a modifier that is not a boolean'],
    [{ name: 'a', when: { Rows: { lessThan: 'many' } }, regions: [[0, 0, 1, 1]] }, 'a comparison without a number'],
    [{ name: 'a', when: [], regions: [[0, 0, 1, 1]] }, 'an empty list of conditions'],
    [{ name: 'a', when: { Modality: { matches: '([' } }, regions: [[0, 0, 1, 1]] }, 'bad regular expression'],
    [{ name: 'a', colour: 'red', regions: [[0, 0, 1, 1]] }, 'unknown field'],
  ])('should refuse an invalid signature (%#: %s) with DEID_ERR_PROFILE_INVALID', (raw, _why) => {
    expect(code(() => compileSignature(raw as never, 'test'))).toBe('DEID_ERR_PROFILE_INVALID');
  });

  it('should load signatures inline and from files next to the profile, through extends, when the profile loads', () => {
    const d = folder({
      'devices.yaml': 'signatures:\n  - name: from-file\n    when: { Modality: XA }\n    regions: [[0, 0, 100, 20]]\n',
      'base.yaml': 'name: base\nextends: basic\npixels:\n  margin: 5\n  signatureFiles: [devices.yaml]\n',
      'site.yaml': 'name: site\nextends: base.yaml\noptions: [clean-pixel-data]\npixels:\n  mode: sensitive-text\n  signatures:\n    - { name: inline, when: { Modality: US }, regions: [[0, 0, 10, 10]] }\n',
    });
    const p = loadProfile(join(d, 'site.yaml'));
    expect(p.pixels?.mode).toBe('sensitive-text');
    expect(p.pixels?.margin).toBe(5);
    const names = p.pixels!.signatures.map((s) => s.name);
    expect(names.slice(0, 2)).toEqual(['inline', 'from-file']);
    expect(names).toContain('philips-epiq-us-1024x768-banner');
  });

  it('should stop at load time on an invalid pixels section or signature file', () => {
    const d = folder({
      'bad-inline.yaml': 'name: bad\nextends: basic\noptions: [clean-pixel-data]\npixels:\n  mode: everything\n',
      'bad-file.yaml': 'name: badfile\nextends: basic\noptions: [clean-pixel-data]\npixels:\n  signatureFiles: [broken.yaml]\n',
      'broken.yaml': 'signatures:\n  - name: b\n    regions: [[0, 0, -5, 5]]\n',
    });
    expect(code(() => loadProfile(join(d, 'bad-inline.yaml')))).toBe('DEID_ERR_PROFILE_INVALID');
    expect(code(() => loadProfile(join(d, 'bad-file.yaml')))).toBe('DEID_ERR_PROFILE_INVALID');
  });
});

describe('signature matching', () => {
  const sigs = readSignatureFile(BUILTIN_SIGNATURES);

  it('should match the built-in signatures to the corpus devices they describe, and not to others', () => {
    const grey = corpus('deid-data/ultrasounds/GREYSCALE_IMAGE.dcm');
    const rgb = corpus('deid-data/ultrasounds/RGB_IMAGE.dcm');
    const ct = corpus('pydicom/CT_small.dcm');
    expect(matchSignatures(sigs, grey.dataset, 1024, 768).map((h) => h.name)).toEqual(['philips-epiq-us-1024x768-banner']);
    expect(matchSignatures(sigs, rgb.dataset, 1024, 768).map((h) => h.name)).toEqual(['siemens-s2000-us-1024x768-header']);
    expect(matchSignatures(sigs, ct.dataset, 128, 128)).toEqual([]);
  });

  it('should test conditions case-insensitively, numbers numerically, and presence', () => {
    const f = imageFile({ rows: 480, columns: 640, bitsAllocated: 8, photometric: 'MONOCHROME2', modality: 'US', extra: [txt(0x00080070, 'LO', 'GE Healthcare'), txt(0x00081090, 'LO', 'LOGIQ E9')] });
    const sig = (when: Record<string, unknown>) => compileSignature({ name: 't', when: when as never, regions: [[0, 0, 1, 1]] }, 't');
    expect(signatureMatches(sig({ Manufacturer: { contains: 'healthcare' }, Rows: '480' }), f.dataset)).toBe(true);
    expect(signatureMatches(sig({ ManufacturerModelName: { startsWith: 'logiq' } }), f.dataset)).toBe(true);
    expect(signatureMatches(sig({ ManufacturerModelName: { matches: 'E[0-9]+$' } }), f.dataset)).toBe(true);
    expect(signatureMatches(sig({ Columns: 641 }), f.dataset)).toBe(false);
    expect(signatureMatches(sig({ DeviceSerialNumber: { present: false } }), f.dataset)).toBe(true);
    expect(signatureMatches(sig({ DeviceSerialNumber: { present: true } }), f.dataset)).toBe(false);
    expect(signatureMatches(sig({ Manufacturer: 'ge healthcare' }), f.dataset)).toBe(true);
  });

  it('should read endsWith, wildcards, numeric comparisons, not, caseSensitive and a repeated attribute', () => {
    const f = imageFile({
      rows: 480,
      columns: 640,
      bitsAllocated: 8,
      photometric: 'MONOCHROME2',
      modality: 'US',
      extra: [txt(0x00080008, 'CS', 'DERIVED\\SECONDARY\\SCREEN SAVE'), txt(0x00080070, 'LO', 'GE Healthcare'), txt(0x00081090, 'LO', 'LOGIQ E9'), txt(0x00281050, 'DS', '40\\50')],
    });
    const holds = (when: unknown) => signatureMatches(compileSignature({ name: 't', when: when as never, regions: [[0, 0, 1, 1]] }, 't'), f.dataset);
    expect(holds({ ManufacturerModelName: { endsWith: 'e9' } })).toBe(true);
    expect(holds({ ManufacturerModelName: { endsWith: 'e9', caseSensitive: true } })).toBe(false);
    expect(holds({ Manufacturer: { contains: 'GE', caseSensitive: true } })).toBe(true);
    // Wildcards: a bare value with `*`, or `like`; each value of a multi-valued attribute is tried.
    expect(holds({ Manufacturer: 'GE*' })).toBe(true);
    expect(holds({ ImageType: '*SCREEN*' })).toBe(true);
    expect(holds({ ImageType: { like: 'SECOND?RY' } })).toBe(true);
    expect(holds({ ImageType: { like: 'second?ry', caseSensitive: true } })).toBe(false);
    expect(holds({ Manufacturer: 'GE' })).toBe(false);
    // Numbers: binary US values and the first value of a DS.
    expect(holds({ Rows: { greaterThan: 479 }, Columns: { lessThan: '641' } })).toBe(true);
    expect(holds({ Rows: { greaterThan: 480 } })).toBe(false);
    expect(holds({ WindowCenter: { lessThan: 41 } })).toBe(true);
    expect(holds({ WindowWidth: { lessThan: 41 } })).toBe(false); // absent: no comparison holds
    // not: the test negated; an absent attribute fails a test, so its negation holds.
    expect(holds({ Manufacturer: { contains: 'siemens', not: true } })).toBe(true);
    expect(holds({ Manufacturer: { contains: 'ge', not: true } })).toBe(false);
    expect(holds({ DeviceSerialNumber: { equals: 'X', not: true } })).toBe(true);
    // The same attribute twice: a list of maps, all of which must hold.
    expect(holds([{ ManufacturerModelName: { startsWith: 'LOGIQ' } }, { ManufacturerModelName: { contains: 'E10', not: true } }])).toBe(true);
    expect(holds([{ ManufacturerModelName: { startsWith: 'LOGIQ' } }, { ManufacturerModelName: { contains: 'E9', not: true } }])).toBe(false);
    const anyOf = compileSignature({ name: 't', when: { Modality: 'US' }, anyOf: [[{ Rows: 1 }, { Columns: 640 }], { Rows: 480 }], regions: [[0, 0, 1, 1]] }, 't');
    expect(anyOf.groups.map((g) => g.length)).toEqual([3, 2]);
    expect(signatureMatches(anyOf, f.dataset)).toBe(true);
  });

  it('should read file meta attributes (ImplementationVersionName) from the meta information it is given', () => {
    const f = corpus('deid-data/ultrasounds/GREYSCALE_IMAGE.dcm');
    const name = rawString(findElement(f.meta, 0x00020013)?.value).trim();
    expect(name.length).toBeGreaterThan(0);
    const sig = compileSignature({ name: 't', when: { ImplementationVersionName: name.slice(0, 3) + '*' }, regions: [[0, 0, 1, 1]] }, 't');
    expect(signatureMatches(sig, f.dataset, undefined, f.meta)).toBe(true);
    expect(signatureMatches(sig, f.dataset)).toBe(false);
    expect(matchSignatures([sig], f.dataset, 1024, 768, f.meta).map((h) => h.name)).toEqual(['t']);
  });

  it('should accept the extended condition forms in the profile schema and refuse two operators in one condition', () => {
    const validate = new Ajv({ strict: false }).compile({ ...PROFILE_SCHEMA, $id: 'sig-test-2', $ref: '#/$defs/pixelSignature', type: undefined, required: undefined, properties: undefined, additionalProperties: undefined });
    const ok = {
      name: 'x',
      when: [{ ImageType: '*SCREEN*' }, { ImageType: { contains: 'DERIVED', not: true, caseSensitive: true } }],
      anyOf: [{ Rows: { lessThan: 500 } }, [{ Columns: { greaterThan: '600' } }, { Manufacturer: { endsWith: 'care' } }]],
      regions: [[0, 0, 1, 1]],
    };
    expect(validate(ok), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ name: 'x', when: { Modality: { equals: 'US', contains: 'U' } }, regions: [[0, 0, 1, 1]] })).toBe(false);
    expect(validate({ name: 'x', when: { Modality: { not: true } }, regions: [[0, 0, 1, 1]] })).toBe(false);
  });

  it('should count negative coordinates from the right and bottom edges, clipped to the image', () => {
    expect(resolveRect({ x: -200, y: -30, width: 200, height: 30 }, 1024, 768)).toEqual({ x0: 824, y0: 738, x1: 1024, y1: 768 });
    expect(resolveRect({ x: 0, y: 0, width: 5000, height: 40 }, 640, 480)).toEqual({ x0: 0, y0: 0, x1: 640, y1: 40 });
  });

  it('should read the ultrasound data areas of the real images (inclusive corners)', () => {
    expect(ultrasoundRegions(corpus('deid-data/ultrasounds/GREYSCALE_IMAGE.dcm').dataset, 1024, 768)).toEqual([{ x0: 14, y0: 38, x1: 1011, y1: 759 }]);
  });
});

describe('which images are cleaned', () => {
  const known = pixelSettings({ scope: 'known', modalities: new Set(['US', 'XA']), sopClasses: new Set(['1.2.840.10008.5.1.4.1.1.7']) });

  it('should clean on BurnedInAnnotation YES, a listed modality or SOP class, a matching signature, or scope all', () => {
    expect(selectImage(corpus('deid-data/ultrasounds/GREYSCALE_IMAGE.dcm').dataset, known)).toMatchObject({ clean: true, why: 'BurnedInAnnotation is YES' });
    expect(selectImage(corpus('deid-data/ultrasounds/RGB_IMAGE.dcm').dataset, known)).toMatchObject({ clean: true, why: 'modality US is known to carry text' });
    const ct = corpus('pydicom/CT_small.dcm').dataset;
    expect(selectImage(ct, known).clean).toBe(false);
    expect(selectImage(ct, { ...known, scope: 'all' }).clean).toBe(true);
    const withSig = { ...known, signatures: [compileSignature({ name: 'ct-overlay', when: { Modality: 'CT' }, regions: [[0, 0, 5, 5]] }, 't')] };
    expect(selectImage(ct, withSig)).toMatchObject({ clean: true, why: 'signature "ct-overlay" matches' });
    const sc = imageFile({ rows: 4, columns: 4, bitsAllocated: 8, photometric: 'MONOCHROME2', modality: 'CT' });
    expect(selectImage(sc.dataset, known)).toMatchObject({ clean: true });
    const burned = withElement(ct, txt(0x00280301, 'CS', 'YES'));
    expect(selectImage(burned, known).clean).toBe(true);
    expect(selectImage(withElement(sc.dataset, us(0x00280010, 4)).filter((e) => e.tag !== 0x7fe00010), known)).toMatchObject({ clean: false, why: 'no pixel data' });
  });

  it('should blank everything outside the ultrasound data areas when ultrasoundRegions is on, and claim 113101', async () => {
    const src = corpus('deid-data/ultrasounds/GREYSCALE_IMAGE.dcm');
    const r = await cleanPixels(src, src, [], { settings: pixelSettings({ ultrasoundRegions: true }) });
    expect(r.report.ultrasoundRegions).toEqual([{ x0: 14, y0: 38, x1: 1011, y1: 759 }]);
    const before = findElement(src.dataset, 0x7fe00010)!.value!;
    const after = findElement(r.file.dataset, 0x7fe00010)!.value!;
    let outsideNotBlack = 0;
    let insideChanged = 0;
    for (let y = 0; y < 768; y++) {
      for (let x = 0; x < 1024; x++) {
        const i = y * 1024 + x;
        const inside = x >= 14 && x < 1011 && y >= 38 && y < 759;
        if (!inside && after[i] !== 0) outsideNotBlack++;
        if (inside && after[i] !== before[i]) insideChanged++;
      }
    }
    expect(outsideNotBlack).toBe(0);
    expect(insideChanged).toBe(0);
    const codes = findElement(r.file.dataset, 0x00120064)?.items?.map((i) => rawString(findElement(i.elements, 0x00080100)?.value));
    expect(codes).toContain('113101');
  });

  it('should record why an image was skipped with scope: known, leave its pixels alone and not claim Clean Pixel Data (113101)', async () => {
    const profile = loadProfile('basic', ['clean-pixel-data']);
    const src = corpus('pydicom/CT_small.dcm');
    const header = deidentifyHeader(src, { profile, secret: Buffer.from('k') });
    const codes = (ds: typeof src.dataset) => findElement(ds, 0x00120064)!.items!.map((i) => rawString(findElement(i.elements, 0x00080100)?.value));
    expect(codes(header.file.dataset)).toEqual(['113100']);
    const r = await cleanPixels(src, header.file, header.identifiers, { settings: { ...profile.pixels!, scope: 'known' } });
    expect(r.report.action).toBe('skipped');
    expect(r.report.reason).toMatch(/modality CT .* not known to carry text/);
    expect(codes(r.file.dataset)).toEqual(['113100']);
    expect(findElement(r.file.dataset, 0x7fe00010)).toBe(findElement(header.file.dataset, 0x7fe00010));
  });
});
