import { DeidError } from '../../errors.js';
import { findElement, withElement, type Dataset, type Element } from '../element.js';
import { TS, isNativeSyntax } from '../transfer-syntax.js';
import { asciiBytes, rawString } from '../values.js';
import { ENCODED_SYNTAX, TS_HTJ2K_LOSSLESS, TS_HTJ2K_LOSSLESS_RPCL, canDecode, decodeFrame, encodeFrame, endsWithEoi, isLossySyntax, type EncoderKind } from './codecs.js';
import { frameBytes, fullFrameBytes, readPixelDescriptor, type PixelDescriptor } from './descriptor.js';
import { buildFragments, splitFrames } from './frames.js';
import { TAG } from '../tag.js';

/**
 * Pixel Data in memory: every frame decoded to native little-endian samples, fully sampled
 * (YBR_FULL_422 expanded, JPEG YCbCr converted to RGB by the decoder). `desc` describes these frames,
 * which may differ from the source's description (photometric interpretation, planar configuration).
 */
export interface PixelImage {
  readonly desc: PixelDescriptor;
  readonly frames: Uint8Array[];
  readonly sourceSyntax: string;
  /** The source went through lossy compression: a lossy syntax, or LossyImageCompression "01". */
  readonly sourceLossy: boolean;
  /**
   * The source stored one bit per pixel (BitsAllocated 1): `frames` hold a byte per pixel (0 or 1,
   * described as 8 bits allocated, 1 stored), and are packed into bits again when written.
   */
  readonly bitPacked?: boolean;
}

/** The most one-bit pixels unpacked (a byte each): the default object size limit, 1 GiB. */
const MAX_UNPACKED_BYTES = 2 ** 30;

/**
 * Bit-packed frames (BitsAllocated 1) to a byte per pixel. The frames follow one another bit by bit,
 * not byte by byte: a frame whose pixel count is not a multiple of 8 ends inside a byte, and the next
 * one starts there. The first pixel is the least significant bit of its byte.
 */
function unpackBits(value: Uint8Array, d: PixelDescriptor): Uint8Array[] {
  const n = d.rows * d.columns;
  // Eight bytes per stored byte: bounded like the largest object admitted by default, whatever the frames declare.
  if (n * d.frames > MAX_UNPACKED_BYTES) throw new DeidError('DEID_ERR_PIXEL_UNSUPPORTED', `one-bit pixel data of ${n * d.frames} pixels (at most ${MAX_UNPACKED_BYTES} are unpacked)`);
  if (value.length * 8 < n * d.frames) throw new DeidError('DEID_ERR_PIXEL_DECODE', `pixel data has ${value.length} bytes, expected ${Math.ceil((n * d.frames) / 8)}`);
  return Array.from({ length: d.frames }, (_, f) => {
    const out = new Uint8Array(n);
    for (let p = 0, bit = f * n; p < n; p++, bit++) out[p] = (value[bit >> 3] >> (bit & 7)) & 1;
    return out;
  });
}

/** The inverse of unpackBits: any non-zero byte is a set bit; padded with zero bits to an even length. */
function packBits(frames: readonly Uint8Array[], d: PixelDescriptor): Uint8Array {
  const n = d.rows * d.columns;
  const bytes = Math.ceil((n * frames.length) / 8);
  const out = new Uint8Array(bytes + (bytes % 2));
  frames.forEach((frame, f) => {
    for (let p = 0, bit = f * n; p < n; p++, bit++) if (frame[p]) out[bit >> 3] |= 1 << (bit & 7);
  });
  return out;
}

/** Native frames one after another, padded to an even length. */
function concatFrames(frames: readonly Uint8Array[], n: number): Uint8Array {
  const total = n * frames.length;
  const value = new Uint8Array(total + (total % 2));
  frames.forEach((f, i) => value.set(f, i * n));
  return value;
}

/** Has pixel data we could clean: Pixel Data, Float or Double Float Pixel Data. */
export function hasPixelData(ds: Dataset): boolean {
  return !!(findElement(ds, TAG.PixelData) || findElement(ds, TAG.FloatPixelData) || findElement(ds, TAG.DoubleFloatPixelData));
}

/** YBR_FULL_422 native (Y1 Y2 Cb Cr per pixel pair) → YBR_FULL interleaved. */
function expand422(src: Uint8Array, d: PixelDescriptor): Uint8Array {
  if (d.bitsAllocated !== 8 || d.columns % 2 !== 0) throw new DeidError('DEID_ERR_PIXEL_UNSUPPORTED', 'YBR_FULL_422 needs 8-bit samples and an even number of columns');
  const out = new Uint8Array(d.rows * d.columns * 3);
  for (let i = 0, o = 0; i < src.length; i += 4, o += 6) {
    const cb = src[i + 2];
    const cr = src[i + 3];
    out[o] = src[i];
    out[o + 1] = cb;
    out[o + 2] = cr;
    out[o + 3] = src[i + 1];
    out[o + 4] = cb;
    out[o + 5] = cr;
  }
  return out;
}

function readExtendedOffsets(ds: Dataset): bigint[] | undefined {
  const el = findElement(ds, TAG.ExtendedOffsetTable);
  if (!el?.value || el.value.length === 0) return undefined;
  if (el.value.length % 8 !== 0) throw new DeidError('DEID_ERR_PIXEL_DECODE', 'extended offset table length is not a multiple of 8');
  const dv = new DataView(el.value.buffer, el.value.byteOffset, el.value.byteLength);
  return Array.from({ length: el.value.length / 8 }, (_, i) => dv.getBigUint64(i * 8, true));
}

/**
 * Decodes every frame of a data set's Pixel Data. Needs `initCodecs()` to have resolved for
 * encapsulated syntaxes. Fails closed: DEID_ERR_PIXEL_UNSUPPORTED for layouts or syntaxes it cannot
 * handle, DEID_ERR_PIXEL_DECODE for corrupt, truncated or inconsistent data.
 */
export function decodePixelData(ds: Dataset, transferSyntaxUID: string): PixelImage {
  if (findElement(ds, TAG.FloatPixelData) || findElement(ds, TAG.DoubleFloatPixelData)) {
    throw new DeidError('DEID_ERR_PIXEL_UNSUPPORTED', 'float pixel data');
  }
  const px = findElement(ds, TAG.PixelData);
  if (!px) throw new DeidError('DEID_ERR_PIXEL_UNSUPPORTED', 'no pixel data');
  const d = readPixelDescriptor(ds);
  const lossyFlag = rawString(findElement(ds, TAG.LossyImageCompression)?.value).trim() === '01';

  if (isNativeSyntax(transferSyntaxUID)) {
    if (px.fragments || px.items) throw new DeidError('DEID_ERR_PIXEL_DECODE', 'encapsulated pixel data in a native transfer syntax');
    const value = px.value ?? new Uint8Array(0);
    if (d.bitsAllocated === 1) return { desc: { ...d, bitsAllocated: 8 }, frames: unpackBits(value, d), sourceSyntax: transferSyntaxUID, sourceLossy: lossyFlag, bitPacked: true };
    const n = frameBytes(d);
    if (value.length < n * d.frames) throw new DeidError('DEID_ERR_PIXEL_DECODE', `pixel data has ${value.length} bytes, expected ${n * d.frames}`);
    const frames: Uint8Array[] = [];
    for (let f = 0; f < d.frames; f++) {
      const raw = value.subarray(f * n, (f + 1) * n);
      frames.push(d.photometric === 'YBR_FULL_422' ? expand422(raw, d) : new Uint8Array(raw));
    }
    const desc = d.photometric === 'YBR_FULL_422' ? { ...d, photometric: 'YBR_FULL', planarConfiguration: 0 } : d;
    return { desc, frames, sourceSyntax: transferSyntaxUID, sourceLossy: lossyFlag };
  }

  if (d.bitsAllocated === 1) throw new DeidError('DEID_ERR_PIXEL_UNSUPPORTED', 'BitsAllocated 1 in an encapsulated transfer syntax');
  if (!canDecode(transferSyntaxUID)) throw new DeidError('DEID_ERR_PIXEL_UNSUPPORTED', `transfer syntax ${transferSyntaxUID} has no decoder here`);
  if (!px.fragments) throw new DeidError('DEID_ERR_PIXEL_DECODE', 'native pixel data in an encapsulated transfer syntax');
  const codestreams = splitFrames(px.fragments, d.frames, { markerSplit: endsWithEoi(transferSyntaxUID), extendedOffsets: readExtendedOffsets(ds) });
  let photometric = d.photometric;
  let planar = d.planarConfiguration;
  const frames = codestreams.map((cs, i) => {
    const r = decodeFrame(transferSyntaxUID, d, cs, i);
    photometric = r.photometric;
    planar = d.samplesPerPixel > 1 ? r.planarConfiguration : 0;
    return r.pixels;
  });
  // Partial-range YBR and 4:2:2/4:2:0 only exist compressed; the decoder hands them back as RGB.
  if (d.samplesPerPixel === 3 && photometric.startsWith('YBR_PARTIAL')) photometric = 'RGB';
  if (d.samplesPerPixel === 3 && photometric === 'YBR_FULL_422') photometric = 'RGB';
  return {
    desc: { ...d, photometric, planarConfiguration: planar },
    frames,
    sourceSyntax: transferSyntaxUID,
    sourceLossy: lossyFlag || isLossySyntax(transferSyntaxUID),
  };
}

/** What happened to the pixel data's encoding, for the report and for the image's attributes. */
export interface EncodedPixelData {
  readonly transferSyntaxUID: string;
  /** The data set with Pixel Data and the Image Pixel / lossy compression attributes updated. */
  readonly dataset: Element[];
  /** A new lossy compression step was applied (lossy inputs re-encoded in their own lossy syntax). */
  readonly lossyRatio?: number;
  readonly encoding: 'native' | EncoderKind;
}

/** The encoder that keeps a source's syntax family, or 'native' where none keeps the data exactly. */
function targetFor(sourceTs: string, d: PixelDescriptor): EncoderKind | 'native' {
  if (isNativeSyntax(sourceTs)) return 'native';
  const deepColour = d.samplesPerPixel === 3 && d.bitsStored > 8;
  switch (sourceTs) {
    case TS.RLELossless:
      return 'rle';
    case TS.JPEGLossless57:
    case TS.JPEGLosslessSV1:
      return d.bitsAllocated <= 16 ? 'jpeg-lossless' : 'native';
    case TS.JPEGLSLossless:
      return d.bitsAllocated <= 16 ? 'jpeg-ls' : 'native';
    case TS.JPEG2000Lossless:
      // Measured: the J2K/HTJ2K encoders are not lossless for 3-sample data deeper than 8 bits.
      return deepColour || d.bitsAllocated > 16 ? 'native' : 'j2k';
    case TS_HTJ2K_LOSSLESS:
    case TS_HTJ2K_LOSSLESS_RPCL:
      return deepColour || d.bitsAllocated > 16 ? 'native' : 'htj2k';
    case TS.JPEGBaseline:
      return d.bitsAllocated === 8 && d.bitsStored === 8 ? 'jpeg-baseline' : 'native';
    default:
      // JPEG extended 12-bit, JPEG-LS near-lossless, JPEG 2000 and HTJ2K lossy: written native, no further loss.
      return 'native';
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

function cs(tag: number, vr: string, s: string): Element {
  return { tag, vr, value: asciiBytes(s, vr) };
}

function us(tag: number, v: number): Element {
  return { tag, vr: 'US', value: Uint8Array.of(v & 0xff, v >> 8) };
}

/** Formats a compression ratio as a DS (at most 16 characters). */
function dsRatio(r: number): string {
  return r >= 1000 ? r.toFixed(0) : r.toFixed(2).replace(/\.?0+$/, '');
}

/**
 * Writes masked frames back into a data set. Lossless inputs stay lossless: re-encoded in their own
 * syntax when an encoder reproduces the frames exactly (checked by decoding again), else written
 * native (Explicit VR Little Endian, or the source's native syntax). JPEG baseline inputs are
 * re-encoded as JPEG baseline with LossyImageCompressionRatio and Method extended by the new step;
 * other lossy inputs are written native with LossyImageCompression kept at 01.
 */
export function encodePixelData(ds: Dataset, image: PixelImage, nativeSyntax: string): EncodedPixelData {
  const d = image.desc;
  // Bit-packed sources are native (decodePixelData refuses them encapsulated), and are written so again.
  let target = image.bitPacked ? 'native' : targetFor(image.sourceSyntax, d);
  let encoded: Uint8Array[] | undefined;
  let photometric = d.photometric;
  if (target !== 'native') {
    try {
      // Encoders take interleaved samples.
      const interleaved = d.planarConfiguration === 1 ? image.frames.map((f) => toInterleaved(f, d)) : image.frames;
      const ed: PixelDescriptor = { ...d, planarConfiguration: 0 };
      encoded = interleaved.map((f) => {
        const r = encodeFrame(target as EncoderKind, ed, f);
        photometric = r.photometric;
        return r.encoded;
      });
      if (target !== 'jpeg-baseline') {
        // Prove the round trip exact before trusting the encoder with this image.
        const check: PixelDescriptor = { ...ed, photometric };
        encoded.forEach((e, i) => {
          if (!sameBytes(decodeFrame(ENCODED_SYNTAX[target as EncoderKind], check, e, i).pixels, interleaved[i])) throw new DeidError('DEID_ERR_PIXEL_ENCODE', 'round trip differs');
        });
      }
    } catch (e) {
      if (!(e instanceof DeidError) || (e.code !== 'DEID_ERR_PIXEL_ENCODE' && e.code !== 'DEID_ERR_PIXEL_DECODE')) throw e;
      target = 'native';
      encoded = undefined;
      photometric = d.photometric;
    }
  }

  let out = ds.filter((e) => e.tag !== TAG.ExtendedOffsetTable && e.tag !== TAG.ExtendedOffsetTableLengths);
  let transferSyntaxUID: string;
  let lossyRatio: number | undefined;
  const source = findElement(ds, TAG.PixelData)!;
  if (target === 'native' || !encoded) {
    transferSyntaxUID = isNativeSyntax(image.sourceSyntax) ? nativeSyntax : TS.ExplicitLE;
    const value = image.bitPacked ? packBits(image.frames, d) : concatFrames(image.frames, fullFrameBytes(d));
    const vr = d.bitsAllocated > 8 ? 'OW' : source.vr === 'OW' || source.vr === 'OB' ? source.vr : 'OB';
    out = withElement(out, { tag: TAG.PixelData, vr, value });
    out = withElement(out, cs(TAG.PhotometricInterpretation, 'CS', d.photometric));
    if (d.samplesPerPixel > 1) out = withElement(out, us(TAG.PlanarConfiguration, d.planarConfiguration));
  } else {
    transferSyntaxUID = ENCODED_SYNTAX[target];
    out = withElement(out, { tag: TAG.PixelData, vr: 'OB', fragments: buildFragments(encoded), undefinedLength: true });
    out = withElement(out, cs(TAG.PhotometricInterpretation, 'CS', photometric));
    if (d.samplesPerPixel > 1) out = withElement(out, us(TAG.PlanarConfiguration, 0));
    if (target === 'jpeg-baseline') {
      const bytes = encoded.reduce((s, e) => s + e.length, 0);
      lossyRatio = (fullFrameBytes(d) * encoded.length) / Math.max(bytes, 1);
      const ratios = rawString(findElement(ds, TAG.LossyImageCompressionRatio)?.value).split('\\').map((s) => s.trim()).filter(Boolean);
      const methods = rawString(findElement(ds, TAG.LossyImageCompressionMethod)?.value).split('\\').map((s) => s.trim()).filter(Boolean);
      // The history must stay aligned: if the source recorded ratios without methods (or the reverse), pad with what is known.
      while (methods.length < ratios.length) methods.push('ISO_10918_1');
      out = withElement(out, cs(TAG.LossyImageCompressionRatio, 'DS', [...ratios, dsRatio(lossyRatio)].join('\\')));
      out = withElement(out, cs(TAG.LossyImageCompressionMethod, 'CS', [...methods.slice(0, ratios.length), 'ISO_10918_1'].join('\\')));
    }
  }
  if (image.sourceLossy) out = withElement(out, cs(TAG.LossyImageCompression, 'CS', '01'));
  return { transferSyntaxUID, dataset: out, lossyRatio, encoding: encoded ? (target as EncoderKind) : 'native' };
}

/** Planar (RRR…GGG…BBB…) → interleaved (RGBRGB…), any sample width. */
export function toInterleaved(f: Uint8Array, d: PixelDescriptor): Uint8Array {
  const bps = d.bitsAllocated / 8;
  const n = d.rows * d.columns;
  const out = new Uint8Array(f.length);
  for (let s = 0; s < 3; s++) {
    for (let p = 0; p < n; p++) {
      const src = (s * n + p) * bps;
      const dst = (p * 3 + s) * bps;
      for (let b = 0; b < bps; b++) out[dst + b] = f[src + b];
    }
  }
  return out;
}
