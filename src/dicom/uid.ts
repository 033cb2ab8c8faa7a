/**
 * Whether a string is a UID by the syntax of PS3.5 9.1: components of digits separated by single dots,
 * at most 64 characters. A component with a leading zero is tolerated: real devices write them (the
 * corpus's RT dose files do), they are unambiguous, and a remap replaces them anyway.
 */
export function isValidUid(s: string): boolean {
  if (s.length === 0 || s.length > 64) return false;
  let digits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) digits++;
    else if (c === 0x2e && digits > 0) digits = 0;
    else return false;
  }
  return digits > 0;
}
