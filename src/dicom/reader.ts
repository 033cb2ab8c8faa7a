import { inflateRawSync, inflateSync } from 'node:zlib';
import { DeidError } from '../errors.js';
import { implicitVR, lookupTag } from './dictionary.js';
import type { DicomFile, Element, Encoding, Item } from './element.js';
import { TAG, formatTag, type Tag } from './tag.js';
import { TS, encodingOf } from './transfer-syntax.js';
import { hasLongHeader, isValidVR, swapWidth } from './vr.js';

const UNDEFINED = 0xffffffff;
const MAX_DEPTH = 64;

const vrCache = new Map<number, string>();
function vrString(a: number, b: number): string {
  const k = (a << 8) | b;
  let s = vrCache.get(k);
  if (s === undefined) {
    s = String.fromCharCode(a, b);
    vrCache.set(k, s);
  }
  return s;
}

/** Swaps a big-endian value to little-endian in a copy. */
function swapped(bytes: Uint8Array, width: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  const n = bytes.length - (bytes.length % width);
  for (let i = 0; i < n; i += width) for (let j = 0; j < width; j++) out[i + j] = bytes[i + width - 1 - j];
  out.set(bytes.subarray(n), n);
  return out;
}

/** Reads one data set encoding from a buffer; every failure is a coded, PHI-free DeidError. */
class DatasetReader {
  private readonly view: DataView;

  constructor(
    private readonly buf: Uint8Array,
    private readonly le: boolean,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  private u16(o: number): number {
    return this.view.getUint16(o, this.le);
  }
  private u32(o: number): number {
    return this.view.getUint32(o, this.le);
  }

  /** A plain Uint8Array over the input: Buffer#subarray goes through a species lookup and a subclass constructor. */
  private bytes(offset: number, length: number): Uint8Array {
    return new Uint8Array(this.buf.buffer, this.buf.byteOffset + offset, length);
  }

  private need(offset: number, n: number, end: number): void {
    if (offset + n > end) throw new DeidError(end === this.buf.length ? 'DEID_ERR_TRUNCATED' : 'DEID_ERR_BAD_LENGTH', `offset ${offset}`);
  }

  /**
   * Reads elements from `offset` until `end`, or until an item delimiter when `untilDelimiter`.
   * Returns the elements and the offset after what was consumed (including the delimiter).
   */
  readElements(offset: number, end: number, explicit: boolean, untilDelimiter: boolean, depth: number): [Element[], number] {
    if (depth > MAX_DEPTH) throw new DeidError('DEID_ERR_BAD_STRUCTURE', 'sequences nested too deeply');
    const out: Element[] = [];
    while (offset < end) {
      this.need(offset, 8, end);
      const tag = ((this.u16(offset) << 16) | this.u16(offset + 2)) >>> 0;
      if (tag === TAG.ItemDelimitationItem) {
        if (!untilDelimiter) throw new DeidError('DEID_ERR_BAD_STRUCTURE', `unexpected item delimiter at ${offset}`);
        return [out, offset + 8];
      }
      if (tag === TAG.Item || tag === TAG.SequenceDelimitationItem) {
        throw new DeidError('DEID_ERR_BAD_STRUCTURE', `unexpected ${formatTag(tag)} at ${offset}`);
      }
      out.push(this.readElement(offset, end, explicit, depth));
      offset = this.next;
    }
    if (untilDelimiter) throw new DeidError(end === this.buf.length ? 'DEID_ERR_TRUNCATED' : 'DEID_ERR_BAD_LENGTH', 'item without delimiter');
    return [out, offset];
  }

  /** Where the element readElement just read ends (a field, not a returned pair: one allocation fewer per element). */
  private next = 0;

  private readElement(offset: number, end: number, explicit: boolean, depth: number): Element {
    const tag = ((this.u16(offset) << 16) | this.u16(offset + 2)) >>> 0;
    let vr: string;
    let length: number;
    let pos: number;
    if (explicit) {
      const a = this.buf[offset + 4];
      const b = this.buf[offset + 5];
      vr = vrString(a, b);
      if (hasLongHeader(vr)) {
        this.need(offset, 12, end);
        length = this.u32(offset + 8);
        pos = offset + 12;
      } else if (isValidVR(vr)) {
        length = this.u16(offset + 6);
        pos = offset + 8;
      } else {
        // An invalid VR code: read like dcmtk does (4-byte length after 2 reserved bytes) and treat it as UN.
        this.need(offset, 12, end);
        vr = 'UN';
        length = this.u32(offset + 8);
        pos = offset + 12;
      }
    } else {
      vr = implicitVR(tag);
      length = this.u32(offset + 4);
      pos = offset + 8;
    }

    if (length === UNDEFINED) {
      if (tag === TAG.PixelData && vr !== 'SQ') return this.readFragments(tag, vr, pos, end);
      if (vr === 'SQ' || vr === 'UN' || !explicit) {
        // UN (or unknown implicit) with undefined length is a sequence of implicit VR LE items (CP-246).
        const implicitItems = vr !== 'SQ' || !explicit;
        const reader = implicitItems && !this.le ? new DatasetReader(this.buf, true) : this;
        const [items, next] = reader.readItems(pos, end, implicitItems ? false : explicit, true, depth);
        this.next = next;
        return { tag, vr, items, undefinedLength: true, implicitItems: explicit && implicitItems };
      }
      throw new DeidError('DEID_ERR_BAD_STRUCTURE', `undefined length on ${vr} ${formatTag(tag)}`);
    }

    this.need(pos, length, end);
    const valueEnd = pos + length;
    if (vr === 'SQ') {
      const [items] = this.readItems(pos, valueEnd, explicit, false, depth);
      this.next = valueEnd;
      return { tag, vr, items, undefinedLength: false };
    }
    if (vr === 'UN' && length > 0 && lookupTag(tag)?.vr === 'SQ') {
      // A standard sequence sent as UN: its bytes are implicit VR LE items (CP-246). Parse them if they are.
      try {
        const reader = this.le ? this : new DatasetReader(this.buf, true);
        const [items] = reader.readItems(pos, valueEnd, false, false, depth);
        this.next = valueEnd;
        return { tag, vr, items, undefinedLength: false, implicitItems: explicit };
      } catch {
        /* not a well-formed sequence: keep the bytes as they are */
      }
    }
    let value = this.bytes(pos, length);
    if (!this.le) {
      const w = swapWidth(vr);
      if (w > 1) value = swapped(value, w);
    }
    this.next = valueEnd;
    return { tag, vr, value };
  }

  private readItems(offset: number, end: number, explicit: boolean, untilDelimiter: boolean, depth: number): [Item[], number] {
    const items: Item[] = [];
    while (offset < end) {
      this.need(offset, 8, end);
      const tag = ((this.u16(offset) << 16) | this.u16(offset + 2)) >>> 0;
      const length = this.u32(offset + 4);
      if (tag === TAG.SequenceDelimitationItem) {
        if (!untilDelimiter) throw new DeidError('DEID_ERR_BAD_STRUCTURE', `unexpected sequence delimiter at ${offset}`);
        return [items, offset + 8];
      }
      if (tag !== TAG.Item) throw new DeidError('DEID_ERR_BAD_STRUCTURE', `expected an item at ${offset}, found ${formatTag(tag)}`);
      if (length === UNDEFINED) {
        const [elements, next] = this.readElements(offset + 8, end, explicit, true, depth + 1);
        items.push({ elements, undefinedLength: true });
        offset = next;
      } else {
        this.need(offset + 8, length, end);
        const [elements] = this.readElements(offset + 8, offset + 8 + length, explicit, false, depth + 1);
        items.push({ elements, undefinedLength: false });
        offset = offset + 8 + length;
      }
    }
    if (untilDelimiter) throw new DeidError(end === this.buf.length ? 'DEID_ERR_TRUNCATED' : 'DEID_ERR_BAD_LENGTH', 'sequence without delimiter');
    return [items, offset];
  }

  private readFragments(tag: Tag, vr: string, offset: number, end: number): Element {
    const fragments: Uint8Array[] = [];
    while (offset < end) {
      this.need(offset, 8, end);
      const t = ((this.u16(offset) << 16) | this.u16(offset + 2)) >>> 0;
      const length = this.u32(offset + 4);
      if (t === TAG.SequenceDelimitationItem) {
        this.next = offset + 8;
        return { tag, vr, fragments, undefinedLength: true };
      }
      if (t !== TAG.Item || length === UNDEFINED) throw new DeidError('DEID_ERR_BAD_STRUCTURE', `bad pixel data fragment at ${offset}`);
      this.need(offset + 8, length, end);
      fragments.push(this.bytes(offset + 8, length));
      offset += 8 + length;
    }
    throw new DeidError('DEID_ERR_TRUNCATED', 'encapsulated pixel data without delimiter');
  }
}

function asciiValue(el: Element | undefined): string | undefined {
  if (!el?.value) return undefined;
  return Buffer.from(el.value.buffer, el.value.byteOffset, el.value.byteLength).toString('latin1').replace(/[\0 ]+$/, '').trim();
}

const VR_LETTER = (c: number) => c >= 0x41 && c <= 0x5a;

/** Guesses the encoding of a bare data set (no preamble, no meta) from its first element, like dcmtk. */
function detectBareDataset(buf: Uint8Array): Encoding | undefined {
  if (buf.length < 8) return undefined;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const plausible = (g: number) => g >= 0x0002 && g <= 0x0010;
  let le: boolean;
  if (plausible(dv.getUint16(0, true))) le = true;
  else if (plausible(dv.getUint16(0, false))) le = false;
  else return undefined;
  const explicit = VR_LETTER(buf[4]) && VR_LETTER(buf[5]) && isValidVR(String.fromCharCode(buf[4], buf[5]));
  if (!le && !explicit) return undefined; // implicit big endian does not exist
  return { explicitVR: explicit, littleEndian: le, deflated: false };
}

function syntaxOf(e: Encoding): string {
  if (!e.explicitVR) return TS.ImplicitLE;
  return e.littleEndian ? TS.ExplicitLE : TS.ExplicitBE;
}

export interface ReadOptions {
  /** Reject objects larger than this many bytes (hostile sizes). */
  readonly maxBytes?: number;
}

/**
 * Parses a Part 10 file (or a bare data set) completely. Anything it cannot parse to the last byte
 * throws a coded DeidError, so that no partially understood object is ever passed on.
 */
export function readDicom(input: Uint8Array, opts: ReadOptions = {}): DicomFile {
  if (opts.maxBytes !== undefined && input.length > opts.maxBytes) throw new DeidError('DEID_ERR_HOSTILE_SIZE', `${input.length} bytes`);
  if (!hasPart10Preamble(input)) {
    const enc = detectBareDataset(input);
    if (!enc) throw new DeidError('DEID_ERR_NOT_DICOM');
    let dataset: Element[];
    try {
      [dataset] = new DatasetReader(input, enc.littleEndian).readElements(0, input.length, enc.explicitVR, false, 0);
    } catch (e) {
      // Bare data sets are a guess: a file that does not parse as one is simply not DICOM.
      if (e instanceof DeidError && e.code !== 'DEID_ERR_TRUNCATED') throw new DeidError('DEID_ERR_NOT_DICOM', e.code);
      throw e;
    }
    const meta = dataset.filter((e) => e.tag >>> 16 === 0x0002);
    return { meta, dataset: dataset.filter((e) => e.tag >>> 16 !== 0x0002), transferSyntaxUID: syntaxOf(enc), encoding: enc };
  }

  const preamble = input.subarray(0, 128);
  const { meta, datasetOffset: offset } = readMetaGroup(input);
  const ts = asciiValue(meta.find((e) => e.tag === TAG.TransferSyntaxUID));
  if (!ts) throw new DeidError('DEID_ERR_MISSING_TRANSFER_SYNTAX');
  const enc = encodingOf(ts);
  if (!enc) throw new DeidError('DEID_ERR_UNSUPPORTED_TRANSFER_SYNTAX', ts.replace(/[^0-9.]/g, '').slice(0, 64));

  let body = input.subarray(offset);
  if (enc.deflated) {
    try {
      body = inflateRawSync(body);
    } catch {
      try {
        body = inflateSync(body);
      } catch {
        throw new DeidError('DEID_ERR_DEFLATE');
      }
    }
  }
  const [dataset] = new DatasetReader(body, enc.littleEndian).readElements(0, body.length, enc.explicitVR, false, 0);
  return { preamble, meta, dataset, transferSyntaxUID: ts, encoding: enc };
}

/** Whether the bytes start with a 128-byte preamble and "DICM" (a Part 10 file, not a bare data set). */
export const hasPart10Preamble = (input: Uint8Array): boolean =>
  input.length >= 132 && input[128] === 0x44 && input[129] === 0x49 && input[130] === 0x43 && input[131] === 0x4d;

/**
 * Reads the file meta group (explicit VR little endian, after the preamble) of a Part 10 file, and
 * where its data set starts, without touching the data set. Throws a coded error when it is cut short.
 */
export function readMetaGroup(input: Uint8Array): { meta: Element[]; datasetOffset: number } {
  const metaReader = new DatasetReader(input, true);
  // Meta elements are explicit VR LE; read them one element at a time until the group changes.
  const meta: Element[] = [];
  let offset = 132;
  while (offset + 8 <= input.length) {
    const group = input[offset] | (input[offset + 1] << 8);
    if (group !== 0x0002) break;
    const [els, next] = metaReader.readElements(offset, Math.min(input.length, nextElementEnd(input, offset)), true, false, 0);
    meta.push(...els);
    offset = next;
  }
  return { meta, datasetOffset: offset };
}

/** End of the explicit VR LE element starting at `offset` (for reading the meta group element by element). */
function nextElementEnd(buf: Uint8Array, offset: number): number {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (offset + 8 > buf.length) return buf.length;
  const vr = String.fromCharCode(buf[offset + 4], buf[offset + 5]);
  if (hasLongHeader(vr)) {
    if (offset + 12 > buf.length) return buf.length;
    const len = dv.getUint32(offset + 8, true);
    return len === UNDEFINED ? buf.length : offset + 12 + len;
  }
  return offset + 8 + dv.getUint16(offset + 6, true);
}
