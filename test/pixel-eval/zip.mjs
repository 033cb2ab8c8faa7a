// Reads one file out of a .zip with node's zlib (stored or deflated entries), so that tests and the
// evaluation do not depend on an `unzip` binary. Enough for the corpus's GREYSCALE_CINE.zip.
import { readFileSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';

/** The first entry whose name ends with `suffix`, uncompressed. */
export function readZipEntry(zipPath, suffix) {
  const zip = readFileSync(zipPath);
  // End of central directory: the last "PK\x05\x06".
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 65557); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw new Error('not a zip file');
  const entries = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  for (let n = 0; n < entries; n++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw new Error('bad zip central directory');
    const method = zip.readUInt16LE(p + 10);
    const compressed = zip.readUInt32LE(p + 20);
    const size = zip.readUInt32LE(p + 24);
    const nameLen = zip.readUInt16LE(p + 28);
    const extraLen = zip.readUInt16LE(p + 30);
    const commentLen = zip.readUInt16LE(p + 32);
    const local = zip.readUInt32LE(p + 42);
    const name = zip.toString('utf8', p + 46, p + 46 + nameLen);
    p += 46 + nameLen + extraLen + commentLen;
    if (!name.endsWith(suffix)) continue;
    if (zip.readUInt32LE(local) !== 0x04034b50) throw new Error('bad zip local header');
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const data = zip.subarray(start, start + compressed);
    const out = method === 0 ? Buffer.from(data) : method === 8 ? inflateRawSync(data) : undefined;
    if (!out) throw new Error(`zip method ${method} not supported`);
    if (out.length !== size) throw new Error('zip entry size mismatch');
    return out;
  }
  throw new Error(`no entry ending with ${suffix}`);
}
