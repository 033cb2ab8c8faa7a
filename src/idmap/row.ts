import { createCipheriv, createDecipheriv, createHmac, randomFillSync } from 'node:crypto';
import { DeidError } from '../errors.js';
import type { MapKeys } from './key.js';

/** The identifiers the map records, in this order (the MIDI-B export and `deid reid` name them so). */
export const MAP_FIELDS = ['PatientID', 'PatientName', 'StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID', 'AccessionNumber'] as const;
export type MapField = (typeof MAP_FIELDS)[number];
export const UID_FIELDS: readonly MapField[] = ['StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID'];

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

/** Keyed tokens of values, memoised per key: study, series and patient values repeat across a study's objects. */
export class Tokenizer {
  private readonly memo = new Map<string, string>();
  constructor(private readonly indexKey: Buffer) {}

  token(kind: TokenKind, value: string): string {
    const k = `${kind}\0${value}`;
    let t = this.memo.get(k);
    if (t === undefined) {
      t = createHmac('sha256', this.indexKey).update(k).digest().subarray(0, TOKEN_BYTES).toString('hex');
      if (this.memo.size >= 20_000) this.memo.clear();
      this.memo.set(k, t);
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
/** Random nonces drawn from one buffer filled at a time: a randomBytes call per row cost more than the sealing. */
const noncePool = Buffer.alloc(NONCE * 1024);
let nonceAt = noncePool.length;

function nonce(): Buffer {
  if (nonceAt === noncePool.length) {
    randomFillSync(noncePool);
    nonceAt = 0;
  }
  nonceAt += NONCE;
  // A copy: the pool is refilled, and the sealed box must keep its own nonce.
  return Buffer.from(noncePool.subarray(nonceAt - NONCE, nonceAt));
}

export function sealRow(row: MapRow, keys: MapKeys, tokens: Tokenizer): SealedRow {
  const o = MAP_FIELDS.map((f) => row.original[f] ?? '');
  const n = MAP_FIELDS.map((f) => row.new[f] ?? '');
  const set = new Set<string>();
  for (const v of o) if (v) set.add(tokens.token('orig', v));
  for (const v of n) if (v) set.add(tokens.token('new', v));
  const sorted = [...set].sort();
  const id = createHmac('sha256', keys.index).update(JSON.stringify(['row', o, n, row.dateOffsetDays ?? null])).digest().subarray(0, TOKEN_BYTES).toString('hex');
  const plain: Plain = { o, n, t: row.at };
  if (row.dateOffsetDays !== undefined) plain.d = row.dateOffsetDays;
  const iv = nonce();
  const cipher = createCipheriv('aes-256-gcm', keys.seal, iv);
  cipher.setAAD(aad(id, sorted));
  const body = Buffer.concat([cipher.update(JSON.stringify(plain), 'utf8'), cipher.final()]);
  return { id, tokens: sorted, box: Buffer.concat([iv, body, cipher.getAuthTag()]) };
}

/** Opens a sealed row; any change to it, its id or its tokens fails (DEID_ERR_IDMAP_CORRUPT). */
export function openRow(sealed: SealedRow, keys: MapKeys): MapRow {
  try {
    const b = sealed.box;
    const decipher = createDecipheriv('aes-256-gcm', keys.seal, b.subarray(0, 12));
    decipher.setAAD(aad(sealed.id, sealed.tokens));
    decipher.setAuthTag(b.subarray(b.length - 16));
    const plain = JSON.parse(Buffer.concat([decipher.update(b.subarray(12, b.length - 16)), decipher.final()]).toString('utf8')) as Plain;
    const fields = (vs: string[]) => Object.fromEntries(MAP_FIELDS.map((f, i) => [f, vs[i] ?? ''])) as Record<MapField, string>;
    return { original: fields(plain.o), new: fields(plain.n), ...(plain.d !== undefined ? { dateOffsetDays: plain.d } : {}), at: plain.t };
  } catch {
    throw new DeidError('DEID_ERR_IDMAP_CORRUPT', `row ${sealed.id.slice(0, 12)}`);
  }
}
