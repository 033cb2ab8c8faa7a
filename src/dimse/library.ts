/**
 * The bridge to dcmjs-dimse: a small typed view of version 0.3.3 (pinned exactly in package.json),
 * including the internals our SCP and SCU rely on. Nothing outside src/dimse/ imports the library.
 *
 * Why internals at all: the public `Client` opens an association per batch and releases it, while
 * the SCU keeps associations open across objects (`Network`, the base of `Scp`, which the library
 * does not export); and the library's own send path encodes every command through dcmjs (see
 * wire.ts). test/dimse-library.test.ts checks that every internal named below exists and behaves,
 * and that our encoded command sets equal the library's byte for byte.
 *
 * The package's own index.d.ts is incomplete: `Network` (the base of `Scp`, which does the PDU and
 * DIMSE work) is not exported, the event-emitter base types are missing, and fields such as
 * `socket` or `association` are undeclared. Everything we touch is declared here once, so the SCP
 * and SCU are type-checked without `any`. Behaviour we depend on (read in the library source):
 *
 * - `Network` sets `socket.setTimeout(connectTimeout)`; a socket 'timeout' becomes a 'networkError'.
 * - A 1 s interval aborts when no PDU arrived for `associationTimeout` ms after connect (only when
 *   `connected` and `connectedTime` are set, which `Server` does for accepted sockets) or for
 *   `pduTimeout` ms since the last PDU.
 * - For a C-STORE-RQ data set, the SCP calls `createStoreWritableStream(pc, request)` on the first
 *   data PDV, `write(pdvValue)` for each PDV, `end()` and then
 *   `createDatasetFromStoreWritableStream(stream, pc, cb)`. When `write()` returns false it awaits
 *   a one-shot 'drain' while later PDUs keep being dispatched, so a sink's write() must return true.
 * - A request's data set is sent as `dataset.getDenaturalizedDataset()` fragmented into P-DATA-TF
 *   PDUs of the peer's maximum length. It is transcoded through dcmjs first when its transfer syntax
 *   differs from the accepted one of the chosen presentation context, which we never let happen.
 * - The library logs through a global loglevel logger, including request descriptions with UIDs.
 *   We silence it (no PHI in logs) and log through pino ourselves.
 */
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import dimseModule from 'dcmjs-dimse';
import type { association as associationNs, Dataset as DatasetType } from 'dcmjs-dimse';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from '../dicom/writer.js';

/** The version whose internals this bridge was written against and is tested on. */
export const DCMJS_DIMSE_VERSION = '0.3.3';

export type Association = associationNs.Association;
export type PresentationContext = associationNs.PresentationContext;
export type Dataset = DatasetType;

/** Options of the library's Network/Scp constructors that we use. */
export interface NetworkOptions {
  readonly connectTimeout?: number;
  readonly associationTimeout?: number;
  readonly pduTimeout?: number;
}

/** A DIMSE command as the library models it (request or response). */
export interface DimseCommand {
  getCommandFieldType(): number;
  getCommandDataset(): CommandDataset;
  getDataset(): Dataset | undefined;
  hasDataset(): boolean;
}

export interface DimseResponse extends DimseCommand {
  getStatus(): number;
  setStatus(status: number): void;
  getErrorComment(): string | undefined;
  setErrorComment(comment: string): void;
}

export interface DimseRequest extends DimseCommand {
  getMessageId(): number;
  getAffectedSopClassUid(): string | undefined;
  getAffectedSopInstanceUid(): string | undefined;
  on(event: 'response', listener: (response: DimseResponse) => void): unknown;
  on(event: 'done', listener: () => void): unknown;
}

/** A-ASSOCIATE-RJ parameters as the 'associationRejected' event gives them. */
export interface RejectInfo {
  readonly result: number;
  readonly source: number;
  readonly reason: number;
}

/** The library's Network class: one DICOM upper-layer connection. */
export interface NetworkInstance {
  readonly socket: Socket;
  association?: Association;
  connected: boolean;
  connectedTime?: number;
  /** The library's 1 s timeout-check interval (never unref'd by the library). */
  timeoutIntervalId?: NodeJS.Timeout;
  /**
   * Requests sent and awaiting (or past) their response. The library never removes them, so on a
   * long-lived association each would keep its data set alive: callers prune it.
   */
  pending: DimseRequest[];
  /**
   * The buffer collecting the current command set. The library forgets to clear it after a command
   * without a data set (every C-STORE-RSP, C-ECHO-RQ), so the next command is appended to it and the
   * whole history is parsed again: CPU per message grows with the association's age (measured: 3.5
   * ms per object after 250 objects, 16 ms after 1,500). Callers clear it in their handlers.
   */
  dimseStream?: unknown;
  sendAssociationRequest(association: Association): void;
  sendAssociationAccept(): void;
  sendAssociationReject(result?: number, source?: number, reason?: number): void;
  sendAssociationReleaseRequest(): void;
  sendAssociationReleaseResponse(): void;
  sendRequests(requests: DimseRequest | DimseRequest[]): void;
  sendAbort(source?: number, reason?: number): void;

  on(event: 'connect' | 'close' | 'associationReleaseResponse' | 'associationReleaseRequested', listener: () => void): this;
  on(event: 'associationAccepted' | 'associationRequested', listener: (association: Association) => void): this;
  on(event: 'associationRejected', listener: (reject: RejectInfo) => void): this;
  on(event: 'abort', listener: (info: { source: number; reason: number }) => void): this;
  on(event: 'networkError', listener: (error: Error) => void): this;
  once(event: 'close' | 'associationReleaseResponse', listener: () => void): this;
  removeAllListeners(event?: string): this;
}

/** What an Scp subclass may override (the library dispatches to these methods). */
export interface ScpInstance extends NetworkInstance {
  associationRequested(association: Association): void;
  associationReleaseRequested(): void;
  cEchoRequest(request: DimseRequest, callback: (response: DimseResponse) => void): void;
  cStoreRequest(request: DimseRequest, callback: (response: DimseResponse) => void): void;
  abort(source: number, reason: number): void;
  createStoreWritableStream(context: PresentationContext, request: DimseRequest): Writable;
  createDatasetFromStoreWritableStream(writable: Writable, context: PresentationContext, callback: (dataset: Dataset) => void): void;
}

type Ctor<T> = new (socket: Socket, opts?: NetworkOptions) => T;

/** A command set as the library keeps it: element values by keyword, and its own encoding of them. */
export interface CommandDataset {
  getElements(): Record<string, unknown>;
  getDenaturalizedCommandDataset(): Buffer;
}

interface DimseModule {
  readonly version: string;
  readonly constants: {
    readonly PresentationContextResult: { readonly Accept: number; readonly RejectAbstractSyntaxNotSupported: number; readonly RejectTransferSyntaxesNotSupported: number };
    readonly RejectResult: { readonly Permanent: number; readonly Transient: number };
    readonly RejectSource: { readonly ServiceUser: number; readonly ServiceProviderPresentation: number };
    readonly RejectReason: { readonly NoReasonGiven: number; readonly CallingAeNotRecognized: number; readonly CalledAeNotRecognized: number; readonly TemporaryCongestion: number };
    readonly AbortSource: { readonly ServiceUser: number };
    readonly AbortReason: { readonly NotSpecified: number };
    readonly SopClass: { readonly Verification: string };
  };
  readonly Scp: Ctor<ScpInstance>;
  readonly Dataset: new (elements: Record<string, unknown>, transferSyntaxUid?: string) => Dataset;
  readonly association: { readonly Association: new (callingAeTitle: string, calledAeTitle: string) => Association };
  readonly requests: { readonly CStoreRequest: new (dataset: Dataset) => DimseRequest; readonly CEchoRequest: new () => DimseRequest };
  readonly responses: {
    readonly CEchoResponse: { fromRequest(request: DimseRequest): DimseResponse };
    readonly CStoreResponse: { fromRequest(request: DimseRequest): DimseResponse };
  };
  readonly Implementation: {
    setImplementationClassUid(uid: string): void;
    setImplementationVersion(version: string): void;
    getMaxPduLength(): number;
    setMaxPduLength(length: number): void;
  };
  readonly log: { setLevel(level: 'silent' | 'error' | 'warn' | 'info' | 'debug' | 'trace'): void };
}

const dimse = dimseModule as unknown as DimseModule;
if (dimse.version !== DCMJS_DIMSE_VERSION) {
  // The SCP and SCU reach into the library's internals: another version may lack or change them.
  throw new Error(`dcmjs-dimse ${DCMJS_DIMSE_VERSION} is required (installed: ${dimse.version}); the DIMSE adapter relies on its internals`);
}
dimse.log.setLevel('silent');
// Announce ourselves (A-ASSOCIATE-RQ/AC) with the identity our Part 10 files carry.
dimse.Implementation.setImplementationClassUid(IMPLEMENTATION_CLASS_UID);
dimse.Implementation.setImplementationVersion(IMPLEMENTATION_VERSION_NAME);

/**
 * An SCP's A-ASSOCIATE-AC announces min(association's max PDU length, this global cap), 262144 by
 * default; raise the cap so that a configured larger receive PDU is really announced.
 */
export function allowMaxPduLength(length: number): void {
  if (length > dimse.Implementation.getMaxPduLength()) dimse.Implementation.setMaxPduLength(length);
}

/** The library's Scp class (for subclassing), typed. */
export const ScpBase: Ctor<ScpInstance> = dimse.Scp;
/** The library's Network class: not exported, but it is the prototype of Scp. */
export const NetworkBase: Ctor<NetworkInstance> = Object.getPrototypeOf(dimse.Scp) as Ctor<NetworkInstance>;
export const DatasetBase = dimse.Dataset;
export const AssociationClass = dimse.association.Association;
export const CStoreRequest = dimse.requests.CStoreRequest;
export const CEchoResponse = dimse.responses.CEchoResponse;
export const CStoreResponse = dimse.responses.CStoreResponse;

export const CEchoRequest = dimse.requests.CEchoRequest;

/** The library's constants of the DICOM upper layer (PS3.8) that we use. */
export const { PresentationContextResult: PC_RESULT, RejectResult, RejectSource, RejectReason, AbortSource, AbortReason } = dimse.constants;
export const VERIFICATION_SOP_CLASS = dimse.constants.SopClass.Verification;
