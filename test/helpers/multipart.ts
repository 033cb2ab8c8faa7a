/** A STOW-RS request body: one application/dicom part per object, framed as RFC 2046 requires. */
export function dicomMultipart(parts: readonly Uint8Array[], boundary = 'deid-test-boundary-7f3a'): { body: Buffer; type: string } {
  const chunks: Buffer[] = [];
  for (const p of parts) chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), Buffer.from(p), Buffer.from('\r\n'));
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/related; type="application/dicom"; boundary=${boundary}` };
}
