/** Value representation facts needed to read and write elements. */

/** VRs whose explicit encoding has a 2-byte reserved field and a 4-byte length. */
const LONG_HEADER = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
export const hasLongHeader = (vr: string): boolean => LONG_HEADER.has(vr);

/** Byte width of one value for byte swapping; 0 = bytes (no swap). */
const SWAP_WIDTH: Record<string, number> = {
  US: 2, SS: 2, OW: 2, AT: 2, UL: 4, SL: 4, FL: 4, OF: 4, OL: 4, FD: 8, OD: 8, SV: 8, UV: 8, OV: 8,
};
export const swapWidth = (vr: string): number => SWAP_WIDTH[vr] ?? 0;

/** VRs holding character data (decoded with the Specific Character Set where applicable). */
const TEXT = new Set(['AE', 'AS', 'CS', 'DA', 'DS', 'DT', 'IS', 'LO', 'LT', 'PN', 'SH', 'ST', 'TM', 'UC', 'UI', 'UR', 'UT']);
export const isTextVR = (vr: string): boolean => TEXT.has(vr);

/** Text VRs affected by Specific Character Set (the rest are always ASCII). */
const CHARSET_TEXT = new Set(['LO', 'LT', 'PN', 'SH', 'ST', 'UC', 'UT']);
export const usesCharset = (vr: string): boolean => CHARSET_TEXT.has(vr);

/** Maximum value length in bytes (per value) for VRs that have one. */
export const MAX_LENGTH: Record<string, number> = {
  AE: 16, AS: 4, CS: 16, DA: 8, DS: 16, DT: 26, IS: 12, LO: 64, LT: 10240, PN: 64 * 5, SH: 16, ST: 1024, TM: 14, UI: 64,
};

const VALID = new Set([
  'AE', 'AS', 'AT', 'CS', 'DA', 'DS', 'DT', 'FD', 'FL', 'IS', 'LO', 'LT', 'OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'PN', 'SH', 'SL',
  'SQ', 'SS', 'ST', 'SV', 'TM', 'UC', 'UI', 'UL', 'UN', 'UR', 'US', 'UT', 'UV',
]);
export const isValidVR = (vr: string): boolean => VALID.has(vr);

/** UI values are padded with NUL, other text with space, binary with NUL. */
export const padByte = (vr: string): number => (vr === 'UI' || !isTextVR(vr) ? 0x00 : 0x20);
