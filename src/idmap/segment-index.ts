import { randomBytes } from 'node:crypto';
import { open, rename, rm, writeFile } from 'node:fs/promises';

/**
 * A sorted index of one segment's tokens, so a lookup reads a few pages instead of the whole map.
 * Segments only ever grow, so an index of their first `covered` bytes stays true for good: anyone
 * (the writer when it moves to a new segment or closes, a reader that found a long unindexed tail) may
 * write one, atomically, and readers scan only the bytes past it. No lock, no coordination.
 *
 *   <segment>.idx:  "DIDX0001" | covered (u64 LE) | entries sorted by token: token (16 bytes) | offset (u32 LE)
 */
const MAGIC = Buffer.from('DIDX0001', 'latin1');
const HEADER = 16;
const TOKEN = 16;
const ENTRY = TOKEN + 4;

export const indexPathOf = (segmentPath: string): string => `${segmentPath}.idx`;

/** Builds the index of the records at `offsets` (with their tokens), covering the segment's first `covered` bytes. */
export function encodeIndex(records: ReadonlyArray<{ offset: number; tokens: readonly string[] }>, covered: number): Buffer {
  // Sorted as hex strings (the same order as the bytes), then written into one buffer: a Buffer per
  // entry and Buffer.compare made this most of the cost of closing a writer.
  const entries: Array<[token: string, offset: number]> = [];
  for (const r of records) for (const t of r.tokens) entries.push([t, r.offset]);
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
  const out = Buffer.alloc(HEADER + entries.length * ENTRY);
  MAGIC.copy(out);
  out.writeBigUInt64LE(BigInt(covered), 8);
  entries.forEach(([t, offset], i) => {
    out.write(t, HEADER + i * ENTRY, TOKEN, 'hex');
    out.writeUInt32LE(offset, HEADER + i * ENTRY + TOKEN);
  });
  return out;
}

/** Writes an index beside its segment (aside, then renamed over the old one). */
export async function writeIndex(segmentPath: string, index: Buffer): Promise<void> {
  const tmp = `${indexPathOf(segmentPath)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, index, { mode: 0o600 });
    await rename(tmp, indexPathOf(segmentPath));
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * The offsets of the records carrying `token` within the indexed prefix, and that prefix's length
 * (0 and none when there is no usable index: then the whole segment is scanned).
 */
export async function searchIndex(segmentPath: string, token: string): Promise<{ covered: number; offsets: number[] }> {
  let fh;
  try {
    fh = await open(indexPathOf(segmentPath), 'r');
  } catch {
    return { covered: 0, offsets: [] };
  }
  try {
    const head = Buffer.alloc(HEADER);
    const size = (await fh.stat()).size;
    if ((await fh.read(head, 0, HEADER, 0)).bytesRead < HEADER || !head.subarray(0, 8).equals(MAGIC) || (size - HEADER) % ENTRY !== 0) return { covered: 0, offsets: [] };
    const covered = Number(head.readBigUInt64LE(8));
    const want = Buffer.from(token, 'hex');
    const n = (size - HEADER) / ENTRY;
    const entry = Buffer.alloc(ENTRY);
    const tokenAt = async (i: number) => {
      await fh.read(entry, 0, ENTRY, HEADER + i * ENTRY);
      return entry;
    };
    // Lower bound by binary search, then the run of equal tokens.
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (Buffer.compare((await tokenAt(mid)).subarray(0, TOKEN), want) < 0) lo = mid + 1;
      else hi = mid;
    }
    const offsets: number[] = [];
    // The run of equal tokens, read a block at a time (a patient's token can be on thousands of rows).
    const block = Buffer.alloc(ENTRY * 256);
    for (let i = lo; i < n; ) {
      const count = Math.min(256, n - i);
      await fh.read(block, 0, count * ENTRY, HEADER + i * ENTRY);
      let j = 0;
      for (; j < count && block.subarray(j * ENTRY, j * ENTRY + TOKEN).equals(want); j++) offsets.push(block.readUInt32LE(j * ENTRY + TOKEN));
      if (j < count) break;
      i += count;
    }
    return { covered, offsets };
  } finally {
    await fh.close();
  }
}
