/**
 * Specific Character Set (0008,0005) decoding and encoding (PS3.5 6.1, PS3.3 C.12.1.1.2).
 * Single-byte sets and UTF-8 map to WHATWG decoders; ISO 2022 values are split at escape sequences and
 * each run is decoded with the set it designates. Encoders are built by inverting the decoders, so no
 * character table is written by hand.
 */

export interface CharacterSet {
  /** Defined terms as given, first one is the default (may be ''). */
  readonly terms: readonly string[];
  readonly iso2022: boolean;
}

export const DEFAULT_CHARSET: CharacterSet = { terms: [''], iso2022: false };

export function parseCharacterSet(value: string | undefined): CharacterSet {
  if (!value) return DEFAULT_CHARSET;
  const terms = value.split('\\').map((t) => t.trim().toUpperCase());
  return { terms, iso2022: terms.some((t) => t.startsWith('ISO 2022')) };
}

/** Non-ISO-2022 terms → WHATWG encoding labels. */
const SINGLE: Record<string, string> = {
  '': 'latin1',
  ISO_IR_6: 'latin1',
  'ISO_IR 6': 'latin1',
  'ISO_IR 100': 'latin1',
  'ISO_IR 101': 'iso-8859-2',
  'ISO_IR 109': 'iso-8859-3',
  'ISO_IR 110': 'iso-8859-4',
  'ISO_IR 144': 'iso-8859-5',
  'ISO_IR 127': 'iso-8859-6',
  'ISO_IR 126': 'iso-8859-7',
  'ISO_IR 138': 'iso-8859-8',
  'ISO_IR 148': 'iso-8859-9',
  'ISO_IR 203': 'iso-8859-15',
  'ISO_IR 13': 'shift_jis',
  'ISO_IR 166': 'windows-874',
  'ISO_IR 192': 'utf-8',
  GB18030: 'gb18030',
  GBK: 'gbk',
};

/** ISO 2022 terms → the label of their G1 (high half) single-byte set, when they have one. */
const ISO2022_G1: Record<string, string> = {
  'ISO 2022 IR 100': 'latin1',
  'ISO 2022 IR 101': 'iso-8859-2',
  'ISO 2022 IR 109': 'iso-8859-3',
  'ISO 2022 IR 110': 'iso-8859-4',
  'ISO 2022 IR 144': 'iso-8859-5',
  'ISO 2022 IR 127': 'iso-8859-6',
  'ISO 2022 IR 126': 'iso-8859-7',
  'ISO 2022 IR 138': 'iso-8859-8',
  'ISO 2022 IR 148': 'iso-8859-9',
  'ISO 2022 IR 13': 'shift_jis',
  'ISO 2022 IR 166': 'windows-874',
  'ISO 2022 IR 149': 'euc-kr',
  'ISO 2022 IR 58': 'gb18030',
};

/** Escape sequences → how the bytes that follow are decoded. */
type Mode = { kind: 'ascii' } | { kind: 'g1'; label: string } | { kind: 'jis0208' } | { kind: 'jis0212' };
const ESCAPES: Array<[number[], Mode]> = [
  [[0x28, 0x42], { kind: 'ascii' }], // ESC ( B  ASCII
  [[0x28, 0x4a], { kind: 'ascii' }], // ESC ( J  JIS X 0201 Roman
  [[0x29, 0x49], { kind: 'g1', label: 'shift_jis' }], // ESC ) I  JIS X 0201 Katakana
  [[0x24, 0x42], { kind: 'jis0208' }], // ESC $ B
  [[0x24, 0x28, 0x44], { kind: 'jis0212' }], // ESC $ ( D
  [[0x24, 0x29, 0x43], { kind: 'g1', label: 'euc-kr' }], // ESC $ ) C  KS X 1001
  [[0x24, 0x29, 0x41], { kind: 'g1', label: 'gb18030' }], // ESC $ ) A  GB 2312
  [[0x2d, 0x41], { kind: 'g1', label: 'latin1' }],
  [[0x2d, 0x42], { kind: 'g1', label: 'iso-8859-2' }],
  [[0x2d, 0x43], { kind: 'g1', label: 'iso-8859-3' }],
  [[0x2d, 0x44], { kind: 'g1', label: 'iso-8859-4' }],
  [[0x2d, 0x4c], { kind: 'g1', label: 'iso-8859-5' }],
  [[0x2d, 0x47], { kind: 'g1', label: 'iso-8859-6' }],
  [[0x2d, 0x46], { kind: 'g1', label: 'iso-8859-7' }],
  [[0x2d, 0x48], { kind: 'g1', label: 'iso-8859-8' }],
  [[0x2d, 0x4d], { kind: 'g1', label: 'iso-8859-9' }],
  [[0x2d, 0x54], { kind: 'g1', label: 'windows-874' }],
];

const decoders = new Map<string, InstanceType<typeof TextDecoder>>();
function decoder(label: string): InstanceType<typeof TextDecoder> {
  let d = decoders.get(label);
  if (!d) {
    d = new TextDecoder(label);
    decoders.set(label, d);
  }
  return d;
}

/**
 * Bytes as latin1 text (each byte one code point). Short values, most of a header, are decoded without
 * making a Buffer over them, which cost more than the decoding; apply() is bounded, as its arguments
 * go on the stack.
 */
export function latin1(bytes: Uint8Array, end = bytes.length): string {
  if (end <= 256) return String.fromCharCode.apply(null, bytes.subarray(0, end) as unknown as number[]);
  return Buffer.from(bytes.buffer, bytes.byteOffset, end).toString('latin1');
}

function decodeWith(label: string, bytes: Uint8Array): string {
  if (label === 'latin1') return latin1(bytes);
  return decoder(label).decode(bytes);
}

function initialMode(cs: CharacterSet): Mode {
  const g1 = ISO2022_G1[cs.terms[0]];
  return g1 ? { kind: 'g1', label: g1 } : { kind: 'ascii' };
}

function decodeRun(mode: Mode, bytes: Uint8Array): string {
  switch (mode.kind) {
    case 'ascii': {
      // G0 is ASCII; bytes with the high bit use the default G1 of the value (none: latin1 keeps them visible).
      return decodeWith('latin1', bytes);
    }
    case 'g1':
      return decodeWith(mode.label, bytes);
    case 'jis0208':
      return decoder('iso-2022-jp').decode(Uint8Array.from([0x1b, 0x24, 0x42, ...bytes, 0x1b, 0x28, 0x42]));
    case 'jis0212': {
      const out: number[] = [];
      for (let i = 0; i + 1 < bytes.length; i += 2) out.push(0x8f, bytes[i] | 0x80, bytes[i + 1] | 0x80);
      return decoder('euc-jp').decode(Uint8Array.from(out));
    }
  }
}

/** Control characters after which ISO 2022 returns to the initial designation (0x21-0x7E may be JIS bytes). */
const isResetByte = (b: number): boolean => b === 0x0a || b === 0x0d || b === 0x0c || b === 0x09;

export function decodeText(bytes: Uint8Array, cs: CharacterSet, _vr: string): string {
  if (!cs.iso2022) return decodeWith(SINGLE[cs.terms[0]] ?? 'latin1', bytes);
  let out = '';
  let mode = initialMode(cs);
  let start = 0;
  const flush = (end: number) => {
    if (end > start) out += decodeRun(mode, bytes.subarray(start, end));
  };
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0x1b) {
      flush(i);
      const hit = ESCAPES.find(([seq]) => seq.every((c, k) => bytes[i + 1 + k] === c));
      if (hit) {
        mode = hit[1];
        i += hit[0].length;
      }
      start = i + 1;
    } else if ((mode.kind === 'jis0208' || mode.kind === 'jis0212') && isResetByte(b)) {
      flush(i);
      out += String.fromCharCode(b);
      mode = initialMode(cs);
      start = i + 1;
    }
  }
  flush(bytes.length);
  return out;
}

// ---- encoding --------------------------------------------------------------------------------------

type Reverse = Map<string, number[]>;
const reverseTables = new Map<string, Reverse>();

function reverseSingleByte(label: string): Reverse {
  const map: Reverse = new Map();
  for (let b = 0x20; b < 0x100; b++) {
    const ch = decodeWith(label, Uint8Array.of(b));
    if (ch !== '\ufffd' && !map.has(ch)) map.set(ch, [b]);
  }
  return map;
}

function reverseDoubleByte(decode: (b1: number, b2: number) => string, lo1: number, hi1: number, lo2: number, hi2: number): Reverse {
  const map: Reverse = new Map();
  for (let a = lo1; a <= hi1; a++)
    for (let b = lo2; b <= hi2; b++) {
      const ch = decode(a, b);
      if (ch.length >= 1 && !ch.includes('\ufffd') && [...ch].length === 1 && !map.has(ch)) map.set(ch, [a, b]);
    }
  return map;
}

function reverse(key: string): Reverse {
  let r = reverseTables.get(key);
  if (r) return r;
  switch (key) {
    case 'jis0208':
      r = reverseDoubleByte((a, b) => decoder('iso-2022-jp').decode(Uint8Array.of(0x1b, 0x24, 0x42, a, b, 0x1b, 0x28, 0x42)), 0x21, 0x7e, 0x21, 0x7e);
      break;
    case 'euc-kr':
    case 'gb18030-g1':
      r = reverseDoubleByte((a, b) => decoder(key === 'euc-kr' ? 'euc-kr' : 'gb18030').decode(Uint8Array.of(a, b)), 0xa1, 0xfe, 0xa1, 0xfe);
      break;
    case 'gb18030':
    case 'gbk': {
      const single = reverseSingleByte('latin1');
      r = reverseDoubleByte((a, b) => decoder(key).decode(Uint8Array.of(a, b)), 0x81, 0xfe, 0x40, 0xfe);
      for (const [ch, bytes] of single) if (bytes[0] < 0x80) r.set(ch, bytes);
      break;
    }
    default:
      r = reverseSingleByte(key);
  }
  reverseTables.set(key, r);
  return r;
}

const isAscii = (s: string) => /^[\x00-\x7f]*$/.test(s);

/**
 * Encodes text in the data set's character set. Characters the set cannot represent become '?',
 * which can never reintroduce an identifying value.
 */
export function encodeText(s: string, cs: CharacterSet, _vr: string): Uint8Array {
  if (isAscii(s)) return Buffer.from(s, 'latin1');
  const term = cs.terms[0];
  if (!cs.iso2022) {
    const label = SINGLE[term] ?? 'latin1';
    if (label === 'utf-8') return Buffer.from(s, 'utf8');
    const table = reverse(label);
    const out: number[] = [];
    for (const ch of s) out.push(...(ch.charCodeAt(0) < 0x80 ? [ch.charCodeAt(0)] : (table.get(ch) ?? [0x3f])));
    return Uint8Array.from(out);
  }
  // ISO 2022: try each designated set for each non-ASCII character, emitting escapes on change.
  const candidates: Array<{ esc: number[]; key: string; g1: boolean }> = [];
  for (const t of cs.terms) {
    if (t === 'ISO 2022 IR 87') candidates.push({ esc: [0x1b, 0x24, 0x42], key: 'jis0208', g1: false });
    else if (t === 'ISO 2022 IR 149') candidates.push({ esc: [0x1b, 0x24, 0x29, 0x43], key: 'euc-kr', g1: true });
    else if (t === 'ISO 2022 IR 58') candidates.push({ esc: [0x1b, 0x24, 0x29, 0x41], key: 'gb18030-g1', g1: true });
    else if (ISO2022_G1[t]) {
      const label = ISO2022_G1[t];
      const esc = ESCAPES.find(([, m]) => m.kind === 'g1' && m.label === label && label !== 'euc-kr' && label !== 'gb18030');
      if (esc) candidates.push({ esc: [0x1b, ...esc[0]], key: label, g1: true });
    }
  }
  const out: number[] = [];
  let current: string | undefined;
  for (const ch of s) {
    const code = ch.charCodeAt(0);
    if (code < 0x80) {
      if (current === 'jis0208') out.push(0x1b, 0x28, 0x42);
      if (current === 'jis0208') current = undefined;
      out.push(code);
      continue;
    }
    const c = candidates.find((cand) => reverse(cand.key).has(ch));
    if (!c) {
      if (current === 'jis0208') {
        out.push(0x1b, 0x28, 0x42);
        current = undefined;
      }
      out.push(0x3f);
      continue;
    }
    if (current !== c.key) {
      out.push(...c.esc);
      current = c.key;
    }
    out.push(...reverse(c.key).get(ch)!);
  }
  if (current === 'jis0208') out.push(0x1b, 0x28, 0x42);
  return Uint8Array.from(out);
}
