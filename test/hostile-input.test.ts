/**
 * Hostile input through the CLI, each run in a child process with a small V8 heap and its peak memory
 * measured: every file must end in quarantine with its code, nothing must be written out, and memory
 * must stay far below what the file declares.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { TS } from '../src/dicom/transfer-syntax.js';
import { encodeDataset, encodeMetaHeader } from '../src/dicom/writer.js';
import { CLI, REPO_ROOT, tempDir } from './helpers/corpus.js';
import { baseDataset, el, makeBytes, makeFile, seq, u16 } from './helpers/dicom-builder.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const tmp = tempDir('deid-hostile-');
afterAll(tmp.cleanup);
const secretFile = join(tmp.path, 'secret');
writeFileSync(secretFile, 'a-site-secret-for-tests-0123456789\n');
const PEAK = join(REPO_ROOT, 'test/fixtures/report-peak.mjs');

interface Run {
  dir: string;
  code: number | null;
  stderr: string;
  peakMiB: number;
  reasons: Map<string, string>;
  outputs: string[];
}

/** deid run on a folder, in a child with a 64 MiB V8 heap, reporting its peak resident memory. */
function run(files: Record<string, Uint8Array>, extra: string[] = []): Run {
  const dir = join(tmp.path, `run-${createHash('sha256').update(Object.keys(files).join()).digest('hex').slice(0, 8)}-${extra.join('')}`);
  const input = join(dir, 'in');
  mkdirSync(input, { recursive: true });
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(input, name), bytes);
  const r = spawnSync(
    process.execPath,
    ['--max-old-space-size=64', '--import', PEAK, CLI, 'run', input, '--out', join(dir, 'out'), '--quarantine', join(dir, 'q'), '--secret-file', secretFile, '--jobs', '1', ...extra],
    { encoding: 'utf8', timeout: 120_000 },
  );
  const peak = /DEID_PEAK_RSS_KB=(\d+)/.exec(r.stderr);
  if (!peak) throw new Error(`no peak reported (exit ${r.status}): ${r.stderr.slice(0, 500)}`);
  // For the record of a run (DEID_REPORT_PEAKS=1 npx vitest run test/hostile-input.test.ts).
  if (process.env.DEID_REPORT_PEAKS) console.log(`peak RSS ${(Number(peak[1]) / 1024).toFixed(0)} MiB: ${Object.keys(files).join(', ')} ${extra.join(' ')}`);
  const reasons = new Map<string, string>();
  const q = join(dir, 'q');
  for (const f of existsSync(q) ? readdirSync(q).filter((n) => n.endsWith('.reason.json')) : []) {
    const reason = JSON.parse(readFileSync(join(q, f), 'utf8'));
    reasons.set(reason.source, reason.code);
  }
  const out = join(dir, 'out');
  const outputs = existsSync(out) ? readdirSync(out, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => d.name) : [];
  return { dir, code: r.status, stderr: r.stderr, peakMiB: Number(peak[1]) / 1024, reasons, outputs };
}

/** Reverses the low `count` bits: Huffman codes go most significant bit first into an LSB-first stream. */
const reversed = (value: number, count: number) => {
  let r = 0;
  for (let i = 0; i < count; i++) r |= ((value >>> i) & 1) << (count - 1 - i);
  return r;
};

/** Length code 285 (258 bytes), then distance code 0 (distance 1): copies the previous byte 258 times. */
const REPEAT_258 = reversed(0xc5, 8) | (reversed(0, 5) << 8);

/** Raw deflate in one block with the fixed Huffman codes of RFC 1951 (3.2.6). */
class FixedHuffman {
  private readonly out: Buffer;
  private length = 0;
  private acc = 0;
  private n = 0;

  constructor(capacity: number) {
    this.out = Buffer.alloc(capacity);
    this.bits(1, 1); // BFINAL
    this.bits(1, 2); // BTYPE 01: fixed codes
  }

  private bits(value: number, count: number): void {
    this.acc |= value << this.n;
    this.n += count;
    while (this.n >= 8) {
      this.out[this.length++] = this.acc & 0xff;
      this.acc >>>= 8;
      this.n -= 8;
    }
  }

  literal(b: number): void {
    if (b < 144) this.bits(reversed(0x30 + b, 8), 8);
    else this.bits(reversed(0x190 + b - 144, 9), 9);
  }

  repeat258(): void {
    this.bits(REPEAT_258, 13);
  }

  end(): Buffer {
    this.bits(0, 7); // end of block (256)
    if (this.n) this.out[this.length++] = this.acc & 0xff;
    return this.out.subarray(0, this.length);
  }
}

/** Deflates data given as bytes and as counts of zeros (copied 258 at a time from the zero before). */
function deflated(parts: ReadonlyArray<Uint8Array | number>): Buffer {
  const literals = parts.reduce<number>((n, p) => n + (typeof p === 'number' ? 259 : p.length), 0);
  const runs = parts.reduce<number>((n, p) => n + (typeof p === 'number' ? Math.floor(p / 258) : 0), 0);
  const d = new FixedHuffman(literals * 2 + 64 + Math.ceil((runs * 13) / 8));
  for (const p of parts) {
    if (typeof p !== 'number') for (const b of p) d.literal(b);
    else {
      const copies = Math.floor((p - 1) / 258);
      for (let i = p - copies * 258; i > 0; i--) d.literal(0);
      for (let i = 0; i < copies; i++) d.repeat258();
    }
  }
  return d.end();
}

const bombs = new Map<string, { file: Uint8Array; body: number }>();

/**
 * A deflated explicit VR LE file: a few ordinary elements, then one element per size given, each that
 * many (even) bytes of zeros: Pixel Data for one, private OB elements for several. Returns the file and
 * where its deflated data set starts.
 */
function deflateBomb(...sizes: number[]): { file: Uint8Array; body: number } {
  const key = sizes.join();
  const built = bombs.get(key);
  if (built) return built;
  const elements = baseDataset().filter((e) => e.tag < 0x7fe00010);
  const meta = encodeMetaHeader(makeFile(elements), TS.DeflatedExplicitLE);
  const parts: Array<Uint8Array | number> = [encodeDataset(elements, TS.ExplicitLE)];
  sizes.forEach((size, i) => {
    const even = size + (size % 2);
    parts.push(sizes.length === 1 ? longHeader(0x7fe0, 0x0010, 'OB', even) : longHeader(0x0009, 0x1001 + i, 'OB', even), even);
  });
  const bomb = { file: Buffer.concat([meta, deflated(parts)]), body: meta.length };
  bombs.set(key, bomb);
  return bomb;
}

/** A file with raw bytes (an element header and what follows) after the elements given. */
function withRawElement(before: Parameters<typeof makeBytes>[0], raw: Uint8Array): Uint8Array {
  return Buffer.concat([makeBytes(before), raw]);
}

/** An explicit VR element header with a 4-byte length. */
function longHeader(group: number, element: number, vr: string, length: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16LE(group, 0);
  b.writeUInt16LE(element, 2);
  b.write(vr, 4, 'latin1');
  b.writeUInt32LE(length, 8);
  return b;
}

describe('hostile input, in bounded memory', () => {
  it('should build a deflate bomb that really inflates to 1.5 GiB', () => {
    const bomb = deflateBomb(1.5 * GiB);
    expect(bomb.file.length).toBeLessThan(12 * MiB);
    // Inflated here only as far as a small cap (zlib refuses to go beyond it), and a small one in full.
    expect(() => inflateRawSync(bomb.file.subarray(bomb.body), { maxOutputLength: 16 * MiB })).toThrow(/Cannot create a Buffer larger than/);
    const small = deflateBomb(MiB);
    const inflated = inflateRawSync(small.file.subarray(small.body));
    expect(inflated.length).toBeGreaterThan(MiB);
    // Its Pixel Data declares exactly the zeros that follow it.
    const pixels = inflated.indexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42]));
    expect(inflated.readUInt32LE(pixels + 8)).toBe(inflated.length - pixels - 12);
  });

  it('should quarantine a 1.5 GiB deflate bomb as DEID_ERR_HOSTILE_SIZE at a 64 MiB limit, without inflating it', () => {
    const r = run({ 'bomb.dcm': deflateBomb(1.5 * GiB).file }, ['--max-bytes', String(64 * MiB)]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.reasons.get('bomb.dcm')).toBe('DEID_ERR_HOSTILE_SIZE');
    expect(r.outputs).toEqual([]);
    expect(r.peakMiB).toBeLessThan(300);
  });

  it('should quarantine it at the default 1 GiB limit too, never holding the whole', () => {
    const r = run({ 'bomb.dcm': deflateBomb(1.5 * GiB).file });
    expect(r.code, r.stderr).toBe(2);
    expect(r.reasons.get('bomb.dcm')).toBe('DEID_ERR_HOSTILE_SIZE');
    expect(r.peakMiB).toBeLessThan(1.3 * 1024);
  });

  it('should stop inflating at the limit when no single length declares too much: many elements, each within it', () => {
    // Six elements of 48 MiB: each is within a 64 MiB limit, together they are 288 MiB.
    const r = run({ 'many.dcm': deflateBomb(...Array(6).fill(48 * MiB)).file }, ['--max-bytes', String(64 * MiB)]);
    expect(r.reasons.get('many.dcm')).toBe('DEID_ERR_HOSTILE_SIZE');
    expect(r.peakMiB).toBeLessThan(300);
    // Built the same way and within the limit, a file is read completely (and its private elements removed).
    const fits = run({ 'fits.dcm': deflateBomb(...Array(3).fill(4 * MiB)).file }, ['--max-bytes', String(64 * MiB)]);
    expect(fits.reasons.size, fits.stderr).toBe(0);
    expect(fits.outputs).toHaveLength(1);
  });

  it('should quarantine declared lengths beyond the limit as DEID_ERR_HOSTILE_SIZE, and beyond the data as truncated', () => {
    const head = baseDataset().filter((e) => e.tag < 0x00100010);
    const implicitHead = Buffer.from(makeBytes(head, TS.ImplicitLE));
    const implicitHuge = Buffer.alloc(8);
    implicitHuge.writeUInt16LE(0x0010, 0);
    implicitHuge.writeUInt16LE(0x4000, 2); // PatientComments, implicit VR
    implicitHuge.writeUInt32LE(0xfffffff0, 4);
    const itemHuge = Buffer.alloc(8);
    itemHuge.writeUInt16LE(0xfffe, 0);
    itemHuge.writeUInt16LE(0xe000, 2);
    itemHuge.writeUInt32LE(0x7ffffff0, 4);
    const r = run(
      {
        'ob-4gib.dcm': withRawElement(head, longHeader(0x0009, 0x1001, 'OB', 0xfffffff0)),
        'ut-2gib.dcm': withRawElement(head, longHeader(0x0010, 0x4000, 'UT', 0x7ffffff0)),
        'implicit.dcm': Buffer.concat([implicitHead, implicitHuge]),
        'item.dcm': withRawElement(head, Buffer.concat([longHeader(0x0008, 0x1140, 'SQ', 0xffffffff), itemHuge])),
        'past-end.dcm': withRawElement(head, Buffer.concat([longHeader(0x0010, 0x4000, 'UT', 4096), Buffer.alloc(16)])),
      },
      ['--max-bytes', String(256 * MiB)],
    );
    expect(r.code, r.stderr).toBe(2);
    expect(Object.fromEntries(r.reasons)).toEqual({
      'ob-4gib.dcm': 'DEID_ERR_HOSTILE_SIZE',
      'ut-2gib.dcm': 'DEID_ERR_HOSTILE_SIZE',
      'implicit.dcm': 'DEID_ERR_HOSTILE_SIZE',
      'item.dcm': 'DEID_ERR_HOSTILE_SIZE',
      'past-end.dcm': 'DEID_ERR_TRUNCATED',
    });
    expect(r.outputs).toEqual([]);
    expect(r.peakMiB).toBeLessThan(300);
  });

  it('should quarantine a file over the limit without reading it, keeping it byte for byte', () => {
    const big = Buffer.concat([makeBytes(baseDataset()), Buffer.alloc(3 * MiB)]);
    const r = run({ 'big.dcm': big }, ['--max-bytes', String(MiB)]);
    expect(r.reasons.get('big.dcm')).toBe('DEID_ERR_HOSTILE_SIZE');
    const kept = readFileSync(join(r.dir, 'q', `${createHash('sha256').update(big).digest('hex').slice(0, 32)}.dcm`));
    expect(kept.equals(big)).toBe(true);
  });

  it('should quarantine UIDs that are not UIDs as DEID_ERR_BAD_UID and write nothing', () => {
    const uid = (kw: string, vr: string, value: string | Uint8Array) => makeBytes(baseDataset([el(kw, vr, value)]));
    const badSyntax = Buffer.from(makeBytes(baseDataset()));
    const ts = badSyntax.indexOf(Buffer.from(TS.ExplicitLE + '\0'));
    badSyntax.write('explicit/little\0\0\0\0', ts, 'latin1'); // same length: 20 bytes
    const r = run({
      'sop-us.dcm': uid('SOPInstanceUID', 'US', u16(7)),
      'series-at.dcm': uid('SeriesInstanceUID', 'AT', u16(0x0008, 0x0018)),
      'sop-empty.dcm': uid('SOPInstanceUID', 'UI', ''),
      'class-text.dcm': uid('SOPClassUID', 'UI', 'CT Image Storage'),
      'ref-letters.dcm': makeBytes(baseDataset([seq('ReferencedImageSequence', [[el('ReferencedSOPInstanceUID', 'UI', '1.2.3.abc')]])])),
      'syntax-text.dcm': badSyntax,
      'good.dcm': makeBytes(baseDataset()),
    });
    expect(r.code, r.stderr).toBe(2);
    expect(Object.fromEntries(r.reasons)).toEqual({
      'sop-us.dcm': 'DEID_ERR_BAD_UID',
      'series-at.dcm': 'DEID_ERR_BAD_UID',
      'sop-empty.dcm': 'DEID_ERR_BAD_UID',
      'class-text.dcm': 'DEID_ERR_BAD_UID',
      'ref-letters.dcm': 'DEID_ERR_BAD_UID',
      'syntax-text.dcm': 'DEID_ERR_BAD_UID',
    });
    expect(r.outputs).toHaveLength(1);
    expect(r.outputs[0]).toMatch(/^2\.25\.\d+\.dcm$/);
  });
});
