/**
 * Guards for the one place that reaches into dcmjs-dimse (src/dimse/): the pinned version, every
 * internal the SCP and SCU touch (it exists and behaves as library.ts says), and our hand-encoded
 * command sets and P-DATA-TF PDUs against the library's own, byte for byte.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net, { type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AssociationClass,
  CEchoRequest,
  CEchoResponse,
  CStoreRequest,
  CStoreResponse,
  DCMJS_DIMSE_VERSION,
  DatasetBase,
  NetworkBase,
  ScpBase,
  VERIFICATION_SOP_CLASS,
  type DimseCommand,
  type NetworkInstance,
} from '../src/dimse/library.js';
import { encodeCommand, useLeanSend } from '../src/dimse/wire.js';
import { startDimseScp, type DimseScpHandle } from '../src/ingest/dimse-scp.js';
import { REPO_ROOT } from './helpers/corpus.js';
import { listenOnFreePort } from './helpers/ports.js';

const CT_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.2';
const INSTANCE = '1.2.826.0.1.3680043.10.1138.7.1';

/** What the library's `_sendPDataTF` looks like from outside (an internal: see src/dimse/library.ts). */
type SendPDataTF = (command: DimseCommand, contextId: number, maxPduLength: number) => void;
type Internal = NetworkInstance & { _sendPDataTF: SendPDataTF; statistics: { getBytesSent(): number; addBytesSent(n: number): void } };

/** A TCP sink on a free port: every connection's bytes, by connection order. */
async function captureServer(): Promise<{ server: Server; port: number; received: Buffer[][] }> {
  const received: Buffer[][] = [];
  const server = net.createServer((s) => {
    const chunks: Buffer[] = [];
    received.push(chunks);
    s.on('data', (d) => chunks.push(d));
  });
  const port = await listenOnFreePort(server);
  return { server, port, received };
}

async function connected(port: number): Promise<Socket> {
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  return socket;
}

/** A library Network on a fresh connection; its timers never keep the test alive. */
function network(socket: Socket): Internal {
  const nw = new NetworkBase(socket, { connectTimeout: 60_000, associationTimeout: 60_000, pduTimeout: 60_000 }) as Internal;
  nw.timeoutIntervalId?.unref();
  return nw;
}

const settle = () => new Promise((r) => setTimeout(r, 100));

function storeRequest(): DimseCommand {
  return new CStoreRequest(new DatasetBase({ SOPClassUID: CT_SOP_CLASS, SOPInstanceUID: INSTANCE, PatientID: 'GUARD-1', Modality: 'CT' }, '1.2.840.10008.1.2.1'));
}

describe('the dcmjs-dimse bridge (src/dimse/)', () => {
  const cleanups: Array<() => unknown> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('should run on exactly the pinned library version', () => {
    const require = createRequire(import.meta.url);
    const installed = (require('dcmjs-dimse/package.json') as { version: string }).version;
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(installed).toBe(DCMJS_DIMSE_VERSION);
    // An exact version, not a range: another release may change the internals below.
    expect(pkg.dependencies['dcmjs-dimse']).toBe(DCMJS_DIMSE_VERSION);
  });

  it('should find the unexported Network as the prototype of Scp, with the methods we call and override', () => {
    expect(Object.getPrototypeOf(ScpBase)).toBe(NetworkBase);
    for (const m of ['sendAssociationRequest', 'sendAssociationAccept', 'sendAssociationReject', 'sendAssociationReleaseResponse', 'sendRequests', 'sendAbort', '_sendPDataTF']) {
      expect(typeof (NetworkBase.prototype as unknown as Record<string, unknown>)[m], m).toBe('function');
    }
    for (const m of ['associationRequested', 'associationReleaseRequested', 'cEchoRequest', 'cStoreRequest', 'abort', 'createStoreWritableStream', 'createDatasetFromStoreWritableStream']) {
      expect(typeof (ScpBase.prototype as unknown as Record<string, unknown>)[m], m).toBe('function');
    }
  });

  it('should give a connection the internal fields we use: socket, timer, statistics, pending requests', async () => {
    const sink = await captureServer();
    cleanups.push(() => sink.server.close());
    const socket = await connected(sink.port);
    cleanups.push(() => socket.destroy());
    const nw = network(socket);
    expect(nw.socket).toBe(socket);
    // The 1 s timeout check: a Timeout we can unref, cleared by the library when the socket closes.
    expect(typeof nw.timeoutIntervalId?.unref).toBe('function');
    expect(typeof nw.statistics.addBytesSent).toBe('function');
    expect(Array.isArray(nw.pending)).toBe(true);
    expect(nw.pending).toHaveLength(0);
    socket.destroy();
    await settle();
    expect(nw.timeoutIntervalId).toBeUndefined();
  });

  it('should encode C-STORE-RQ/RSP and C-ECHO-RQ/RSP command sets exactly as the library does', () => {
    const store = storeRequest();
    const stored = CStoreResponse.fromRequest(store as never);
    stored.setStatus(0x0000);
    const refused = CStoreResponse.fromRequest(store as never);
    refused.setStatus(0xc000);
    refused.setErrorComment('DEID_ERR_TRUNCATED'); // even length
    const odd = CStoreResponse.fromRequest(store as never);
    odd.setStatus(0xa700);
    odd.setErrorComment('DEID_ERR_OUT_OF_RESOURCES'); // odd length: padded with a space
    const echo = new CEchoRequest();
    const echoed = CEchoResponse.fromRequest(echo as never);
    echoed.setStatus(0x0000);
    for (const [name, cmd] of Object.entries({ store, stored, refused, odd, echo, echoed })) {
      const set = cmd.getCommandDataset();
      const ours = encodeCommand(set.getElements());
      expect(ours, name).toBeDefined();
      expect(ours!.equals(set.getDenaturalizedCommandDataset()), name).toBe(true);
    }
    // A command with an element outside our table goes through the library's own path.
    expect(encodeCommand({ ...echo.getCommandDataset().getElements(), OffendingElement: [1] })).toBeUndefined();
  });

  it('should put the same P-DATA-TF PDUs on the wire as the library, data fragments included, and count them', async () => {
    const sink = await captureServer();
    cleanups.push(() => sink.server.close());
    const sockets = [await connected(sink.port), await connected(sink.port)];
    cleanups.push(() => sockets.forEach((s) => s.destroy()));
    const [library, lean] = sockets.map(network);
    useLeanSend(lean);
    // A PDU length small enough that the data set is cut into several fragments.
    for (const [nw, cmd] of [[library, storeRequest()], [lean, storeRequest()]] as const) {
      // Same message id on both sides: the library numbers requests from a global counter.
      (cmd as unknown as { setMessageId(n: number): void }).setMessageId(7);
      nw._sendPDataTF(cmd, 1, 64);
    }
    await settle();
    const [a, b] = sink.received.map((chunks) => Buffer.concat(chunks));
    expect(a.length).toBeGreaterThan(3 * 70);
    expect(b.equals(a)).toBe(true);
    expect(lean.statistics.getBytesSent()).toBe(b.length);
    expect(library.statistics.getBytesSent()).toBe(a.length);
  });

  it('should behave on an association as library.ts says: sends through _sendPDataTF, keeps answered requests, keeps the command buffer', async () => {
    let scp: DimseScpHandle | undefined;
    scp = await startDimseScp({ host: '127.0.0.1', port: 0, aeTitle: 'DEID', allowedCallingAEs: [], maxPduLength: 65536, ingest: async () => ({ ok: false, code: 'DEID_ERR_NOT_DICOM' }) });
    cleanups.push(() => scp?.close());
    const socket = await connected(scp.port);
    cleanups.push(() => socket.destroy());
    const nw = network(socket);
    const calls: Array<[number, number]> = [];
    const library = nw._sendPDataTF;
    nw._sendPDataTF = function spy(this: Internal, cmd, contextId, max) {
      calls.push([contextId, max]);
      return library.call(this, cmd, contextId, max);
    };
    const assoc = new AssociationClass('GUARD', 'DEID');
    const pc = assoc.addPresentationContext(VERIFICATION_SOP_CLASS);
    assoc.addTransferSyntaxToPresentationContext(pc, '1.2.840.10008.1.2');
    await new Promise<void>((resolve, reject) => {
      nw.on('associationAccepted', () => resolve());
      nw.on('associationRejected', () => reject(new Error('rejected')));
      nw.sendAssociationRequest(assoc);
    });
    const echo = new CEchoRequest();
    const status = await new Promise<number>((resolve) => {
      echo.on('response', (r) => resolve(r.getStatus()));
      nw.sendRequests(echo);
    });
    expect(status).toBe(0x0000);
    // The request went out through the internal send, on the accepted context, with the peer's maximum PDU length.
    expect(calls).toEqual([[pc, 65536]]);
    // The library keeps answered requests (the SCU prunes them) ...
    expect(nw.pending).toContain(echo);
    // ... and the buffer of the command set it just parsed (the SCP and SCU clear it).
    expect(nw.dimseStream).toBeDefined();
    nw.sendAbort();
  });
});
