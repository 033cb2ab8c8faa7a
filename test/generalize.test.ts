import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findElement, withElement } from '../src/dicom/element.js';
import { readDicom } from '../src/dicom/reader.js';
import { rawString } from '../src/dicom/values.js';
import { processObject } from '../src/pipeline/process-object.js';
import { compileGeneralize } from '../src/profiles/generalize.js';
import { loadProfile } from '../src/profiles/profile.js';
import { deidentifyHeader } from '../src/stages/header.js';
import { generalizeAge, roundDecimal } from '../src/stages/generalize.js';
import { corpusFile, tempDir } from './helpers/corpus.js';
import { SECRET, baseDataset, el, makeBytes, makeFile, seq, thrownCode } from './helpers/dicom-builder.js';

const tmp = tempDir('deid-generalize-');
afterAll(tmp.cleanup);
function profile(name: string, yaml: string) {
  const path = join(tmp.path, `${name}.yaml`);
  writeFileSync(path, `name: ${name}\n${yaml}`);
  return loadProfile(path);
}

describe('generalising ages', () => {
  const safeHarbor = { ageOver89: true };
  it.each([
    ['089Y', '089Y'],
    ['090Y', '090Y'],
    ['095Y', '090Y'],
    ['120Y', '090Y'],
    ['1079M', '1079M'], // 89 years 11 months
    ['1080M', '090Y'],
    ['4696W', '4696W'], // 32,872 days: half a day short of 90 years
    ['4697W', '090Y'],
    ['32872D', '32872D'],
    ['32873D', '090Y'],
    ['006M', '006M'],
    ['95', '090Y'], // no unit: read as years
    ['45', '45'],
    ['old', ''], // unreadable: emptied, since nothing shows it is under 90
    ['', ''],
  ])('should top-code %s as %s (Safe Harbor: every age of 90 years or more, in any unit)', (age, expected) => {
    expect(generalizeAge(age, safeHarbor)).toBe(expected);
  });

  it('should bin ages to the lower end of their bin, top-coding first', () => {
    const bins = { ageOver89: true, ageBins: 5 };
    expect(['037Y', '040Y', '006M', '052W', '089Y', '092Y'].map((a) => generalizeAge(a, bins))).toEqual(['035Y', '040Y', '000Y', '000Y', '085Y', '090Y']);
    expect(generalizeAge('099Y', { ageOver89: false, ageBins: 10 })).toBe('090Y');
    expect(generalizeAge('099Y', { ageOver89: false })).toBe('099Y');
  });

  it('should round weights and sizes to the nearest step', () => {
    expect(['72.4', '72.5', '0.3', '110', ''].map((w) => roundDecimal(w, 5))).toEqual(['70', '75', '0', '110', '']);
    // PatientSize is in metres, the step in centimetres.
    expect(['1.764', '1.78', '1.7'].map((m) => roundDecimal(m, 5, 100))).toEqual(['1.75', '1.8', '1.7']);
    expect(roundDecimal('tall', 5, 100)).toBe('');
  });
});

describe('generalize in profiles', () => {
  it('should top-code ages in the research profile only, and merge settings down the extends chain', () => {
    expect(loadProfile('research').generalize).toEqual({ ageOver89: true });
    expect(loadProfile('basic').generalize).toBeUndefined();
    expect(profile('more', 'extends: research\ngeneralize: { ageBins: 5, weightRoundKg: 5, sizeRoundCm: 5 }\n').generalize).toEqual({ ageOver89: true, ageBins: 5, weightRoundKg: 5, sizeRoundCm: 5 });
    expect(profile('off', 'extends: research\ngeneralize: { ageOver89: false }\n').generalize).toBeUndefined();
    expect(thrownCode(() => profile('bad', 'extends: basic\ngeneralize: { ageBins: 0 }\n'))).toBe('DEID_ERR_PROFILE_INVALID');
    expect(thrownCode(() => profile('bad2', 'extends: basic\ngeneralize: { weightRoundKg: -5 }\n'))).toBe('DEID_ERR_PROFILE_INVALID');
    expect(thrownCode(() => profile('bad3', 'extends: basic\ngeneralize: { ageover89: true }\n'))).toBe('DEID_ERR_PROFILE_INVALID');
    expect(thrownCode(() => compileGeneralize([{ raw: { name: 'x', generalize: { ageBins: 2.5 } } }]))).toBe('DEID_ERR_PROFILE_INVALID');
  });

  it('should generalise the kept values in the header stage, at every depth, and count them', () => {
    const p = profile('all', 'extends: research\ngeneralize: { ageBins: 5, weightRoundKg: 5, sizeRoundCm: 5 }\n');
    const src = makeFile(
      baseDataset([
        el('PatientAge', 'AS', '093Y'),
        el('PatientWeight', 'DS', '72.4'),
        el('PatientSize', 'DS', '1.764'),
        seq('OtherPatientIDsSequence', [[el('PatientAge', 'AS', '037Y')]]),
      ]),
    );
    const r = deidentifyHeader(src, { profile: p, secret: SECRET });
    const v = (tag: number) => rawString(findElement(r.file.dataset, tag)?.value);
    expect([v(0x00101010), v(0x00101030), v(0x00101020)]).toEqual(['090Y', '70', '1.75']);
    expect(r.report.generalized).toBe(3);
    // Basic removes these attributes: nothing to generalise, nothing counted.
    const basic = deidentifyHeader(src, { profile: loadProfile('basic'), secret: SECRET });
    expect(findElement(basic.file.dataset, 0x00101010)).toBeUndefined();
    expect(basic.report.generalized).toBe(0);
  });

  it('should top-code a real image through the research profile and pass the quality check', () => {
    const ct = readDicom(readFileSync(corpusFile('pydicom/CT_small.dcm')));
    const old = withElement(ct.dataset, el('PatientAge', 'AS', '094Y'));
    const out = processObject(makeBytes(old, ct.transferSyntaxUID), { profile: loadProfile('research'), secret: SECRET });
    expect(rawString(findElement(readDicom(out.output).dataset, 0x00101010)?.value)).toBe('090Y');
    expect(out.verify.ok).toBe(true);
    expect(out.header.generalized).toBe(1);
  });
});
