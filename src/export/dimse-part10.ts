import { hasLongHeader } from '../dicom/vr.js';

/** What a C-STORE needs from a Part 10 file's meta group, and where its data set starts. */
export interface Part10Parts {
  readonly transferSyntaxUid?: string;
  readonly sopClassUid?: string;
  readonly sopInstanceUid?: string;
  /** Offset of the first byte after group 0002 (the data set, exactly as stored). */
  readonly datasetOffset: number;
}

const uid = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1').replace(/[\0 ]+$/, '');

/**
 * Reads the meta group (explicit VR little endian) of a Part 10 file without touching the data
 * set. Returns undefined when there is no preamble + DICM or the group is cut short.
 */
export function splitPart10(bytes: Uint8Array): Part10Parts | undefined {
  if (bytes.length < 132 || bytes[128] !== 0x44 || bytes[129] !== 0x49 || bytes[130] !== 0x43 || bytes[131] !== 0x4d) return undefined;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let off = 132;
  const out: { transferSyntaxUid?: string; sopClassUid?: string; sopInstanceUid?: string } = {};
  while (off + 8 <= bytes.length && dv.getUint16(off, true) === 0x0002) {
    const elem = dv.getUint16(off + 2, true);
    const vr = String.fromCharCode(bytes[off + 4], bytes[off + 5]);
    let len: number;
    let header: number;
    if (hasLongHeader(vr)) {
      if (off + 12 > bytes.length) return undefined;
      len = dv.getUint32(off + 8, true);
      header = 12;
    } else {
      len = dv.getUint16(off + 6, true);
      header = 8;
    }
    if (off + header + len > bytes.length) return undefined;
    const value = bytes.subarray(off + header, off + header + len);
    if (elem === 0x0002) out.sopClassUid = uid(value);
    else if (elem === 0x0003) out.sopInstanceUid = uid(value);
    else if (elem === 0x0010) out.transferSyntaxUid = uid(value);
    off += header + len;
  }
  return { ...out, datasetOffset: off };
}
