/**
 * STOW-RS export: POSTs each object to `<base>/studies` as a one-part
 * `multipart/related; type="application/dicom"` request (PS3.18 §10.5).
 *
 * Outcome → DEID_ERR_EXPORT_FAILED (retryable: the pipeline retries with backoff, then quarantines)
 * or DEID_ERR_EXPORT_REFUSED (final):
 *   200                                → delivered (unless the body lists a failure: then as 202);
 *   202 / 409 with FailedSOPSequence   → refused; retryable only for Failure Reason A7xx (out of resources);
 *   202 without a failure item         → delivered with warnings;
 *   409 without a readable body        → refused, not retryable;
 *   408, 429, 5xx                      → retryable (timeouts, throttling, server trouble);
 *   other 4xx, 3xx                     → not retryable (redirects are not followed: configure the final URL);
 *   network errors and timeouts        → retryable.
 *
 * Connections are reused through Node's global fetch dispatcher (undici keeps them alive), so
 * close() has nothing of its own to release. Messages name status codes and failure reasons only,
 * never a UID or another value of the object.
 */
import { randomBytes } from 'node:crypto';
import { DeidError } from '../errors.js';
import { exportFailure, type Destination, type ExportInfo } from '../pipeline/ports.js';

export interface StowDestinationOptions {
  /** Sent as `Authorization: Bearer <token>`; wins over credentials in the URL. */
  readonly token?: string;
  /** Whole-request timeout in milliseconds (default 120 s). */
  readonly timeoutMs?: number;
}

const FAILED_SOP_SEQUENCE = '00081198';
const REFERENCED_SOP_SEQUENCE = '00081199';
const FAILURE_REASON = '00081197';

export class StowDestination implements Destination {
  readonly name: string;
  private readonly url: string;
  private readonly authorization?: string;
  private readonly timeoutMs: number;

  /** `base` is a DICOMweb base URL such as `https://pacs.example/dicom-web`; `/studies` is appended. */
  constructor(base: string, opts: StowDestinationOptions = {}) {
    let u: URL;
    try {
      u = new URL(base);
    } catch {
      throw new DeidError('DEID_ERR_CONFIG', 'the STOW-RS destination is not a valid URL');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new DeidError('DEID_ERR_CONFIG', 'a STOW-RS destination must be an http:// or https:// URL');
    if (opts.token !== undefined) this.authorization = `Bearer ${opts.token}`;
    else if (u.username || u.password) {
      this.authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
    }
    const path = u.pathname.replace(/\/+$/, '');
    // The name is for logs and status: no credentials, no query.
    this.name = `stow:${u.origin}${path}`;
    this.url = `${u.origin}${path}/studies${u.search}`;
    this.timeoutMs = opts.timeoutMs ?? 120_000;
  }

  async send(part10: Uint8Array, _info: ExportInfo): Promise<void> {
    const boundary = `deid-${randomBytes(18).toString('hex')}`;
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\nContent-Length: ${part10.length}\r\n\r\n`, 'latin1'),
      part10,
      Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'),
    ]);
    const headers: Record<string, string> = {
      'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
      Accept: 'application/dicom+json',
    };
    if (this.authorization) headers.Authorization = this.authorization;

    let res: Response;
    let text: string;
    try {
      res = await fetch(this.url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(this.timeoutMs) });
      // Reading the whole answer frees the connection for reuse.
      text = await res.text();
    } catch (e) {
      throw exportFailure(true, `STOW-RS request failed: ${networkReason(e)}`);
    }

    const status = res.status;
    if (status === 200 || status === 202 || status === 409) {
      const answer = parseAnswer(text);
      const reasons = answer?.failureReasons ?? [];
      if (reasons.length > 0) {
        const retryable = reasons.some((r) => (r & 0xff00) === 0xa700);
        throw exportFailure(retryable, `STOW-RS HTTP ${status}, FailureReason ${reasons.map(hex4).join(',')}`);
      }
      if (status === 200) return;
      if (status === 202 && answer && answer.referenced > 0) return; // stored, with warnings
      throw exportFailure(false, `STOW-RS HTTP ${status} without a readable FailedSOPSequence`);
    }
    if (status >= 200 && status < 300) return;
    if (status === 408 || status === 429 || status >= 500) throw exportFailure(true, `STOW-RS HTTP ${status}`);
    if (status >= 300 && status < 400) throw exportFailure(false, `STOW-RS HTTP ${status}: redirects are not followed; configure the final URL`);
    throw exportFailure(false, `STOW-RS HTTP ${status}`);
  }

  async close(): Promise<void> {
    // The global fetch dispatcher owns the kept-alive connections; nothing of ours to close.
  }
}

const hex4 = (n: number) => `0x${n.toString(16).toUpperCase().padStart(4, '0')}`;

function networkReason(e: unknown): string {
  if (e instanceof Error) {
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timeout';
    const cause = (e as { cause?: { code?: unknown } }).cause;
    if (cause && typeof cause.code === 'string') return cause.code.replace(/[^A-Z0-9_]/gi, '').slice(0, 40);
    return e.name;
  }
  return typeof e;
}

interface StowAnswer {
  readonly failureReasons: number[];
  readonly referenced: number;
}

/** Reads the Store Instances Response Module (DICOM JSON; tag keys in either case). */
export function parseAnswer(text: string): StowAnswer | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (Array.isArray(json)) json = json[0]; // some servers wrap the data set in an array
  if (!json || typeof json !== 'object') return undefined;
  const attr = (ds: object, tag: string): { Value?: unknown } | undefined => {
    for (const [k, v] of Object.entries(ds)) if (k.toUpperCase() === tag && v && typeof v === 'object') return v as { Value?: unknown };
    return undefined;
  };
  const items = (ds: object, tag: string): object[] => {
    const v = attr(ds, tag)?.Value;
    return Array.isArray(v) ? v.filter((i): i is object => !!i && typeof i === 'object') : [];
  };
  const failureReasons = items(json, FAILED_SOP_SEQUENCE).map((item) => {
    const v = attr(item, FAILURE_REASON)?.Value;
    const n = Array.isArray(v) ? Number(v[0]) : NaN;
    return Number.isInteger(n) ? n : 0x0110; // an item without a reason: a processing failure
  });
  return { failureReasons, referenced: items(json, REFERENCED_SOP_SEQUENCE).length };
}
