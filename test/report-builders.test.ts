import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Dataset } from '../src/dicom/element.js';
import { readDicom } from '../src/dicom/reader.js';
import { isPrivateCreatorTag, TAG } from '../src/dicom/tag.js';
import { writeDicom } from '../src/dicom/writer.js';
import { processObject } from '../src/pipeline/process-object.js';
import { compileProfile, loadProfile, readProfileChain, withKeptIdentifiers, type CompiledProfile } from '../src/profiles/profile.js';
import { kAnonymity, KAnonymity, quasiIdentifiersOf, type QuasiIdentifierValues } from '../src/report/k-anonymity.js';
import { tagInventory } from '../src/report/tag-inventory.js';
import { deidentifyHeader } from '../src/stages/header.js';
import { KEPT_IDENTIFIER, keptIdentifierWarnings } from '../src/stages/header-stage.js';
import { SubmissionReport } from '../src/report/submission.js';
import { corpusFile, corpusFiles } from './helpers/corpus.js';
import { SECRET, baseDataset, el, makeFile, privateBlock, seq, text, u16 } from './helpers/dicom-builder.js';

const qi = (age: string | null, sex: string | null, year: string, weight: string | null = '70'): QuasiIdentifierValues => ({ age, sex, size: '1.7', weight, ethnicGroup: null, studyYear: year });

describe('k-anonymity of kept quasi-identifiers', () => {
  /** Known groups: {A,B,C} share everything; D differs by year; {E,F} are 90+ men; G has three images; H changed weight. */
  const batch = [
    { subject: 'A', values: qi('045Y', 'F', '2020') },
    { subject: 'A', values: qi('045Y', 'F', '2020') },
    { subject: 'B', values: qi('045Y', 'F', '2020') },
    { subject: 'C', values: qi('045Y', 'F', '2020') },
    { subject: 'D', values: qi('045Y', 'F', '2021') },
    { subject: 'E', values: qi('090Y', 'M', '2020') },
    { subject: 'F', values: qi('090Y', 'M', '2020') },
    { subject: 'G', values: qi('012Y', null, '2020') },
    { subject: 'G', values: qi('012Y', '', '2020') },
    { subject: 'G', values: qi('012Y', null, '2020') },
    { subject: 'H', values: qi('060Y', 'M', '2020', '80') },
    { subject: 'H', values: qi('060Y', 'M', '2020', '85') },
  ];

  it('should count subjects, not objects, find the smallest group and list the groups below the threshold by their values', () => {
    const r = kAnonymity(batch, { threshold: 3 });
    expect(r).toMatchObject({ objects: 12, subjects: 8, groups: 6, k: 1, threshold: 3, subjectsBelowThreshold: 5 });
    expect(r.belowThreshold.map((g) => [g.values.age, g.values.sex, g.values.studyYear, g.values.weight, g.subjects, g.objects])).toEqual([
      ['012Y', null, '2020', '70', 1, 3],
      ['045Y', 'F', '2021', '70', 1, 1],
      ['060Y', 'M', '2020', '80', 1, 1],
      ['060Y', 'M', '2020', '85', 1, 1],
      ['090Y', 'M', '2020', '70', 2, 2],
    ]);
    // Plain JSON: what goes into report.json comes back equal.
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });

  it('should merge groups when fewer attributes are considered, and grow incrementally', () => {
    const r = kAnonymity(batch, { threshold: 2, attributes: ['sex'] });
    expect(r.belowThreshold).toEqual([{ values: { sex: null }, subjects: 1, objects: 3 }]);
    expect(r.k).toBe(1);
    expect(kAnonymity(batch, { attributes: ['studyYear'] }).k).toBe(1);
    expect(kAnonymity(batch.filter((b) => b.subject !== 'D'), { attributes: ['studyYear'] }).k).toBe(7);
    const k = new KAnonymity();
    expect(k.report()).toMatchObject({ k: 0, groups: 0, objects: 0 });
    for (const b of batch.slice(0, 4)) k.add(b);
    expect(k.report({ threshold: 3 })).toMatchObject({ k: 3, groups: 1, belowThreshold: [] });
    expect(() => k.report({ threshold: 0 })).toThrow(RangeError);
    expect(() => k.report({ attributes: ['shoeSize' as never] })).toThrow(RangeError);
  });

  it('should read the quasi-identifiers an output holds, one spelling per number', () => {
    const ds = baseDataset([el('PatientAge', 'AS', '045Y'), el('PatientSex', 'CS', 'f'), el('PatientSize', 'DS', '1.70'), el('PatientWeight', 'DS', '070.0'), el('StudyDate', 'DA', '20190304')]);
    expect(quasiIdentifiersOf(ds)).toEqual({ age: '045Y', sex: 'F', size: '1.7', weight: '70', ethnicGroup: null, studyYear: '2019' });
  });

  it('should report on the research outputs of the corpus (one subject per pseudonymous PatientID)', () => {
    const profile = loadProfile('research');
    const k = new KAnonymity();
    const subjects = new Set<string>();
    for (const rel of corpusFiles('tcia-burned-in').filter((f) => f.endsWith('.dcm'))) {
      let out: Dataset;
      try {
        out = readDicom(processObject(readFileSync(corpusFile(rel)), { profile, secret: SECRET }).output).dataset;
      } catch {
        continue;
      }
      const subject = text(out, 'PatientID') ?? '';
      subjects.add(subject);
      k.add({ subject, values: quasiIdentifiersOf(out) });
    }
    const r = k.report({ threshold: 2 });
    expect(r.objects).toBeGreaterThan(40);
    expect(r.subjects).toBe(subjects.size);
    expect(r.k).toBeGreaterThanOrEqual(1);
    expect(r.belowThreshold.every((g) => g.subjects < 2)).toBe(true);
    expect(r.subjectsBelowThreshold).toBe(r.belowThreshold.reduce((n, g) => n + g.subjects, 0));
  });
});

describe('the tag inventory', () => {
  const object = (n: number) =>
    makeFile(
      baseDataset(
        [
          el(0x00080000, 'UL', Uint8Array.of(0, 0, 0, 0)),
          el('StudyDescription', 'LO', 'CT of Smith'),
          seq('ReferencedImageSequence', [[el('ReferencedSOPInstanceUID', 'UI', `1.2.826.0.1.3680043.2.1125.1.${n}.2`)], [el('ReferencedSOPInstanceUID', 'UI', '1.2.3.4')]]),
          seq('ReferencedStudySequence', [[el('ReferencedSOPClassUID', 'UI', '1.2.840.10008.3.1.2.3.1'), ...privateBlock(0x0041, 'ACME NESTED', 0x10, [[0x01, 'LO', 'x']])]]),
          privateBlock(0x0019, 'GEMS_ACQU_01', 0x10, [
            [0x23, 'DS', '1'], // E.3.10-1
            [0x02, 'SL', '1'], // TCIA knowledge base
            [0x99, 'LO', 'anything'], // neither
          ]),
          privateBlock(0x0033, 'ACME PRIVATE', 0x10, [[0x01, 'LO', 'Smith']]),
          el(0x60000010, 'US', u16(2)),
          el(0x60003000, 'OW', u16(1, 2)),
        ],
        n,
      ),
    );

  it('should return no dispositions unless asked, and the same output either way', () => {
    const profile = loadProfile('research');
    const plain = deidentifyHeader(object(1), { profile, secret: SECRET });
    const recorded = deidentifyHeader(object(1), { profile, secret: SECRET, dispositions: true });
    expect(plain.dispositions).toBeUndefined();
    expect(recorded.dispositions!.tags.length).toBeGreaterThan(20);
    expect(Buffer.compare(writeDicom(plain.file), writeDicom(recorded.file))).toBe(0);
  });

  it('should count every attribute with what the profile did, and every private creator with its disposition', () => {
    const profile = loadProfile('research');
    const inv = tagInventory([1, 2].map((n) => deidentifyHeader(object(n), { profile, secret: SECRET, dispositions: true }).dispositions!));
    const row = (attribute: string) => inv.attributes.find((a) => a.attribute === attribute);
    expect(inv.objects).toBe(2);
    expect(row('PatientName')).toMatchObject({ tag: '(0010,0010)', objects: 2, occurrences: 2, dispositions: { replaced: 2 } });
    expect(row('SOPInstanceUID')?.dispositions).toEqual({ remapped: 2 });
    expect(row('StudyDate')?.dispositions).toEqual({ replaced: 2 }); // shifted
    expect(row('StudyDescription')?.dispositions).toEqual({ cleaned: 2 });
    expect(row('PatientBirthDate')?.dispositions).toEqual({ replaced: 2 }); // emptied
    expect(row('Modality')?.dispositions).toEqual({ kept: 2 });
    expect(row('ReferencedImageSequence')?.dispositions).toEqual({ kept: 2 });
    expect(row('ReferencedSOPInstanceUID')).toMatchObject({ objects: 2, occurrences: 4, dispositions: { remapped: 4 } });
    // A removed sequence: it and everything it held, private elements with their creator.
    expect(row('ReferencedStudySequence')?.dispositions).toEqual({ removed: 2 });
    expect(row('ReferencedSOPClassUID')?.dispositions).toEqual({ removed: 2 });
    expect(row('(0041,"ACME NESTED",01)')?.dispositions).toEqual({ removed: 2 });
    expect(row('CommandGroupLength') ?? row('(0008,0000)')).toBeUndefined();
    expect(inv.attributes.find((a) => a.tag === '(0008,0000)')?.dispositions).toEqual({ removed: 2 });
    // The overlay has data that research removes (clean-graphics is not selected): its whole group goes.
    expect(inv.attributes.filter((a) => a.tag.startsWith('(6000,')).map((a) => a.dispositions)).toEqual([{ removed: 2 }, { removed: 2 }]);
    expect(row('(0019,"GEMS_ACQU_01",23)')).toMatchObject({ creator: 'GEMS_ACQU_01', dispositions: { kept: 2 } });
    expect(row('(0019,"GEMS_ACQU_01",99)')?.dispositions).toEqual({ removed: 2 });
    expect(inv.privateCreators).toEqual([
      { creator: 'GEMS_ACQU_01', group: '0019', objects: 2, elements: 6, dispositions: { 'kept (E.3.10-1)': 2, 'kept (TCIA knowledge base)': 2, removed: 2 }, verdict: 'partly kept' },
      { creator: 'ACME PRIVATE', group: '0033', objects: 2, elements: 2, dispositions: { removed: 2 }, verdict: 'removed' },
      { creator: 'ACME NESTED', group: '0041', objects: 2, elements: 2, dispositions: { removed: 2 }, verdict: 'removed' },
    ]);
    expect(JSON.parse(JSON.stringify(inv))).toEqual(inv);
    // A profile rule that keeps private elements says so.
    const keepPrivate = compileProfile([{ raw: { name: 'keep-private', rules: [{ select: 'private', action: 'K' }] }, dir: '.' }]);
    const keepAll = tagInventory([deidentifyHeader(object(1), { profile: keepPrivate, secret: SECRET, dispositions: true }).dispositions!]);
    expect(keepAll.privateCreators.map((c) => [c.creator, c.verdict, c.dispositions])).toEqual([
      ['GEMS_ACQU_01', 'kept', { 'kept by a rule': 3 }],
      ['ACME PRIVATE', 'kept', { 'kept by a rule': 1 }],
      ['ACME NESTED', 'kept', { 'kept by a rule': 1 }],
    ]);
  });

  it('should count exactly the elements of the corpus objects, at every depth', () => {
    // Header inventory only: images likely to carry burned-in text are let through here.
    const profile = { ...loadProfile('research'), passBurnedInAnnotation: true };
    const direct = new Map<number, { objects: number; occurrences: number }>();
    const lists = [];
    let objects = 0;
    for (const rel of corpusFiles('pydicom').filter((f) => f.endsWith('.dcm')).slice(0, 60)) {
      let src;
      try {
        src = readDicom(readFileSync(corpusFile(rel)));
        const r = deidentifyHeader(src, { profile, secret: SECRET, dispositions: true });
        lists.push(r.dispositions!);
      } catch {
        continue; // refused objects are quarantined, not inventoried
      }
      objects++;
      const seen = new Set<number>();
      const walk = (ds: Dataset) => {
        for (const e of ds) {
          if (isPrivateCreatorTag(e.tag)) continue; // summarised per creator
          const c = direct.get(e.tag) ?? { objects: 0, occurrences: 0 };
          c.occurrences++;
          if (!seen.has(e.tag)) c.objects++;
          seen.add(e.tag);
          direct.set(e.tag, c);
          for (const item of e.items ?? []) walk(item.elements);
        }
      };
      walk(src.dataset);
    }
    const inv = tagInventory(lists);
    expect(inv.objects).toBe(objects);
    expect(objects).toBeGreaterThan(30);
    const counted = new Map<number, { objects: number; occurrences: number }>();
    for (const a of inv.attributes) {
      const tag = parseInt(a.tag.slice(1, 5) + a.tag.slice(6, 10), 16);
      const c = counted.get(tag) ?? { objects: 0, occurrences: 0 };
      c.occurrences += a.occurrences;
      // A private tag under two creators in one object counts in both rows; tags here are unique per creator.
      c.objects = Math.max(c.objects, a.objects);
      counted.set(tag, c);
    }
    for (const [tag, c] of direct) expect(counted.get(tag)?.occurrences, `tag ${tag.toString(16)}`).toBe(c.occurrences);
    expect(counted.size).toBe(direct.size);
    expect(inv.attributes.reduce((n, a) => n + a.occurrences, 0)).toBe([...direct.values()].reduce((n, c) => n + c.occurrences, 0));
    const patientName = inv.attributes.find((a) => a.attribute === 'PatientName')!;
    expect(patientName.objects).toBe(direct.get(TAG.PatientName)!.objects);
  });
});

describe('kept-identifier warnings', () => {
  const object = (n: number, extra: ReturnType<typeof el>[] = []) =>
    makeFile(baseDataset([el('InstitutionName', 'LO', 'Hillside Hospital'), el('PatientAge', 'AS', '045Y'), el('DeviceSerialNumber', 'LO', 'SN-1'), ...extra], n));
  // A site profile that keeps what Table E.1-1 removes: the patient's ID and the institution.
  const site = withKeptIdentifiers(
    compileProfile([{ raw: { name: 'site', extends: 'basic', rules: [{ select: 'PatientID', action: 'K' }, { select: 'InstitutionName', action: 'K' }, { select: 'Modality', action: 'K' }] }, dir: '.' }, ...readProfileChain('basic')]),
  );
  const kept = (profile: CompiledProfile, n = 1) => (deidentifyHeader(object(n), { profile, secret: SECRET }).keptIdentifiers ?? []).slice().sort();

  it('should name each attribute an object held that the profile keeps against Table E.1-1, by tag and name, never its value', () => {
    const names = kept(site);
    expect(names).toHaveLength(2);
    expect(names[0]).toMatch(/^\(0008,0080\) Institution Name/);
    expect(names[1]).toMatch(/^\(0010,0020\) Patient ID/);
    expect(names.join(' ')).not.toContain('Hillside');
    // Modality is kept by the table itself; the built-in profiles keep nothing against it.
    expect(kept(withKeptIdentifiers(loadProfile('basic')))).toEqual([]);
  });

  it('should count, in the report, the objects that kept each one', () => {
    const r = new SubmissionReport();
    for (const n of [1, 2, 3]) {
      // The third object holds no institution: only its patient ID is kept.
      const src = n === 3 ? makeFile(baseDataset([], n)) : object(n);
      const h = deidentifyHeader(src, { profile: site, secret: SECRET, dispositions: true });
      const warnings = keptIdentifierWarnings(h.keptIdentifiers) ?? [];
      r.add({ source: `f${n}`, sha256: `${n}`.repeat(64), outcome: 'written', at: '', details: { modality: 'CT', elements: h.dispositions, warnings, subject: `s${n}`, quasiIdentifiers: quasiIdentifiersOf(h.file.dataset) } });
    }
    const warnings = r.report({ title: 't' }).warnings;
    expect(warnings.map((w) => [w.kind, w.detail.slice(0, 11), w.objects]).sort()).toEqual([
      [KEPT_IDENTIFIER, '(0008,0080)', 2],
      [KEPT_IDENTIFIER, '(0010,0020)', 3],
    ]);
  });
});

