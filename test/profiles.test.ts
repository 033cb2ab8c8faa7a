import { afterAll, describe, expect, it } from 'vitest';
import { TAG, formatTag, makeTag } from '../src/dicom/tag.js';
import { OPTIONS, optionCode, type OptionName } from '../src/profiles/options.js';
import { loadProfile, type CompiledProfile } from '../src/profiles/profile.js';
import { SelectorError, parseSelector, pathMatches } from '../src/profiles/selector.js';
import { deidentifyHeader } from '../src/stages/header.js';
import {
  SECRET,
  baseDataset,
  el,
  get,
  makeFile,
  privateBlock,
  seq,
  tagOf,
  tempFolder,
  text,
  thrown,
  thrownCode,
} from './helpers/dicom-builder.js';

const folders: Array<{ cleanup: () => void }> = [];
afterAll(() => folders.forEach((f) => f.cleanup()));

/** Writes the files into a fresh temp folder and returns the path of the first one. */
function profileFiles(files: Record<string, string>): { path: (name: string) => string; dir: string } {
  const f = tempFolder(files);
  folders.push(f);
  return f;
}

function loadYaml(yaml: string, extraOptions: string[] = []): CompiledProfile {
  const f = profileFiles({ 'profile.yaml': yaml });
  return loadProfile(f.path('profile.yaml'), extraOptions);
}

const run = (profile: CompiledProfile, ds: ReturnType<typeof baseDataset>) => deidentifyHeader(makeFile(ds), { profile, secret: SECRET });

describe('profile validation', () => {
  const invalid = (yaml: string) => {
    const f = profileFiles({ 'bad.yaml': yaml });
    const e = thrown(() => loadProfile(f.path('bad.yaml')));
    expect(e.code).toBe('DEID_ERR_PROFILE_INVALID');
    return e.message;
  };

  it('should refuse an unknown action code and say which rule holds it', () => {
    const msg = invalid('name: bad-action\nrules:\n  - { select: PatientName, action: FOO }\n');
    expect(msg).toContain('/rules/0/action');
    expect(msg).toContain('bad.yaml');
  });

  it('should refuse an unknown action function', () => {
    const msg = invalid('name: bad-fn\nrules:\n  - { select: PatientName, action: { scramble: {} } }\n');
    expect(msg).toContain('/rules/0/action');
  });

  it('should refuse an unknown keyword and name it', () => {
    const msg = invalid('name: bad-keyword\nrules:\n  - { select: PatientNmae, action: X }\n');
    expect(msg).toMatch(/rule 1/);
    expect(msg).toContain('PatientNmae');
  });

  it('should refuse a private selector in an even group', () => {
    const msg = invalid('name: bad-private\nrules:\n  - { select: \'(0010,"ACME",10)\', action: K }\n');
    expect(msg).toContain('odd group');
  });

  it('should refuse an extra top-level property and name it', () => {
    const msg = invalid('name: extra\nremoveUnlistd: true\n');
    expect(msg).toMatch(/additional properties/);
    expect(msg).toContain('removeUnlistd');
  });

  it('should refuse an extra property inside a rule and name it', () => {
    const msg = invalid('name: extra-rule\nrules:\n  - { select: PatientName, action: X, note: "oops" }\n');
    expect(msg).toContain('/rules/0');
    expect(msg).toContain('note');
  });

  it('should refuse a hash length outside 4..64', () => {
    const msg = invalid('name: short-hash\nrules:\n  - { select: PatientID, action: { hash: { length: 2 } } }\n');
    expect(msg).toContain('/rules/0/action/hash/length');
  });

  it('should refuse a profile without a name', () => {
    const msg = invalid('rules: []\n');
    expect(msg).toContain('name');
  });

  it('should refuse a file that is not YAML', () => {
    const msg = invalid('name: [unclosed\n');
    expect(msg).toMatch(/cannot parse/);
  });

  it('should refuse an inverted date shift range', () => {
    const msg = invalid('name: bad-range\ndateShift: { minDays: -1, maxDays: -10 }\n');
    expect(msg).toMatch(/minDays > maxDays/);
  });

  it('should refuse an extends cycle', () => {
    const f = profileFiles({ 'a.yaml': 'name: a\nextends: ./b.yaml\n', 'b.yaml': 'name: b\nextends: ./a.yaml\n' });
    const e = thrown(() => loadProfile(f.path('a.yaml')));
    expect(e.code).toBe('DEID_ERR_PROFILE_INVALID');
    expect(e.message).toMatch(/cycle/);
  });

  it('should report an unknown profile name as DEID_ERR_PROFILE_NOT_FOUND', () => {
    expect(thrownCode(() => loadProfile('no-such-profile'))).toBe('DEID_ERR_PROFILE_NOT_FOUND');
    const f = profileFiles({ 'user.yaml': 'name: user\nextends: ./missing.yaml\n' });
    expect(thrownCode(() => loadProfile(f.path('user.yaml')))).toBe('DEID_ERR_PROFILE_NOT_FOUND');
  });

  it('should refuse a lookup table that does not exist when the profile loads', () => {
    const msg = invalid('name: no-table\nrules:\n  - { select: PatientID, action: { lookup: { file: missing.csv } } }\n');
    expect(msg).toContain('missing.csv');
  });

  it('should load both built-in profiles', () => {
    expect(loadProfile('basic').name).toBe('basic');
    expect(loadProfile('research').name).toBe('research');
    expect(loadProfile('basic').byTag.size).toBeGreaterThan(400);
  });
});

describe('extends', () => {
  it('should let a user profile that extends basic override one rule and inherit the rest', () => {
    const p = loadYaml('name: site\nextends: basic\nrules:\n  - { select: PatientName, action: { set: "SUBJECT" } }\n');
    expect(p.byTag.get(TAG.PatientName)?.action).toEqual({ kind: 'set', value: 'SUBJECT' });
    expect(p.byTag.get(TAG.PatientName)?.from).toBe('site');
    // Not overridden: still the Basic Profile's rule.
    expect(p.byTag.get(TAG.PatientID)?.from).toBe('basic');
    expect(p.byTag.get(TAG.SOPInstanceUID)?.action.kind).toBe('U');
    // Table E.1-1 says Z; the generator's pseudonym rule makes it a keyed hash.
    expect(loadProfile('basic').byTag.get(TAG.PatientName)?.code).toBe('Z');
    expect(loadProfile('basic').byTag.get(TAG.PatientName)?.action).toEqual({ kind: 'hash', length: 10, prefix: 'ANON^' });

    const out = run(p, baseDataset()).file.dataset;
    expect(text(out, 'PatientName')).toBe('SUBJECT');
    expect(get(out, 'PatientID')?.value?.length).toBeGreaterThan(0); // Z/D → D
    expect(text(out, 'PatientID')).not.toBe('PID12345');
  });

  it('should resolve a chain of extends relative to each file and merge the options', () => {
    const f = profileFiles({
      'base.yaml': 'name: mid\nextends: basic\noptions: [retain-uids]\nrules:\n  - { select: StudyDescription, action: { set: "MID" } }\n  - { select: SeriesDescription, action: { set: "MID" } }\n',
      'top.yaml': 'name: top\nextends: ./base.yaml\noptions: [clean-descriptors]\nrules:\n  - { select: SeriesDescription, action: { set: "TOP" } }\n',
    });
    const p = loadProfile(f.path('top.yaml'));
    expect(p.name).toBe('top');
    expect([...p.options].sort()).toEqual(['clean-descriptors', 'retain-uids']);
    expect(p.byTag.get(tagOf('StudyDescription'))?.action).toEqual({ kind: 'set', value: 'MID' });
    expect(p.byTag.get(tagOf('SeriesDescription'))?.action).toEqual({ kind: 'set', value: 'TOP' });
    // retain-uids from the middle profile changes the Basic Profile's own rules.
    expect(p.byTag.get(TAG.SOPInstanceUID)?.action.kind).toBe('K');
  });

  it('should take the date shift range from the most derived profile that sets one', () => {
    const f = profileFiles({
      'a.yaml': 'name: a\nextends: basic\ndateShift: { minDays: -30, maxDays: -20 }\n',
      'b.yaml': 'name: b\nextends: ./a.yaml\n',
    });
    expect(loadProfile(f.path('b.yaml')).dateShift).toEqual({ minDays: -30, maxDays: -20 });
    expect(loadProfile('basic').dateShift.minDays).toBeLessThanOrEqual(loadProfile('basic').dateShift.maxDays);
  });
});

describe('options', () => {
  /** One attribute per option whose action the option changes, per Table E.1-1. */
  const EFFECT: Record<Exclude<OptionName, 'clean-pixel-data'>, { tag: number; without: string; with: string }> = {
    'retain-safe-private': { tag: -1, without: 'X', with: 'safePrivate' },
    'retain-uids': { tag: TAG.SOPInstanceUID, without: 'U', with: 'K' },
    'retain-device-identity': { tag: tagOf('DeviceSerialNumber'), without: 'D', with: 'K' },
    'retain-institution-identity': { tag: tagOf('InstitutionName'), without: 'D', with: 'K' },
    'retain-patient-characteristics': { tag: tagOf('PatientSex'), without: 'Z', with: 'K' },
    'retain-long-full-dates': { tag: tagOf('StudyDate'), without: 'Z', with: 'K' },
    'retain-long-modified-dates': { tag: tagOf('StudyDate'), without: 'Z', with: 'C' },
    'clean-descriptors': { tag: tagOf('StudyDescription'), without: 'X', with: 'C' },
    'clean-structured-content': { tag: tagOf('ContentSequence'), without: 'D', with: 'C' },
    'clean-graphics': { tag: makeTag(0x6000, 0x3000), without: 'X', with: 'C' },
  };

  const actionFor = (p: CompiledProfile, tag: number): string | undefined => {
    if (tag === -1) return p.anyPrivate?.action.kind;
    const direct = p.byTag.get(tag)?.action.kind;
    if (direct) return direct;
    for (const m of p.masks) {
      const s = m.steps[0];
      if (s.kind === 'mask' && ((tag & s.mask) >>> 0) === s.value) return m.action.kind;
    }
    return undefined;
  };

  it.each(Object.keys(EFFECT) as Array<keyof typeof EFFECT>)('should select %s by name and apply its column of Table E.1-1', (name) => {
    const p = loadProfile('basic', [name]);
    expect(p.options.has(name)).toBe(true);
    expect(p.methodCodes.map((c) => c.value)).toEqual(['113100', optionCode(name).value]);
    expect(optionCode(name).meaning).toBe(OPTIONS[name]);
    const { tag, without, with: withOpt } = EFFECT[name];
    expect(actionFor(loadProfile('basic'), tag)).toBe(without);
    expect(actionFor(p, tag)).toBe(withOpt);
  });

  it('should select options from the profile file as well as from the caller', () => {
    const p = loadYaml('name: opts\nextends: basic\noptions: [retain-uids]\n', ['clean-descriptors']);
    expect([...p.options].sort()).toEqual(['clean-descriptors', 'retain-uids']);
    expect(p.methodCodes.map((c) => c.value)).toEqual(['113100', '113105', '113110']);
  });

  it('should select clean-pixel-data, whether asked by the caller or by a profile, with the pixel stage settings', () => {
    const p = loadProfile('basic', ['clean-pixel-data']);
    // 113101 is added by the pixel stage to the images it cleaned, not by the header stage to all.
    expect(p.methodCodes.map((c) => c.value)).toEqual(['113100']);
    expect(p.pixels?.mode).toBe('all-text');
    expect(loadProfile('basic').pixels).toBeUndefined();
    const f = profileFiles({ 'px.yaml': 'name: px\nextends: basic\noptions: [clean-pixel-data]\npixels: { mode: sensitive-text }\n' });
    expect(loadProfile(f.path('px.yaml')).pixels?.mode).toBe('sensitive-text');
  });

  it('should refuse an unknown option', () => {
    expect(thrownCode(() => loadProfile('basic', ['retain-everything']))).toBe('DEID_ERR_OPTION_UNKNOWN');
    expect(thrownCode(() => loadYaml('name: typo\noptions: [clean-descriptor]\n'))).toBe('DEID_ERR_OPTION_UNKNOWN');
  });

  it('should refuse full and modified dates together, also when they come from different places', () => {
    expect(thrownCode(() => loadProfile('basic', ['retain-long-full-dates', 'retain-long-modified-dates']))).toBe('DEID_ERR_OPTION_CONFLICT');
    // research selects modified dates itself.
    expect(thrownCode(() => loadProfile('research', ['retain-long-full-dates']))).toBe('DEID_ERR_OPTION_CONFLICT');
  });

  it('should accept an option given twice', () => {
    expect(loadProfile('research', ['retain-long-modified-dates']).methodCodes.filter((c) => c.value === '113107')).toHaveLength(1);
  });
});

describe('selectors', () => {
  it('should parse a keyword, a tag, a private element, a path and wildcards', () => {
    expect(parseSelector('PatientName')).toEqual([{ kind: 'tag', tag: TAG.PatientName }]);
    expect(parseSelector('(0010,0010)')).toEqual([{ kind: 'tag', tag: TAG.PatientName }]);
    expect(parseSelector('00100010')).toEqual([{ kind: 'tag', tag: TAG.PatientName }]);
    expect(parseSelector('(0029,"SIEMENS CSA HEADER",10)')).toEqual([{ kind: 'private', group: 0x0029, creator: 'SIEMENS CSA HEADER', element: 0x10 }]);
    expect(parseSelector('(0029,"SIEMENS CSA HEADER",xx)')).toEqual([{ kind: 'private', group: 0x0029, creator: 'SIEMENS CSA HEADER', element: undefined }]);
    expect(parseSelector('RequestAttributesSequence/ScheduledProcedureStepID')).toEqual([
      { kind: 'tag', tag: tagOf('RequestAttributesSequence') },
      { kind: 'tag', tag: tagOf('ScheduledProcedureStepID') },
    ]);
    expect(parseSelector('*/CodeMeaning')[0]).toEqual({ kind: 'any' });
    expect(parseSelector('**/CodeMeaning')[0]).toEqual({ kind: 'deep' });
    expect(parseSelector('(60xx,3000)')).toEqual([{ kind: 'mask', mask: 0xff00ffff, value: 0x60003000 }]);
    expect(parseSelector('private')).toEqual([{ kind: 'anyPrivate' }]);
    // A slash inside a quoted creator is not a path separator.
    expect(parseSelector('(0029,"A/B",10)')).toHaveLength(1);
    expect(() => parseSelector('NoSuchKeyword')).toThrow(SelectorError);
  });

  it('should match * to exactly one level and ** to any number of levels', () => {
    const cm = { tag: tagOf('CodeMeaning') };
    const s1 = { tag: tagOf('ConceptNameCodeSequence') };
    const s2 = { tag: tagOf('ContentSequence') };
    const one = parseSelector('*/CodeMeaning');
    const deep = parseSelector('**/CodeMeaning');
    expect(pathMatches(one, [cm])).toBe(false);
    expect(pathMatches(one, [s1, cm])).toBe(true);
    expect(pathMatches(one, [s2, s1, cm])).toBe(false);
    expect(pathMatches(deep, [cm])).toBe(true);
    expect(pathMatches(deep, [s2, s1, cm])).toBe(true);
    expect(pathMatches(parseSelector('ContentSequence/**/CodeMeaning'), [s2, s2, s1, cm])).toBe(true);
    expect(pathMatches(parseSelector('ContentSequence/**/CodeMeaning'), [s1, cm])).toBe(false);
  });

  const SELECTORS = `name: selectors
rules:
  - { select: StudyDescription, action: { set: "BY KEYWORD" } }
  - { select: "(0008,103E)", action: { set: "BY TAG" } }
  - { select: '(0029,"ACME 1.0",10)', action: keep }
  - { select: "RequestAttributesSequence/ScheduledProcedureStepID", action: { set: "BY PATH" } }
  - { select: "*/CodeMeaning", action: { set: "ONE LEVEL" } }
  - { select: "**/CodeValue", action: { set: "ANY DEPTH" } }
`;

  const code = (value: string, meaning: string, nested: ReturnType<typeof seq>[] = []) => [
    el('CodeValue', 'SH', value),
    el('CodingSchemeDesignator', 'SH', 'DCM'),
    el('CodeMeaning', 'LO', meaning),
    ...nested,
  ];

  it('should apply keyword, tag, path and wildcard selectors where they point and nowhere else', () => {
    const p = loadYaml(SELECTORS);
    const ds = baseDataset([
      el('StudyDescription', 'LO', 'Head'),
      el('SeriesDescription', 'LO', 'Axial'),
      el('ScheduledProcedureStepID', 'SH', 'TOPLEVEL'),
      el('CodeValue', 'SH', 'T1'),
      el('CodeMeaning', 'LO', 'top meaning'),
      seq('RequestAttributesSequence', [[el('ScheduledProcedureStepID', 'SH', 'SPS1'), el('RequestedProcedureID', 'SH', 'RP1')]]),
      seq('ProcedureCodeSequence', [code('P1', 'one level', [seq('ConceptNameCodeSequence', [code('P2', 'two levels')])])]),
    ]);
    const out = run(p, ds).file.dataset;
    expect(text(out, 'StudyDescription')).toBe('BY KEYWORD');
    expect(text(out, 'SeriesDescription')).toBe('BY TAG');
    // The path selector reaches into the sequence only.
    expect(text(out, 'RequestAttributesSequence', 0, 'ScheduledProcedureStepID')).toBe('BY PATH');
    expect(text(out, 'RequestAttributesSequence', 0, 'RequestedProcedureID')).toBe('RP1');
    expect(text(out, 'ScheduledProcedureStepID')).toBe('TOPLEVEL');
    // * is exactly one level down.
    expect(text(out, 'CodeMeaning')).toBe('top meaning');
    expect(text(out, 'ProcedureCodeSequence', 0, 'CodeMeaning')).toBe('ONE LEVEL');
    expect(text(out, 'ProcedureCodeSequence', 0, 'ConceptNameCodeSequence', 0, 'CodeMeaning')).toBe('two levels');
    // ** is any depth, the top level included.
    expect(text(out, 'CodeValue')).toBe('ANY DEPTH');
    expect(text(out, 'ProcedureCodeSequence', 0, 'CodeValue')).toBe('ANY DEPTH');
    expect(text(out, 'ProcedureCodeSequence', 0, 'ConceptNameCodeSequence', 0, 'CodeValue')).toBe('ANY DEPTH');
  });

  it('should select a private element by its creator name whatever block the creator reserved', () => {
    const p = loadYaml(SELECTORS);
    for (const block of [0x10, 0x11, 0x42]) {
      const ds = baseDataset([
        privateBlock(0x0029, 'ACME 1.0', block, [
          [0x10, 'LO', 'kept value'],
          [0x11, 'LO', 'other value'],
        ]),
        privateBlock(0x0029, 'OTHER VENDOR', block === 0x10 ? 0x12 : 0x10, [[0x10, 'LO', 'same element byte, other creator']]),
      ]);
      const out = run(p, ds).file.dataset;
      expect(text(out, makeTag(0x0029, (block << 8) | 0x10))).toBe('kept value');
      expect(get(out, makeTag(0x0029, (block << 8) | 0x11))).toBeUndefined();
      expect(text(out, makeTag(0x0029, block))).toBe('ACME 1.0');
      // The other creator's block is removed, creator included.
      expect(out.filter((e) => e.tag >>> 16 === 0x0029).map((e) => e.tag)).toEqual([makeTag(0x0029, block), makeTag(0x0029, (block << 8) | 0x10)]);
    }
  });

  it('should select every element of a private creator with xx', () => {
    const p = loadYaml('name: all-acme\nrules:\n  - { select: \'(0029,"ACME 1.0",xx)\', action: keep }\n');
    const ds = baseDataset([privateBlock(0x0029, 'ACME 1.0', 0x10, [[0x01, 'LO', 'a'], [0x02, 'LO', 'b']])]);
    const out = run(p, ds).file.dataset;
    expect(out.filter((e) => e.tag >>> 16 === 0x0029)).toHaveLength(3);
  });
});

describe('action functions', () => {
  it('should replace a value found in a lookup table and refuse one that is missing', () => {
    const f = profileFiles({
      'lookup.yaml': 'name: lookup\nrules:\n  - { select: PatientID, action: { lookup: { file: ids.csv } } }\n',
      'ids.csv': '# original,replacement\nPID12345,SUBJ-001\nPID99999, SUBJ-002 \n',
    });
    const p = loadProfile(f.path('lookup.yaml'));
    const out = run(p, baseDataset()).file.dataset;
    expect(text(out, 'PatientID')).toBe('SUBJ-001');
    expect(text(run(p, baseDataset([el('PatientID', 'LO', 'PID99999')])).file.dataset, 'PatientID')).toBe('SUBJ-002');

    const e = thrown(() => run(p, baseDataset([el('PatientID', 'LO', 'UNLISTED77')])));
    expect(e.code).toBe('DEID_ERR_LOOKUP_MISS');
    expect(e.message).not.toContain('UNLISTED77');
  });

  it('should hash to the requested length, deterministically, with an optional prefix', () => {
    const p = loadYaml(`name: hashes
rules:
  - { select: PatientID, action: { hash: { length: 8 } } }
  - { select: OtherPatientIDs, action: { hash: { length: 20, prefix: "S-" } } }
  - { select: AccessionNumber, action: hash }
`);
    const ds = baseDataset([el('OtherPatientIDs', 'LO', 'OTHER1'), el('AccessionNumber', 'SH', 'ACC123')]);
    const a = run(p, ds).file.dataset;
    const b = run(p, ds).file.dataset;
    const id = text(a, 'PatientID')!;
    expect(id).toMatch(/^[0-9A-HJ-NP-Z]{8}$/);
    expect(id).toBe(text(b, 'PatientID'));
    expect(text(a, 'OtherPatientIDs')).toMatch(/^S-[0-9A-HJ-NP-Z]{20}$/);
    // The default length is 16, cut to the VR's maximum (SH holds 16).
    expect(text(a, 'AccessionNumber')).toMatch(/^[0-9A-HJ-NP-Z]{16}$/);
    // Different values hash differently; another secret gives another pseudonym.
    expect(text(run(p, baseDataset([el('PatientID', 'LO', 'PID12346')])).file.dataset, 'PatientID')).not.toBe(id);
    const other = deidentifyHeader(makeFile(ds), { profile: p, secret: Buffer.from('another-secret-0123456789abcdef') }).file.dataset;
    expect(text(other, 'PatientID')).not.toBe(id);
  });

  it('should set a fixed value encoded for the element', () => {
    const p = loadYaml('name: set\nrules:\n  - { select: InstitutionName, action: { set: "RESEARCH SITE" } }\n  - { select: PatientName, action: { set: "SUBJECT^ONE" } }\n');
    const out = run(p, baseDataset([el('InstitutionName', 'LO', 'General Hospital')])).file.dataset;
    expect(text(out, 'InstitutionName')).toBe('RESEARCH SITE');
    expect(text(out, 'PatientName')).toBe('SUBJECT^ONE');
    expect(get(out, 'PatientName')!.value!.length % 2).toBe(0);
  });

  it('should keep only listed elements (and the structural ones) with removeUnlisted', () => {
    const p = loadYaml(`name: allow-list
removeUnlisted: true
rules:
  - { select: PatientID, action: { hash: { length: 10 } } }
  - { select: Modality, action: keep }
  - { select: StudyInstanceUID, action: remap }
  - { select: ProcedureCodeSequence, action: keep }
  - { select: "ProcedureCodeSequence/CodeValue", action: keep }
`);
    const ds = baseDataset([
      el('SpecificCharacterSet', 'CS', 'ISO_IR 100'),
      el('StudyDescription', 'LO', 'Head'),
      el('WindowCenter', 'DS', '40'),
      el('InstitutionName', 'LO', 'General Hospital'),
      seq('ProcedureCodeSequence', [[el('CodeValue', 'SH', 'P1'), el('CodingSchemeDesignator', 'SH', 'L'), el('CodeMeaning', 'LO', 'CT HEAD')]]),
      seq('ReferencedStudySequence', [[el('ReferencedSOPClassUID', 'UI', '1.2.840.10008.3.1.2.3.1')]]),
      privateBlock(0x0029, 'ACME 1.0', 0x10, [[0x10, 'LO', 'x']]),
    ]);
    const out = run(p, ds).file.dataset;
    const marking = [0x00120062, 0x00120063, 0x00120064, 0x00280303];
    const structural = ds.filter((e) => e.tag === TAG.SpecificCharacterSet || e.tag === tagOf('SOPClassUID') || e.tag >>> 16 === 0x0028 || e.tag === TAG.PixelData);
    const listed = [TAG.PatientID, tagOf('Modality'), TAG.StudyInstanceUID, tagOf('ProcedureCodeSequence')];
    // The identifying UIDs stay even when unlisted, so the object can still be stored, but remapped.
    const identity = ds.filter((e) => [TAG.SOPInstanceUID, TAG.SeriesInstanceUID, tagOf('FrameOfReferenceUID')].includes(e.tag));
    expect(identity.length).toBeGreaterThan(0);
    const expected = [...new Set([...listed, ...structural.map((e) => e.tag), ...identity.map((e) => e.tag), ...marking])].sort((a, b) => a - b);
    expect(out.map((e) => e.tag)).toEqual(expected);
    for (const e of identity) expect(text(out, formatTag(e.tag))).toMatch(/^2\.25\.\d+$/);
    // Inside a listed sequence, only the listed children stay.
    expect(get(out, 'ProcedureCodeSequence')!.items![0].elements.map((e) => e.tag)).toEqual([tagOf('CodeValue')]);
    expect(text(out, 'Modality')).toBe('CT');
    expect(text(out, 'PatientID')).toMatch(/^[0-9A-HJ-NP-Z]{10}$/);
    expect(text(out, 'StudyInstanceUID')).toMatch(/^2\.25\.\d+$/);
    // Structural elements are the source's bytes.
    for (const s of structural) expect(get(out, s.tag)).toEqual(s);
  });
});
