import { closeSync, ftruncateSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDicom } from '../src/dicom/reader.js';
import { TS } from '../src/dicom/transfer-syntax.js';
import { writeDicom } from '../src/dicom/writer.js';
import { withElement } from '../src/dicom/element.js';
import { uidBytes } from '../src/dicom/values.js';
import { DeidError } from '../src/errors.js';
import { splitPart10 } from '../src/dicom/part10.js';
import { startDimseScp, type DimseScpHandle } from '../src/ingest/dimse-scp.js';
import type { Ingest, IngestOutcome, IngestSource } from '../src/pipeline/ports.js';
import { baseDataset, makeBytes, u16, el } from './helpers/dicom-builder.js';
import { corpusFile, tempDir } from './helpers/corpus.js';
import { waitFor } from './helpers/ports.js';
import { runEchoscu, runStorescu, spawnStorescu, spawnTool, startStorescp, storeResponses, type Storescp } from './helpers/dcmtk.js';

interface Received {
  readonly bytes: Buffer;
  readonly source: IngestSource;
}

/** An in-memory ingest port that records what it is given and answers what the test says. */
function recordingIngest(answer: (bytes: Buffer) => Promise<IngestOutcome> | IngestOutcome = () => ({ ok: true, key: 'k', sopInstanceUid: 'x', sopClassUid: 'y' })) {
  const received: Received[] = [];
  const ingest: Ingest = async (part10, source) => {
    const bytes = Buffer.from(part10);
    received.push({ bytes, source });
    return answer(bytes);
  };
  return { ingest, received };
}

/** The data set bytes and transfer syntax of a Part 10 file. */
function datasetOf(part10: Buffer): { ts: string; ds: Buffer; sopClass?: string; sopInstance?: string } {
  const p = splitPart10(part10);
  if (!p?.transferSyntaxUid) throw new Error('no meta header');
  return { ts: p.transferSyntaxUid, ds: part10.subarray(p.datasetOffset), sopClass: p.sopClassUid, sopInstance: p.sopInstanceUid };
}

const tmp = tempDir('deid-dimse-scp-');
let scp: DimseScpHandle;
let storescp: Storescp;
const main = recordingIngest();

beforeAll(async () => {
  [scp, storescp] = await Promise.all([
    startDimseScp({ host: '127.0.0.1', port: 0, aeTitle: 'DEID', allowedCallingAEs: [], maxPduLength: 262144, ingest: main.ingest }),
    startStorescp({ aeTitle: 'DEID' }),
  ]);
});

afterAll(async () => {
  await Promise.all([scp?.close(), storescp?.stop()]);
  tmp.cleanup();
});

/** pydicom's priv_SQ.dcm (a private sequence read implicitly) with the SOP UIDs storescu needs. */
function privSqWithUids(): string {
  const f = readDicom(readFileSync(corpusFile('pydicom/priv_SQ.dcm')));
  let ds = withElement(f.dataset, { tag: 0x00080016, vr: 'UI', value: uidBytes('1.2.840.10008.5.1.4.1.1.4') });
  ds = withElement(ds, { tag: 0x00080018, vr: 'UI', value: uidBytes('1.2.826.0.1.3680043.2.1125.9.9.1') });
  const path = join(tmp.path, 'priv_SQ_uid.dcm');
  rmSync(path, { force: true });
  const fd = openSync(path, 'w');
  writeSync(fd, writeDicom({ ...f, dataset: ds }, { transferSyntaxUID: TS.ImplicitLE }));
  closeSync(fd);
  return path;
}

// [corpus file, storescu proposal options, what it covers]
const CASES: Array<[string, string[], string]> = [
  ['pydicom/CT_small.dcm', [], 'explicit VR LE with GE private tags'],
  ['pydicom/MR_small.dcm', [], 'explicit VR LE'],
  ['pydicom/MR_small_bigendian.dcm', ['-xb'], 'explicit VR big endian'],
  ['pydicom/MR_small_implicit.dcm', ['-xi'], 'implicit VR LE'],
  ['pydicom/image_dfl.dcm', ['-xd'], 'deflated explicit VR LE'],
  ['pydicom/SC_rgb_jpeg_dcmtk.dcm', ['-xy'], 'JPEG baseline'],
  ['pydicom/JPGExtended.dcm', ['-xx'], 'JPEG extended 12-bit'],
  ['pydicom/SC_rgb_jpeg_gdcm.dcm', ['-xs'], 'JPEG lossless SV1'],
  ['pydicom/MR_small_RLE.dcm', ['-xr'], 'RLE lossless'],
  ['pydicom/MR_small_jpeg_ls_lossless.dcm', ['-xt'], 'JPEG-LS lossless'],
  ['pydicom/JPEGLSNearLossless_16.dcm', ['-xu'], 'JPEG-LS near-lossless'],
  ['pydicom/MR_small_jp2klossless.dcm', ['-xv'], 'JPEG 2000 lossless'],
  ['pydicom/JPEG2000.dcm', ['-xw'], 'JPEG 2000'],
  ['dicomparser/encapsulated/multi-frame/CT0012.not_fragmented_bot_rle.dcm', ['-xr'], 'multi-frame RLE'],
  ['dicomparser/encapsulated/multi-frame/CT0012.fragmented_no_bot_jpeg_ls.80.dcm', ['-xt'], 'multi-frame fragmented JPEG-LS'],
  ['dicomparser/encapsulated/multi-frame/IM00001.implicit_little_endian.dcm', ['-xi'], 'multi-frame implicit VR LE (1.8 MB)'],
];

describe('DIMSE SCP: what is received', () => {
  it('should answer C-ECHO', async () => {
    const r = await runEchoscu({ port: scp.port });
    expect(r.code, r.output).toBe(0);
  });

  for (const [rel, args, what] of CASES) {
    it(`should hand ingest the data set exactly as dcmtk storescp +B receives it: ${what}`, async () => {
      const file = corpusFile(rel);
      const before = main.received.length;
      storescp.clear();
      const [ours, theirs] = await Promise.all([
        runStorescu({ port: scp.port, args, files: [file], callingAE: 'MODALITY1' }),
        runStorescu({ port: storescp.port, args, files: [file], callingAE: 'MODALITY1' }),
      ]);
      expect(ours.code, ours.output).toBe(0);
      expect(theirs.code, theirs.output).toBe(0);
      expect(main.received.length).toBe(before + 1);
      const got = main.received[before];
      const [reference] = storescp.files();
      const a = datasetOf(got.bytes);
      const b = datasetOf(readFileSync(reference));
      expect(a.ts).toBe(b.ts);
      expect(a.sopClass).toBe(b.sopClass);
      expect(a.sopInstance).toBe(b.sopInstance);
      expect(a.ds.length).toBe(b.ds.length);
      expect(a.ds.equals(b.ds)).toBe(true);
      // Our own reader parses what we hand on, completely.
      expect(() => readDicom(got.bytes)).not.toThrow();
      expect(got.source).toEqual({ kind: 'dimse', callingAE: 'MODALITY1', calledAE: 'DEID', remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
    });
  }

  it('should keep private elements and sequences (CT_small GE tags, a private sequence)', async () => {
    const before = main.received.length;
    const priv = privSqWithUids();
    const r = await runStorescu({ port: scp.port, files: [corpusFile('pydicom/CT_small.dcm'), priv], args: ['-xi'] });
    expect(r.code, r.output).toBe(0);
    const [ct, sq] = main.received.slice(before).map((x) => readDicom(x.bytes));
    const privateTags = (ds: readonly { tag: number }[]) => ds.filter((e) => (e.tag >>> 16) % 2 === 1).map((e) => e.tag);
    const ctOriginal = readDicom(readFileSync(corpusFile('pydicom/CT_small.dcm')));
    expect(privateTags(ct.dataset).length).toBeGreaterThan(20);
    expect(privateTags(ct.dataset)).toEqual(privateTags(ctOriginal.dataset));
    // Implicit VR on both sides: the data set is the file's own bytes.
    expect(datasetOf(main.received[before + 1].bytes).ds.equals(datasetOf(readFileSync(priv)).ds)).toBe(true);
    expect(sq.dataset.some((e) => e.tag === 0x3f031001)).toBe(true);
  });

  it('should accept the first proposed transfer syntax it supports, in the sender’s order', async () => {
    const before = main.received.length;
    // +C puts all proposed syntaxes in one context: -xb proposes big endian first, -xe little endian first.
    const big = await runStorescu({ port: scp.port, args: ['+C', '-xb'], files: [corpusFile('pydicom/CT_small.dcm')] });
    const little = await runStorescu({ port: scp.port, args: ['+C', '-xe'], files: [corpusFile('pydicom/CT_small.dcm')] });
    const jpeg = await runStorescu({ port: scp.port, args: ['+C', '-xs'], files: [corpusFile('pydicom/SC_rgb_jpeg_gdcm.dcm')] });
    for (const r of [big, little, jpeg]) expect(r.code, r.output).toBe(0);
    expect(main.received.slice(before).map((x) => datasetOf(x.bytes).ts)).toEqual([TS.ExplicitBE, TS.ExplicitLE, TS.JPEGLosslessSV1]);
  });

  it('should take many objects over one association', async () => {
    const before = main.received.length;
    const files = ['pydicom/CT_small.dcm', 'pydicom/MR_small.dcm', 'pydicom/SC_rgb_rle.dcm'].map(corpusFile);
    const r = await runStorescu({ port: scp.port, args: ['-xr'], files: [...files, ...files] });
    expect(r.code, r.output).toBe(0);
    expect((r.output.match(/Association Accepted/g) ?? []).length).toBe(1);
    expect(storeResponses(r.output)).toEqual(Array(6).fill('Success'));
    expect(main.received.length).toBe(before + 6);
  });
});

describe('DIMSE SCP: answers', () => {
  const handles: DimseScpHandle[] = [];
  afterAll(async () => {
    await Promise.all(handles.map((h) => h.close()));
  });
  async function scpWith(ingest: Ingest, extra: Partial<Parameters<typeof startDimseScp>[0]> = {}) {
    const h = await startDimseScp({ host: '127.0.0.1', port: 0, aeTitle: 'DEID', allowedCallingAEs: [], maxPduLength: 65536, ingest, ...extra });
    handles.push(h);
    return h;
  }

  it('should answer 0xC000 with the error code as comment when ingest cannot parse the object', async () => {
    const fake = recordingIngest(() => ({ ok: false, code: 'DEID_ERR_TRUNCATED' }));
    const h = await scpWith(fake.ingest);
    const r = await runStorescu({ port: h.port, files: [corpusFile('pydicom/CT_small.dcm')], args: ['-d'] });
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/Status\s*: 0xc000/i);
    expect(r.output).toContain('DEID_ERR_TRUNCATED');
    expect(fake.received).toHaveLength(1);
  });

  it('should answer 0xA700 Out of Resources when the spool is full', async () => {
    const fake = recordingIngest(() => ({ ok: false, code: 'DEID_ERR_OUT_OF_RESOURCES' }));
    const h = await scpWith(fake.ingest);
    const r = await runStorescu({ port: h.port, files: [corpusFile('pydicom/CT_small.dcm')], args: ['-d'] });
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/Status\s*: 0xa700/i);
    expect(r.output).toContain('DEID_ERR_OUT_OF_RESOURCES');
  });

  it('should answer a failure, never Success, when ingest throws', async () => {
    let n = 0;
    const h = await scpWith(async () => {
      n++;
      if (n === 1) throw Object.assign(new Error('disk'), { code: 'ENOSPC' });
      if (n === 2) throw new DeidError('DEID_ERR_NOT_DICOM');
      throw new TypeError('bug with a patient name in it');
    });
    const r = await runStorescu({ port: h.port, files: Array(3).fill(corpusFile('pydicom/MR_small.dcm')), args: ['-d', '-nh'] });
    expect(r.output).toMatch(/Status\s*: 0xa700/i);
    expect(r.output).toMatch(/Status\s*: 0xc000/i);
    expect(r.output).toMatch(/Status\s*: 0x0110/i);
    expect(r.output).not.toContain('patient name');
    expect(storeResponses(r.output).some((s) => s === 'Success')).toBe(false);
  });

  it('should answer Success only after ingest resolves', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const fake = recordingIngest(async () => {
      await gate;
      return { ok: true, key: 'k', sopInstanceUid: 'x', sopClassUid: 'y' };
    });
    const h = await scpWith(fake.ingest);
    const run = spawnStorescu({ port: h.port, files: [corpusFile('pydicom/CT_small.dcm')] });
    await waitFor(() => fake.received.length === 1, 10_000, 'the object to reach ingest');
    await new Promise((r) => setTimeout(r, 300));
    expect(run.child.exitCode).toBeNull();
    expect(storeResponses(run.output())).toEqual([]);
    release();
    const r = await run.result;
    expect(r.code, r.output).toBe(0);
    expect(storeResponses(r.output)).toEqual(['Success']);
  });

  it('should refuse services other than storage and verification', async () => {
    const fake = recordingIngest();
    const h = await scpWith(fake.ingest);
    const r = await spawnTool('findscu', ['-v', '-S', '-k', 'QueryRetrieveLevel=STUDY', '-aec', 'DEID', '127.0.0.1', String(h.port)], 10_000).result;
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/No Acceptable Presentation Contexts/i);
  });

  it('should refuse to start with an out-of-range maximum PDU length', async () => {
    const fake = recordingIngest();
    await expect(startDimseScp({ host: '127.0.0.1', port: 0, aeTitle: 'DEID', allowedCallingAEs: [], maxPduLength: 1024, ingest: fake.ingest })).rejects.toThrow(/DEID_ERR_CONFIG/);
  });

  it('should reject an association from a calling AE that is not on the allow-list', async () => {
    const fake = recordingIngest();
    const h = await scpWith(fake.ingest, { allowedCallingAEs: ['GOODAE'] });
    const bad = await runStorescu({ port: h.port, callingAE: 'EVILAE', files: [corpusFile('pydicom/CT_small.dcm')] });
    expect(bad.code).not.toBe(0);
    expect(bad.output).toMatch(/Association Rejected/i);
    expect(bad.output).toMatch(/Calling AE Title Not Recognized/i);
    const good = await runStorescu({ port: h.port, callingAE: 'GOODAE', files: [corpusFile('pydicom/CT_small.dcm')] });
    expect(good.code, good.output).toBe(0);
    expect(fake.received).toHaveLength(1);
    expect(fake.received[0].source.callingAE).toBe('GOODAE');
  });

  it('should drop a partial object when the sender dies mid-transfer, and keep serving', async () => {
    // A 256 MB multi-frame object, written sparse so that making it costs nothing.
    const ds = baseDataset([el('Rows', 'US', u16(8192)), el('Columns', 'US', u16(8192)), el('NumberOfFrames', 'IS', '2')]).filter((e) => e.tag !== 0x7fe00010);
    const head = makeBytes(ds, TS.ExplicitLE);
    const pixelBytes = 8192 * 8192 * 2 * 2;
    const pixelHeader = Buffer.alloc(12);
    pixelHeader.writeUInt16LE(0x7fe0, 0);
    pixelHeader.writeUInt16LE(0x0010, 2);
    pixelHeader.write('OW', 4, 'latin1');
    pixelHeader.writeUInt32LE(pixelBytes, 8);
    const big = join(tmp.path, 'big.dcm');
    const fd = openSync(big, 'w');
    writeSync(fd, head);
    writeSync(fd, pixelHeader);
    ftruncateSync(fd, head.length + 12 + pixelBytes);
    closeSync(fd);

    const lines: string[] = [];
    const logger = pino(
      { level: 'debug' },
      new Writable({
        write(chunk, _enc, cb) {
          lines.push(String(chunk));
          cb();
        },
      }),
    );
    const fake = recordingIngest();
    const h = await scpWith(fake.ingest, { logger, maxPduLength: 16384 });
    const run = spawnStorescu({ port: h.port, files: [big] });
    await waitFor(() => lines.some((l) => l.includes('C-STORE data started')), 20_000, 'the transfer to start');
    run.child.kill('SIGKILL');
    const r = await run.result;
    expect(r.signal).toBe('SIGKILL');
    await waitFor(() => lines.some((l) => l.includes('partial object dropped')), 5_000, 'the SCP to drop the partial object');
    expect(fake.received).toHaveLength(0);
    const next = await runStorescu({ port: h.port, files: [corpusFile('pydicom/CT_small.dcm')] });
    expect(next.code, next.output).toBe(0);
    expect(fake.received).toHaveLength(1);
    // No PHI in the SCP's logs: no UIDs of the objects, no names.
    const all = lines.join('');
    expect(all).not.toContain('1.2.826.0.1.3680043.2.1125');
    expect(all).not.toContain('1.3.6.1.4.1.5962');
    expect(all).not.toMatch(/CompressedSamples|Smith/);
  });

  it('should let an in-flight store finish and answer before close() completes', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const fake = recordingIngest(async () => {
      await gate;
      return { ok: true, key: 'k', sopInstanceUid: 'x', sopClassUid: 'y' };
    });
    const h = await startDimseScp({ host: '127.0.0.1', port: 0, aeTitle: 'DEID', allowedCallingAEs: [], maxPduLength: 65536, ingest: fake.ingest });
    const run = spawnStorescu({ port: h.port, files: [corpusFile('pydicom/CT_small.dcm'), corpusFile('pydicom/MR_small.dcm')] });
    await waitFor(() => fake.received.length === 1, 10_000, 'the object to reach ingest');
    let closed = false;
    const closing = h.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 200));
    expect(closed).toBe(false);
    release();
    await closing;
    const r = await run.result;
    // The first object was answered Success; the association was then aborted, so the second was never taken.
    expect(storeResponses(r.output)[0]).toBe('Success');
    expect(fake.received).toHaveLength(1);
    const after = await runEchoscu({ port: h.port, timeoutMs: 10_000 });
    expect(after.code).not.toBe(0);
  });
});
