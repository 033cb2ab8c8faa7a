/**
 * The re-identification map (opt-in): per object, the original and new identifiers sealed under a
 * re-identification key of their own, a keyed index for lookups, an audit log, and the MIDI-B export.
 * `IdMap.open` + `identityFacts` + `record` is all a pipeline needs.
 */
export { IdMap, isRedisLocation, RowSealer, type MapRowInput, type OpenIdMapOptions, type ReidMatch } from './id-map.js';
export { identityFacts, identityFactsOf, mapFieldsOf, type IdentityFacts } from './facts.js';
export { defaultReidKeyPath, loadReidKey, type ReidKey } from './key.js';
export { exportMidiB, MIDI_B_FILES, type MidiBExport } from './midi-b.js';
export { MAP_FIELDS, type MapField, type MapRow, type SealedRow } from './row.js';
export type { AuditEntry } from './store.js';
