import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readDicom } from '../src/dicom/reader.js';
import { writeDicom } from '../src/dicom/writer.js';
import { corpusFile, corpusFiles, dcmdump, tempDir } from './helpers/corpus.js';

/**
 * Files dcmdump reads that we deliberately refuse, each for a documented reason:
 * - DICOMDIR-nooffset ends without its closing delimiters; dcmdump invents them, we call it truncated.
 * - meta_missing_tsyntax has no (0002,0010); dcmdump guesses the encoding, we never guess for a Part 10 file.
 */
const REFUSED: Record<string, string> = {
  'pydicom/dicomdirtests/DICOMDIR-nooffset': 'DEID_ERR_TRUNCATED',
  'pydicom/meta_missing_tsyntax.dcm': 'DEID_ERR_MISSING_TRANSFER_SYNTAX',
};

/**
 * Documented meta-header changes: the meta group is rebuilt (group length, implementation UID and name,
 * transfer syntax: big endian and deflated become explicit VR little endian), and dcmdump's comment
 * lines (#) show byte offsets and the syntax used. Everything else must print the same.
 */
const comparable = (dump: string) =>
  dump
    .split('\n')
    .filter((l) => l.trim() && !/^\(0002,/.test(l) && !/^\s*#/.test(l))
    .join('\n');

describe('lossless Part 10 round trip over the whole shared corpus', () => {
  const tmp = tempDir();
  afterAll(tmp.cleanup);
  const files = corpusFiles();

  it('should cover the whole corpus', () => {
    expect(files.length).toBeGreaterThan(200);
  });

  it.each(files)('should print the same in dcmdump after a pass with no rules: %s', (rel) => {
    const src = corpusFile(rel);
    const before = dcmdump(src);
    let out: Buffer;
    try {
      out = writeDicom(readDicom(readFileSync(src)));
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (before === null) {
        // Neither tool reads it (not DICOM, truncated): we must refuse with a coded reason.
        expect(code).toMatch(/^DEID_ERR_/);
        return;
      }
      expect(REFUSED[rel], `${rel} was refused with ${code} though dcmdump reads it`).toBe(code);
      return;
    }
    expect(REFUSED[rel], `${rel} should have been refused`).toBeUndefined();
    const target = join(tmp.path, 'out.dcm');
    writeFileSync(target, out);
    const after = dcmdump(target);
    if (before === null) throw new Error(`${rel}: we read a file dcmdump rejects`);
    expect(after).not.toBeNull();
    expect(comparable(after!)).toBe(comparable(before));
  });
});
