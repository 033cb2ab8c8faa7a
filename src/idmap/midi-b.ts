import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { csvLine } from '../csv.js';
import type { IdMap } from './id-map.js';
import { UID_FIELDS } from './row.js';

/** The two files MIDI-B's validation script reads (pandas `read_csv`, columns `id_old,id_new`, as strings). */
export const MIDI_B_FILES = { uids: 'uid_mapping.csv', patientIds: 'patid_mapping.csv' } as const;

export interface MidiBExport {
  readonly uidPairs: number;
  readonly patientIdPairs: number;
  /** Original identifiers recorded with more than one new value (e.g. runs under two secrets); the first is kept. */
  readonly conflicts: number;
}

function writeDurably(path: string, text: string): void {
  const fd = openSync(path, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `uid_mapping.csv` (study, series and SOP instance UIDs together, as the script keeps them in
 * one dictionary) and `patid_mapping.csv`, one row per distinct original. Every row is read and opened
 * before anything is written, and both files appear by rename, so a wrong key or a damaged map leaves
 * no partial output.
 */
export async function exportMidiB(map: IdMap, outDir: string): Promise<MidiBExport> {
  const uids = new Map<string, string>();
  const patientIds = new Map<string, string>();
  let conflicts = 0;
  const add = (m: Map<string, string>, oldId: string, newId: string) => {
    if (!oldId) return;
    const had = m.get(oldId);
    if (had === undefined) m.set(oldId, newId);
    else if (had !== newId) conflicts++;
  };
  for await (const row of map.rows()) {
    for (const f of UID_FIELDS) add(uids, row.original[f], row.new[f]);
    add(patientIds, row.original.PatientID, row.new.PatientID);
  }
  const csv = (m: Map<string, string>) => csvLine(['id_old', 'id_new']) + [...m].map(([o, n]) => csvLine([o, n])).join('');
  mkdirSync(outDir, { recursive: true });
  const tmp = (name: string) => join(outDir, `.${name}.${process.pid}.tmp`);
  try {
    writeDurably(tmp(MIDI_B_FILES.uids), csv(uids));
    writeDurably(tmp(MIDI_B_FILES.patientIds), csv(patientIds));
    renameSync(tmp(MIDI_B_FILES.uids), join(outDir, MIDI_B_FILES.uids));
    renameSync(tmp(MIDI_B_FILES.patientIds), join(outDir, MIDI_B_FILES.patientIds));
  } finally {
    rmSync(tmp(MIDI_B_FILES.uids), { force: true });
    rmSync(tmp(MIDI_B_FILES.patientIds), { force: true });
  }
  return { uidPairs: uids.size, patientIdPairs: patientIds.size, conflicts };
}
