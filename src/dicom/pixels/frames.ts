import { DeidError } from '../../errors.js';

/**
 * Encapsulated Pixel Data → one codestream per frame (PS3.5 A.4). fragments[0] is the Basic Offset
 * Table. Frames are found, in order of preference, from: the Basic Offset Table; the Extended Offset
 * Table; a single frame (all fragments concatenated); one fragment per frame; and, for JPEG-family and
 * JPEG 2000 codestreams, their end and start markers. Anything inconsistent fails closed.
 */
export function splitFrames(
  fragments: readonly Uint8Array[],
  frameCount: number,
  opts: { readonly markerSplit: boolean; readonly extendedOffsets?: readonly bigint[] },
): Uint8Array[] {
  const bot = fragments[0] ?? new Uint8Array(0);
  const data = fragments.slice(1);
  if (data.length === 0) throw new DeidError('DEID_ERR_PIXEL_DECODE', 'encapsulated pixel data has no fragments');

  // Byte offset of each fragment's item header, relative to the first fragment after the offset table.
  const starts: number[] = [];
  let pos = 0;
  for (const f of data) {
    starts.push(pos);
    pos += 8 + f.length;
  }
  const byOffsets = (offsets: readonly number[]): Uint8Array[] => {
    if (offsets.length !== frameCount) throw new DeidError('DEID_ERR_PIXEL_DECODE', `offset table has ${offsets.length} entries for ${frameCount} frames`);
    const firstFragment = offsets.map((o) => {
      const i = starts.indexOf(o);
      if (i < 0) throw new DeidError('DEID_ERR_PIXEL_DECODE', `offset ${o} does not start a fragment`);
      return i;
    });
    for (let k = 1; k < firstFragment.length; k++) {
      if (firstFragment[k] <= firstFragment[k - 1]) throw new DeidError('DEID_ERR_PIXEL_DECODE', 'offset table is not increasing');
    }
    return firstFragment.map((i, k) => concat(data.slice(i, k + 1 < firstFragment.length ? firstFragment[k + 1] : data.length)));
  };

  if (bot.length > 0) {
    if (bot.length % 4 !== 0) throw new DeidError('DEID_ERR_PIXEL_DECODE', 'basic offset table length is not a multiple of 4');
    const dv = new DataView(bot.buffer, bot.byteOffset, bot.byteLength);
    return byOffsets(Array.from({ length: bot.length / 4 }, (_, i) => dv.getUint32(i * 4, true)));
  }
  if (opts.extendedOffsets && opts.extendedOffsets.length > 0) {
    return byOffsets(opts.extendedOffsets.map((o) => {
      if (o > BigInt(Number.MAX_SAFE_INTEGER)) throw new DeidError('DEID_ERR_PIXEL_DECODE', 'extended offset out of range');
      return Number(o);
    }));
  }
  if (frameCount === 1) return [concat(data)];
  if (data.length === frameCount) return [...data];
  if (!opts.markerSplit) throw new DeidError('DEID_ERR_PIXEL_DECODE', `${data.length} fragments for ${frameCount} frames and no offset table`);

  const frames: Uint8Array[] = [];
  let group: Uint8Array[] = [];
  for (let i = 0; i < data.length; i++) {
    group.push(data[i]);
    const next = data[i + 1];
    if (endsWithEndMarker(data[i]) && (next === undefined || startsWithStartMarker(next))) {
      frames.push(concat(group));
      group = [];
    }
  }
  if (group.length > 0 || frames.length !== frameCount) {
    throw new DeidError('DEID_ERR_PIXEL_DECODE', `found ${frames.length} complete codestreams for ${frameCount} frames`);
  }
  return frames;
}

/** EOI (JPEG, JPEG-LS) or EOC (JPEG 2000), FF D9, possibly followed by padding. */
function endsWithEndMarker(b: Uint8Array): boolean {
  for (let i = b.length - 2, stop = Math.max(0, b.length - 4); i >= stop; i--) if (b[i] === 0xff && b[i + 1] === 0xd9) return true;
  return false;
}

/** SOI (FF D8) or SOC (FF 4F). */
function startsWithStartMarker(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0xff && (b[1] === 0xd8 || b[1] === 0x4f);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Builds fragments for writing: a Basic Offset Table (when offsets fit 32 bits) and one even-length fragment per frame. */
export function buildFragments(frames: readonly Uint8Array[]): Uint8Array[] {
  const padded = frames.map((f) => {
    if (f.length % 2 === 0) return f;
    const p = new Uint8Array(f.length + 1);
    p.set(f);
    return p;
  });
  const total = padded.reduce((n, f) => n + 8 + f.length, 0);
  let bot = new Uint8Array(0);
  if (total < 2 ** 32) {
    bot = new Uint8Array(4 * padded.length);
    const dv = new DataView(bot.buffer);
    let off = 0;
    padded.forEach((f, i) => {
      dv.setUint32(i * 4, off, true);
      off += 8 + f.length;
    });
  }
  return [bot, ...padded];
}
