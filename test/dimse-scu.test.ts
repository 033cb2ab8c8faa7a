import { readFileSync } from 'node:fs';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readDicom } from '../src/dicom/reader.js';
import { TS } from '../src/dicom/transfer-syntax.js';
import { encodeDataset } from '../src/dicom/writer.js';
import { DeidError } from '../src/errors.js';
import { splitPart10 } from '../src/dicom/part10.js';
import { isRetryableStatus, isSuccessOrWarning } from '../src/dimse/status.js';
import { DimseDestination, parseDimseUrl } from '../src/export/dimse-scu.js';
import { startDimseScp, type DimseScpHandle } from '../src/ingest/dimse-scp.js';
import { type ExportInfo, type Ingest, type IngestOutcome } from '../src/pipeline/ports.js';
import { corpusFile } from './helpers/corpus.js';
import { startStorescp, type Storescp } from './helpers/dcmtk.js';
import { startOrthanc, type OrthancHandle } from './helpers/orthanc.js';
import { freePort, waitFor } from './helpers/ports.js';

/** A corpus file's bytes and the ExportInfo the pipeline would pass with it. */
function load(rel: string): { bytes: Buffer; info: ExportInfo; ds: Buffer; ts: string } {
  const bytes = readFileSync(corpusFile(rel));
  const p = splitPart10(bytes);
  if (!p?.transferSyntaxUid || !p.sopClassUid || !p.sopInstanceUid) throw new Error(`${rel}: incomplete meta header`);
  return {
    bytes,
    ds: bytes.subarray(p.datasetOffset),
    ts: p.transferSyntaxUid,
    info: { sopClassUid: p.sopClassUid, sopInstanceUid: p.sopInstanceUid, transferSyntaxUid: p.transferSyntaxUid, studyInstanceUid: '', seriesInstanceUid: '', patientId: '' },
  };
}

/** The received file for a SOP instance (storescp +B names files <modality>.<SOP instance UID>). */
function receivedFor(scp: Storescp, sopInstanceUid: string): Buffer {
  const f = scp.files().find((p) => p.endsWith(`.${sopInstanceUid}`));
  if (!f) throw new Error(`storescp did not write ${sopInstanceUid}; it has ${scp.files().length} files`);
  return readFileSync(f);
}

async function rejectionOf(p: Promise<unknown>): Promise<DeidError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(DeidError);
    return e as DeidError;
  }
  throw new Error('expected the send to fail');
}

const url = (port: number, called = 'STORESCP', calling = 'DEIDTEST') => `dicom://${called}:${calling}@127.0.0.1:${port}`;

let storescp: Storescp;
const destinations: DimseDestination[] = [];
function destination(spec: string, opts: ConstructorParameters<typeof DimseDestination>[1] = {}): DimseDestination {
  const d = new DimseDestination(spec, { timeoutMs: 10_000, ...opts });
  destinations.push(d);
  return d;
}

beforeAll(async () => {
  storescp = await startStorescp({ aeTitle: 'STORESCP' });
});

// storescp serves one association at a time: every test releases what it opened.
afterEach(async () => {
  await Promise.all(destinations.splice(0).map((d) => d.close()));
});

afterAll(async () => {
  await storescp?.stop();
});

const BYTE_EXACT = [
  'pydicom/CT_small.dcm',
  'pydicom/MR_small.dcm',
  'pydicom/MR_small_implicit.dcm',
  'pydicom/MR_small_bigendian.dcm',
  'pydicom/image_dfl.dcm',
  'pydicom/SC_rgb_jpeg_dcmtk.dcm',
  'pydicom/SC_rgb_jpeg_gdcm.dcm',
  'pydicom/MR_small_RLE.dcm',
  'pydicom/MR_small_jpeg_ls_lossless.dcm',
  'pydicom/MR_small_jp2klossless.dcm',
  'pydicom/JPEG2000.dcm',
  'dicomparser/encapsulated/multi-frame/CT0012.not_fragmented_bot_rle.dcm',
  'dicomparser/encapsulated/multi-frame/IM00001.implicit_little_endian.dcm',
];

describe('DIMSE SCU → dcmtk storescp +B', () => {
  it('should deliver every object with its data set byte for byte, in its own transfer syntax', async () => {
    const d = destination(url(storescp.port));
    for (const rel of BYTE_EXACT) {
      const o = load(rel);
      await d.send(o.bytes, o.info);
      const got = receivedFor(storescp, o.info.sopInstanceUid);
      const p = splitPart10(got)!;
      expect(p.transferSyntaxUid, rel).toBe(o.ts);
      // A deflated stream of odd length is padded with one NUL on the wire (PS3.5 A.5).
      const expected = o.ds.length % 2 === 1 ? Buffer.concat([o.ds, Buffer.alloc(1)]) : o.ds;
      expect(got.subarray(p.datasetOffset).equals(expected), rel).toBe(true);
    }
  });

  it('should reuse one association for many objects', async () => {
    const d = destination(url(storescp.port));
    const before = storescp.associations();
    const ct = load('pydicom/CT_small.dcm');
    for (let i = 0; i < 25; i++) await d.send(ct.bytes, ct.info);
    expect(d.associationsOpened).toBe(1);
    await d.close();
    expect(storescp.associations() - before).toBe(1);
  });

  it('should fall back to one association when the peer serves one at a time', async () => {
    const d = destination(url(storescp.port));
    const ct = load('pydicom/CT_small.dcm');
    await Promise.all(Array.from({ length: 6 }, () => d.send(ct.bytes, ct.info)));
    await Promise.all(Array.from({ length: 6 }, () => d.send(ct.bytes, ct.info)));
    expect(d.associationsOpened).toBe(1); // the second was never accepted
    await d.close();
  }, 20_000);

  it('should open a new association only when an object needs a context the current one lacks', async () => {
    const d = destination(url(storescp.port));
    const objects = ['pydicom/CT_small.dcm', 'pydicom/MR_small_implicit.dcm', 'pydicom/SC_rgb_jpeg_dcmtk.dcm'].map(load);
    for (let round = 0; round < 4; round++) for (const o of objects) await d.send(o.bytes, o.info);
    // One per new (SOP class, syntax) pair in the first round, each proposing all pairs seen so far.
    expect(d.associationsOpened).toBe(3);
  });

  it('should release an idle association and open a new one on the next send', async () => {
    const d = destination(url(storescp.port), { idleMs: 200 });
    const ct = load('pydicom/CT_small.dcm');
    await d.send(ct.bytes, ct.info);
    expect(d.associated).toBe(true);
    await waitFor(() => !d.associated, 5000, 'the idle association to be released');
    await d.send(ct.bytes, ct.info);
    expect(d.associationsOpened).toBe(2);
  });

  it('should re-encode losslessly to the other little-endian syntax when only that one is accepted', async () => {
    const implicitOnly = await startStorescp({ aeTitle: 'STORESCP', args: ['+xi'] });
    try {
      const d = destination(url(implicitOnly.port));
      const ct = load('pydicom/CT_small.dcm');
      await d.send(ct.bytes, ct.info);
      const got = receivedFor(implicitOnly, ct.info.sopInstanceUid);
      const p = splitPart10(got)!;
      expect(p.transferSyntaxUid).toBe(TS.ImplicitLE);
      expect(got.subarray(p.datasetOffset).equals(encodeDataset(readDicom(ct.bytes).dataset, TS.ImplicitLE))).toBe(true);
      // Private elements survive the re-encoding.
      const privates = (b: Buffer) => readDicom(b).dataset.filter((e) => (e.tag >>> 16) % 2 === 1).length;
      expect(privates(got)).toBe(privates(ct.bytes));
    } finally {
      await implicitOnly.stop();
    }
  });

  it('should fail without retry when the destination does not accept the object’s compressed syntax', async () => {
    const uncompressedOnly = await startStorescp({ aeTitle: 'STORESCP', args: [] });
    try {
      const d = destination(url(uncompressedOnly.port));
      const jpeg = load('pydicom/SC_rgb_jpeg_dcmtk.dcm');
      const e = await rejectionOf(d.send(jpeg.bytes, jpeg.info));
      expect(e.retryable).toBe(false);
      expect(e.message).toContain('does not accept');
      expect(e.message).not.toContain(jpeg.info.sopInstanceUid);
      expect(uncompressedOnly.files()).toHaveLength(0);
    } finally {
      await uncompressedOnly.stop();
    }
  });

  it('should release the association on close()', async () => {
    const d = destination(url(storescp.port));
    const ct = load('pydicom/CT_small.dcm');
    await d.send(ct.bytes, ct.info);
    const releasesBefore = (storescp.log().match(/Association Release/g) ?? []).length;
    await d.close();
    expect(d.associated).toBe(false);
    // storescp saw an A-RELEASE (not an abort or a dropped connection).
    await waitFor(() => (storescp.log().match(/Association Release/g) ?? []).length > releasesBefore, 5000, 'the release');
    const e = await rejectionOf(d.send(ct.bytes, ct.info));
    expect(e.retryable).toBe(true);
  });
});

describe('DIMSE SCU errors', () => {
  const scps: DimseScpHandle[] = [];
  afterAll(async () => {
    await Promise.all(scps.map((s) => s.close()));
  });
  async function ourScp(ingest: Ingest, extra: Partial<Parameters<typeof startDimseScp>[0]> = {}) {
    const s = await startDimseScp({ host: '127.0.0.1', port: 0, aeTitle: 'DEID', allowedCallingAEs: [], maxPduLength: 262144, ingest, ...extra });
    scps.push(s);
    return s;
  }

  it('should report a destination that is down as retryable', async () => {
    const port = await freePort();
    const d = destination(url(port));
    const ct = load('pydicom/CT_small.dcm');
    const e = await rejectionOf(d.send(ct.bytes, ct.info));
    expect(e.retryable).toBe(true);
    expect(e.message).toMatch(/ECONNREFUSED/);
  });

  it('should time out a destination that accepts the connection but never answers, as retryable', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const d = destination(url(port), { timeoutMs: 400 });
      const ct = load('pydicom/CT_small.dcm');
      const t0 = Date.now();
      const e = await rejectionOf(d.send(ct.bytes, ct.info));
      expect(e.retryable).toBe(true);
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  it('should map C-STORE statuses: success to our own SCP byte for byte, 0xA700 retryable, 0xC000 not', async () => {
    const answers: IngestOutcome[] = [
      { ok: true, key: 'k', sopInstanceUid: 'x', sopClassUid: 'y' },
      { ok: false, code: 'DEID_ERR_OUT_OF_RESOURCES' },
      { ok: false, code: 'DEID_ERR_TRUNCATED' },
    ];
    const got: Buffer[] = [];
    const s = await ourScp(async (bytes) => {
      got.push(Buffer.from(bytes));
      return answers[got.length - 1];
    });
    const d = destination(url(s.port, 'DEID'));
    const ct = load('pydicom/CT_small.dcm');
    await d.send(ct.bytes, ct.info);
    expect(got[0].subarray(splitPart10(got[0])!.datasetOffset).equals(ct.ds)).toBe(true);
    const full = await rejectionOf(d.send(ct.bytes, ct.info));
    expect(full.retryable).toBe(true);
    expect(full.message).toContain('0xA700');
    const bad = await rejectionOf(d.send(ct.bytes, ct.info));
    expect(bad.retryable).toBe(false);
    expect(bad.message).toContain('0xC000');
    // All on one association.
    expect(d.associationsOpened).toBe(1);
  });

  it('should report a permanent association rejection as not retryable', async () => {
    const s = await ourScp(async () => ({ ok: true, key: 'k', sopInstanceUid: 'x', sopClassUid: 'y' }), { allowedCallingAEs: ['SOMEONE'] });
    const d = destination(url(s.port, 'DEID', 'NOTALLOWED'));
    const ct = load('pydicom/CT_small.dcm');
    const e = await rejectionOf(d.send(ct.bytes, ct.info));
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(/rejected.*calling AE/);
  });

  it('should keep a second association busy when sends overlap, and no more than that', async () => {
    const received: string[] = [];
    const s = await ourScp(async (_b, source) => (received.push(source.remote ?? ''), { ok: true, key: 'k', sopInstanceUid: 'x', sopClassUid: 'y' }));
    const d = destination(url(s.port, 'DEID'));
    const ct = load('pydicom/CT_small.dcm');
    await Promise.all(Array.from({ length: 12 }, () => d.send(ct.bytes, ct.info)));
    expect(received).toHaveLength(12);
    expect(new Set(received).size).toBe(2);
    expect(d.associationsOpened).toBe(2);
    await d.close();
    expect(d.associated).toBe(false);
  });

  it('should reconnect when the destination has dropped the association', async () => {
    // Our SCP aborts associations idle for more than 300 ms.
    const s = await ourScp(async () => ({ ok: true, key: 'k', sopInstanceUid: 'x', sopClassUid: 'y' }), { idleTimeoutMs: 300 });
    const d = destination(url(s.port, 'DEID'), { idleMs: 60_000 });
    const ct = load('pydicom/CT_small.dcm');
    await d.send(ct.bytes, ct.info);
    await new Promise((r) => setTimeout(r, 1800));
    await d.send(ct.bytes, ct.info);
    expect(d.associationsOpened).toBe(2);
  });

  it('should send again at once on a new association when a reused one turns out to be dead', async () => {
    const s = await ourScp(async () => ({ ok: true, key: 'k', sopInstanceUid: 'x', sopClassUid: 'y' }));
    // A proxy that can make a connection die silently: the next bytes the SCU sends get a TCP reset.
    // New connections can be made to die right after the association is accepted.
    const conns: Array<{ cut: boolean }> = [];
    let dieAfterAssociating = false;
    const proxy = net.createServer((client) => {
      const conn = { cut: false };
      const dieLater = dieAfterAssociating;
      conns.push(conn);
      const upstream = net.connect(s.port, '127.0.0.1');
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
      upstream.on('data', (d) => {
        client.write(d);
        if (dieLater) conn.cut = true; // after the A-ASSOCIATE-AC
      });
      upstream.on('close', () => client.destroy());
      client.on('data', (d) => {
        if (conn.cut) {
          client.resetAndDestroy();
          upstream.destroy();
        } else upstream.write(d);
      });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      const port = (proxy.address() as net.AddressInfo).port;
      const d = destination(url(port, 'DEID'), { idleMs: 60_000 });
      const ct = load('pydicom/CT_small.dcm');
      await d.send(ct.bytes, ct.info);
      for (const c of conns) c.cut = true;
      await d.send(ct.bytes, ct.info);
      expect(d.associationsOpened).toBe(2);
      // A new association that dies during its first C-STORE is reported (retryable), not retried in a loop.
      dieAfterAssociating = true;
      const fresh = destination(url(port, 'DEID'));
      const e = await rejectionOf(fresh.send(ct.bytes, ct.info));
      expect(e.retryable).toBe(true);
      expect(fresh.associationsOpened).toBe(1);
    } finally {
      proxy.close();
    }
  });

  it('should refuse bytes that are not a Part 10 file without retry', async () => {
    const d = destination(url(storescp.port));
    const ct = load('pydicom/CT_small.dcm');
    const e = await rejectionOf(d.send(ct.ds, ct.info));
    expect(e.retryable).toBe(false);
  });
});

describe('DIMSE destination URL', () => {
  it('should parse dicom://CALLED:CALLING@host:port', () => {
    expect(parseDimseUrl('dicom://ORTHANC:DEID@pacs.example.org:4242')).toEqual({ calledAE: 'ORTHANC', callingAE: 'DEID', host: 'pacs.example.org', port: 4242 });
    expect(parseDimseUrl('dicom://PACS@[::1]:104')).toEqual({ calledAE: 'PACS', callingAE: 'DEID', host: '::1', port: 104 });
    expect(parseDimseUrl('dicom://MY%20PACS:DEID@10.0.0.1:11112').calledAE).toBe('MY PACS');
    expect(new DimseDestination('dicom://ORTHANC:DEID@127.0.0.1:4242').name).toBe('dicom://ORTHANC:DEID@127.0.0.1:4242');
  });

  it('should reject malformed destinations with DEID_ERR_CONFIG', () => {
    for (const bad of [
      'dicom://ORTHANC@127.0.0.1',
      'dicom://@127.0.0.1:4242',
      'dicom://ORTHANC:DEID@:4242',
      'dicom://ORTHANC:DEID@127.0.0.1:0',
      'dicom://ORTHANC:DEID@127.0.0.1:70000',
      'dicom://AETITLEMUCHTOOLONG:DEID@127.0.0.1:4242',
      'dicom://ORTHANC:DEID@127.0.0.1:4242/path',
      'http://ORTHANC:DEID@127.0.0.1:4242',
      'not a url',
    ]) {
      expect(() => parseDimseUrl(bad), bad).toThrow(DeidError);
    }
  });

  it('should classify statuses: warnings succeed, out of resources is retryable', () => {
    for (const s of [0x0000, 0xb000, 0xb007, 0xb006, 0x0107, 0x0116]) expect(isSuccessOrWarning(s)).toBe(true);
    for (const s of [0xa700, 0xa7ff, 0xc000, 0xa900, 0x0110, 0x0122]) expect(isSuccessOrWarning(s)).toBe(false);
    for (const s of [0xa700, 0xa701, 0x0213]) expect(isRetryableStatus(s)).toBe(true);
    for (const s of [0xa900, 0xc000, 0xc123, 0x0110, 0x0122]) expect(isRetryableStatus(s)).toBe(false);
  });
});

describe('DIMSE SCU → Orthanc', () => {
  let orthanc: OrthancHandle;
  beforeAll(async () => {
    orthanc = await startOrthanc();
  });
  afterAll(async () => {
    await orthanc?.stop();
  });

  it('should store objects in a real Orthanc over one association', async () => {
    const d = destination(`dicom://${orthanc.aet}:DEIDTEST@127.0.0.1:${orthanc.dicomPort}`);
    const objects = [
      'pydicom/CT_small.dcm',
      'pydicom/MR_small.dcm',
      'pydicom/SC_rgb_jpeg_dcmtk.dcm',
      'pydicom/SC_rgb_rle.dcm',
      'dicomparser/encapsulated/multi-frame/CT0012.fragmented_no_bot_jpeg_ls.80.dcm',
    ].map(load);
    expect(new Set(objects.map((o) => o.info.sopInstanceUid)).size).toBe(objects.length);
    for (const o of objects) await d.send(o.bytes, o.info);
    const instances = await orthanc.get<Array<{ MainDicomTags: { SOPInstanceUID: string } }>>('/instances?expand');
    expect(instances.map((i) => i.MainDicomTags.SOPInstanceUID).sort()).toEqual(objects.map((o) => o.info.sopInstanceUid).sort());
    expect(d.associationsOpened).toBeLessThanOrEqual(objects.length);
  });
});
