/**
 * The teaching-file download: a de-identified study as a zip of its DICOM files in study/series
 * folders, a `case.json` (modality, body part, the patient's age and sex as the profile kept them,
 * and the relative days between this patient's studies), and optionally PNG key images rendered by
 * the service. The files come from a folder destination (<root>/<patient>/<study>/<series>/<sop>.dcm),
 * the de-identified objects themselves: nothing here reads an original.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findElement, type Dataset } from '../../dicom/element.js';
import { readDicom } from '../../dicom/reader.js';
import { TAG } from '../../dicom/tag.js';
import { rawString } from '../../dicom/values.js';
import { DeidError } from '../../errors.js';
import { framePng } from '../../pipeline/frames.js';
import { zip, type ZipEntry } from './zip.js';

const text = (ds: Dataset, tag: number) => rawString(findElement(ds, tag)?.value).trim();
const isUid = (s: string) => /^[0-9.]{1,64}$/.test(s);

async function dirs(path: string): Promise<string[]> {
  try {
    return (await readdir(path, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    return [];
  }
}

async function files(path: string): Promise<string[]> {
  try {
    return (await readdir(path, { withFileTypes: true })).filter((d) => d.isFile() && d.name.endsWith('.dcm')).map((d) => d.name).sort();
  } catch {
    return [];
  }
}

/** The folder of a study under one of the roots: <root>/<patient>/<study>. */
async function studyFolder(roots: readonly string[], studyUid: string): Promise<{ root: string; patient: string } | undefined> {
  for (const root of roots) for (const patient of await dirs(root)) if ((await dirs(join(root, patient))).includes(studyUid)) return { root, patient };
  return undefined;
}

/** YYYYMMDD as days since the epoch (NaN when not a date). */
function dayNumber(da: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(da);
  return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!) / 86400000 : NaN;
}

export interface CaseFile {
  readonly study: string;
  readonly modalities: string[];
  readonly bodyParts: string[];
  readonly patientAge?: string;
  readonly patientSex?: string;
  readonly series: Array<{ seriesInstanceUid: string; modality: string; bodyPart: string; instances: number }>;
  /** This pseudonymous patient's studies in the destination, days after the first (shifted dates keep their intervals). */
  readonly studies: Array<{ studyInstanceUid: string; relativeDays: number | null; thisCase: boolean }>;
}

export async function teachingFileZip(roots: readonly string[], studyUid: string, opts: { keyImages?: boolean } = {}): Promise<{ zip: Buffer; caseFile: CaseFile }> {
  if (!isUid(studyUid)) throw new DeidError('DEID_ERR_NOT_FOUND');
  const at = await studyFolder(roots, studyUid);
  if (!at) throw new DeidError('DEID_ERR_DOWNLOAD_UNAVAILABLE', roots.length ? 'the study is not (yet) in a folder destination' : 'no folder destination is configured');
  const entries: ZipEntry[] = [];
  const series: CaseFile['series'] = [];
  let age = '';
  let sex = '';
  let studyDate = '';
  for (const s of await dirs(join(at.root, at.patient, studyUid))) {
    const names = await files(join(at.root, at.patient, studyUid, s));
    let modality = '';
    let bodyPart = '';
    let seriesUid = s;
    const bytes: Buffer[] = [];
    for (const n of names) {
      const b = await readFile(join(at.root, at.patient, studyUid, s, n));
      const ds = readDicom(b).dataset;
      modality ||= text(ds, TAG.Modality);
      bodyPart ||= text(ds, TAG.BodyPartExamined);
      age ||= text(ds, TAG.PatientAge);
      sex ||= text(ds, TAG.PatientSex);
      studyDate ||= text(ds, TAG.StudyDate);
      seriesUid = text(ds, TAG.SeriesInstanceUID) || s;
      entries.push({ name: `${studyUid}/${s}/${n}`, data: b });
      bytes.push(b);
    }
    series.push({ seriesInstanceUid: seriesUid, modality, bodyPart, instances: names.length });
    if (opts.keyImages && bytes.length) {
      // The middle instance of the series, as the service renders it.
      try {
        entries.push({ name: `key-images/${s}.png`, data: await framePng(bytes[Math.floor(bytes.length / 2)]!, 0) });
      } catch {
        /* no pixels (a structured report) or none we can render */
      }
    }
  }
  // The same pseudonymous patient's other studies: their days relative to the first.
  const dates: Array<{ uid: string; day: number }> = [];
  for (const other of await dirs(join(at.root, at.patient))) {
    if (other === studyUid) {
      dates.push({ uid: other, day: dayNumber(studyDate) });
      continue;
    }
    const ser = (await dirs(join(at.root, at.patient, other)))[0];
    const f = ser && (await files(join(at.root, at.patient, other, ser)))[0];
    let day = NaN;
    if (f) {
      try {
        day = dayNumber(text(readDicom(await readFile(join(at.root, at.patient, other, ser, f))).dataset, TAG.StudyDate));
      } catch {
        /* unreadable: no date */
      }
    }
    dates.push({ uid: other, day });
  }
  const firstDay = Math.min(...dates.map((d) => d.day).filter(Number.isFinite));
  const caseFile: CaseFile = {
    study: studyUid,
    modalities: [...new Set(series.map((s) => s.modality).filter(Boolean))],
    bodyParts: [...new Set(series.map((s) => s.bodyPart).filter(Boolean))],
    ...(age ? { patientAge: age } : {}),
    ...(sex ? { patientSex: sex } : {}),
    series,
    studies: dates
      .sort((a, b) => (a.day || 0) - (b.day || 0))
      .map((d) => ({ studyInstanceUid: d.uid, relativeDays: Number.isFinite(d.day) && Number.isFinite(firstDay) ? d.day - firstDay : null, thisCase: d.uid === studyUid })),
  };
  entries.push({ name: 'case.json', data: Buffer.from(JSON.stringify(caseFile, null, 2)) });
  return { zip: zip(entries), caseFile };
}
