/**
 * A lean send path for dcmjs-dimse connections (SCP and SCU).
 *
 * The library encodes every command set through dcmjs (denaturalize, about 0.5 ms each), builds a
 * description string for its (silenced) log, and copies each data fragment into a new PDU buffer.
 * `useLeanSend` replaces its `_sendPDataTF` on one connection: the command set is encoded here
 * (group 0000, implicit VR little endian) and each P-DATA-TF is a 12-byte header written with a view
 * of the data set, all corked into one writev. A command with an element not in the table below
 * goes through the library's own path.
 */
import type { CommandDataset, NetworkInstance } from './library.js';

type Vr = 'UI' | 'US' | 'AE' | 'LO';

/** The command elements we encode (PS3.7 Annex E), by the library's keyword. */
const COMMAND_ELEMENTS: Record<string, readonly [element: number, vr: Vr]> = {
  AffectedSOPClassUID: [0x0002, 'UI'],
  RequestedSOPClassUID: [0x0003, 'UI'],
  CommandField: [0x0100, 'US'],
  MessageID: [0x0110, 'US'],
  MessageIDBeingRespondedTo: [0x0120, 'US'],
  MoveDestination: [0x0600, 'AE'],
  Priority: [0x0700, 'US'],
  CommandDataSetType: [0x0800, 'US'],
  Status: [0x0900, 'US'],
  ErrorComment: [0x0902, 'LO'],
  ErrorID: [0x0903, 'US'],
  AffectedSOPInstanceUID: [0x1000, 'UI'],
  RequestedSOPInstanceUID: [0x1001, 'UI'],
  NumberOfRemainingSuboperations: [0x1020, 'US'],
  NumberOfCompletedSuboperations: [0x1021, 'US'],
  NumberOfFailedSuboperations: [0x1022, 'US'],
  NumberOfWarningSuboperations: [0x1023, 'US'],
  MoveOriginatorApplicationEntityTitle: [0x1030, 'AE'],
  MoveOriginatorMessageID: [0x1031, 'US'],
};

const PRINTABLE = /^[\x20-\x7e]*$/;

/**
 * A command set's bytes (implicit VR little endian, with its group length), or undefined when an
 * element is not one we know or its value is not what we expect.
 */
export function encodeCommand(elements: Record<string, unknown>): Buffer | undefined {
  const items: Array<{ element: number; value: Buffer }> = [];
  for (const [key, raw] of Object.entries(elements)) {
    if (raw === undefined || raw === null) continue;
    const def = COMMAND_ELEMENTS[key];
    if (!def) return undefined;
    const [element, vr] = def;
    let value: Buffer;
    if (vr === 'US') {
      if (!Number.isInteger(raw) || (raw as number) < 0 || (raw as number) > 0xffff) return undefined;
      value = Buffer.allocUnsafe(2);
      value.writeUInt16LE(raw as number);
    } else {
      if (typeof raw !== 'string' || !PRINTABLE.test(raw)) return undefined;
      // Even lengths: UIDs are padded with NUL, text with a space.
      value = Buffer.from(raw.length % 2 ? raw + (vr === 'UI' ? '\0' : ' ') : raw, 'latin1');
    }
    items.push({ element, value });
  }
  items.sort((a, b) => a.element - b.element);
  const groupLength = items.reduce((n, i) => n + 8 + i.value.length, 0);
  const out = Buffer.allocUnsafe(12 + groupLength);
  out.writeUInt32LE(0x00000000, 0);
  out.writeUInt32LE(4, 4);
  out.writeUInt32LE(groupLength, 8);
  let off = 12;
  for (const { element, value } of items) {
    out.writeUInt16LE(0x0000, off);
    out.writeUInt16LE(element, off + 2);
    out.writeUInt32LE(value.length, off + 4);
    value.copy(out, off + 8);
    off += 8 + value.length;
  }
  return out;
}

/** The 12 bytes before a PDV's value: P-DATA-TF header, PDV item length, context id, control header. */
function pdvHeader(contextId: number, valueLength: number, control: number): Buffer {
  const h = Buffer.allocUnsafe(12);
  h[0] = 0x04; // P-DATA-TF
  h[1] = 0;
  h.writeUInt32BE(valueLength + 6, 2);
  h.writeUInt32BE(valueLength + 2, 6);
  h[10] = contextId;
  h[11] = control;
  return h;
}

const COMMAND_LAST = 0x03;
const DATA = 0x00;
const DATA_LAST = 0x02;
const PDU_CAP = 4 * 1024 * 1024;

interface LibCommand {
  getCommandDataset(): CommandDataset;
  getDataset(): { getDenaturalizedDataset(...args: unknown[]): Buffer } | undefined;
}

type SendPDataTF = (this: LeanNetwork, command: LibCommand, contextId: number, maxPduLength: number) => void;

interface LeanNetwork extends NetworkInstance {
  _sendPDataTF: SendPDataTF;
  statistics?: { addBytesSent(n: number): void };
  datasetWriteOptions?: unknown;
  datasetNameMap?: unknown;
}

/** Replaces the connection's P-DATA-TF send with the lean one (see the module comment). */
export function useLeanSend(network: NetworkInstance): void {
  const nw = network as LeanNetwork;
  const library = nw._sendPDataTF;
  nw._sendPDataTF = function leanSendPDataTF(command, contextId, maxPduLength) {
    const commandBytes = encodeCommand(command.getCommandDataset().getElements());
    if (!commandBytes) return library.call(this, command, contextId, maxPduLength);
    const max = maxPduLength === 0 ? PDU_CAP : Math.min(maxPduLength, PDU_CAP);
    const socket = this.socket;
    let sent = 0;
    const write = (b: Buffer) => {
      socket.write(b);
      sent += b.length;
    };
    socket.cork();
    try {
      write(pdvHeader(contextId, commandBytes.length, COMMAND_LAST));
      write(commandBytes);
      const dataset = command.getDataset();
      if (dataset) {
        const body = dataset.getDenaturalizedDataset(this.datasetWriteOptions, this.datasetNameMap);
        const fragment = max - 6;
        let off = 0;
        do {
          const end = Math.min(off + fragment, body.length);
          write(pdvHeader(contextId, end - off, end === body.length ? DATA_LAST : DATA));
          if (end > off) write(body.subarray(off, end));
          off = end;
        } while (off < body.length);
      }
    } finally {
      socket.uncork();
    }
    this.statistics?.addBytesSent(sent);
  };
}
