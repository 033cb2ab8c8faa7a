/**
 * The object catalog: where each object of a study ended (exported, held for review, quarantined),
 * with the new identity it was given, so that the console can show a study's new StudyInstanceUID,
 * its pseudonymous patient and its series and objects, and an operator can match them to what arrived
 * in the PACS. Kept in the object store beside the spool (shared by every worker of a cluster); one
 * small file per object, written once it leaves the pipeline or is held. Holds only new identifiers,
 * codes and times: what the header stage already wrote into the exported object, never a source value.
 */
import type { ErrorCode } from '../errors.js';
import type { NewIdentity } from '../stages/stage.js';
import type { ObjectStore } from './storage.js';

export type CatalogState = 'exported' | 'held' | 'quarantined';

export interface CatalogEntry {
  /** The object's hash prefix (the study tracker's object key). */
  readonly object: string;
  readonly state: CatalogState;
  readonly at: string;
  /** The new identity (absent when the object stopped before the header stage). */
  readonly identity?: Pick<NewIdentity, 'patientId' | 'studyInstanceUid' | 'seriesInstanceUid' | 'sopInstanceUid' | 'sopClassUid'>;
  /** For a quarantined object: its entry id, stage and code. */
  readonly quarantine?: { readonly id: string; readonly stage: string; readonly code: ErrorCode };
  /** For a held object: its review id. */
  readonly review?: string;
  /** Pixels masked by the pixel stage (absent: not examined). */
  readonly pixelsMasked?: number;
}

const OBJECT_KEY = 16;
const studyDir = (study: string) => `catalog/${study}`;
/** A name safe as one path segment (pseudonymous IDs may hold any character). */
const segment = (s: string) => Buffer.from(s, 'utf8').toString('base64url').slice(0, 200) || '_';
const byStudyUid = (uid: string) => `catalog-index/study/${segment(uid)}`;
const byPatient = (patientId: string) => `catalog-index/patient/${segment(patientId)}`;

/**
 * How long this process trusts that it indexed a study. Another thread or worker may forget the study
 * (retention) and it may then come back: its index entries are written again at least this often.
 */
const INDEXED_FOR_MS = 10 * 60_000;

export class ObjectCatalog {
  /** When this process last indexed each study (bounded): an index entry is written once in a while per study, not per object. */
  private readonly indexed = new Map<string, number>();

  constructor(
    private readonly store: ObjectStore,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records where an object is now; a failure is the caller's to log, never to pass on. */
  async note(study: string, hash: string, entry: Omit<CatalogEntry, 'object' | 'at'>): Promise<void> {
    if (!/^[0-9a-z]{8,64}$/i.test(study)) return;
    const object = hash.slice(0, OBJECT_KEY);
    const full: CatalogEntry = {
      object,
      at: new Date().toISOString(),
      ...entry,
      ...(entry.identity
        ? {
            identity: {
              patientId: entry.identity.patientId,
              studyInstanceUid: entry.identity.studyInstanceUid,
              seriesInstanceUid: entry.identity.seriesInstanceUid,
              sopInstanceUid: entry.identity.sopInstanceUid,
              sopClassUid: entry.identity.sopClassUid,
            },
          }
        : {}),
    };
    await this.store.put(`${studyDir(study)}/${object}.json`, Buffer.from(JSON.stringify(full)));
    const id = full.identity;
    const now = this.now();
    const last = this.indexed.get(study);
    if (id && (last === undefined || now - last >= INDEXED_FOR_MS)) {
      // Find a study by what arrived in the PACS: its new StudyInstanceUID, or its pseudonymous patient.
      await this.store.put(`${byStudyUid(id.studyInstanceUid)}/${study}`, Buffer.alloc(0));
      await this.store.put(`${byPatient(id.patientId)}/${study}`, Buffer.alloc(0));
      if (this.indexed.size >= 10_000) this.indexed.clear();
      this.indexed.set(study, now);
    }
  }

  /** The study keys whose new StudyInstanceUID or pseudonymous PatientID is exactly `value`. */
  async find(value: string): Promise<string[]> {
    if (!value) return [];
    const keys = [...(await this.store.list(byStudyUid(value))), ...(await this.store.list(byPatient(value)))];
    return [...new Set(keys.map((k) => k.slice(k.lastIndexOf('/') + 1)))];
  }

  /** Every recorded object of a study. */
  async objects(study: string): Promise<CatalogEntry[]> {
    if (!/^[0-9a-z]{8,64}$/i.test(study)) return [];
    const keys = (await this.store.list(studyDir(study))).filter((k) => k.endsWith('.json'));
    const out: CatalogEntry[] = [];
    for (const k of keys) {
      try {
        out.push(JSON.parse((await this.store.get(k)).toString('utf8')) as CatalogEntry);
      } catch {
        /* removed meanwhile */
      }
    }
    return out;
  }

  /** Removes a study's entries and its index entries, and their folders (the study is no longer tracked). */
  async forget(study: string): Promise<void> {
    if (!/^[0-9a-z]{8,64}$/i.test(study)) return;
    const keys = await this.store.list(studyDir(study));
    const id = await this.identityIn(keys);
    if (id) {
      for (const index of [byStudyUid(id.studyInstanceUid), byPatient(id.patientId)]) {
        await this.store.delete(`${index}/${study}`);
        await this.store.prune?.(index);
      }
    }
    for (const k of keys) await this.store.delete(k);
    await this.store.prune?.(studyDir(study));
    this.indexed.delete(study);
  }

  /** The new identity of a study: from the first of its objects that has one. */
  async identity(study: string): Promise<CatalogEntry['identity'] | undefined> {
    if (!/^[0-9a-z]{8,64}$/i.test(study)) return undefined;
    return this.identityIn(await this.store.list(studyDir(study)));
  }

  private async identityIn(keys: readonly string[]): Promise<CatalogEntry['identity'] | undefined> {
    for (const k of keys.filter((x) => x.endsWith('.json'))) {
      try {
        const e = JSON.parse((await this.store.get(k)).toString('utf8')) as CatalogEntry;
        if (e.identity) return e.identity;
      } catch {
        /* removed meanwhile */
      }
    }
    return undefined;
  }
}
