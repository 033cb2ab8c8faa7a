/**
 * STOW-RS (PS3.18 §10.5, Studies Store Transaction): `POST /dicomweb/studies` and
 * `POST /dicomweb/studies/{StudyInstanceUID}` taking `multipart/related; type="application/dicom"`.
 *
 * Each part is one Part 10 instance, handed to the pipeline's `ingest`; an instance is reported in
 * ReferencedSOPSequence only once `ingest` resolved ok (fsynced to the spool and queued).
 *
 * Status codes (PS3.18 Table 10.5.3-1 and §8.5):
 *   200  every instance stored;
 *   202  some stored, some failed (FailedSOPSequence says which and why);
 *   409  none stored (mixed or request-related reasons: unparseable, study mismatch, …);
 *   503  none stored and every failure was DEID_ERR_OUT_OF_RESOURCES (no room in the spool): a
 *        server-side, temporary condition rather than "a conflict in the request", so the sender is
 *        told to retry (Retry-After); the body still carries the FailedSOPSequence. (An object over
 *        maxObjectBytes also has Failure Reason A700, but a retry cannot help it: 409.);
 *   400  malformed multipart (no boundary, no delimiters, no parts);
 *   401  bearer token configured and missing/wrong (WWW-Authenticate: Bearer);
 *   413  body larger than maxBodyBytes (never buffered beyond the limit);
 *   415  any other media type, or a `type` parameter other than application/dicom.
 * Errors before any instance is looked at get `{code, message, detail?}` JSON (the catalogue's text
 * and HTTP status).
 *
 * Failure reasons (PS3.18 Table I.2-2) come from the error catalogue (src/errors.ts): A700 out of
 * resources (or larger than maxObjectBytes); A900 instance not in the study named by the URL; C000 cannot understand (not DICOM,
 * truncated, corrupt, wrong part media type); C122 transfer syntax not supported; 0110 processing
 * failure (anything else).
 * A part that cannot be parsed has no UIDs we could report: its FailedSOPSequence item carries
 * ReferencedSOPClassUID/ReferencedSOPInstanceUID with no value (zero-length, DICOM JSON model
 * F.2.5) so that every failed part still has an item, in part order. Unparseable parts are not
 * handed to `ingest` (not spooled, not quarantined): the sender is told they failed and keeps them.
 * Retrieve URL (0008,1190) is Type 2 in Annex I; this service does not serve WADO-RS, so it is sent
 * empty, at the top level and in each ReferencedSOPSequence item.
 *
 * Each FailedSOPSequence item also says why in words: its Error Comment (0000,0902) holds the code and
 * the PHI-free detail (e.g. `DEID_ERR_TRUNCATED (offset 5964)`, cut to the 64 characters of LO), and
 * a `Warning: 299` header per failed part (RFC 9111 §5.5, as PS3.18 §8.3.5 uses it) gives the
 * catalogue's message with it.
 *
 * Nothing here logs or returns a patient value: logs carry part indexes, codes and details only.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { findElement } from '../dicom/element.js';
import { readDicom } from '../dicom/reader.js';
import { TAG } from '../dicom/tag.js';
import { rawString } from '../dicom/values.js';
import { DeidError, ERRORS, STATUS, errorSpec, isDeidError, toDeidError, type ErrorCode } from '../errors.js';
import type { Ingest, IngestOutcome } from '../pipeline/ports.js';
import { bearerMatches, sendError, type TokenSource } from './replies.js';

export interface StowOptions {
  readonly ingest: Ingest;
  /** When it gives a token, every STOW request needs `Authorization: Bearer <token>` (read per request: a reload may change it). */
  readonly token?: string | TokenSource;
  /** Another way in besides the token (a console session with its CSRF token: the console's uploads). */
  readonly authorize?: (req: FastifyRequest) => boolean;
  /** The largest request body accepted, in bytes (413 beyond it). */
  readonly maxBodyBytes: number;
  /** The largest object accepted (a larger part is refused with A700 and not kept); default: the body limit. A function is read per request. */
  readonly maxObjectBytes?: number | (() => number);
  /** How many parts of one request are handed to `ingest` at a time (default 4). */
  readonly concurrency?: number;
}

const DICOM_JSON = 'application/dicom+json';
const RETRY_AFTER_SECONDS = 30;

// ---------------------------------------------------------------------------------------------
// Media types and multipart/related framing (RFC 2046 §5.1, RFC 2387)
// ---------------------------------------------------------------------------------------------

export interface MediaType {
  /** type/subtype, lower case. */
  readonly essence: string;
  /** Parameters by lower-case name; quoted values unquoted. */
  readonly params: ReadonlyMap<string, string>;
}

/** Parses a Content-Type value leniently: quoted or bare parameter values, any spacing. */
export function parseMediaType(value: string | undefined): MediaType | undefined {
  if (!value) return undefined;
  const semi = value.indexOf(';');
  const essence = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  if (!/^[\w!#$%&'*+.^`|~-]+\/[\w!#$%&'*+.^`|~-]+$/.test(essence)) return undefined;
  const params = new Map<string, string>();
  if (semi >= 0) {
    const re = /;\s*([\w!#$%&'*+.^`|~-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)/g;
    const rest = value.slice(semi);
    for (let m = re.exec(rest); m; m = re.exec(rest)) {
      let v = m[2].trim();
      if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
      params.set(m[1].toLowerCase(), v);
    }
  }
  return { essence, params };
}

export interface MultipartPart {
  /** Header fields by lower-case name. */
  readonly headers: ReadonlyMap<string, string>;
  /** The part's content: a view into the request body (no copy). */
  readonly body: Buffer;
}

const CRLF = Buffer.from('\r\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * Splits a buffered multipart body into parts. The first delimiter may open the body or follow a
 * preamble; the close delimiter (`--boundary--`) is required, an epilogue after it is ignored.
 * Throws DEID_ERR_MULTIPART on anything else.
 */
export function parseMultipart(body: Buffer, boundary: string): MultipartPart[] {
  const dash = Buffer.from(`--${boundary}`, 'latin1');
  const delim = Buffer.concat([CRLF, dash]);
  // A delimiter line is the dash-boundary followed by "--" (close), or by optional padding then CRLF.
  const delimiterEnd = (at: number): { close: boolean; next: number } | undefined => {
    let p = at + dash.length;
    if (body[p] === 0x2d && body[p + 1] === 0x2d) return { close: true, next: p + 2 };
    while (body[p] === 0x20 || body[p] === 0x09) p++;
    if (body[p] === 0x0d && body[p + 1] === 0x0a) return { close: false, next: p + 2 };
    return undefined;
  };
  // Finds the next real delimiter (CRLF--boundary followed by "--" or CRLF) at or after `from`.
  const findDelimiter = (from: number): number => {
    for (let i = body.indexOf(delim, from); i >= 0; i = body.indexOf(delim, i + 1)) {
      if (delimiterEnd(i + 2)) return i;
    }
    return -1;
  };

  let pos: number;
  if (body.subarray(0, dash.length).equals(dash) && delimiterEnd(0)) pos = 0;
  else {
    const i = findDelimiter(0);
    if (i < 0) throw new DeidError('DEID_ERR_MULTIPART', 'no opening delimiter for the boundary');
    pos = i + 2;
  }

  const parts: MultipartPart[] = [];
  for (;;) {
    const end = delimiterEnd(pos);
    if (!end) throw new DeidError('DEID_ERR_MULTIPART', 'bad delimiter line');
    if (end.close) break;
    const start = end.next;
    let headerEnd: number;
    let contentStart: number;
    if (body[start] === 0x0d && body[start + 1] === 0x0a) {
      headerEnd = start; // no header fields at all
      contentStart = start + 2;
    } else {
      headerEnd = body.indexOf(CRLFCRLF, start);
      if (headerEnd < 0) throw new DeidError('DEID_ERR_MULTIPART', `part ${parts.length + 1} has no end of headers`);
      contentStart = headerEnd + 4;
    }
    // An empty part may put its delimiter right after the header block's final CRLF.
    const next = findDelimiter(contentStart - 2);
    if (next < 0) throw new DeidError('DEID_ERR_MULTIPART', 'no closing delimiter');
    parts.push({ headers: parseHeaders(body.subarray(start, headerEnd)), body: body.subarray(contentStart, Math.max(contentStart, next)) });
    pos = next + 2;
  }
  return parts;
}

function parseHeaders(block: Buffer): Map<string, string> {
  const headers = new Map<string, string>();
  let last: string | undefined;
  for (const line of block.toString('latin1').split('\r\n')) {
    if (line === '') continue;
    if ((line[0] === ' ' || line[0] === '\t') && last) {
      headers.set(last, `${headers.get(last)} ${line.trim()}`); // obsolete line folding
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw new DeidError('DEID_ERR_MULTIPART', 'bad part header line');
    last = line.slice(0, colon).trim().toLowerCase();
    headers.set(last, line.slice(colon + 1).trim());
  }
  return headers;
}

// ---------------------------------------------------------------------------------------------
// DICOM JSON response (PS3.18 Annex I, Annex F)
// ---------------------------------------------------------------------------------------------

type JsonAttr = { vr: string; Value?: unknown[] };
type JsonDataset = Record<string, JsonAttr>;

const ui = (v: string | undefined): JsonAttr => (v ? { vr: 'UI', Value: [v] } : { vr: 'UI' });

interface PartResult {
  readonly stored: boolean;
  readonly sopClassUid?: string;
  readonly sopInstanceUid?: string;
  readonly reason?: number;
  readonly code?: ErrorCode;
  readonly detail?: string;
}

/** LO holds 64 characters. */
const errorComment = (r: PartResult): string => `${r.code}${r.detail ? ` (${r.detail})` : ''}`.slice(0, 64);

/** One Warning value per failed part (the first ten), with the catalogue's words. */
function warnings(results: readonly PartResult[]): string[] {
  const failed = results.map((r, i) => ({ r, part: i + 1 })).filter(({ r }) => !r.stored);
  const text = failed.slice(0, 10).map(({ r, part }) => `part ${part}: ${r.code}: ${ERRORS[r.code!]}${r.detail ? ` (${r.detail})` : ''}`);
  if (failed.length > 10) text.push(`${failed.length - 10} more parts failed; see FailedSOPSequence`);
  return text.map((t) => `299 deid "${t.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[^\x20-\x7e]/g, '?')}"`);
}

function responseBody(results: readonly PartResult[]): JsonDataset {
  const body: JsonDataset = { '00081190': { vr: 'UR' } };
  const failed = results.filter((r) => !r.stored);
  const stored = results.filter((r) => r.stored);
  if (failed.length > 0) {
    body['00081198'] = {
      vr: 'SQ',
      Value: failed.map((r) => ({
        '00000902': { vr: 'LO', Value: [errorComment(r)] },
        '00081150': ui(r.sopClassUid),
        '00081155': ui(r.sopInstanceUid),
        '00081197': { vr: 'US', Value: [r.reason ?? STATUS.ProcessingFailure] },
      })),
    };
  }
  if (stored.length > 0) {
    body['00081199'] = {
      vr: 'SQ',
      Value: stored.map((r) => ({ '00081150': ui(r.sopClassUid), '00081155': ui(r.sopInstanceUid), '00081190': { vr: 'UR' } })),
    };
  }
  return body;
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

/** Checks the request's Content-Type; returns the boundary or throws DEID_ERR_MEDIA_TYPE (415) or DEID_ERR_MULTIPART (400). */
function boundaryOf(contentType: string | undefined): string {
  const mt = parseMediaType(contentType);
  if (!mt || mt.essence !== 'multipart/related') throw new DeidError('DEID_ERR_MEDIA_TYPE', mt ? mt.essence : 'no Content-Type');
  const type = mt.params.get('type');
  // The type parameter names the root (here: every) part's type; absent is tolerated.
  if (type !== undefined && type.split(';')[0].trim().toLowerCase() !== 'application/dicom') {
    throw new DeidError('DEID_ERR_MEDIA_TYPE', `type=${type.replace(/[^\w/+.-]/g, '').slice(0, 64)}`);
  }
  const boundary = mt.params.get('boundary');
  if (!boundary || boundary.length > 200) throw new DeidError('DEID_ERR_MULTIPART', 'no boundary parameter');
  return boundary;
}

/** Registers the STOW-RS routes, their body parser and their error replies in their own scope. */
export function registerStow(app: FastifyInstance, opts: StowOptions): void {
  const concurrency = Math.max(1, opts.concurrency ?? 4);
  void app.register(async (scope) => {
    // Only this scope's parsers apply: multipart/related is buffered up to the limit; any other
    // media type is refused with 415 before its body is read.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('multipart/related', { parseAs: 'buffer', bodyLimit: opts.maxBodyBytes }, (_req, body, done) => done(null, body));
    scope.addContentTypeParser('*', (req, _payload, done) => {
      const mt = parseMediaType(req.headers['content-type']);
      done(new DeidError('DEID_ERR_MEDIA_TYPE', mt ? mt.essence : 'unparseable Content-Type'), undefined);
    });

    const tokenOf = typeof opts.token === 'string' ? () => opts.token as string : opts.token;
    if (tokenOf) {
      scope.addHook('onRequest', async (req, reply) => {
        const token = tokenOf();
        if (token !== undefined && !bearerMatches(req, token) && !opts.authorize?.(req)) {
          reply.header('WWW-Authenticate', 'Bearer realm="deid stow"').header('Connection', 'close');
          return sendError(reply, 'DEID_ERR_UNAUTHORIZED');
        }
      });
    }

    scope.setErrorHandler((err: FastifyError | DeidError, req, reply) => {
      // Refusals raised before any instance is looked at: the catalogue gives their HTTP status.
      if (isDeidError(err)) return sendError(reply, err.code, err.detail);
      switch (err.code) {
        case 'FST_ERR_CTP_BODY_TOO_LARGE':
          reply.header('Connection', 'close');
          return sendError(reply, 'DEID_ERR_PAYLOAD_TOO_LARGE', `limit ${opts.maxBodyBytes} bytes`);
        case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
          return sendError(reply, 'DEID_ERR_MEDIA_TYPE');
        case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
          return sendError(reply, 'DEID_ERR_MULTIPART', 'body length differs from Content-Length');
      }
      const status = (err as FastifyError).statusCode;
      if (status !== undefined && status >= 400 && status < 500) return sendError(reply, 'DEID_ERR_MULTIPART', 'request body could not be read');
      req.log.error({ err: err.name }, 'stow request failed');
      return sendError(reply, 'DEID_ERR_INTERNAL');
    });

    const routeOpts = { bodyLimit: opts.maxBodyBytes };
    scope.post('/dicomweb/studies', routeOpts, (req, reply) => store(req, reply, undefined));
    scope.post<{ Params: { study: string } }>('/dicomweb/studies/:study', routeOpts, (req, reply) => store(req, reply, req.params.study));
  });

  async function store(req: FastifyRequest, reply: FastifyReply, study: string | undefined): Promise<FastifyReply> {
    const boundary = boundaryOf(req.headers['content-type']);
    if (!Buffer.isBuffer(req.body)) throw new DeidError('DEID_ERR_MULTIPART', 'empty body');
    const parts = parseMultipart(req.body, boundary);
    if (parts.length === 0) throw new DeidError('DEID_ERR_MULTIPART', 'no parts');
    const source = { kind: 'stow' as const, remote: req.ip };

    const results = new Array<PartResult>(parts.length);
    let nextPart = 0;
    const worker = async () => {
      for (let i = nextPart++; i < parts.length; i = nextPart++) results[i] = await storePart(parts[i], i);
    };
    const maxObjectBytes = (typeof opts.maxObjectBytes === 'function' ? opts.maxObjectBytes() : opts.maxObjectBytes) ?? opts.maxBodyBytes;
    const storePart = async (part: MultipartPart, index: number): Promise<PartResult> => {
      const ct = part.headers.get('content-type');
      if (ct !== undefined && parseMediaType(ct)?.essence !== 'application/dicom') return fail(index, 'DEID_ERR_MEDIA_TYPE');
      // Refused before it is parsed or kept; the request body as a whole is bounded by maxBodyBytes while it is received.
      if (part.body.length > maxObjectBytes) return fail(index, 'DEID_ERR_HOSTILE_SIZE', undefined, undefined, `${part.body.length} bytes, limit ${maxObjectBytes}`);
      let sopClassUid: string;
      let sopInstanceUid: string;
      let studyUid: string;
      try {
        const file = readDicom(part.body);
        const ds = file.dataset;
        sopClassUid = rawString(findElement(ds, TAG.SOPClassUID)?.value) || rawString(findElement(file.meta, TAG.MediaStorageSOPClassUID)?.value);
        sopInstanceUid = rawString(findElement(ds, TAG.SOPInstanceUID)?.value) || rawString(findElement(file.meta, TAG.MediaStorageSOPInstanceUID)?.value);
        studyUid = rawString(findElement(ds, TAG.StudyInstanceUID)?.value);
      } catch (e) {
        // Unparseable: ingest refuses it too, but keeps it in quarantine with its code, so nothing is lost.
        const refused = await opts.ingest(part.body, source).catch(() => undefined);
        if (refused && !refused.ok) return fail(index, refused.code, undefined, undefined, refused.detail);
        const err = toDeidError(e);
        return fail(index, isDeidError(e) ? err.code : 'DEID_ERR_NOT_DICOM', undefined, undefined, err.detail);
      }
      if (study !== undefined && studyUid !== study) return fail(index, 'DEID_ERR_STUDY_MISMATCH', sopClassUid, sopInstanceUid);
      let outcome: IngestOutcome;
      try {
        outcome = await opts.ingest(part.body, source);
      } catch (e) {
        const err = toDeidError(e);
        return fail(index, err.code, sopClassUid, sopInstanceUid, err.detail);
      }
      if (!outcome.ok) return fail(index, outcome.code, outcome.sopClassUid || sopClassUid, outcome.sopInstanceUid || sopInstanceUid, outcome.detail);
      return { stored: true, sopClassUid: outcome.sopClassUid || sopClassUid, sopInstanceUid: outcome.sopInstanceUid || sopInstanceUid };
    };
    const fail = (index: number, code: ErrorCode, sopClassUid?: string, sopInstanceUid?: string, detail?: string): PartResult => {
      req.log.info({ part: index + 1, code, detail }, 'stow instance not stored');
      return { stored: false, reason: errorSpec(code).stow, code, detail, sopClassUid, sopInstanceUid };
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, parts.length) }, worker));

    const stored = results.filter((r) => r.stored).length;
    let status: number;
    if (stored === results.length) status = 200;
    else if (stored > 0) status = 202;
    // Every part failed for a lack of room on our side: a temporary, server-side condition worth a retry.
    else if (results.every((r) => r.code === 'DEID_ERR_OUT_OF_RESOURCES')) {
      status = 503;
      reply.header('Retry-After', String(RETRY_AFTER_SECONDS));
    } else status = 409;
    if (stored < results.length) reply.header('Warning', warnings(results));
    return reply.code(status).type(DICOM_JSON).send(JSON.stringify(responseBody(results)));
  }
}
