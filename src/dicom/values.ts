import { decodeText, encodeText, latin1, type CharacterSet } from './charset.js';
import type { Element } from './element.js';
import { padByte, usesCharset } from './vr.js';

/** Pads to even length as PS3.5 requires: NUL for UI and binary, space for text. */
export function padEven(bytes: Uint8Array, vr: string): Uint8Array {
  if (bytes.length % 2 === 0) return bytes;
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  out[bytes.length] = padByte(vr);
  return out;
}

export function asciiBytes(s: string, vr: string): Uint8Array {
  return padEven(Buffer.from(s, 'latin1'), vr);
}

export function uidBytes(uid: string): Uint8Array {
  return padEven(Buffer.from(uid, 'latin1'), 'UI');
}

/** The raw value as a latin1 string without trailing padding (for ASCII-only VRs such as UI, CS, DA). */
export function rawString(value: Uint8Array | undefined): string {
  if (!value || value.length === 0) return '';
  let end = value.length;
  while (end > 0 && (value[end - 1] === 0 || value[end - 1] === 0x20)) end--;
  return latin1(value, end);
}

/** Decodes a text element's value with the data set's character set (trailing padding removed). */
export function textValue(el: Element, charset: CharacterSet): string {
  if (!el.value) return '';
  const s = usesCharset(el.vr) ? decodeText(el.value, charset, el.vr) : rawString(el.value);
  return s.replace(/[\0 ]+$/, '');
}

/** Encodes a text value for an element, in the data set's character set, padded to even length. */
export function encodeValue(s: string, vr: string, charset: CharacterSet): Uint8Array {
  return padEven(usesCharset(vr) ? encodeText(s, charset, vr) : Buffer.from(s, 'latin1'), vr);
}

export function withValue(el: Element, value: Uint8Array): Element {
  return { tag: el.tag, vr: el.vr, value };
}

/** Reads the first unsigned short of a US value (e.g. Rows), little endian. */
export function uint16Value(el: Element | undefined): number | undefined {
  if (!el?.value || el.value.length < 2) return undefined;
  return el.value[0] | (el.value[1] << 8);
}
