import { DeidError } from '../errors.js';
import type { DicomFile, Element, Item } from './element.js';
import { TAG, formatTag, isGroupLengthTag } from './tag.js';
import { TS, outputSyntaxFor } from './transfer-syntax.js';
import { asciiBytes, uidBytes } from './values.js';
import { hasLongHeader } from './vr.js';

/** Identifies files written by this implementation in the meta header. */
export const IMPLEMENTATION_CLASS_UID = '2.25.265403936146384788627843960617390349123';
export const IMPLEMENTATION_VERSION_NAME = 'DEID_0_1';

type Chunks = Uint8Array[];

function header(tag: number, vr: string, length: number, explicit: boolean): Uint8Array {
  if (!explicit) {
    const b = Buffer.allocUnsafe(8);
    b.writeUInt16LE(tag >>> 16, 0);
    b.writeUInt16LE(tag & 0xffff, 2);
    b.writeUInt32LE(length >>> 0, 4);
    return b;
  }
  if (hasLongHeader(vr)) {
    const b = Buffer.allocUnsafe(12);
    b.writeUInt16LE(tag >>> 16, 0);
    b.writeUInt16LE(tag & 0xffff, 2);
    b.write(vr, 4, 'latin1');
    b.writeUInt16LE(0, 6);
    b.writeUInt32LE(length >>> 0, 8);
    return b;
  }
  if (length > 0xffff) throw new DeidError('DEID_ERR_OUTPUT', `${formatTag(tag)} value too long for VR ${vr}`);
  const b = Buffer.allocUnsafe(8);
  b.writeUInt16LE(tag >>> 16, 0);
  b.writeUInt16LE(tag & 0xffff, 2);
  b.write(vr, 4, 'latin1');
  b.writeUInt16LE(length, 6);
  return b;
}

function delimiter(tag: number): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(tag >>> 16, 0);
  b.writeUInt16LE(tag & 0xffff, 2);
  return b;
}

const UNDEFINED = 0xffffffff;

function encodeItems(items: readonly Item[], explicit: boolean, out: Chunks): number {
  let total = 0;
  for (const item of items) {
    const body: Chunks = [];
    const len = encodeElements(item.elements, explicit, body);
    out.push(header(TAG.Item, '', item.undefinedLength ? UNDEFINED : len, false));
    out.push(...body);
    total += 8 + len;
    if (item.undefinedLength) {
      out.push(delimiter(TAG.ItemDelimitationItem));
      total += 8;
    }
  }
  return total;
}

function encodeElement(el: Element, explicit: boolean, out: Chunks): number {
  const headerSize = !explicit ? 8 : hasLongHeader(el.vr) ? 12 : 8;
  if (el.items) {
    const body: Chunks = [];
    const len = encodeItems(el.items, explicit && !el.implicitItems, body);
    out.push(header(el.tag, el.vr, el.undefinedLength ? UNDEFINED : len, explicit));
    out.push(...body);
    if (el.undefinedLength) {
      out.push(delimiter(TAG.SequenceDelimitationItem));
      return headerSize + len + 8;
    }
    return headerSize + len;
  }
  if (el.fragments) {
    out.push(header(el.tag, el.vr, UNDEFINED, explicit));
    let len = 0;
    for (const f of el.fragments) {
      out.push(header(TAG.Item, '', f.length, false), f);
      len += 8 + f.length;
    }
    out.push(delimiter(TAG.SequenceDelimitationItem));
    return headerSize + len + 8;
  }
  const value = el.value ?? new Uint8Array(0);
  out.push(header(el.tag, el.vr, value.length, explicit), value);
  return headerSize + value.length;
}

function encodeElements(elements: readonly Element[], explicit: boolean, out: Chunks): number {
  let total = 0;
  for (const el of elements) total += encodeElement(el, explicit, out);
  return total;
}

/** Encodes a data set alone (no preamble, no meta) in the given transfer syntax. */
export function encodeDataset(elements: readonly Element[], transferSyntaxUID: string): Buffer {
  if (transferSyntaxUID === TS.ExplicitBE || transferSyntaxUID === TS.DeflatedExplicitLE) {
    throw new DeidError('DEID_ERR_OUTPUT', 'writing is explicit or implicit VR little endian only');
  }
  const chunks: Chunks = [];
  encodeElements(elements, transferSyntaxUID !== TS.ImplicitLE, chunks);
  return Buffer.concat(chunks);
}

export interface WriteOptions {
  /** Output transfer syntax; defaults to the input's, with big-endian and deflated becoming explicit LE. */
  readonly transferSyntaxUID?: string;
  /** Keep the source meta header's own implementation identity (used only to compare round trips). */
  readonly keepImplementation?: boolean;
}

function metaElement(tag: number, vr: string, value: Uint8Array): Element {
  return { tag, vr, value };
}

/** Builds the meta group for a written file: the source's elements with the syntax and identity updated. */
export function buildMeta(file: DicomFile, transferSyntaxUID: string, keepImplementation = false): Element[] {
  const byTag = new Map<number, Element>();
  for (const e of file.meta) if (!isGroupLengthTag(e.tag)) byTag.set(e.tag, e);
  byTag.set(0x00020001, byTag.get(0x00020001) ?? metaElement(0x00020001, 'OB', Uint8Array.of(0, 1)));
  for (const [metaTag, dsTag] of [
    [TAG.MediaStorageSOPClassUID, TAG.SOPClassUID],
    [TAG.MediaStorageSOPInstanceUID, TAG.SOPInstanceUID],
  ] as const) {
    const ds = file.dataset.find((e) => e.tag === dsTag);
    if (ds?.value) byTag.set(metaTag, metaElement(metaTag, 'UI', ds.value));
  }
  byTag.set(TAG.TransferSyntaxUID, metaElement(TAG.TransferSyntaxUID, 'UI', uidBytes(transferSyntaxUID)));
  if (!keepImplementation || !byTag.has(TAG.ImplementationClassUID)) {
    byTag.set(TAG.ImplementationClassUID, metaElement(TAG.ImplementationClassUID, 'UI', uidBytes(IMPLEMENTATION_CLASS_UID)));
    byTag.set(TAG.ImplementationVersionName, metaElement(TAG.ImplementationVersionName, 'SH', asciiBytes(IMPLEMENTATION_VERSION_NAME, 'SH')));
  }
  const elements = [...byTag.values()].sort((a, b) => a.tag - b.tag);
  return [metaElement(TAG.FileMetaGroupLength, 'UL', new Uint8Array(4)), ...elements];
}

/** The preamble, DICM and the meta group (recomputed) for a file in the given transfer syntax. */
export function encodeMetaHeader(file: DicomFile, transferSyntaxUID: string, keepImplementation = false): Buffer {
  const [groupLength, ...metaElements] = buildMeta(file, transferSyntaxUID, keepImplementation);
  const metaChunks: Chunks = [];
  const metaLength = encodeElements(metaElements, true, metaChunks);
  const gl = Buffer.allocUnsafe(4);
  gl.writeUInt32LE(metaLength, 0);
  const groupLengthChunks: Chunks = [];
  encodeElement({ ...groupLength, value: gl }, true, groupLengthChunks);
  // The preamble is always written as zeros: some applications hide data there.
  const preamble = Buffer.alloc(132);
  preamble.write('DICM', 128, 'latin1');
  return Buffer.concat([preamble, ...groupLengthChunks, ...metaChunks]);
}

/**
 * Writes a Part 10 file: an empty preamble, the meta group (recomputed), the data set. The data set
 * keeps the input's encoding where it is little endian; big endian and deflated input are written
 * explicit VR LE.
 */
export function writeDicom(file: DicomFile, opts: WriteOptions = {}): Buffer {
  const ts = opts.transferSyntaxUID ?? outputSyntaxFor(file.transferSyntaxUID);
  return Buffer.concat([encodeMetaHeader(file, ts, opts.keepImplementation), encodeDataset(file.dataset, ts)]);
}
