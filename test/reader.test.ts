import { readFileSync } from 'node:fs';
import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { findElement } from '../src/dicom/element.js';
import { readDicom } from '../src/dicom/reader.js';
import { TAG } from '../src/dicom/tag.js';
import { TS } from '../src/dicom/transfer-syntax.js';
import { rawString } from '../src/dicom/values.js';
import { ScratchBuffer } from '../src/dicom/scratch-buffer.js';
import { encodeDataset, encodeMetaHeader, writeDicom } from '../src/dicom/writer.js';
import { DeidError } from '../src/errors.js';
import { isValidUid } from '../src/dicom/uid.js';
import { withDictionaryVRs } from '../src/dicom/unknown-vr.js';
import { corpusFile } from './helpers/corpus.js';

const code = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (e) {
    return e instanceof DeidError ? e.code : `not coded: ${String(e)}`;
  }
  return undefined;
};

describe('reading Part 10 files', () => {
  const ct = readFileSync(corpusFile('pydicom/CT_small.dcm'));

  it('should refuse a truncated file at every cut with a coded reason', () => {
    for (const cut of [200, 1000, 5000, ct.length - 100, ct.length - 1]) {
      expect(code(() => readDicom(ct.subarray(0, cut)))).toMatch(/DEID_ERR_(TRUNCATED|BAD_LENGTH|BAD_STRUCTURE)/);
    }
  });

  it('should refuse files that are not DICOM', () => {
    expect(code(() => readDicom(Buffer.from('%PDF-1.7 hello')))).toBe('DEID_ERR_NOT_DICOM');
    expect(code(() => readDicom(Buffer.alloc(0)))).toBe('DEID_ERR_NOT_DICOM');
    expect(code(() => readDicom(readFileSync(corpusFile('pydicom/README.txt'))))).toBe('DEID_ERR_NOT_DICOM');
  });

  it('should refuse a length that runs past the end of the file', () => {
    const bad = Buffer.from(ct);
    // PatientName's 2-byte length (explicit VR LE) set far beyond the file.
    const at = bad.indexOf(Buffer.from([0x10, 0x00, 0x10, 0x00, 0x50, 0x4e]));
    bad.writeUInt16LE(0xfff0, at + 6);
    expect(code(() => readDicom(bad))).toMatch(/DEID_ERR_(TRUNCATED|BAD_LENGTH|BAD_STRUCTURE)/);
  });

  it('should refuse a Part 10 file without a transfer syntax and an unknown transfer syntax', () => {
    expect(code(() => readDicom(readFileSync(corpusFile('pydicom/meta_missing_tsyntax.dcm'))))).toBe('DEID_ERR_MISSING_TRANSFER_SYNTAX');
    const f = readDicom(ct);
    const odd = writeDicom(f, { transferSyntaxUID: '1.2.3.4' });
    expect(code(() => readDicom(odd))).toBe('DEID_ERR_UNSUPPORTED_TRANSFER_SYNTAX');
  });

  it('should refuse hostile sizes before parsing', () => {
    expect(code(() => readDicom(ct, { maxBytes: 1000 }))).toBe('DEID_ERR_HOSTILE_SIZE');
  });

  it('should read big endian, implicit and deflated files to the same values', () => {
    const le = readDicom(readFileSync(corpusFile('dicomparser/CT1_UNC.explicit_little_endian.dcm')));
    for (const variant of ['explicit_big_endian', 'implicit_little_endian']) {
      const other = readDicom(readFileSync(corpusFile(`dicomparser/CT1_UNC.${variant}.dcm`)));
      expect(Buffer.compare(findElement(other.dataset, TAG.PixelData)!.value!, findElement(le.dataset, TAG.PixelData)!.value!)).toBe(0);
      expect(rawString(findElement(other.dataset, TAG.SOPInstanceUID)!.value)).toBe(rawString(findElement(le.dataset, TAG.SOPInstanceUID)!.value));
    }
    // A deflated copy made here from the explicit LE data set.
    const body = deflateRawSync(encodeDataset(le.dataset, TS.ExplicitLE));
    const deflated = readDicom(Buffer.concat([encodeMetaHeader(le, TS.DeflatedExplicitLE), body]));
    expect(deflated.encoding.deflated).toBe(true);
    expect(Buffer.compare(encodeDataset(deflated.dataset, TS.ExplicitLE), encodeDataset(le.dataset, TS.ExplicitLE))).toBe(0);
  });

  it('should write big endian and deflated input as explicit VR little endian, and keep implicit as implicit', () => {
    const be = readDicom(readFileSync(corpusFile('dicomparser/CT1_UNC.explicit_big_endian.dcm')));
    expect(rawString(readDicom(writeDicom(be)).meta.find((e) => e.tag === TAG.TransferSyntaxUID)!.value)).toBe(TS.ExplicitLE);
    const imp = readDicom(readFileSync(corpusFile('dicomparser/CT1_UNC.implicit_little_endian.dcm')));
    expect(readDicom(writeDicom(imp)).transferSyntaxUID).toBe(TS.ImplicitLE);
  });

  it('should parse UN with undefined length as a sequence (CP-246) and write it back unchanged', () => {
    const buf = readFileSync(corpusFile('pydicom/UN_sequence.dcm'));
    const f = readDicom(buf);
    const un = f.dataset.find((e) => e.vr === 'UN' && e.items);
    expect(un?.items?.length).toBeGreaterThan(0);
    expect(encodeDataset(readDicom(writeDicom(f)).dataset, f.transferSyntaxUID)).toEqual(encodeDataset(f.dataset, f.transferSyntaxUID));
  });

  it('should keep encapsulated fragments and the offset table byte for byte', () => {
    const f = readDicom(readFileSync(corpusFile('dicomparser/encapsulated/single-frame/CT1_UNC.fragmented_bot_jpeg_ls.80.dcm')));
    const px = findElement(f.dataset, TAG.PixelData)!;
    expect(px.fragments!.length).toBeGreaterThan(2);
    expect(px.fragments![0].length).toBeGreaterThan(0);
    const again = findElement(readDicom(writeDicom(f)).dataset, TAG.PixelData)!;
    expect(again.fragments!.length).toBe(px.fragments!.length);
    again.fragments!.forEach((frag, i) => expect(Buffer.compare(frag, px.fragments![i])).toBe(0));
  });
});

describe('writing into a reused scratch buffer', () => {
  it('should write exactly what a fresh allocation holds, large then small, and reuse the memory', () => {
    const scratch = new ScratchBuffer();
    const files = ['dicomparser/CT1_UNC.explicit_little_endian.dcm', 'pydicom/CT_small.dcm', 'pydicom/MR_small.dcm', 'dicomparser/CT1_UNC.explicit_little_endian.dcm', 'pydicom/MR_small.dcm'];
    const areas = new Set<ArrayBufferLike>();
    for (const f of files) {
      const file = readDicom(readFileSync(corpusFile(f)));
      const fresh = writeDicom(file);
      const reused = writeDicom(file, { scratch });
      expect(reused.equals(fresh), f).toBe(true);
      areas.add(reused.buffer);
    }
    // The first (largest) object sized the area; every later one was written into the same memory.
    expect(areas.size).toBe(1);
  });

  it('should give an area larger than it keeps an allocation of its own', () => {
    const scratch = new ScratchBuffer(64 * 1024);
    const kept = scratch.take(32 * 1024);
    const large = scratch.take(128 * 1024);
    expect(large.length).toBe(128 * 1024);
    expect(large.buffer).not.toBe(kept.buffer);
    // The kept area was not replaced by the large one: a smaller take reuses it.
    const again = scratch.take(16 * 1024);
    expect(again.buffer).toBe(kept.buffer);
    expect(again.byteOffset).toBe(kept.byteOffset);
  });
});

describe('size limits and UIDs in the reader', () => {
  const ct = readFileSync(corpusFile('pydicom/CT_small.dcm'));

  it('should stop inflating a deflated data set at the size limit, and read it within the limit', () => {
    const dfl = readFileSync(corpusFile('pydicom/image_dfl.dcm'));
    const f = readDicom(dfl);
    const inflated = encodeDataset(f.dataset, TS.ExplicitLE).length;
    expect(inflated).toBeGreaterThan(dfl.length * 2);
    expect(code(() => readDicom(dfl, { maxBytes: Math.floor(inflated / 2) }))).toBe('DEID_ERR_HOSTILE_SIZE');
    expect(readDicom(dfl, { maxBytes: inflated + 1024 }).dataset.length).toBe(f.dataset.length);
  });

  it('should refuse a declared length beyond the size limit as hostile, and beyond the data as truncated', () => {
    const bad = Buffer.from(ct);
    // Pixel Data (7FE0,0010) OW: its 4-byte length.
    const at = bad.lastIndexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x57]));
    bad.writeUInt32LE(0x7ffffff0, at + 8);
    expect(code(() => readDicom(bad, { maxBytes: ct.length }))).toBe('DEID_ERR_HOSTILE_SIZE');
    expect(code(() => readDicom(bad))).toBe('DEID_ERR_TRUNCATED');
    expect(readDicom(ct, { maxBytes: ct.length }).dataset.length).toBeGreaterThan(50);
  });

  it('should refuse a transfer syntax that is not a UID as DEID_ERR_BAD_UID, and a UID it does not know as unsupported', () => {
    const f = readDicom(ct);
    expect(code(() => readDicom(writeDicom(f, { transferSyntaxUID: 'explicit-le' })))).toBe('DEID_ERR_BAD_UID');
    expect(code(() => readDicom(writeDicom(f, { transferSyntaxUID: '1.2.840.10008.1.2.1..1' })))).toBe('DEID_ERR_BAD_UID');
    expect(code(() => readDicom(writeDicom(f, { transferSyntaxUID: '1.2.3.4' })))).toBe('DEID_ERR_UNSUPPORTED_TRANSFER_SYNTAX');
  });

  it('should check UID syntax: digits and single dots, at most 64 characters, leading zeros tolerated', () => {
    for (const good of ['1.2.840.10008.1.2', '2.25.329800735698586629295641978511506172918', '1.2.03.4', '0']) expect(isValidUid(good), good).toBe(true);
    for (const bad of ['', '1..2', '.1.2', '1.2.', '1.2.3a', '1.2 3', `1.${'2'.repeat(63)}`]) expect(isValidUid(bad), bad).toBe(false);
  });
});

describe('standard attributes sent as UN', () => {
  it('should read them with their dictionary VR, values untouched, and leave unknown and private ones UN', () => {
    const f = readDicom(readFileSync(corpusFile('pydicom/rtdose_rle.dcm')));
    expect(findElement(f.dataset, TAG.SOPInstanceUID)!.vr).toBe('UN');
    const ds = withDictionaryVRs(f.dataset, true);
    for (const [tag, vr] of [[TAG.SOPInstanceUID, 'UI'], [TAG.PatientName, 'PN'], [0x00080020, 'DA'], [0x00280010, 'US']] as const) {
      expect(findElement(ds, tag)!.vr).toBe(vr);
      expect(findElement(ds, tag)!.value).toBe(findElement(f.dataset, tag)!.value);
    }
    const unknown = [{ tag: 0x00189999, vr: 'UN', value: Uint8Array.of(1, 2) }, { tag: 0x00091001, vr: 'UN', value: Uint8Array.of(3, 4) }];
    expect(withDictionaryVRs(unknown, true)).toBe(unknown);
    // Big endian UN bytes of a binary VR are swapped to the little endian the writer uses.
    expect([...withDictionaryVRs([{ tag: 0x00280010, vr: 'UN', value: Uint8Array.of(0x02, 0x00) }], false)[0].value!]).toEqual([0x00, 0x02]);
  });
});
