import { createHash, createHmac } from 'node:crypto';

/**
 * Keyed, deterministic derivations from the site secret: any worker on any machine derives the same
 * UID, pseudonym and date offset without coordination, and nobody without the secret can invert them.
 */

// One update of purpose, NUL, value: the same bytes as three updates, at a third of the calls into OpenSSL.
const hmac = (secret: Uint8Array, purpose: string, value: string): Buffer => createHmac('sha256', secret).update(`${purpose}\0${value}`).digest();

/** UIDs from the DICOM registry (SOP classes, transfer syntaxes, coding schemes...) are never remapped. */
export const isRegistryUid = (uid: string): boolean => uid.startsWith('1.2.840.10008.');

/**
 * `2.25.` + the decimal of the HMAC-SHA256 of the UID, truncated to 128 bits so the result fits
 * the 64-character UI limit (2.25 UIDs are 128-bit numbers by definition).
 */
export function remapUid(secret: Uint8Array, uid: string): string {
  let cache = uidCaches.get(secret);
  if (!cache) uidCaches.set(secret, (cache = new Map()));
  let out = cache.get(uid);
  if (out === undefined) {
    const h = hmac(secret, 'uid', uid);
    out = `2.25.${BigInt('0x' + h.subarray(0, 16).toString('hex')).toString(10)}`;
    // Study, series and frame-of-reference UIDs repeat across a study's objects; bound the cache.
    if (cache.size >= 50_000) cache.clear();
    cache.set(uid, out);
  }
  return out;
}

const uidCaches = new WeakMap<Uint8Array, Map<string, string>>();

const ALPHABET = '0123456789ABCDEFGHJKLMNPQRSTUVWXYZ'; // no I, O: unambiguous when read aloud

const pseudonymCaches = new WeakMap<Uint8Array, Map<number, Map<string, string>>>();

/**
 * A pseudonym of `length` characters from the keyed hash of a value: the base-34 digits of the HMAC as
 * a 256-bit number, least significant first. Memoised per secret: a patient's ID recurs in every object.
 */
export function keyedHash(secret: Uint8Array, value: string, length: number): string {
  let bySecret = pseudonymCaches.get(secret);
  if (!bySecret) pseudonymCaches.set(secret, (bySecret = new Map()));
  let cache = bySecret.get(length);
  if (!cache) bySecret.set(length, (cache = new Map()));
  let out = cache.get(value);
  if (out !== undefined) return out;
  const h = hmac(secret, 'hash', value);
  // Long division of the big-endian 32-bit limbs by the base: each step stays well within 2^53.
  const limbs = Array.from({ length: h.length / 4 }, (_, i) => h.readUInt32BE(i * 4));
  const base = ALPHABET.length;
  out = '';
  for (let i = 0; i < length; i++) {
    let rem = 0;
    for (let j = 0; j < limbs.length; j++) {
      const cur = rem * 0x1_0000_0000 + limbs[j];
      limbs[j] = Math.floor(cur / base);
      rem = cur % base;
    }
    out += ALPHABET[rem];
  }
  if (cache.size >= 50_000) cache.clear();
  cache.set(value, out);
  return out;
}

/** Per-patient date offset in whole days within [minDays, maxDays], from the patient's ID. */
export function dateOffsetDays(secret: Uint8Array, patientId: string, minDays: number, maxDays: number): number {
  const span = maxDays - minDays + 1;
  if (span <= 1) return minDays;
  return minDays + (hmac(secret, 'dateshift', patientId).readUInt32BE(0) % span);
}

/**
 * Who an object is about, for counting subjects (k-anonymity): a keyed hash of the original
 * PatientID, which names no one. (The output's PatientID may be one dummy for everyone, as the Basic
 * Profile writes it.)
 */
export function subjectKey(secret: Uint8Array, patientId: string): string {
  // The objects of a study come one after another: the last patient's key is usually the next one's.
  if (lastSubject.secret !== secret || lastSubject.patientId !== patientId) {
    lastSubject = { secret, patientId, key: hmac(secret, 'subject', patientId).subarray(0, 12).toString('hex') };
  }
  return lastSubject.key;
}

let lastSubject: { secret?: Uint8Array; patientId?: string; key: string } = { key: '' };

/**
 * The key a study is tracked under: a keyed hash of its original StudyInstanceUID, the only thing
 * about a study that is ever stored (objects without one share "no-study").
 */
export function studyKey(secret: Uint8Array, studyInstanceUid: string): string {
  return createHmac('sha256', secret).update(`study|${studyInstanceUid || 'no-study'}`).digest('hex').slice(0, 32);
}

/**
 * A hash of everything that changes a stage's output: the profile's fingerprint and the secret (by an
 * HMAC, never its value). Job keys include it, so that another profile or secret gives other jobs.
 */
export function configHash(secret: Uint8Array, profileFingerprint: string): string {
  return createHash('sha256').update(`${profileFingerprint}|${createHmac('sha256', secret).update('config').digest('hex')}`).digest('hex').slice(0, 16);
}
