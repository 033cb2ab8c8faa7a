/**
 * Export by C-STORE to a PACS: `dicom://CALLED:CALLING@host:port`.
 *
 * - The data set is sent exactly as it is in the file (no dcmjs naturalize/denaturalize, which
 *   drops private tags): a RawDataset hands dcmjs-dimse the file's own bytes.
 * - Each object goes on a presentation context for its own (SOP class, transfer syntax). Native
 *   syntaxes also get a fallback context offering the other little-endian syntaxes; if the peer
 *   accepts only that one, the object is re-encoded losslessly with our own writer. Any other
 *   refusal (e.g. a compressed syntax the peer does not take) is a non-retryable error: nothing is
 *   ever transcoded through dcmjs.
 * - One association is reused for many objects, one request in flight at a time on each; overlapping
 *   sends use up to `maxAssociations` of them. One is opened again, proposing everything recently
 *   sent, when an object needs a context it lacks; it is released after `idleMs` without use; a
 *   send on a reused association that finds it dropped by the peer reconnects once at once.
 * - Errors: connection refused/reset, timeouts, A-ABORT and transient association rejection are
 *   retryable; C-STORE 0xA7xx (out of resources) and 0x0213 (resource limitation) are retryable;
 *   other failure statuses and permanent rejections are not. Warnings (0xB0xx, 0x0001, 0x0107,
 *   0x0116) count as success.
 */
import net, { type Socket } from 'node:net';
import type { Logger } from 'pino';
import { DeidError, isDeidError } from '../errors.js';
import { readDicom } from '../dicom/reader.js';
import { splitPart10 } from '../dicom/part10.js';
import { TS, isNativeSyntax } from '../dicom/transfer-syntax.js';
import { encodeDataset } from '../dicom/writer.js';
import {
  AbortReason,
  AbortSource,
  AssociationClass,
  CStoreRequest,
  DatasetBase,
  NetworkBase,
  PC_RESULT,
  RejectReason,
  RejectResult,
  RejectSource,
  type NetworkInstance,
} from '../dimse/library.js';
import { formatStatus, isRetryableStatus, isSuccessOrWarning } from '../dimse/status.js';
import { useLeanSend } from '../dimse/wire.js';
import { exportFailure, type Destination, type ExportInfo } from '../pipeline/ports.js';

export interface DimseDestinationOptions {
  /** Release the association after this long without a send (default 10 s). */
  readonly idleMs?: number;
  /** Fail a connect, association, C-STORE or release that makes no network progress for this long (default 30 s). */
  readonly timeoutMs?: number;
  /** Our maximum receive PDU length, announced in the A-ASSOCIATE-RQ (default 262144). */
  readonly maxPduLength?: number;
  /**
   * Associations used at once when sends overlap (default 2). Peers such as Orthanc take one
   * operation at a time per association: a second one keeps the link busy while the peer works.
   */
  readonly maxAssociations?: number;
  readonly logger?: Logger;
}

export interface DimseTarget {
  readonly calledAE: string;
  readonly callingAE: string;
  readonly host: string;
  readonly port: number;
}

const DEFAULT_CALLING_AE = 'DEID';
const AE_RE = /^[\x20-\x5b\x5d-\x7e]{1,16}$/; // printable ASCII without backslash, 16 at most

/** Parses and validates `dicom://CALLED:CALLING@host:port` (CALLING defaults to DEID). */
export function parseDimseUrl(spec: string): DimseTarget {
  const bad = (why: string) => new DeidError('DEID_ERR_CONFIG', `destination ${JSON.stringify(spec)}: ${why}; expected dicom://CALLED:CALLING@host:port`);
  let url: URL;
  try {
    url = new URL(spec);
  } catch {
    throw bad('not a URL');
  }
  if (url.protocol !== 'dicom:') throw bad('the scheme must be dicom://');
  if (url.pathname && url.pathname !== '/') throw bad('no path is allowed');
  if (url.search || url.hash) throw bad('no query or fragment is allowed');
  let calledAE: string;
  let callingAE: string;
  try {
    calledAE = decodeURIComponent(url.username);
    callingAE = url.password ? decodeURIComponent(url.password) : DEFAULT_CALLING_AE;
  } catch {
    throw bad('invalid percent-encoding in an AE title');
  }
  for (const [what, ae] of [['called', calledAE], ['calling', callingAE]] as const) {
    if (!AE_RE.test(ae) || ae.trim() === '') throw bad(`the ${what} AE title must be 1 to 16 printable characters without a backslash`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw bad('the host is missing');
  const port = Number(url.port);
  if (!url.port || !Number.isInteger(port) || port < 1 || port > 65535) throw bad('the port must be 1 to 65535');
  return { calledAE: calledAE.trim(), callingAE: callingAE.trim(), host, port };
}

/** The destination's PHI-free name: its normalized URL. */
export function dimseUrlOf(t: DimseTarget): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  return `dicom://${encodeURIComponent(t.calledAE)}:${encodeURIComponent(t.callingAE)}@${host}:${t.port}`;
}

const hex = formatStatus;

/** A data set whose encoding is the given bytes: dcmjs-dimse sends them as they are. */
class RawDataset extends DatasetBase {
  private body?: Buffer;

  constructor(body: Buffer, sopClassUid: string, sopInstanceUid: string, transferSyntaxUid: string) {
    super({ SOPClassUID: sopClassUid, SOPInstanceUID: sopInstanceUid }, transferSyntaxUid);
    this.body = body;
  }

  override getDenaturalizedDataset(): Buffer {
    const b = this.body ?? Buffer.alloc(0);
    this.body = undefined; // sent once; do not keep the object alive through the library
    // PDVs carry even lengths; only a deflated stream can be odd, and it is padded with one NUL.
    return b.length % 2 === 1 ? Buffer.concat([b, Buffer.alloc(1)]) : b;
  }
}

const NO_TIMEOUT = 2 ** 31 - 1;
const RETRYABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EAI_AGAIN', 'ENOTFOUND', 'EADDRNOTAVAIL']);

type Pair = readonly [sopClassUid: string, transferSyntaxUid: string];
const pairKey = (p: Pair) => `${p[0]}|${p[1]}`;
const LE = [TS.ExplicitLE, TS.ImplicitLE] as const;

/** Presentation contexts proposed for an object: its own syntax, and for native ones a little-endian fallback. */
function contextsFor([sop, ts]: Pair): Array<[string, string[]]> {
  const out: Array<[string, string[]]> = [[sop, [ts]]];
  if (isNativeSyntax(ts)) out.push([sop, LE.filter((t) => t !== ts)]);
  return out;
}

/** One association. Operations are run one at a time by the destination. */
class Link {
  closed = false;
  sent = 0;
  private failPending?: (e: DeidError) => void;

  private constructor(
    private readonly nw: NetworkInstance,
    private readonly socket: Socket,
    private readonly timeoutMs: number,
    readonly proposed: ReadonlySet<string>,
  ) {}

  static open(target: DimseTarget, pairs: Pair[], opts: { timeoutMs: number; maxPduLength: number }): Promise<Link> {
    const assoc = new AssociationClass(target.callingAE, target.calledAE);
    assoc.setMaxPduLength(opts.maxPduLength);
    const seen = new Set<string>();
    for (const pair of pairs) {
      for (const [sop, syntaxes] of contextsFor(pair)) {
        const k = `${sop}|${syntaxes.join(',')}`;
        if (seen.has(k)) continue;
        seen.add(k);
        const id = assoc.addPresentationContext(sop);
        for (const ts of syntaxes) assoc.addTransferSyntaxToPresentationContext(id, ts);
      }
    }
    const socket = net.connect({ host: target.host, port: target.port });
    socket.setNoDelay(true);
    let errno: string | undefined;
    socket.on('error', (e: NodeJS.ErrnoException) => (errno = e.code ?? errno)); // before the library's own listener
    // connectTimeout is the socket's inactivity timeout (toggled per operation below); the library's
    // association/PDU timers are disabled: a long send receives no PDU, and idle time is ours to manage.
    const nw = new NetworkBase(socket, { connectTimeout: opts.timeoutMs, associationTimeout: NO_TIMEOUT, pduTimeout: NO_TIMEOUT });
    nw.timeoutIntervalId?.unref();
    useLeanSend(nw);
    const link = new Link(nw, socket, opts.timeoutMs, new Set(pairs.map(pairKey)));
    nw.on('close', () => {
      link.closed = true;
      link.fail(exportFailure(true, 'connection closed by the destination'));
    });
    nw.on('networkError', (e) => {
      link.closed = true;
      const timeout = /timeout/i.test(e.message);
      const code = errno ?? (timeout ? 'ETIMEDOUT' : undefined);
      link.fail(exportFailure(code === undefined || RETRYABLE_ERRNO.has(code), timeout ? 'no answer from the destination in time' : `connection error ${code ?? ''}`.trim()));
      socket.destroy();
    });
    nw.on('associationReleaseRequested', () => {
      // The peer releases (rare for an SCP): answer, and let it close the connection.
      link.closed = true;
      nw.sendAssociationReleaseResponse();
      link.fail(exportFailure(true, 'association released by the destination'));
    });
    nw.on('abort', () => {
      link.closed = true;
      link.fail(exportFailure(true, 'association aborted by the destination'));
      socket.destroy();
    });
    return link.run<Link>((resolve, reject) => {
      nw.on('connect', () => nw.sendAssociationRequest(assoc));
      nw.on('associationAccepted', () => resolve(link));
      nw.on('associationRejected', (r) => {
        const transient = r.result === RejectResult.Transient;
        const why = r.reason === RejectReason.CallingAeNotRecognized && r.source === RejectSource.ServiceUser ? 'calling AE not recognized' : r.reason === RejectReason.CalledAeNotRecognized && r.source === RejectSource.ServiceUser ? 'called AE not recognized' : `result ${r.result}, source ${r.source}, reason ${r.reason}`;
        reject(exportFailure(transient, `association rejected (${transient ? 'transient' : 'permanent'}: ${why})`));
        link.closed = true;
        socket.destroy();
      });
    }).catch((e: unknown) => {
      socket.destroy();
      throw e;
    });
  }

  /** Runs one operation with the inactivity timeout armed; connection loss rejects it. */
  private run<T>(body: (resolve: (v: T) => void, reject: (e: DeidError) => void) => void): Promise<T> {
    if (this.closed) return Promise.reject(exportFailure(true, 'connection closed by the destination'));
    return new Promise<T>((resolve, reject) => {
      this.socket.setTimeout(this.timeoutMs);
      const done = () => {
        this.failPending = undefined;
        if (!this.socket.destroyed) this.socket.setTimeout(0);
      };
      this.failPending = (e) => {
        done();
        reject(e);
      };
      try {
        body(
          (v) => {
            done();
            resolve(v);
          },
          (e) => {
            done();
            reject(e);
          },
        );
      } catch (e) {
        done();
        reject(exportFailure(false, `C-STORE could not be sent (${(e as Error).name})`));
      }
    });
  }

  private fail(e: DeidError): void {
    this.failPending?.(e);
  }

  /** The accepted presentation context for (SOP class, syntax), if any. */
  accepted(sop: string, ts: string): boolean {
    return (this.nw.association?.getPresentationContexts() ?? []).some(
      ({ context: c }) => c.getResult() === PC_RESULT.Accept && c.getAbstractSyntaxUid() === sop && c.getAcceptedTransferSyntaxUid() === ts,
    );
  }

  /** Sends one C-STORE and resolves its response status. */
  store(dataset: RawDataset): Promise<{ status: number; comment?: string }> {
    return this.run((resolve, reject) => {
      const req = new CStoreRequest(dataset);
      let status: number | undefined;
      let comment: string | undefined;
      req.on('response', (r) => {
        status = r.getStatus();
        comment = r.getErrorComment();
        this.nw.dimseStream = undefined; // see dimse/library.ts: the library would keep appending to it
      });
      req.on('done', () => {
        // The library never forgets a request; drop it so the association does not grow.
        const i = this.nw.pending.indexOf(req);
        if (i >= 0) this.nw.pending.splice(i, 1);
        if (status === undefined) reject(exportFailure(false, 'C-STORE was not sent (no usable presentation context)'));
        else resolve({ status, comment });
      });
      this.sent++;
      this.nw.sendRequests(req);
    });
  }

  /** A-RELEASE; never fails (a peer that does not answer is cut off). */
  async release(): Promise<void> {
    if (this.closed) return;
    try {
      await this.run<void>((resolve) => {
        this.nw.once('associationReleaseResponse', () => resolve());
        this.nw.sendAssociationReleaseRequest();
      });
    } catch {
      /* closed or timed out: the socket is destroyed below either way */
    }
    this.closed = true;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  abort(): void {
    if (!this.closed && !this.socket.destroyed) this.nw.sendAbort(AbortSource.ServiceUser, AbortReason.NotSpecified);
    this.closed = true;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 500).unref();
  }
}

const MAX_REMEMBERED_PAIRS = 32; // two contexts each at most: well under the 128-context limit

/** One association slot: its operations run one at a time. */
interface Lane {
  link?: Link;
  chain: Promise<unknown>;
  /** Sends queued or running on this lane. */
  load: number;
  idleTimer?: NodeJS.Timeout;
}

export class DimseDestination implements Destination {
  readonly name: string;
  readonly target: DimseTarget;
  private readonly idleMs: number;
  private readonly timeoutMs: number;
  private readonly maxPduLength: number;
  private readonly maxAssociations: number;
  private readonly log?: Logger;
  private readonly lanes: Lane[] = [];
  private closed = false;
  /** Set when the peer would not take a second association (some accept one at a time). */
  private singleOnly = false;
  /** (SOP class, syntax) pairs sent recently, most recent last: proposed on every new association. */
  private readonly pairs = new Map<string, Pair>();
  /** Associations opened so far (for tests and metrics). */
  associationsOpened = 0;

  /** Whether an association is open now. */
  get associated(): boolean {
    return this.lanes.some((l) => l.link !== undefined && !l.link.closed);
  }

  constructor(spec: string, opts: DimseDestinationOptions = {}) {
    this.target = parseDimseUrl(spec);
    this.name = dimseUrlOf(this.target);
    this.idleMs = opts.idleMs ?? 10_000;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.maxPduLength = opts.maxPduLength ?? 262_144;
    this.maxAssociations = Math.max(1, opts.maxAssociations ?? 2);
    this.log = opts.logger?.child({ component: 'dimse-scu', destination: this.name });
  }

  send(part10: Uint8Array, info: ExportInfo): Promise<void> {
    if (this.closed) return Promise.reject(exportFailure(true, 'the destination is closed'));
    const lane = this.pickLane();
    lane.load++;
    return this.enqueue(lane, () => this.sendOne(lane, part10, info)).finally(() => lane.load--);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.lanes.map((lane) => {
        clearTimeout(lane.idleTimer);
        return this.enqueue(lane, () => this.dropLink(lane)).catch(() => {});
      }),
    );
  }

  /**
   * An idle lane with an open association, else any idle lane, else a new one (up to
   * maxAssociations), else the least busy. Sequential sends therefore share one association, and
   * concurrent ones keep a second association busy while the peer answers on the first.
   */
  private pickLane(): Lane {
    if (this.singleOnly && this.lanes.length > 0) return this.lanes[0]!;
    const idle = this.lanes.filter((l) => l.load === 0);
    const ready = idle.find((l) => l.link && !l.link.closed) ?? idle[0];
    if (ready) return ready;
    if (this.lanes.length < this.maxAssociations) {
      const lane: Lane = { chain: Promise.resolve(), load: 0 };
      this.lanes.push(lane);
      return lane;
    }
    return this.lanes.reduce((a, b) => (b.load < a.load ? b : a));
  }

  /** Runs a lane's operations one at a time (one request in flight per association). */
  private enqueue<T>(lane: Lane, op: () => Promise<T>): Promise<T> {
    const p = lane.chain.then(op);
    lane.chain = p.catch(() => {});
    return p;
  }

  private async dropLink(lane: Lane): Promise<void> {
    const link = lane.link;
    lane.link = undefined;
    if (link) {
      await link.release();
      this.log?.debug('association released');
    }
  }

  private armIdle(lane: Lane): void {
    clearTimeout(lane.idleTimer);
    lane.idleTimer = setTimeout(() => {
      void this.enqueue(lane, () => this.dropLink(lane)).catch(() => {});
    }, this.idleMs);
    lane.idleTimer.unref();
  }

  private async sendOne(lane: Lane, part10: Uint8Array, info: ExportInfo): Promise<void> {
    clearTimeout(lane.idleTimer);
    try {
      const parts = splitPart10(part10);
      if (!parts) throw exportFailure(false, 'not a Part 10 file (no preamble or a cut meta group)');
      const sop = parts.sopClassUid || info.sopClassUid;
      const iuid = parts.sopInstanceUid || info.sopInstanceUid;
      const ts = parts.transferSyntaxUid || info.transferSyntaxUid;
      if (!sop || !iuid || !ts) throw exportFailure(false, 'the meta group lacks the SOP class, SOP instance or transfer syntax UID');
      const pair: Pair = [sop, ts];
      this.pairs.delete(pairKey(pair));
      this.pairs.set(pairKey(pair), pair);
      while (this.pairs.size > MAX_REMEMBERED_PAIRS) this.pairs.delete(this.pairs.keys().next().value as string);

      for (let attempt = 0; ; attempt++) {
        const first = this.lanes[0]!;
        if (this.singleOnly && lane !== first) return await this.enqueue(first, () => this.sendOne(first, part10, info));
        let link: Link;
        try {
          link = await this.linkFor(lane, pair);
        } catch (e) {
          if (lane === first || !first.link || first.link.closed) throw e;
          // The peer takes one association at a time: from now on everything goes over the first.
          this.singleOnly = true;
          this.log?.info('the destination refused a second association; using one');
          return await this.enqueue(first, () => this.sendOne(first, part10, info));
        }
        const reused = link.sent > 0;
        const dataset = this.datasetFor(link, part10, parts.datasetOffset, pair, iuid);
        let status: number;
        try {
          ({ status } = await link.store(dataset));
        } catch (e) {
          if (link.closed) {
            // The association was lost before the response: the object may go again on a new one.
            lane.link = undefined;
            // The peer dropped an association we had kept open (idle timeout on its side): once, at once.
            if (reused && attempt === 0) {
              this.log?.debug('association lost; reconnecting');
              continue;
            }
          }
          throw e;
        }
        if (isSuccessOrWarning(status)) {
          if (status !== 0) this.log?.info({ status: hex(status) }, 'C-STORE succeeded with a warning');
          return;
        }
        this.log?.warn({ status: hex(status) }, 'C-STORE refused');
        throw exportFailure(isRetryableStatus(status), `C-STORE failed with status ${hex(status)}`);
      }
    } catch (e) {
      if (isDeidError(e)) throw e;
      throw exportFailure(false, `C-STORE failed (${(e as Error)?.name ?? 'error'})`);
    } finally {
      if (!this.closed) this.armIdle(lane);
    }
  }

  /** The lane's association if it proposed this pair, or a new one proposing it with the recent ones. */
  private async linkFor(lane: Lane, pair: Pair): Promise<Link> {
    const current = lane.link;
    if (current && !current.closed && current.proposed.has(pairKey(pair))) return current;
    if (current) await this.dropLink(lane);
    try {
      // An extra association gets a short time to be accepted: a peer that serves one at a time never answers it.
      const timeoutMs = lane === this.lanes[0] ? this.timeoutMs : Math.min(this.timeoutMs, 3000);
      const link = await Link.open(this.target, [...this.pairs.values()], { timeoutMs, maxPduLength: this.maxPduLength });
      this.associationsOpened++;
      lane.link = link;
      this.log?.debug({ contexts: this.pairs.size }, 'association opened');
      return link;
    } catch (e) {
      const err = isDeidError(e) ? e : exportFailure(true, 'cannot reach the destination');
      this.log?.warn({ err: err.detail, retryable: err.retryable }, 'association failed');
      throw err;
    }
  }

  /** The data set to send on this association: the file's own bytes, or a lossless little-endian re-encoding. */
  private datasetFor(link: Link, part10: Uint8Array, offset: number, [sop, ts]: Pair, iuid: string): RawDataset {
    const whole = Buffer.from(part10.buffer, part10.byteOffset, part10.byteLength);
    if (link.accepted(sop, ts)) return new RawDataset(whole.subarray(offset), sop, iuid, ts);
    if (isNativeSyntax(ts)) {
      const target = LE.find((t) => t !== ts && link.accepted(sop, t));
      if (target) {
        let body: Buffer;
        try {
          body = encodeDataset(readDicom(part10).dataset, target);
        } catch (e) {
          throw exportFailure(false, `the object could not be re-encoded for the destination (${(e as Error).name})`);
        }
        this.log?.debug({ from: ts, to: target }, 'sending re-encoded: the destination refused the original syntax');
        return new RawDataset(body, sop, iuid, target);
      }
    }
    throw exportFailure(false, `the destination does not accept SOP class ${sop} in transfer syntax ${ts}`);
  }
}
