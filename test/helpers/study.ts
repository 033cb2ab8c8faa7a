import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findElement, withElement, type Element } from '../../src/dicom/element.js';
import { readDicom } from '../../src/dicom/reader.js';
import { TAG } from '../../src/dicom/tag.js';
import { asciiBytes, rawString, uidBytes } from '../../src/dicom/values.js';
import { writeDicom } from '../../src/dicom/writer.js';
import { corpusFile } from './corpus.js';

export interface StudyFile {
  readonly path: string;
  readonly sopInstanceUid: string;
  readonly seriesInstanceUid: string;
  readonly transferSyntaxUid: string;
}

export interface StudySpec {
  /** Corpus files (relative to the shared testdata), each with the series it goes into. */
  readonly sources: ReadonlyArray<{ readonly file: string; readonly series: number; readonly copies?: number }>;
  readonly patientName: string;
  readonly patientId: string;
  readonly studyUid: string;
}

/**
 * Writes real corpus objects rewritten into one study of one patient: their pixel data and transfer
 * syntax untouched, new study/series/instance UIDs, and (optionally) a reference from each object to
 * the first one, to check references are remapped consistently.
 */
export function writeStudy(dir: string, spec: StudySpec, opts: { referenceFirst?: boolean } = {}): StudyFile[] {
  mkdirSync(dir, { recursive: true });
  const out: StudyFile[] = [];
  let n = 0;
  for (const src of spec.sources) {
    const file = readDicom(readFileSync(corpusFile(src.file)));
    for (let c = 0; c < (src.copies ?? 1); c++) {
      n++;
      const series = `${spec.studyUid}.${src.series}`;
      const sop = `${spec.studyUid}.${src.series}.${n}`;
      let ds = file.dataset;
      const set = (el: Element) => (ds = withElement(ds, el));
      set({ tag: TAG.StudyInstanceUID, vr: 'UI', value: uidBytes(spec.studyUid) });
      set({ tag: TAG.SeriesInstanceUID, vr: 'UI', value: uidBytes(series) });
      set({ tag: TAG.SOPInstanceUID, vr: 'UI', value: uidBytes(sop) });
      set({ tag: TAG.PatientName, vr: 'PN', value: asciiBytes(spec.patientName, 'PN') });
      set({ tag: TAG.PatientID, vr: 'LO', value: asciiBytes(spec.patientId, 'LO') });
      set({ tag: 0x00080050, vr: 'SH', value: asciiBytes(`ACC${spec.patientId}`, 'SH') });
      if (opts.referenceFirst && out.length > 0) {
        const first = out[0];
        const classUid = rawString(findElement(ds, TAG.SOPClassUID)?.value);
        set({
          tag: 0x00081140, // ReferencedImageSequence
          vr: 'SQ',
          items: [{ undefinedLength: false, elements: [{ tag: 0x00081150, vr: 'UI', value: uidBytes(classUid) }, { tag: 0x00081155, vr: 'UI', value: uidBytes(first.sopInstanceUid) }] }],
        });
      }
      const path = join(dir, `${String(n).padStart(4, '0')}.dcm`);
      writeFileSync(path, writeDicom({ ...file, meta: file.meta.filter((e) => e.tag !== 0x00020003), dataset: ds }));
      out.push({ path, sopInstanceUid: sop, seriesInstanceUid: series, transferSyntaxUid: file.transferSyntaxUID });
    }
  }
  return out;
}
