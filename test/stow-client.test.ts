import { readFileSync } from 'node:fs';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDestination } from '../src/export/index.js';
import { StowDestination } from '../src/export/stow-client.js';
import { parseMediaType, parseMultipart, registerStow } from '../src/http/stow.js';
import { type Destination, type ExportInfo, type Ingest, type IngestOutcome } from '../src/pipeline/ports.js';
import { DeidError } from '../src/errors.js';
import { corpusFile } from './helpers/corpus.js';

const CT = new Uint8Array(readFileSync(corpusFile('pydicom/CT_small.dcm')));
const CT_SOP = '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322';
const CT_CLASS = '1.2.840.10008.5.1.4.1.1.2';
const INFO: ExportInfo = {
  sopClassUid: CT_CLASS,
  sopInstanceUid: CT_SOP,
  studyInstanceUid: '1.2.3',
  seriesInstanceUid: '1.2.3.4',
  patientId: 'ANON',
  transferSyntaxUid: '1.2.840.10008.1.2.1',
};
const TOKEN = 'export-token-0123456789';

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const a = app.server.address();
  return `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
}

/** What the stub origin server answers next, and what it saw. */
interface Script {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  delayMs?: number;
}
const seen: Array<{ headers: Record<string, unknown>; body: Buffer; remotePort?: number; url: string }> = [];
let script: Script = { status: 200 };

const dicomJson = (failed: number[], referenced = 0) => ({
  ...(failed.length ? { '00081198': { vr: 'SQ', Value: failed.map((r) => ({ '00081150': { vr: 'UI', Value: [CT_CLASS] }, '00081155': { vr: 'UI', Value: [CT_SOP] }, '00081197': { vr: 'US', Value: [r] } })) } } : {}),
  ...(referenced ? { '00081199': { vr: 'SQ', Value: [{ '00081150': { vr: 'UI', Value: [CT_CLASS] }, '00081155': { vr: 'UI', Value: [CT_SOP] } }] } } : {}),
});

let stub: FastifyInstance;
let stubUrl: string;
let ours: FastifyInstance;
let oursUrl: string;
const ingested: Uint8Array[] = [];
let ourOutcome: ((bytes: Uint8Array) => IngestOutcome) | undefined;

beforeAll(async () => {
  // After a client-side timeout undici may open a fresh connection that never carries a request;
  // Node's close() would wait for its headers timeout, so close every connection at once.
  stub = Fastify({ forceCloseConnections: true });
  stub.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 64 * 1024 * 1024 }, (_r, b, done) => done(null, b));
  stub.post('/dicom-web/studies', async (req, reply) => {
    seen.push({ headers: { ...req.headers }, body: req.body as Buffer, remotePort: req.raw.socket.remotePort, url: req.url });
    if (script.delayMs) await new Promise((r) => setTimeout(r, script.delayMs));
    for (const [k, v] of Object.entries(script.headers ?? {})) reply.header(k, v);
    reply.code(script.status);
    return script.body === undefined ? reply.send() : reply.type('application/dicom+json').send(JSON.stringify(script.body));
  });
  stubUrl = await listen(stub);

  ours = Fastify();
  const ingest: Ingest = async (bytes) => {
    ingested.push(Uint8Array.from(bytes));
    return ourOutcome ? ourOutcome(bytes) : { ok: true, key: 'k', sopInstanceUid: CT_SOP, sopClassUid: CT_CLASS };
  };
  registerStow(ours, { ingest, token: TOKEN, maxBodyBytes: 1024 * 1024 });
  oursUrl = await listen(ours);
});

afterAll(async () => {
  await stub?.close();
  await ours?.close();
});

async function outcome(dest: Destination): Promise<'ok' | 'retryable' | 'final'> {
  try {
    await dest.send(CT, INFO);
    return 'ok';
  } catch (e) {
    expect(e).toBeInstanceOf(DeidError);
    expect((e as Error).message).not.toContain(CT_SOP);
    return (e as DeidError).retryable ? 'retryable' : 'final';
  }
}

describe('StowDestination (STOW-RS export client)', () => {
  it('should POST one application/dicom part to <base>/studies with a random boundary, Accept and the bearer token', async () => {
    script = { status: 200, body: dicomJson([], 1) };
    seen.length = 0;
    const dest = new StowDestination(`${stubUrl}/dicom-web/`, { token: TOKEN });
    for (let i = 0; i < 6; i++) await dest.send(CT, INFO);
    expect(seen).toHaveLength(6);
    const [first, second] = seen;
    expect(first.url).toBe('/dicom-web/studies');
    expect(first.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(first.headers.accept).toBe('application/dicom+json');
    const mt = parseMediaType(String(first.headers['content-type']));
    expect(mt?.essence).toBe('multipart/related');
    expect(mt?.params.get('type')).toBe('application/dicom');
    const boundary = mt!.params.get('boundary')!;
    expect(boundary).not.toBe(parseMediaType(String(second.headers['content-type']))?.params.get('boundary'));
    const parts = parseMultipart(first.body, boundary);
    expect(parts).toHaveLength(1);
    expect(parts[0].headers.get('content-type')).toBe('application/dicom');
    expect(parts[0].body.equals(Buffer.from(CT))).toBe(true);
    // Keep-alive: connections are pooled and reused (undici may open a second one while the first
    // is being released, but not one per request).
    expect(new Set(seen.map((s) => s.remotePort)).size).toBeLessThan(seen.length / 2);
    await dest.close();
  });

  it('should keep credentials out of its name and send URL credentials as Basic auth', async () => {
    script = { status: 200, body: dicomJson([], 1) };
    seen.length = 0;
    const withUser = stubUrl.replace('http://', 'http://orthanc:s%40cret@');
    const dest = new StowDestination(`${withUser}/dicom-web`);
    expect(dest.name).toBe(`stow:${stubUrl}/dicom-web`);
    await dest.send(CT, INFO);
    expect(seen[0].headers.authorization).toBe(`Basic ${Buffer.from('orthanc:s@cret').toString('base64')}`);
    expect(() => new StowDestination('ftp://example.org/x')).toThrow(/DEID_ERR_CONFIG/);
    expect(() => new StowDestination('not a url')).toThrow(/DEID_ERR_CONFIG/);
  });

  it('should classify origin server answers as delivered, retryable or final', async () => {
    const dest = new StowDestination(`${stubUrl}/dicom-web`);
    const cases: Array<[Script, 'ok' | 'retryable' | 'final']> = [
      [{ status: 200, body: dicomJson([], 1) }, 'ok'],
      [{ status: 200 }, 'ok'],
      [{ status: 202, body: dicomJson([], 1) }, 'ok'], // stored with warnings
      [{ status: 202, body: dicomJson([0xc000]) }, 'final'],
      [{ status: 409, body: dicomJson([0xa900]) }, 'final'],
      [{ status: 409, body: dicomJson([0xa700]) }, 'retryable'],
      [{ status: 409, body: dicomJson([0xa7ff]) }, 'retryable'],
      [{ status: 200, body: dicomJson([0xc000]) }, 'final'],
      [{ status: 409 }, 'final'],
      [{ status: 400 }, 'final'],
      [{ status: 401 }, 'final'],
      [{ status: 404 }, 'final'],
      [{ status: 413 }, 'final'],
      [{ status: 415 }, 'final'],
      [{ status: 302, headers: { location: '/elsewhere' } }, 'final'],
      [{ status: 408 }, 'retryable'],
      [{ status: 429 }, 'retryable'],
      [{ status: 500 }, 'retryable'],
      [{ status: 503, body: dicomJson([0xa700]) }, 'retryable'],
    ];
    for (const [s, want] of cases) {
      script = s;
      expect(await outcome(dest), JSON.stringify(s)).toBe(want);
    }
    // An origin server that does not answer in time.
    script = { status: 200, body: dicomJson([], 1), delayMs: 1500 };
    expect(await outcome(new StowDestination(`${stubUrl}/dicom-web`, { timeoutMs: 300 }))).toBe('retryable');
  });

  it('should treat a refused connection as retryable', async () => {
    const closed = Fastify();
    const url = await listen(closed);
    await closed.close();
    expect(await outcome(new StowDestination(`${url}/dicomweb`))).toBe('retryable');
  });

  it('should deliver to our own STOW-RS server, and learn from it when the spool is full or the token is wrong', async () => {
    ingested.length = 0;
    ourOutcome = undefined;
    expect(await outcome(new StowDestination(`${oursUrl}/dicomweb`, { token: TOKEN }))).toBe('ok');
    expect(ingested).toHaveLength(1);
    expect(Buffer.from(ingested[0]).equals(Buffer.from(CT))).toBe(true);
    ourOutcome = () => ({ ok: false, code: 'DEID_ERR_OUT_OF_RESOURCES' });
    expect(await outcome(new StowDestination(`${oursUrl}/dicomweb`, { token: TOKEN }))).toBe('retryable');
    ourOutcome = () => ({ ok: false, code: 'DEID_ERR_NOT_DICOM' });
    expect(await outcome(new StowDestination(`${oursUrl}/dicomweb`, { token: TOKEN }))).toBe('final');
    ourOutcome = undefined;
    expect(await outcome(new StowDestination(`${oursUrl}/dicomweb`, { token: 'wrong-token-0000' }))).toBe('final');
  });

  it('should send the configured export token from a destination built from its URL (auth.exportToken)', async () => {
    ingested.length = 0;
    ourOutcome = undefined;
    expect(await outcome(createDestination(`${oursUrl}/dicomweb`, { stowToken: TOKEN }))).toBe('ok');
    expect(ingested).toHaveLength(1);
    expect(await outcome(createDestination(`${oursUrl}/dicomweb`))).toBe('final');
    expect(ingested).toHaveLength(1);
  });
});
