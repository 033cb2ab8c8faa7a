/**
 * STOW-RS over real sockets with a third-party peer: Debian's Orthanc and its DICOMweb plugin.
 * - Orthanc's DICOMweb client (chunked multipart/related) stores into our STOW-RS server;
 * - our StowDestination stores into Orthanc's STOW-RS endpoint.
 */
import { readFileSync } from 'node:fs';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findElement } from '../src/dicom/element.js';
import { readDicom } from '../src/dicom/reader.js';
import { TAG } from '../src/dicom/tag.js';
import { rawString } from '../src/dicom/values.js';
import { StowDestination } from '../src/export/stow-client.js';
import { registerStow } from '../src/http/stow.js';
import { type ExportInfo, type Ingest } from '../src/pipeline/ports.js';
import { DeidError } from '../src/errors.js';
import { corpusFile } from './helpers/corpus.js';
import type { OrthancHandle } from './helpers/orthanc.js';
import { orthancDicomWebAvailable, orthancLookup, orthancStowTo, orthancUpload, startOrthancDicomWeb } from './helpers/orthanc-dicomweb.js';

const CT = new Uint8Array(readFileSync(corpusFile('pydicom/CT_small.dcm')));
const MR = new Uint8Array(readFileSync(corpusFile('pydicom/MR_small.dcm')));
const CT_SOP = '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322';
const MR_SOP = '1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457';
const TOKEN = 'orthanc-stow-token-0123';

const info = (sopInstanceUid: string, sopClassUid: string): ExportInfo => ({
  sopClassUid,
  sopInstanceUid,
  studyInstanceUid: '',
  seriesInstanceUid: '',
  patientId: '',
  transferSyntaxUid: '1.2.840.10008.1.2.1',
});

describe.skipIf(!orthancDicomWebAvailable())('STOW-RS with Orthanc (transport)', () => {
  let app: FastifyInstance;
  let orthanc: OrthancHandle;
  const received: Uint8Array[] = [];
  const requests: Array<{ transferEncoding?: string; contentType?: string }> = [];

  beforeAll(async () => {
    const ingest: Ingest = async (bytes) => {
      received.push(Uint8Array.from(bytes));
      const ds = readDicom(bytes).dataset;
      return { ok: true, key: `k${received.length}`, sopInstanceUid: rawString(findElement(ds, TAG.SOPInstanceUID)?.value), sopClassUid: rawString(findElement(ds, TAG.SOPClassUID)?.value) };
    };
    app = Fastify();
    app.addHook('onRequest', async (req) => {
      requests.push({ transferEncoding: req.headers['transfer-encoding'], contentType: req.headers['content-type'] });
    });
    registerStow(app, { ingest, token: TOKEN, maxBodyBytes: 16 * 1024 * 1024 });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const a = app.server.address();
    const port = typeof a === 'object' && a ? a.port : 0;
    orthanc = await startOrthancDicomWeb({ servers: { deid: { Url: `http://127.0.0.1:${port}/dicomweb/` } } });
  });

  afterAll(async () => {
    await orthanc?.stop();
    await app?.close();
  });

  it("should take a multi-instance upload from Orthanc's DICOMweb client byte for byte", async () => {
    received.length = 0;
    const ids = [await orthancUpload(orthanc, CT), await orthancUpload(orthanc, MR)];
    const res = await orthancStowTo(orthanc, 'deid', ids, { Authorization: `Bearer ${TOKEN}` });
    expect(res.status, res.body).toBe(200);
    expect(received).toHaveLength(2);
    // Orthanc streams the body (chunked, no Content-Length) with a quoted type parameter.
    expect(requests.at(-1)?.transferEncoding).toBe('chunked');
    expect(requests.at(-1)?.contentType).toMatch(/^multipart\/related; type="application\/dicom"; boundary=/);
    const bySop = new Map(received.map((b) => [rawString(findElement(readDicom(b).dataset, TAG.SOPInstanceUID)?.value), b]));
    expect(Buffer.from(bySop.get(CT_SOP)!).equals(Buffer.from(CT))).toBe(true);
    expect(Buffer.from(bySop.get(MR_SOP)!).equals(Buffer.from(MR))).toBe(true);
  });

  it("should make Orthanc's client fail when its token is wrong, storing nothing", async () => {
    received.length = 0;
    const id = await orthancUpload(orthanc, CT);
    const res = await orthancStowTo(orthanc, 'deid', [id], { Authorization: 'Bearer not-the-token' });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(received).toHaveLength(0);
  });

  it("should deliver with StowDestination to Orthanc's STOW-RS endpoint", async () => {
    // Start from an empty Orthanc: forget what the tests above uploaded over REST.
    for (const id of await orthanc.get<string[]>('/instances')) await fetch(`${orthanc.httpUrl}/instances/${id}`, { method: 'DELETE' });
    expect(await orthancLookup(orthanc, MR_SOP)).toHaveLength(0);
    const dest = new StowDestination(`${orthanc.httpUrl}/dicom-web`);
    await dest.send(MR, info(MR_SOP, '1.2.840.10008.5.1.4.1.1.4'));
    await dest.send(CT, info(CT_SOP, '1.2.840.10008.5.1.4.1.1.2'));
    const [id] = await orthancLookup(orthanc, MR_SOP);
    expect(id).toBeDefined();
    const stored = await fetch(`${orthanc.httpUrl}/instances/${id}/file`);
    expect(Buffer.from(await stored.arrayBuffer()).equals(Buffer.from(MR))).toBe(true);
    expect(await orthanc.get<string[]>('/instances')).toHaveLength(2);
    // Orthanc refuses a part it cannot parse (HTTP 400): a final, non-retryable error.
    const junk = new TextEncoder().encode('not a DICOM object');
    const err = await dest.send(junk, info('', '')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DeidError);
    expect((err as DeidError).retryable).toBe(false);
    await dest.close();
  });
});
