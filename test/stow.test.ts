import { readFileSync } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { findElement } from '../src/dicom/element.js';
import { readDicom } from '../src/dicom/reader.js';
import { TAG } from '../src/dicom/tag.js';
import { rawString } from '../src/dicom/values.js';
import { ERRORS } from '../src/errors.js';
import { parseMediaType, parseMultipart, registerStow } from '../src/http/stow.js';
import type { Ingest, IngestOutcome, IngestSource } from '../src/pipeline/ports.js';
import { corpusFile } from './helpers/corpus.js';

// Independently known (dcmdump) identities of the two corpus files.
const CT = {
  bytes: new Uint8Array(readFileSync(corpusFile('pydicom/CT_small.dcm'))),
  sopClass: '1.2.840.10008.5.1.4.1.1.2',
  sopInstance: '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322',
  study: '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322',
};
const MR = {
  bytes: new Uint8Array(readFileSync(corpusFile('pydicom/MR_small.dcm'))),
  sopClass: '1.2.840.10008.5.1.4.1.1.4',
  sopInstance: '1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457',
  study: '1.3.6.1.4.1.5962.1.2.4.20040826185059.5457',
};
const NOT_DICOM = new TextEncoder().encode('this is a plain text file, not a DICOM object at all\n');
const BOUNDARY = 'deid-test-0123456789abcdef';
const TOKEN = 'stow-token-for-tests-0123';

interface PartSpec {
  readonly body: Uint8Array;
  /** The part's Content-Type; null leaves the header out. */
  readonly type?: string | null;
}

function multipart(parts: readonly PartSpec[], opts: { boundary?: string; preamble?: string; close?: boolean; trailingCrlf?: boolean } = {}): Buffer {
  const b = opts.boundary ?? BOUNDARY;
  const chunks: Buffer[] = [];
  if (opts.preamble !== undefined) chunks.push(Buffer.from(`${opts.preamble}\r\n`));
  for (const p of parts) {
    const type = p.type === undefined ? 'application/dicom' : p.type;
    chunks.push(Buffer.from(`--${b}\r\n${type === null ? '' : `Content-Type: ${type}\r\n`}\r\n`), Buffer.from(p.body), Buffer.from('\r\n'));
  }
  if (opts.close !== false) chunks.push(Buffer.from(`--${b}--${opts.trailingCrlf === false ? '' : '\r\n'}`));
  return Buffer.concat(chunks);
}

const stowType = (boundary = BOUNDARY) => `multipart/related; type="application/dicom"; boundary=${boundary}`;

/** An in-memory ingest that accepts what it can parse, like the pipeline's, and records every call. */
function memoryIngest(behaviour?: (bytes: Uint8Array, n: number) => IngestOutcome | Promise<IngestOutcome>) {
  const received: Array<{ bytes: Uint8Array; source: IngestSource }> = [];
  const ingest: Ingest = async (bytes, source) => {
    received.push({ bytes: Uint8Array.from(bytes), source });
    if (behaviour) return behaviour(bytes, received.length);
    const f = readDicom(bytes);
    return {
      ok: true,
      key: `incoming/${received.length}.dcm`,
      sopInstanceUid: rawString(findElement(f.dataset, TAG.SOPInstanceUID)?.value),
      sopClassUid: rawString(findElement(f.dataset, TAG.SOPClassUID)?.value),
    };
  };
  return { ingest, received };
}

let apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.map((a) => a.close()));
  apps = [];
});

function appWith(ingest: Ingest, opts: { token?: string; maxBodyBytes?: number; logs?: string[] } = {}): FastifyInstance {
  const logs = opts.logs;
  const stream = new Writable({
    write(chunk, _enc, cb) {
      logs?.push(String(chunk));
      cb();
    },
  });
  const app = Fastify({ logger: logs ? { level: 'trace', stream } : false });
  registerStow(app, { ingest, token: opts.token, maxBodyBytes: opts.maxBodyBytes ?? 8 * 1024 * 1024 });
  apps.push(app);
  return app;
}

type JsonAttr = { vr: string; Value?: unknown[] };

/** Asserts the DICOM JSON model (PS3.18 F.2): 8-hex-digit upper-case keys, each {vr, Value?}, recursively. */
function expectDicomJson(ds: unknown): void {
  expect(ds).toBeTypeOf('object');
  for (const [key, attr] of Object.entries(ds as Record<string, JsonAttr>)) {
    expect(key).toMatch(/^[0-9A-F]{8}$/);
    expect(attr.vr).toMatch(/^[A-Z]{2}$/);
    expect(Object.keys(attr).every((k) => k === 'vr' || k === 'Value')).toBe(true);
    if (attr.Value !== undefined) {
      expect(Array.isArray(attr.Value)).toBe(true);
      expect(attr.Value.length).toBeGreaterThan(0);
      if (attr.vr === 'SQ') for (const item of attr.Value) expectDicomJson(item);
    }
  }
}

const items = (json: Record<string, JsonAttr>, tag: string) => (json[tag]?.Value ?? []) as Array<Record<string, JsonAttr>>;
const failureReasons = (json: Record<string, JsonAttr>) => items(json, '00081198').map((i) => i['00081197'].Value?.[0]);

async function post(app: FastifyInstance, payload: Buffer | Readable, opts: { url?: string; contentType?: string | null; auth?: string } = {}) {
  const headers: Record<string, string> = {};
  if (opts.contentType !== null) headers['content-type'] = opts.contentType ?? stowType();
  if (opts.auth) headers.authorization = opts.auth;
  const res = await app.inject({ method: 'POST', url: opts.url ?? '/dicomweb/studies', headers, payload });
  let json: Record<string, JsonAttr> & { code?: string; message?: string } = {};
  try {
    json = res.json();
  } catch {
    /* not JSON */
  }
  return { res, json };
}

describe('STOW-RS ingest (PS3.18 Studies Store Transaction)', () => {
  it('should store two corpus instances and answer 200 with a ReferencedSOPSequence in the DICOM JSON model', async () => {
    const { ingest, received } = memoryIngest();
    const app = appWith(ingest);
    const { res, json } = await post(app, multipart([{ body: CT.bytes }, { body: MR.bytes }]));
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/dicom\+json/);
    expectDicomJson(json);
    expect(json['00081198']).toBeUndefined();
    expect(json['00081199']).toEqual({
      vr: 'SQ',
      Value: [
        { '00081150': { vr: 'UI', Value: [CT.sopClass] }, '00081155': { vr: 'UI', Value: [CT.sopInstance] }, '00081190': { vr: 'UR' } },
        { '00081150': { vr: 'UI', Value: [MR.sopClass] }, '00081155': { vr: 'UI', Value: [MR.sopInstance] }, '00081190': { vr: 'UR' } },
      ],
    });
    // Each part reached ingest byte for byte, tagged as a STOW upload.
    expect(received.map((r) => Buffer.from(r.bytes).equals(Buffer.from(CT.bytes)) || Buffer.from(r.bytes).equals(Buffer.from(MR.bytes)))).toEqual([true, true]);
    expect(received.every((r) => r.source.kind === 'stow' && typeof r.source.remote === 'string')).toBe(true);
  });

  it('should answer 202 with FailureReason 0xC000 for a non-DICOM part next to a good one', async () => {
    const { ingest, received } = memoryIngest();
    const { res, json } = await post(appWith(ingest), multipart([{ body: CT.bytes }, { body: NOT_DICOM }]));
    expect(res.statusCode).toBe(202);
    expectDicomJson(json);
    expect(items(json, '00081199').map((i) => i['00081155'].Value?.[0])).toEqual([CT.sopInstance]);
    // The unparseable part has no UIDs to report: the item carries them with no value.
    expect(json['00081198']).toEqual({
      vr: 'SQ',
      Value: [{ '00000902': { vr: 'LO', Value: [expect.stringMatching(/^DEID_ERR_NOT_DICOM/)] }, '00081150': { vr: 'UI' }, '00081155': { vr: 'UI' }, '00081197': { vr: 'US', Value: [0xc000] } }],
    });
    // The non-DICOM part still reaches the pipeline, which refuses it into quarantine: nothing is lost.
    expect(received).toHaveLength(2);
  });

  it('should answer 409 when no instance can be stored', async () => {
    const { ingest, received } = memoryIngest();
    const truncated = CT.bytes.subarray(0, CT.bytes.length - 1000);
    const { res, json } = await post(appWith(ingest), multipart([{ body: NOT_DICOM }, { body: truncated }, { body: MR.bytes, type: 'image/jpeg' }]));
    expect(res.statusCode).toBe(409);
    expectDicomJson(json);
    expect(json['00081199']).toBeUndefined();
    expect(failureReasons(json)).toEqual([0xc000, 0xc000, 0xc000]);
    // The two unparseable parts go to quarantine through ingest; the part of another media type is not DICOM at all.
    expect(received).toHaveLength(2);
  });

  it('should answer 401 with WWW-Authenticate: Bearer for a missing or wrong token, before reading the body', async () => {
    const { ingest, received } = memoryIngest();
    const app = appWith(ingest, { token: TOKEN });
    for (const auth of [undefined, 'Bearer wrong-token', `Bearer ${TOKEN}x`, `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}`, TOKEN]) {
      const { res, json } = await post(app, multipart([{ body: CT.bytes }]), { auth });
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(json.code).toBe('DEID_ERR_UNAUTHORIZED');
      expect(json.message).toBe(ERRORS.DEID_ERR_UNAUTHORIZED);
    }
    expect(received).toHaveLength(0);
  });

  it('should store with the configured bearer token', async () => {
    const { ingest, received } = memoryIngest();
    const { res } = await post(appWith(ingest, { token: TOKEN }), multipart([{ body: CT.bytes }]), { auth: `bearer ${TOKEN}` });
    expect(res.statusCode).toBe(200);
    expect(received).toHaveLength(1);
  });

  it('should answer 413 with a coded error for a body over the limit, declared or streamed', async () => {
    const { ingest, received } = memoryIngest();
    const app = appWith(ingest, { maxBodyBytes: 20_000 });
    const body = multipart([{ body: CT.bytes }]); // about 39 kB
    const declared = await post(app, body);
    expect(declared.res.statusCode).toBe(413);
    expect(declared.json.code).toBe('DEID_ERR_PAYLOAD_TOO_LARGE');
    // Without Content-Length (chunked), the limit still stops the read.
    const streamed = await post(app, Readable.from([body.subarray(0, 15_000), body.subarray(15_000)]));
    expect(streamed.res.statusCode).toBe(413);
    expect(streamed.json.code).toBe('DEID_ERR_PAYLOAD_TOO_LARGE');
    expect(received).toHaveLength(0);
    // Under the limit the same app stores.
    const small = await post(app, multipart([{ body: MR.bytes }]));
    expect(small.res.statusCode).toBe(200);
  });

  it('should answer 415 for other media types', async () => {
    const { ingest, received } = memoryIngest();
    const app = appWith(ingest);
    const cases: Array<[string | null, Buffer]> = [
      ['application/dicom', Buffer.from(CT.bytes)],
      ['application/json', Buffer.from('{"a":1}')],
      ['multipart/form-data; boundary=x', multipart([{ body: CT.bytes }], { boundary: 'x' })],
      [`multipart/related; type="application/dicom+json"; boundary=${BOUNDARY}`, multipart([{ body: CT.bytes }])],
      [null, Buffer.from(CT.bytes)],
    ];
    for (const [contentType, body] of cases) {
      const { res, json } = await post(app, body, { contentType });
      expect(res.statusCode, String(contentType)).toBe(415);
      expect(json.code).toBe('DEID_ERR_MEDIA_TYPE');
    }
    expect(received).toHaveLength(0);
  });

  it('should answer 400 for malformed multipart bodies', async () => {
    const { ingest, received } = memoryIngest();
    const app = appWith(ingest);
    const good = multipart([{ body: CT.bytes }]);
    const cases: Array<[string, string, Buffer]> = [
      ['no boundary parameter', 'multipart/related; type="application/dicom"', good],
      ['no closing delimiter', stowType(), multipart([{ body: CT.bytes }], { close: false })],
      ['no opening delimiter', stowType('another-boundary'), good],
      ['no parts', stowType(), Buffer.from(`--${BOUNDARY}--\r\n`)],
      ['part without a header block end', stowType(), Buffer.from(`--${BOUNDARY}\r\nContent-Type: application/dicom`)],
    ];
    for (const [what, contentType, body] of cases) {
      const { res, json } = await post(app, body, { contentType });
      expect(res.statusCode, what).toBe(400);
      expect(json.code, what).toBe('DEID_ERR_MULTIPART');
    }
    expect(received).toHaveLength(0);
  });

  it('should not ingest instances of another study than the URL names and report them with 0xA900', async () => {
    const { ingest, received } = memoryIngest();
    const app = appWith(ingest);
    const { res, json } = await post(app, multipart([{ body: CT.bytes }, { body: MR.bytes }]), { url: `/dicomweb/studies/${CT.study}` });
    expect(res.statusCode).toBe(202);
    expectDicomJson(json);
    expect(items(json, '00081199').map((i) => i['00081155'].Value?.[0])).toEqual([CT.sopInstance]);
    expect(json['00081198']).toEqual({
      vr: 'SQ',
      Value: [{ '00000902': { vr: 'LO', Value: ['DEID_ERR_STUDY_MISMATCH'] }, '00081150': { vr: 'UI', Value: [MR.sopClass] }, '00081155': { vr: 'UI', Value: [MR.sopInstance] }, '00081197': { vr: 'US', Value: [0xa900] } }],
    });
    expect(received).toHaveLength(1);
    // Every instance outside the study: nothing stored, 409.
    const none = await post(app, multipart([{ body: MR.bytes }]), { url: `/dicomweb/studies/${CT.study}` });
    expect(none.res.statusCode).toBe(409);
    expect(failureReasons(none.json)).toEqual([0xa900]);
    expect(received).toHaveLength(1);
  });

  it('should report 0xA700 when ingest is out of resources: 202 next to a stored instance, 503 with Retry-After when nothing was stored', async () => {
    const full = (bytes: Uint8Array): IngestOutcome => {
      const f = readDicom(bytes);
      const sop = rawString(findElement(f.dataset, TAG.SOPInstanceUID)?.value);
      return sop === MR.sopInstance
        ? { ok: false, code: 'DEID_ERR_OUT_OF_RESOURCES', sopInstanceUid: sop, sopClassUid: MR.sopClass }
        : { ok: true, key: 'k', sopInstanceUid: sop, sopClassUid: CT.sopClass };
    };
    const app = appWith(memoryIngest(full).ingest);
    const mixed = await post(app, multipart([{ body: CT.bytes }, { body: MR.bytes }]));
    expect(mixed.res.statusCode).toBe(202);
    expect(mixed.json['00081198']).toEqual({
      vr: 'SQ',
      Value: [{ '00000902': { vr: 'LO', Value: ['DEID_ERR_OUT_OF_RESOURCES'] }, '00081150': { vr: 'UI', Value: [MR.sopClass] }, '00081155': { vr: 'UI', Value: [MR.sopInstance] }, '00081197': { vr: 'US', Value: [0xa700] } }],
    });
    const only = await post(app, multipart([{ body: MR.bytes }, { body: MR.bytes }]));
    expect(only.res.statusCode).toBe(503);
    expect(Number(only.res.headers['retry-after'])).toBeGreaterThan(0);
    expectDicomJson(only.json);
    expect(failureReasons(only.json)).toEqual([0xa700, 0xa700]);
  });

  it('should say why a part failed in words: an Error Comment per failed item and a Warning header, without PHI', async () => {
    const refusing: Ingest = async (bytes) => {
      try {
        readDicom(bytes);
      } catch (e) {
        return { ok: false, code: (e as { code: 'DEID_ERR_TRUNCATED' }).code, detail: (e as { detail?: string }).detail };
      }
      return { ok: true, key: 'k', sopInstanceUid: CT.sopInstance, sopClassUid: CT.sopClass };
    };
    const truncated = CT.bytes.subarray(0, 5000);
    const { res, json } = await post(appWith(refusing), multipart([{ body: NOT_DICOM }, { body: truncated }]));
    expect(res.statusCode).toBe(409);
    const comments = items(json, '00081198').map((i) => i['00000902'].Value?.[0] as string);
    expect(comments[0]).toMatch(/^DEID_ERR_NOT_DICOM/);
    expect(comments[1]).toMatch(/^DEID_ERR_TRUNCATED \(.*offset \d+/);
    for (const c of comments) expect(c.length).toBeLessThanOrEqual(64);
    const warning = String(res.headers.warning);
    expect(warning).toMatch(/^299 deid "part 1: DEID_ERR_NOT_DICOM: The file is not DICOM/);
    expect(warning).toMatch(/299 deid "part 2: DEID_ERR_TRUNCATED: The file ends before its last element is complete\. Re-send the complete file\. \(.*offset \d+.*\)"/);
    expect(warning).not.toContain(CT.sopInstance);
    // A stored request has no warning.
    const ok = await post(appWith(refusing), multipart([{ body: CT.bytes }]));
    expect(ok.res.statusCode).toBe(200);
    expect(ok.res.headers.warning).toBeUndefined();
  });

  it('should refuse a part larger than maxObjectBytes with A700 before parsing it, keep nothing, and not ask for a retry', async () => {
    const { ingest, received } = memoryIngest();
    const app = Fastify({ logger: false });
    registerStow(app, { ingest, maxBodyBytes: 8 * 1024 * 1024, maxObjectBytes: CT.bytes.length - 1 });
    apps.push(app);
    const { res, json } = await post(app, multipart([{ body: CT.bytes }]));
    expect(res.statusCode).toBe(409); // not 503: a retry of the same object cannot succeed
    expect(res.headers['retry-after']).toBeUndefined();
    expect(failureReasons(json)).toEqual([0xa700]);
    expect(items(json, '00081198')[0]['00000902'].Value?.[0]).toMatch(/^DEID_ERR_HOSTILE_SIZE \(\d+ bytes, limit \d+\)$/);
    expect(received).toHaveLength(0);
  });

  it('should map other ingest failures to PS3.18 failure reasons (C122, 0110) and keep going after a throwing ingest', async () => {
    const app = appWith(
      memoryIngest((_b, n) => {
        if (n === 1) return { ok: false, code: 'DEID_ERR_UNSUPPORTED_TRANSFER_SYNTAX' };
        if (n === 2) throw new Error('boom');
        return { ok: true, key: 'k', sopInstanceUid: MR.sopInstance, sopClassUid: MR.sopClass };
      }).ingest,
    );
    // One ingest call at a time here would still be ordered; parts are reported in part order either way.
    const { res, json } = await post(app, multipart([{ body: CT.bytes }, { body: CT.bytes }, { body: MR.bytes }]));
    expect(res.statusCode).toBe(202);
    expect(items(json, '00081198').map((i) => i['00081155'].Value?.[0])).toEqual([CT.sopInstance, CT.sopInstance]);
    expect(failureReasons(json).sort()).toEqual([0x0110, 0xc122].sort());
    expect(items(json, '00081199')).toHaveLength(1);
  });

  it('should answer only after ingest resolved', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const app = appWith(
      memoryIngest(async () => {
        await gate;
        return { ok: true, key: 'k', sopInstanceUid: CT.sopInstance, sopClassUid: CT.sopClass };
      }).ingest,
    );
    let answered = false;
    const pending = post(app, multipart([{ body: CT.bytes }])).then((r) => {
      answered = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(answered).toBe(false);
    release();
    expect((await pending).res.statusCode).toBe(200);
  });

  it('should accept the framings real clients send: quoted or bare parameters, preamble, padding, no final CRLF, parts without Content-Type', async () => {
    const { ingest, received } = memoryIngest();
    const app = appWith(ingest);
    const b = 'a1b2c3d4-e5f6-7890-abcd-ef0123456789-a1b2c3d4-e5f6-7890-abcd-ef0123456789'; // Orthanc's 73-character form
    const variants: Array<[string, Buffer]> = [
      [`multipart/related; type=application/dicom; boundary=${BOUNDARY}`, multipart([{ body: CT.bytes }])],
      [`Multipart/Related;boundary="${BOUNDARY}";type="application/dicom"`, multipart([{ body: CT.bytes }], { preamble: 'This is a preamble.' })],
      [`multipart/related; type="application/dicom"; boundary=${b}`, multipart([{ body: CT.bytes, type: 'application/dicom; transfer-syntax=1.2.840.10008.1.2.1' }], { boundary: b, trailingCrlf: false })],
      [`multipart/related; boundary="${BOUNDARY}"`, multipart([{ body: CT.bytes, type: null }])],
      [stowType(), Buffer.from(`\r\n--${BOUNDARY}  \r\nContent-Type: application/dicom\r\nContent-Length: ${CT.bytes.length}\r\n\r\n${Buffer.from(CT.bytes).toString('latin1')}\r\n--${BOUNDARY}--\r\nepilogue`, 'latin1')],
    ];
    for (const [contentType, body] of variants) {
      const { res } = await post(app, body, { contentType });
      expect(res.statusCode, contentType).toBe(200);
    }
    expect(received).toHaveLength(variants.length);
    for (const r of received) expect(Buffer.from(r.bytes).equals(Buffer.from(CT.bytes))).toBe(true);
  });

  it('should log no patient value or UID while storing and refusing', async () => {
    const logs: string[] = [];
    const app = appWith(memoryIngest().ingest, { logs });
    await post(app, multipart([{ body: CT.bytes }, { body: MR.bytes }, { body: NOT_DICOM }]), { url: `/dicomweb/studies/${CT.study}` });
    const text = logs.join('');
    expect(text).toContain('stow instance not stored');
    for (const value of [CT.sopInstance, MR.sopInstance, MR.study, 'CompressedSamples', 'PatientName']) expect(text).not.toContain(value);
  });
});

describe('multipart/related parsing', () => {
  it('should split parts without copying and keep binary content that looks like a boundary prefix', () => {
    const tricky = Buffer.from(`\r\n--${BOUNDARY}X not a delimiter\r\n--${BOUNDARY.slice(0, 5)}`);
    const body = multipart([{ body: tricky }, { body: new Uint8Array(0) }]);
    const parts = parseMultipart(body, BOUNDARY);
    expect(parts).toHaveLength(2);
    expect(parts[0].body.equals(tricky)).toBe(true);
    expect(parts[0].body.buffer).toBe(body.buffer);
    expect(parts[1].body.length).toBe(0);
    expect(parts[0].headers.get('content-type')).toBe('application/dicom');
  });

  it('should read quoted and bare media type parameters', () => {
    expect(parseMediaType('multipart/related; type="application/dicom"; boundary="a;b=c"')).toEqual({
      essence: 'multipart/related',
      params: new Map([
        ['type', 'application/dicom'],
        ['boundary', 'a;b=c'],
      ]),
    });
    expect(parseMediaType('Multipart/Related ; TYPE = application/dicom ;boundary=xyz')?.params.get('type')).toBe('application/dicom');
    expect(parseMediaType('nonsense')).toBeUndefined();
  });
});
