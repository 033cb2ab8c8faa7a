import { DeidError } from '../errors.js';
import type { DicomFile, Element, Item } from './element.js';
import type { ScratchBuffer } from './scratch-buffer.js';
import { TAG, formatTag, isGroupLengthTag } from './tag.js';
import { TS, outputSyntaxFor } from './transfer-syntax.js';
import { asciiBytes, uidBytes } from './values.js';
import { hasLongHeader } from './vr.js';

/** Identifies files written by this implementation in the meta header. */
export const IMPLEMENTATION_CLASS_UID = '2.25.265403936146384788627843960617390349123';
export const IMPLEMENTATION_VERSION_NAME = 'DEID_0_1';

const UNDEFINED = 0xffffffff;

/**
 * Two passes: sizes first (kept per sequence and item, so nesting is measured once), then one
 * allocation written in place. Writing element by element into small buffers and concatenating them
 * cost more than the de-identification itself on large runs.
 */
class Sizes {
  private readonly known = new Map<object, number>();

  headerSize(vr: string, explicit: boolean): number {
    return explicit && hasLongHeader(vr) ? 12 : 8;
  }

  items(items: readonly Item[], explicit: boolean): number {
    let total = 0;
    for (const item of items) {
      const len = this.elements(item.elements, explicit);
      this.known.set(item, len);
      total += 8 + len + (item.undefinedLength ? 8 : 0);
    }
    return total;
  }

  element(el: Element, explicit: boolean): number {
    const h = this.headerSize(el.vr, explicit);
    if (el.items) {
      const len = this.items(el.items, explicit && !el.implicitItems);
      this.known.set(el, len);
      return h + len + (el.undefinedLength ? 8 : 0);
    }
    if (el.fragments) {
      let len = 0;
      for (const f of el.fragments) len += 8 + f.length;
      return h + len + 8;
    }
    return h + (el.value?.length ?? 0);
  }

  elements(elements: readonly Element[], explicit: boolean): number {
    let total = 0;
    for (const el of elements) total += this.element(el, explicit);
    return total;
  }

  of(x: object): number {
    return this.known.get(x)!;
  }
}

class Writer {
  pos: number;

  constructor(
    readonly buf: Buffer,
    private readonly sizes: Sizes,
    start: number,
  ) {
    this.pos = start;
  }

  private header(tag: number, vr: string, length: number, explicit: boolean): void {
    const b = this.buf;
    let p = this.pos;
    b.writeUInt16LE(tag >>> 16, p);
    b.writeUInt16LE(tag & 0xffff, p + 2);
    if (!explicit) {
      b.writeUInt32LE(length >>> 0, p + 4);
      this.pos = p + 8;
      return;
    }
    b[p + 4] = vr.charCodeAt(0);
    b[p + 5] = vr.charCodeAt(1);
    p += 6;
    if (hasLongHeader(vr)) {
      b.writeUInt16LE(0, p);
      b.writeUInt32LE(length >>> 0, p + 2);
      this.pos = p + 6;
      return;
    }
    if (length > 0xffff) throw new DeidError('DEID_ERR_OUTPUT', `${formatTag(tag)} value too long for VR ${vr}`);
    b.writeUInt16LE(length, p);
    this.pos = p + 2;
  }

  private bare(tag: number, length: number): void {
    this.header(tag, '', length, false);
  }

  private bytes(v: Uint8Array): void {
    this.buf.set(v, this.pos);
    this.pos += v.length;
  }

  private items(items: readonly Item[], explicit: boolean): void {
    for (const item of items) {
      this.bare(TAG.Item, item.undefinedLength ? UNDEFINED : this.sizes.of(item));
      this.elements(item.elements, explicit);
      if (item.undefinedLength) this.bare(TAG.ItemDelimitationItem, 0);
    }
  }

  element(el: Element, explicit: boolean): void {
    if (el.items) {
      this.header(el.tag, el.vr, el.undefinedLength ? UNDEFINED : this.sizes.of(el), explicit);
      this.items(el.items, explicit && !el.implicitItems);
      if (el.undefinedLength) this.bare(TAG.SequenceDelimitationItem, 0);
      return;
    }
    if (el.fragments) {
      this.header(el.tag, el.vr, UNDEFINED, explicit);
      for (const f of el.fragments) {
        this.bare(TAG.Item, f.length);
        this.bytes(f);
      }
      this.bare(TAG.SequenceDelimitationItem, 0);
      return;
    }
    const value = el.value ?? EMPTY;
    this.header(el.tag, el.vr, value.length, explicit);
    this.bytes(value);
  }

  elements(elements: readonly Element[], explicit: boolean): void {
    for (const el of elements) this.element(el, explicit);
  }
}

const EMPTY = new Uint8Array(0);

function checkWritable(transferSyntaxUID: string): boolean {
  if (transferSyntaxUID === TS.ExplicitBE || transferSyntaxUID === TS.DeflatedExplicitLE) {
    throw new DeidError('DEID_ERR_OUTPUT', 'writing is explicit or implicit VR little endian only');
  }
  return transferSyntaxUID !== TS.ImplicitLE;
}

/** Encodes elements after `prefix` bytes, in one allocation (or in the scratch area). */
function encodeWithPrefix(prefix: Uint8Array, elements: readonly Element[], explicit: boolean, scratch?: ScratchBuffer): Buffer {
  const sizes = new Sizes();
  const total = prefix.length + sizes.elements(elements, explicit);
  const buf = scratch ? scratch.take(total) : Buffer.allocUnsafe(total);
  buf.set(prefix, 0);
  const w = new Writer(buf, sizes, prefix.length);
  w.elements(elements, explicit);
  if (w.pos !== total) throw new DeidError('DEID_ERR_OUTPUT', 'encoded length mismatch');
  return buf;
}

/** Encodes a data set alone (no preamble, no meta) in the given transfer syntax. */
export function encodeDataset(elements: readonly Element[], transferSyntaxUID: string): Buffer {
  return encodeWithPrefix(EMPTY, elements, checkWritable(transferSyntaxUID));
}

export interface WriteOptions {
  /** Output transfer syntax; defaults to the input's, with big-endian and deflated becoming explicit LE. */
  readonly transferSyntaxUID?: string;
  /** Keep the source meta header's own implementation identity (used only to compare round trips). */
  readonly keepImplementation?: boolean;
  /** Write into this reused area: the result is valid only until the scratch is next used. */
  readonly scratch?: ScratchBuffer;
}

function metaElement(tag: number, vr: string, value: Uint8Array): Element {
  return { tag, vr, value };
}

/** Builds the meta group for a written file: the source's elements with the syntax and identity updated. */
export function buildMeta(file: DicomFile, transferSyntaxUID: string, keepImplementation = false): Element[] {
  const byTag = new Map<number, Element>();
  for (const e of file.meta) if (!isGroupLengthTag(e.tag)) byTag.set(e.tag, e);
  byTag.set(TAG.FileMetaInformationVersion, byTag.get(TAG.FileMetaInformationVersion) ?? metaElement(TAG.FileMetaInformationVersion, 'OB', Uint8Array.of(0, 1)));
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
  return [metaElement(TAG.FileMetaInformationGroupLength, 'UL', new Uint8Array(4)), ...elements];
}

/** The preamble, DICM and the meta group (recomputed) for a file in the given transfer syntax. */
export function encodeMetaHeader(file: DicomFile, transferSyntaxUID: string, keepImplementation = false): Buffer {
  const [groupLength, ...metaElements] = buildMeta(file, transferSyntaxUID, keepImplementation);
  const metaLength = new Sizes().elements(metaElements, true);
  const gl = Buffer.allocUnsafe(4);
  gl.writeUInt32LE(metaLength, 0);
  // The preamble is always written as zeros: some applications hide data there.
  const preamble = Buffer.alloc(132);
  preamble.write('DICM', 128, 'latin1');
  return encodeWithPrefix(preamble, [{ ...groupLength, value: gl }, ...metaElements], true);
}

/**
 * Writes a Part 10 file: an empty preamble, the meta group (recomputed), the data set. The data set
 * keeps the input's encoding where it is little endian; big endian and deflated input are written
 * explicit VR LE.
 */
export function writeDicom(file: DicomFile, opts: WriteOptions = {}): Buffer {
  const ts = opts.transferSyntaxUID ?? outputSyntaxFor(file.transferSyntaxUID);
  const explicit = checkWritable(ts);
  return encodeWithPrefix(encodeMetaHeader(file, ts, opts.keepImplementation), file.dataset, explicit, opts.scratch);
}
