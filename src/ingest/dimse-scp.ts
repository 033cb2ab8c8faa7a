/**
 * DIMSE ingest: a C-ECHO / C-STORE SCP on dcmjs-dimse, kept thin.
 *
 * Each received object is the C-STORE data set exactly as it came off the wire (never parsed by
 * dcmjs, which would drop private tags), prefixed with a Part 10 meta header built from the
 * request's Affected SOP Class / Instance UID and the negotiated transfer syntax. It is handed to
 * the pipeline's `ingest` port, and the C-STORE-RSP is sent only once that resolves, that is once
 * the object is fsynced in the spool and queued (DESIGN decision 6):
 *
 * | ingest outcome                          | status                                        |
 * |-----------------------------------------|-----------------------------------------------|
 * | ok                                      | 0x0000 Success                                |
 * | refused with a code                     | the code's DIMSE status in the error catalogue |
 * | ingest threw ENOSPC, EMFILE…             | 0xA700 Refused: Out of Resources              |
 * | ingest threw something unexpected       | 0x0110 Processing Failure (DEID_ERR_INTERNAL) |
 *
 * The Error Comment is the error code only, never a value from the object.
 *
 * Flat memory: an association holds at most the object being received plus the one being
 * ingested; while an ingest is pending the socket is paused, so a sender that does not wait for
 * the response (asynchronous operations) cannot pile objects up.
 */
import net, { type Socket } from 'node:net';
import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { DeidError } from '../errors.js';
import type { DicomFile, Element } from '../dicom/element.js';
import { TAG } from '../dicom/tag.js';
import { encodingOf } from '../dicom/transfer-syntax.js';
import { uidBytes } from '../dicom/values.js';
import { encodeMetaHeader } from '../dicom/writer.js';
import type { Ingest, IngestOutcome, IngestSource } from '../pipeline/ports.js';
import {
  AbortReason,
  AbortSource,
  CEchoResponse,
  CStoreResponse,
  DatasetBase,
  PC_RESULT,
  RejectReason,
  RejectResult,
  RejectSource,
  ScpBase,
  VERIFICATION_SOP_CLASS,
  allowMaxPduLength,
  type Association,
  type Dataset,
  type DimseRequest,
  type DimseResponse,
  type PresentationContext,
} from '../dimse/library.js';
import { STATUS, answerFor, answerForThrown, formatStatus, type StoreAnswer } from '../dimse/status.js';
import { useLeanSend } from '../dimse/wire.js';

export interface DimseScpOptions {
  readonly host: string;
  /** 0 picks a free port; the bound one is returned. */
  readonly port: number;
  readonly aeTitle: string;
  /** Calling AE titles allowed to associate; empty allows any. */
  readonly allowedCallingAEs: readonly string[];
  /** Our maximum receive PDU length, announced in the A-ASSOCIATE-AC (4096 to 4 MiB). */
  readonly maxPduLength: number;
  readonly ingest: Ingest;
  readonly logger?: Logger;
  /** Reject associations whose called AE title is not `aeTitle` (the service turns it on by default; here default false). */
  readonly checkCalledAE?: boolean;
  /** Largest object accepted; larger ones are drained without being kept and answered 0xA700 (default 2 GiB - 1). */
  readonly maxObjectBytes?: number;
  /** Abort an association whose A-ASSOCIATE-RQ does not arrive within this time (default 30 s). */
  readonly associationTimeoutMs?: number;
  /** Abort an association that sends no PDU for this long, e.g. an idle sender (default 120 s). */
  readonly idleTimeoutMs?: number;
  /** Most simultaneous connections (default 64). */
  readonly maxConnections?: number;
  /** How long close() waits for in-flight stores before aborting anyway (default 30 s). */
  readonly closeTimeoutMs?: number;
}

/** What a reload may change on a running SCP: new associations and objects follow it, open ones are not dropped. */
export type DimseScpSettings = Pick<DimseScpOptions, 'aeTitle' | 'allowedCallingAEs' | 'checkCalledAE' | 'maxObjectBytes'>;

export interface DimseScpHandle {
  readonly port: number;
  reconfigure(settings: DimseScpSettings): void;
  /** Stops accepting, lets in-flight stores finish and answer, then aborts every association. */
  close(): Promise<void>;
}

/**
 * Storage SOP classes by UID branch: composite instance storage (…5.1.4.1.1.*) plus the non-image
 * storage branches outside it (hanging protocols, colour palettes, implant templates, protocol
 * storage, RT delivery instructions…). dcmjs-dimse's own table has only some 60 classes.
 */
const STORAGE_PREFIXES = [
  '1.2.840.10008.5.1.4.1.1.',
  '1.2.840.10008.5.1.4.34.',
  '1.2.840.10008.5.1.4.38.',
  '1.2.840.10008.5.1.4.39.',
  '1.2.840.10008.5.1.4.43.',
  '1.2.840.10008.5.1.4.44.',
  '1.2.840.10008.5.1.4.45.',
];
export const isStorageSopClass = (uid: string): boolean => STORAGE_PREFIXES.some((p) => uid.startsWith(p));

/**
 * Transfer syntaxes we receive verbatim: the ones our reader understands (native little/big endian,
 * deflated, and every encapsulated 1.2.840.10008.1.2.4.* and RLE syntax).
 */
export function isAcceptedTransferSyntax(uid: string): boolean {
  if (encodingOf(uid) === undefined) return false;
  return (
    uid === '1.2.840.10008.1.2' ||
    uid === '1.2.840.10008.1.2.1' ||
    uid === '1.2.840.10008.1.2.1.99' ||
    uid === '1.2.840.10008.1.2.2' ||
    uid === '1.2.840.10008.1.2.5' ||
    uid.startsWith('1.2.840.10008.1.2.4.')
  );
}

/** The C-STORE answer for the ingest port's outcome. */
export const statusForOutcome = (outcome: IngestOutcome): StoreAnswer => answerFor(outcome.ok ? undefined : outcome.code);

/** Preamble, DICM and group 0002 for a received data set (MediaStorage UIDs from the C-STORE-RQ). */
export function buildMetaHeader(sopClassUid: string, sopInstanceUid: string, transferSyntaxUid: string): Buffer {
  const meta: Element[] = [
    { tag: TAG.MediaStorageSOPClassUID, vr: 'UI', value: uidBytes(sopClassUid) },
    { tag: TAG.MediaStorageSOPInstanceUID, vr: 'UI', value: uidBytes(sopInstanceUid) },
  ];
  const encoding = encodingOf(transferSyntaxUid) ?? { explicitVR: true, littleEndian: true, deflated: false };
  const file: DicomFile = { meta, dataset: [], transferSyntaxUID: transferSyntaxUid, encoding };
  return encodeMetaHeader(file, transferSyntaxUid);
}

/**
 * Collects one C-STORE data set's PDV values. write() always returns true (see
 * dimse/library.ts: returning false would let the library process later PDUs out of order).
 * Nothing is copied until the object is complete.
 */
class CaptureSink extends Writable {
  chunks: Buffer[] = [];
  bytes = 0;
  overflow = false;

  constructor(private readonly limit: number) {
    super();
  }

  override write(chunk: unknown): boolean {
    const b = chunk as Buffer;
    if (this.overflow) return true;
    this.bytes += b.length;
    if (this.bytes > this.limit) {
      this.overflow = true;
      this.chunks = [];
    } else {
      this.chunks.push(b);
    }
    return true;
  }

  override end(): this {
    return this;
  }

  discard(): void {
    this.chunks = [];
  }
}

interface ServerContext {
  readonly opts: DimseScpOptions;
  readonly log?: Logger;
  aeTitle: string;
  checkCalledAE: boolean;
  allowed: ReadonlySet<string>;
  maxObjectBytes: number;
  closing: boolean;
}

const allowList = (aes: readonly string[]): ReadonlySet<string> => new Set(aes.map((a) => a.trim()).filter(Boolean));

/** One association (one TCP connection). */
class DeidScp extends ScpBase {
  /** Set on A-ABORT (either way), on close and on errors: nothing more is committed or answered. */
  dead = false;
  private readonly sinks = new WeakMap<DimseRequest, CaptureSink>();
  private current?: CaptureSink;
  private readonly inflight = new Set<Promise<void>>();
  private callingAE = '';
  private calledAE = '';
  readonly remote: string;

  constructor(
    socket: Socket,
    private readonly ctx: ServerContext,
  ) {
    super(socket, {
      associationTimeout: ctx.opts.associationTimeoutMs ?? 30_000,
      pduTimeout: ctx.opts.idleTimeoutMs ?? 120_000,
      connectTimeout: Math.max(ctx.opts.idleTimeoutMs ?? 120_000, 1000) + 60_000,
    });
    socket.setNoDelay(true);
    useLeanSend(this);
    // dcmjs-dimse's Server sets `connected` but not `connectedTime`; without both its association
    // timer never fires. We use our own listener, so set them here.
    this.connected = true;
    this.connectedTime = Date.now();
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    this.on('close', () => {
      this.dead = true;
      if (this.current) this.ctx.log?.info({ remote: this.remote, callingAE: this.callingAE, bytes: this.current.bytes }, 'connection closed mid-object: partial object dropped');
      else this.ctx.log?.debug({ remote: this.remote, callingAE: this.callingAE || undefined }, 'connection closed');
      this.current?.discard();
      this.current = undefined;
    });
    this.on('networkError', (e) => {
      this.dead = true;
      this.ctx.log?.warn({ remote: this.remote, callingAE: this.callingAE || undefined, err: e.message.replace(/^.*?-> /, '').slice(0, 120) }, 'DIMSE connection error');
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 1000).unref();
    });
  }

  /** Resolves when every ingest started on this association has answered. */
  settled(): Promise<unknown> {
    return Promise.allSettled([...this.inflight]);
  }

  override associationRequested(association: Association): void {
    const calling = association.getCallingAeTitle().trim();
    const called = association.getCalledAeTitle().trim();
    this.callingAE = calling;
    this.calledAE = called;
    const log = this.ctx.log;
    if (this.ctx.closing) {
      log?.info({ remote: this.remote, callingAE: calling }, 'association rejected: shutting down');
      this.sendAssociationReject(RejectResult.Transient, RejectSource.ServiceProviderPresentation, RejectReason.TemporaryCongestion);
      return;
    }
    if (this.ctx.allowed.size > 0 && !this.ctx.allowed.has(calling)) {
      log?.warn({ remote: this.remote, callingAE: calling, code: 'DEID_ERR_CALLING_AE' }, 'association rejected: calling AE not allowed');
      this.sendAssociationReject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CallingAeNotRecognized);
      return;
    }
    if (this.ctx.checkCalledAE && called !== this.ctx.aeTitle) {
      log?.warn({ remote: this.remote, callingAE: calling, calledAE: called }, 'association rejected: called AE title is not ours');
      this.sendAssociationReject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CalledAeNotRecognized);
      return;
    }
    let accepted = 0;
    for (const { context } of association.getPresentationContexts()) {
      const abstract = context.getAbstractSyntaxUid();
      if (abstract !== VERIFICATION_SOP_CLASS && !isStorageSopClass(abstract)) {
        context.setResult(PC_RESULT.RejectAbstractSyntaxNotSupported);
        continue;
      }
      // The sender's preference order: the first proposed syntax we can take.
      const ts = context.getTransferSyntaxUids().find(isAcceptedTransferSyntax);
      if (ts) {
        context.setResult(PC_RESULT.Accept, ts);
        accepted++;
      } else {
        context.setResult(PC_RESULT.RejectTransferSyntaxesNotSupported);
      }
    }
    // Announce our own receive limit (dcmjs-dimse would otherwise answer min(peer's, its default)).
    association.setMaxPduLength(this.ctx.opts.maxPduLength);
    log?.info({ remote: this.remote, callingAE: calling, calledAE: called, contexts: accepted }, 'association accepted');
    this.sendAssociationAccept();
  }

  override cEchoRequest(request: DimseRequest, callback: (response: DimseResponse) => void): void {
    this.dimseStream = undefined; // see dimse/library.ts: the library would keep appending to it
    const rsp = CEchoResponse.fromRequest(request);
    rsp.setStatus(STATUS.Success);
    callback(rsp);
  }

  override createStoreWritableStream(_context: PresentationContext, request: DimseRequest): Writable {
    const sink = new CaptureSink(this.dead ? 0 : this.ctx.maxObjectBytes);
    this.ctx.log?.debug({ remote: this.remote, callingAE: this.callingAE }, 'C-STORE data started');
    this.current = sink;
    this.sinks.set(request, sink);
    return sink;
  }

  override createDatasetFromStoreWritableStream(_writable: Writable, context: PresentationContext, callback: (dataset: Dataset) => void): void {
    // An empty placeholder: the bytes stay in the sink, dcmjs never parses them.
    callback(new DatasetBase({}, context.getAcceptedTransferSyntaxUid()));
  }

  override cStoreRequest(request: DimseRequest, callback: (response: DimseResponse) => void): void {
    const sink = this.sinks.get(request);
    this.sinks.delete(request);
    if (this.current === sink) this.current = undefined;
    if (this.dead) return;
    if (this.ctx.closing) {
      // Shutting down: never start committing a new object; the sender keeps its copy.
      sink?.discard();
      this.abortAssociation();
      return;
    }
    const p = this.store(request, sink)
      .then((answer) => {
        if (this.dead || this.socket.destroyed) {
          this.ctx.log?.info({ remote: this.remote, callingAE: this.callingAE, status: answer.status }, 'C-STORE answer not sent: association gone');
          return;
        }
        const rsp = CStoreResponse.fromRequest(request);
        rsp.setStatus(answer.status);
        if (answer.code) rsp.setErrorComment(answer.code);
        callback(rsp);
      })
      .catch((e: unknown) => {
        this.ctx.log?.error({ remote: this.remote, err: (e as Error)?.name }, 'C-STORE handler failed');
      })
      .finally(() => {
        this.inflight.delete(p);
        if (this.inflight.size === 0 && !this.dead) this.socket.resume();
      });
    if (this.inflight.size === 0) this.socket.pause();
    this.inflight.add(p);
  }

  private async store(request: DimseRequest, sink: CaptureSink | undefined): Promise<StoreAnswer> {
    const log = this.ctx.log;
    if (!sink) return statusForOutcome({ ok: false, code: 'DEID_ERR_NOT_DICOM' });
    if (sink.overflow) {
      log?.warn({ remote: this.remote, callingAE: this.callingAE, bytes: sink.bytes, limit: this.ctx.maxObjectBytes, code: 'DEID_ERR_HOSTILE_SIZE' }, 'C-STORE refused: object larger than the limit; not kept');
      return statusForOutcome({ ok: false, code: 'DEID_ERR_HOSTILE_SIZE' });
    }
    const sopClassUid = request.getAffectedSopClassUid();
    const sopInstanceUid = request.getAffectedSopInstanceUid();
    // The placeholder data set carries the accepted syntax of the context the data came on.
    const ts = request.getDataset()?.getTransferSyntaxUid();
    if (!sopClassUid || !sopInstanceUid || !ts) {
      sink.discard();
      return statusForOutcome({ ok: false, code: 'DEID_ERR_MISSING_SOP_INSTANCE_UID' });
    }
    const bytes = Buffer.concat([buildMetaHeader(sopClassUid, sopInstanceUid, ts), ...sink.chunks]);
    sink.discard();
    const source: IngestSource = { kind: 'dimse', callingAE: this.callingAE, calledAE: this.calledAE, remote: this.remote };
    let answer: StoreAnswer;
    const t0 = performance.now();
    try {
      answer = statusForOutcome(await this.ctx.opts.ingest(bytes, source));
    } catch (e) {
      answer = answerForThrown(e);
    }
    const fields = { remote: this.remote, callingAE: this.callingAE, bytes: bytes.length, status: formatStatus(answer.status), ms: Math.round(performance.now() - t0) };
    if (answer.status === STATUS.Success) log?.debug(fields, 'C-STORE stored');
    else log?.warn({ ...fields, code: answer.code }, 'C-STORE refused');
    return answer;
  }

  override associationReleaseRequested(): void {
    void this.settled().then(() => {
      if (this.dead || this.socket.destroyed) return;
      this.sendAssociationReleaseResponse();
      this.ctx.log?.debug({ remote: this.remote, callingAE: this.callingAE }, 'association released');
      // The requestor closes the transport; do not linger if it does not.
      setTimeout(() => this.socket.destroy(), 5000).unref();
    });
  }

  /** A-ABORT from the peer: drop whatever is being received; nothing more is answered. */
  override abort(): void {
    this.ctx.log?.info({ remote: this.remote, callingAE: this.callingAE }, 'association aborted by the peer');
    this.dead = true;
    this.current?.discard();
    this.current = undefined;
    this.socket.destroy();
  }

  /** We abort (shutdown): the sender gets A-ABORT and keeps its copy of anything unanswered. */
  abortAssociation(): void {
    if (this.dead) return;
    this.dead = true;
    this.current?.discard();
    this.current = undefined;
    if (this.association && !this.socket.destroyed) this.sendAbort(AbortSource.ServiceUser, AbortReason.NotSpecified);
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }
}

/** Starts the SCP on host:port; resolves once it listens. */
export function startDimseScp(opts: DimseScpOptions): Promise<DimseScpHandle> {
  if (!Number.isInteger(opts.maxPduLength) || opts.maxPduLength < 4096 || opts.maxPduLength > 4 * 1024 * 1024) {
    return Promise.reject(new DeidError('DEID_ERR_CONFIG', 'the DIMSE maximum PDU length must be 4096 to 4194304 bytes'));
  }
  allowMaxPduLength(opts.maxPduLength);
  const ctx: ServerContext = {
    opts,
    log: opts.logger?.child({ component: 'dimse-scp' }),
    aeTitle: opts.aeTitle,
    checkCalledAE: opts.checkCalledAE ?? false,
    allowed: allowList(opts.allowedCallingAEs),
    maxObjectBytes: opts.maxObjectBytes ?? 2 ** 31 - 1,
    closing: false,
  };
  const reconfigure = (s: DimseScpSettings): void => {
    ctx.aeTitle = s.aeTitle;
    ctx.checkCalledAE = s.checkCalledAE ?? false;
    ctx.allowed = allowList(s.allowedCallingAEs);
    ctx.maxObjectBytes = s.maxObjectBytes ?? 2 ** 31 - 1;
  };
  const associations = new Set<DeidScp>();
  const server = net.createServer((socket) => {
    if (ctx.closing) {
      socket.destroy();
      return;
    }
    socket.on('error', () => {
      /* reported through the association's networkError */
    });
    const scp = new DeidScp(socket, ctx);
    associations.add(scp);
    scp.on('close', () => associations.delete(scp));
  });
  server.maxConnections = opts.maxConnections ?? 64;

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      ctx.closing = true;
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      const grace = opts.closeTimeoutMs ?? 30_000;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...associations].map((a) => a.settled())),
        new Promise((resolve) => (timer = setTimeout(resolve, grace))),
      ]);
      clearTimeout(timer);
      for (const a of associations) a.abortAssociation();
      // Sockets end within a second of the A-ABORT (then are destroyed), which lets server.close finish.
      await serverClosed;
      ctx.log?.info('DIMSE SCP closed');
    })();
    return closed;
  };

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      server.on('error', (e) => ctx.log?.error({ err: (e as NodeJS.ErrnoException).code ?? e.name }, 'DIMSE listener error'));
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : opts.port;
      ctx.log?.info({ host: opts.host, port, aeTitle: opts.aeTitle }, 'DIMSE SCP listening');
      resolve({ port, close, reconfigure });
    });
  });
}
