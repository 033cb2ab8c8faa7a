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

/**
 * isValidUid for each value of a UI element's bytes, without decoding them: values separated by
 * backslashes, each trimmed of spaces and NUL padding; an empty value is a Type 2 blank.
 */
export function isValidUidList(bytes: Uint8Array): boolean {
  const n = bytes.length;
  for (let i = 0; i <= n; ) {
    let start = i;
    while (start < n && bytes[start] === 0x20) start++;
    let end = start;
    while (end < n && bytes[end] !== 0x5c) end++;
    let stop = end;
    while (stop > start && (bytes[stop - 1] === 0x20 || bytes[stop - 1] === 0)) stop--;
    if (stop > start) {
      if (stop - start > 64) return false;
      let digits = 0;
      for (let j = start; j < stop; j++) {
        const c = bytes[j];
        if (c >= 0x30 && c <= 0x39) digits++;
        else if (c === 0x2e && digits > 0) digits = 0;
        else return false;
      }
      if (digits === 0) return false;
    }
    i = end + 1;
  }
  return true;
}
