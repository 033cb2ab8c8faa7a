import { findElement, type Dataset } from '../dicom/element.js';
import { rawString, textValue } from '../dicom/values.js';
import { PATIENT_AGE, PATIENT_SIZE, PATIENT_WEIGHT } from '../stages/generalize.js';
import { charsetOf } from '../stages/identifiers.js';

const PATIENT_SEX = 0x00100040;
const ETHNIC_GROUP = 0x00102160;
const STUDY_DATE = 0x00080020;

/**
 * k-anonymity of the quasi-identifiers a batch of de-identified objects kept: age, sex, size, weight,
 * ethnic group and study year. Subjects that share every value form a group; k is the size of the
 * smallest group, and the groups below a threshold are listed by their values (which, generalised
 * and shared by at least one subject, no longer identify on their own).
 *
 * Groups count subjects (any stable key per person: the report uses a keyed hash of the original
 * PatientID), not objects: a patient's 300 images are one person. A subject whose values differ
 * between objects (a weight that changed between two studies) belongs to each of those groups.
 *
 * Pure and incremental: `add` one record per object as they come (a run, a day of service), then
 * `report()` plain JSON. Memory grows with distinct subjects and value combinations, not objects.
 *
 * ```ts
 * const k = new KAnonymity();
 * for (const out of outputs) k.add({ subject: patientIdOf(out), values: quasiIdentifiersOf(out.dataset) });
 * const report = k.report({ threshold: 5 });   // { k, groups, belowThreshold: [{ values, subjects, objects }], ... }
 * ```
 */

export const QUASI_IDENTIFIERS = ['age', 'sex', 'size', 'weight', 'ethnicGroup', 'studyYear'] as const;
export type QuasiIdentifier = (typeof QUASI_IDENTIFIERS)[number];
/** A value as the output holds it; null (or absent) when the output has none. */
export type QuasiIdentifierValues = Partial<Record<QuasiIdentifier, string | null>>;

export interface KAnonymityRecord {
  /** Who the object is about: the output's pseudonymous PatientID (or any stable key per person). */
  readonly subject: string;
  readonly values: QuasiIdentifierValues;
}

export interface KAnonymityOptions {
  /** Groups with fewer subjects than this are listed (default 5). */
  readonly threshold?: number;
  /** The quasi-identifiers to group by (default: all six). */
  readonly attributes?: readonly QuasiIdentifier[];
}

export interface KGroup {
  readonly values: Readonly<Record<string, string | null>>;
  readonly subjects: number;
  readonly objects: number;
}

export interface KAnonymityReport {
  readonly attributes: readonly QuasiIdentifier[];
  readonly threshold: number;
  readonly objects: number;
  readonly subjects: number;
  readonly groups: number;
  /** The smallest group size, in subjects; 0 for an empty batch. */
  readonly k: number;
  /** The groups below the threshold, smallest first, then by their values. */
  readonly belowThreshold: readonly KGroup[];
  /** Subjects that are in at least one group below the threshold. */
  readonly subjectsBelowThreshold: number;
}

const norm = (v: string | null | undefined): string | null => {
  const t = v?.trim();
  return t ? t : null;
};

export class KAnonymity {
  /** value tuple (all six) → subjects and object count */
  private readonly tuples = new Map<string, { values: (string | null)[]; subjects: Set<string>; objects: number }>();
  private objects = 0;

  add(record: KAnonymityRecord): void {
    const values = QUASI_IDENTIFIERS.map((q) => norm(record.values[q]));
    const key = JSON.stringify(values);
    let t = this.tuples.get(key);
    if (!t) this.tuples.set(key, (t = { values, subjects: new Set(), objects: 0 }));
    t.subjects.add(record.subject);
    t.objects++;
    this.objects++;
  }

  report(opts: KAnonymityOptions = {}): KAnonymityReport {
    const threshold = opts.threshold ?? 5;
    const attributes = opts.attributes ?? QUASI_IDENTIFIERS;
    if (!Number.isInteger(threshold) || threshold < 1) throw new RangeError('threshold must be a whole number of at least 1');
    const index = attributes.map((a) => {
      const i = QUASI_IDENTIFIERS.indexOf(a);
      if (i < 0) throw new RangeError(`unknown quasi-identifier ${String(a).slice(0, 20)}`);
      return i;
    });
    // Project the full tuples on the chosen attributes: groups merge when the others are left out.
    const groups = new Map<string, { values: (string | null)[]; subjects: Set<string>; objects: number }>();
    const everyone = new Set<string>();
    for (const t of this.tuples.values()) {
      const values = index.map((i) => t.values[i]);
      const key = JSON.stringify(values);
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { values, subjects: new Set(), objects: 0 }));
      for (const s of t.subjects) {
        g.subjects.add(s);
        everyone.add(s);
      }
      g.objects += t.objects;
    }
    const all = [...groups.values()];
    // By size, then by the values' JSON (their key) in code-unit order: localeCompare would load ICU's collation data.
    const below = [...groups]
      .filter(([, g]) => g.subjects.size < threshold)
      .sort(([ka, a], [kb, b]) => a.subjects.size - b.subjects.size || (ka < kb ? -1 : ka > kb ? 1 : 0))
      .map(([, g]) => g);
    const exposed = new Set<string>();
    for (const g of below) for (const s of g.subjects) exposed.add(s);
    return {
      attributes: [...attributes],
      threshold,
      objects: this.objects,
      subjects: everyone.size,
      groups: all.length,
      k: all.length ? Math.min(...all.map((g) => g.subjects.size)) : 0,
      belowThreshold: below.map((g) => ({ values: Object.fromEntries(attributes.map((a, i) => [a, g.values[i]])), subjects: g.subjects.size, objects: g.objects })),
      subjectsBelowThreshold: exposed.size,
    };
  }
}

/** The k-anonymity report of a whole batch at once. */
export function kAnonymity(records: Iterable<KAnonymityRecord>, opts: KAnonymityOptions = {}): KAnonymityReport {
  const k = new KAnonymity();
  for (const r of records) k.add(r);
  return k.report(opts);
}

/** A DS value in one spelling (75, 75.0 and 075 group together); undefined when it is not a number. */
const decimal = (s: string): string | null => {
  const n = Number(s.trim());
  return s.trim() && Number.isFinite(n) ? String(n) : null;
};

/**
 * The quasi-identifiers as a de-identified output holds them (top level): PatientAge, PatientSex,
 * PatientSize, PatientWeight, EthnicGroup, and the year of StudyDate (after any date shift).
 */
export function quasiIdentifiersOf(ds: Dataset): QuasiIdentifierValues {
  const raw = (tag: number) => rawString(findElement(ds, tag)?.value).trim();
  const ethnic = findElement(ds, ETHNIC_GROUP);
  const studyDate = raw(STUDY_DATE);
  return {
    age: norm(raw(PATIENT_AGE).toUpperCase()),
    sex: norm(raw(PATIENT_SEX).toUpperCase()),
    size: decimal(raw(PATIENT_SIZE)),
    weight: decimal(raw(PATIENT_WEIGHT)),
    ethnicGroup: ethnic ? norm(textValue(ethnic, charsetOf(ds))) : null,
    studyYear: /^\d{4}/.test(studyDate) ? studyDate.slice(0, 4) : null,
  };
}
