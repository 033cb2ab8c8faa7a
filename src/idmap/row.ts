import * as crypto from 'node:crypto';
import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto';
import { DeidError } from '../errors.js';
import type { MapKeys } from './key.js';

/** The identifiers the map records, in this order (the MIDI-B export and `deid reid` name them so). */
export const MAP_FIELDS = ['PatientID', 'PatientName', 'StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID', 'AccessionNumber'] as const;
export type MapField = (typeof MAP_FIELDS)[number];
export const UID_FIELDS: readonly MapField[] = ['StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID'];
const SOP_FIELD = MAP_FIELDS.indexOf('SOPInstanceUID');

/** One object's row: its original and new identifiers, the date offset applied, and when it was recorded. */
export interface MapRow {
  readonly original: Readonly<Record<MapField, string>>;
  readonly new: Readonly<Record<MapField, string>>;
  /** Days every date was shifted by (absent when the profile did not shift dates). */
  readonly dateOffsetDays?: number;
  /** ISO time of recording. */
  readonly at: string;
}

/**
 * A row as stored: what anyone holding the map's folder or Redis can see. `tokens` are HMACs of the
 * values under the index key (sorted, so they do not say which field is which); `box` is the AES-256-GCM
 * sealed row (nonce | ciphertext | tag) with the id and tokens as associated data, so no token can be
 * moved to another row unnoticed.
 */
export interface SealedRow {
  /** HMAC of the whole mapping (without the time): a retried object gives the same id and is stored once. */
  readonly id: string;
  readonly tokens: readonly string[];
  readonly box: Buffer;
}

const TOKEN_BYTES = 16;

/** Lookup tokens: `new` and `orig` values never share a token, so a pseudonym is not found as an original. */
export type TokenKind = 'new' | 'orig';

const BLOCK = 64; // SHA-256's block size, in bytes
// A namespace import: crypto.hash (one-shot hashing) is missing before Node 20.12, and a named import
// of a missing export would fail to load.
const oneShotHash = crypto.hash as typeof crypto.hash | undefined;

/** The SHA-256 of a string (UTF-8), in hex: one-shot, without a Hash object, where Node can. */
export const sha256Hex = (s: string): string => (oneShotHash ? oneShotHash('sha256', s, 'hex') : crypto.createHash('sha256').update(s).digest('hex'));

/**
 * HMAC-SHA256 (RFC 2104) under one key, in hex, as two one-shot hashes over buffers padded with the
 * key once. createHmac makes an Hmac object and a Buffer per call, native allocations that slowed each
 * other down when threads recorded rows at once (three times the cost, measured with two threads).
 */
class HmacSha256 {
  private inner = Buffer.alloc(BLOCK + 512);
  private readonly outer = Buffer.alloc(BLOCK + 32);

  constructor(private readonly key: Buffer) {
    if (key.length > BLOCK) throw new RangeError('HMAC keys longer than a block are not supported');
    for (let i = 0; i < BLOCK; i++) {
      this.inner[i] = (key[i] ?? 0) ^ 0x36;
      this.outer[i] = (key[i] ?? 0) ^ 0x5c;
    }
  }

  hex(data: string): string {
    if (!oneShotHash) return crypto.createHmac('sha256', this.key).update(data).digest('hex');
    const length = BLOCK + Buffer.byteLength(data);
    if (length > this.inner.length) {
      const grown = Buffer.alloc(length * 2);
      this.inner.copy(grown, 0, 0, BLOCK);
      this.inner = grown;
    }
    this.inner.write(data, BLOCK);
    // Strings out ('binary': the digest's bytes as they are), not Buffers: nothing is allocated natively.
    this.outer.write(oneShotHash('sha256', this.inner.subarray(0, length), 'binary'), BLOCK, 'binary');
    return oneShotHash('sha256', this.outer, 'hex');
  }
}

/**
 * Keyed tokens of values (and row ids), under the index key: HMAC-SHA256, truncated. Tokens are
 * memoised: patient, study and series values repeat across a study's objects.
 */
export class Tokenizer {
  private readonly hmac: HmacSha256;
  private readonly memo = { new: new Map<string, string>(), orig: new Map<string, string>() };

  constructor(indexKey: Buffer) {
    this.hmac = new HmacSha256(indexKey);
  }

  /** The truncated HMAC of `data`, in hex. */
  mac(data: string): string {
    return this.hmac.hex(data).slice(0, TOKEN_BYTES * 2);
  }

  /** The token of a value; `memoise` false for a value that will not come again. */
  token(kind: TokenKind, value: string, memoise = true): string {
    if (!memoise) return this.mac(`${kind}\0${value}`);
    const memo = this.memo[kind];
    let t = memo.get(value);
    if (t === undefined) {
      t = this.mac(`${kind}\0${value}`);
      if (memo.size >= 10_000) memo.clear();
      memo.set(value, t);
    }
    return t;
  }
}

/** The row as sealed: values in field order, so the plaintext carries no field names. */
interface Plain {
  o: string[];
  n: string[];
  d?: number;
  t: string;
}

function aad(id: string, tokens: readonly string[]): Buffer {
  return Buffer.from(`${id}|${tokens.join(',')}`, 'latin1');
}

const NONCE = 12;
const TAG = 16;
/** Random nonces drawn from one buffer filled at a time: a randomBytes call per row cost more than the sealing. */
const noncePool = Buffer.alloc(NONCE * 1024);
let nonceAt = noncePool.length;

/** The next nonce: a view of the pool, valid until the next call (the cipher and the box copy it). */
function nonce(): Buffer {
  if (nonceAt === noncePool.length) {
    randomFillSync(noncePool);
    nonceAt = 0;
  }
  nonceAt += NONCE;
  return noncePool.subarray(nonceAt - NONCE, nonceAt);
}

/** What a row is sealed from: its values by field ('' or absent where none), the date offset and the time. */
export interface RowToSeal {
  readonly original: Partial<Record<MapField, string>>;
  readonly new: Partial<Record<MapField, string>>;
  readonly dateOffsetDays?: number;
  readonly at: string;
}

export function sealRow(row: RowToSeal, keys: MapKeys, tokens: Tokenizer): SealedRow {
  const o = MAP_FIELDS.map((f) => row.original[f] ?? '');
  const n = MAP_FIELDS.map((f) => row.new[f] ?? '');
  const found: string[] = [];
  const add = (kind: TokenKind, v: string, field: number) => {
    // An object's own UID does not come again (its patient's, study's and series' do): not memoised.
    const t = v && tokens.token(kind, v, field !== SOP_FIELD);
    if (t && !found.includes(t)) found.push(t);
  };
  o.forEach((v, i) => add('orig', v, i));
  n.forEach((v, i) => add('new', v, i));
  const sorted = found.sort();
  // The id's JSON ['row', o, n, d] and the sealed Plain {o, n, t, d?}, each value array serialised once.
  const [oJson, nJson, d] = [JSON.stringify(o), JSON.stringify(n), row.dateOffsetDays];
  const id = tokens.mac(`["row",${oJson},${nJson},${JSON.stringify(d ?? null)}]`);
  const plain = `{"o":${oJson},"n":${nJson},"t":${JSON.stringify(row.at)}${d !== undefined ? `,"d":${JSON.stringify(d)}` : ''}}`;
  const iv = nonce();
  const cipher = createCipheriv('aes-256-gcm', keys.seal, iv);
  cipher.setAAD(aad(id, sorted));
  const body = cipher.update(plain, 'utf8');
  cipher.final(); // GCM: no bytes held back
  const box = Buffer.allocUnsafe(NONCE + body.length + TAG);
  iv.copy(box, 0);
  body.copy(box, NONCE);
  cipher.getAuthTag().copy(box, NONCE + body.length);
  return { id, tokens: sorted, box };
}

/** Opens a sealed row; any change to it, its id or its tokens fails (DEID_ERR_IDMAP_CORRUPT). */
export function openRow(sealed: SealedRow, keys: MapKeys): MapRow {
  try {
    const b = sealed.box;
    const decipher = createDecipheriv('aes-256-gcm', keys.seal, b.subarray(0, NONCE));
    decipher.setAAD(aad(sealed.id, sealed.tokens));
    decipher.setAuthTag(b.subarray(b.length - TAG));
    const plain = JSON.parse(Buffer.concat([decipher.update(b.subarray(NONCE, b.length - TAG)), decipher.final()]).toString('utf8')) as Plain;
    const fields = (vs: string[]) => Object.fromEntries(MAP_FIELDS.map((f, i) => [f, vs[i] ?? ''])) as Record<MapField, string>;
    return { original: fields(plain.o), new: fields(plain.n), ...(plain.d !== undefined ? { dateOffsetDays: plain.d } : {}), at: plain.t };
  } catch {
    throw new DeidError('DEID_ERR_IDMAP_CORRUPT', `row ${sealed.id.slice(0, 12)}`);
  }
}
