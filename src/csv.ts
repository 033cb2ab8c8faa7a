/** CSV as RFC 4180 writes it (the manifests, the MIDI-B mapping files): shared from below the layers. */

/** A field, quoted only when it must be, with inner quotes doubled. */
export function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One record, CRLF-terminated. */
export function csvLine(fields: readonly string[]): string {
  return fields.map(csvField).join(',') + '\r\n';
}
