import dcmjsCodecs from 'dcmjs-codecs';
import { DeidError } from '../../errors.js';
import { TS } from '../transfer-syntax.js';
import type { PixelDescriptor } from './descriptor.js';

/**
 * A thin wrapper over dcmjs-codecs' per-frame native codecs (a WebAssembly build of libjpeg, CharLS,
 * OpenJPEG, OpenJPH and an RLE codec). We never use its Transcoder: that goes through dcmjs's
 * naturalized datasets and loses private elements. Frames in, frames out.
 *
 * The wasm module is a process-wide (per-thread) singleton and is synchronous once initialised.
 */
const { NativeCodecs, Context, log, constants } = dcmjsCodecs;

export const TS_HTJ2K_LOSSLESS = '1.2.840.10008.1.2.4.201';
export const TS_HTJ2K_LOSSLESS_RPCL = '1.2.840.10008.1.2.4.202';
export const TS_HTJ2K = '1.2.840.10008.1.2.4.203';

type DecoderName = 'decodeRle' | 'decodeJpeg' | 'decodeJpegLs' | 'decodeJpeg2000' | 'decodeHtJpeg2000';

/** Encapsulated syntaxes we decode, and whether each is lossy. */
const DECODERS: Record<string, { fn: DecoderName; lossy: boolean; jpeg?: boolean }> = {
  [TS.RLELossless]: { fn: 'decodeRle', lossy: false },
  [TS.JPEGBaseline]: { fn: 'decodeJpeg', lossy: true, jpeg: true },
  [TS.JPEGExtended12]: { fn: 'decodeJpeg', lossy: true, jpeg: true },
  [TS.JPEGLossless57]: { fn: 'decodeJpeg', lossy: false, jpeg: true },
  [TS.JPEGLosslessSV1]: { fn: 'decodeJpeg', lossy: false, jpeg: true },
  [TS.JPEGLSLossless]: { fn: 'decodeJpegLs', lossy: false, jpeg: true },
  [TS.JPEGLSNearLossless]: { fn: 'decodeJpegLs', lossy: true, jpeg: true },
  [TS.JPEG2000Lossless]: { fn: 'decodeJpeg2000', lossy: false },
  [TS.JPEG2000]: { fn: 'decodeJpeg2000', lossy: true },
  [TS_HTJ2K_LOSSLESS]: { fn: 'decodeHtJpeg2000', lossy: false },
  [TS_HTJ2K_LOSSLESS_RPCL]: { fn: 'decodeHtJpeg2000', lossy: false },
  [TS_HTJ2K]: { fn: 'decodeHtJpeg2000', lossy: true },
};

export const canDecode = (ts: string): boolean => ts in DECODERS;
export const isLossySyntax = (ts: string): boolean => DECODERS[ts]?.lossy ?? false;
/** Syntaxes whose frames end with a JPEG-family EOI marker (FFD9), used to split fragments into frames. */
export const endsWithEoi = (ts: string): boolean => DECODERS[ts]?.jpeg === true || DECODERS[ts]?.fn === 'decodeJpeg2000' || DECODERS[ts]?.fn === 'decodeHtJpeg2000';

let ready: Promise<void> | undefined;

/** Initialises the wasm codecs once per thread; every decode/encode needs it. */
export function initCodecs(): Promise<void> {
  ready ??= (async () => {
    // The library logs through loglevel; keep it quiet (its messages can quote nothing of ours, but they are noise).
    log.setLevel('silent');
    await NativeCodecs.initializeAsync({ logCodecsInfo: false, logCodecsTrace: false });
  })();
  return ready;
}

function ensureReady(): void {
  if (!NativeCodecs.isInitialized()) throw new DeidError('DEID_ERR_INTERNAL', 'pixel codecs used before initCodecs()');
}

function context(d: PixelDescriptor, buffers: { encoded?: Uint8Array; decoded?: Uint8Array }) {
  return new Context({
    width: d.columns,
    height: d.rows,
    bitsAllocated: d.bitsAllocated,
    bitsStored: d.bitsStored,
    samplesPerPixel: d.samplesPerPixel,
    pixelRepresentation: d.pixelRepresentation,
    planarConfiguration: d.planarConfiguration,
    photometricInterpretation: d.photometric,
    encodedBuffer: buffers.encoded,
    decodedBuffer: buffers.decoded,
  });
}

export interface DecodedFrame {
  /** Little-endian samples; interleaved unless planarConfiguration is 1. */
  readonly pixels: Uint8Array;
  /** The photometric interpretation of `pixels` (JPEG YCbCr comes out as RGB). */
  readonly photometric: string;
  readonly planarConfiguration: number;
}

/** A JPEG-family codestream is complete only if it ends with EOI (FF D9), possibly followed by one pad byte. */
function hasEndMarker(b: Uint8Array): boolean {
  for (let i = b.length - 2, stop = Math.max(0, b.length - 4); i >= stop; i--) if (b[i] === 0xff && b[i + 1] === 0xd9) return true;
  return false;
}

/**
 * Decodes one encapsulated frame. Fails closed with DEID_ERR_PIXEL_DECODE on anything suspicious: a codec
 * error or wasm trap, a truncated JPEG (libjpeg fills the missing rows silently), or a decoded size that
 * does not match Rows × Columns × Samples × BitsAllocated.
 */
export function decodeFrame(ts: string, d: PixelDescriptor, encoded: Uint8Array, frameIndex: number): DecodedFrame {
  ensureReady();
  const dec = DECODERS[ts];
  if (!dec) throw new DeidError('DEID_ERR_PIXEL_UNSUPPORTED', `no decoder for transfer syntax ${ts}`);
  if (encoded.length === 0) throw new DeidError('DEID_ERR_PIXEL_DECODE', `frame ${frameIndex} is empty`);
  if (dec.fn !== 'decodeRle' && !hasEndMarker(encoded)) throw new DeidError('DEID_ERR_PIXEL_DECODE', `frame ${frameIndex} is truncated (no end marker)`);
  const expected = d.rows * d.columns * d.samplesPerPixel * (d.bitsAllocated / 8);
  let out;
  try {
    const params = dec.fn === 'decodeJpeg' ? { convertColorspaceToRgb: d.samplesPerPixel === 3 && d.photometric !== 'RGB' } : {};
    out = NativeCodecs[dec.fn](context(d, { encoded }), params);
  } catch (e) {
    // Codec messages can be long and technical; keep the first line only (they never quote element values).
    const msg = e instanceof Error ? e.message : String(e);
    throw new DeidError('DEID_ERR_PIXEL_DECODE', `frame ${frameIndex}: ${msg.split('\n')[0].replace(/[^\x20-\x7e]/g, '').slice(0, 120)}`);
  }
  const pixels = out.getDecodedBuffer();
  if (!pixels || pixels.length !== expected) {
    throw new DeidError('DEID_ERR_PIXEL_DECODE', `frame ${frameIndex} decoded to ${pixels?.length ?? 0} bytes, expected ${expected}`);
  }
  if (out.getWidth() !== d.columns || out.getHeight() !== d.rows) throw new DeidError('DEID_ERR_PIXEL_DECODE', `frame ${frameIndex}: codestream size differs from Rows/Columns`);
  let photometric = out.getPhotometricInterpretation() ?? d.photometric;
  // J2K's reversible/irreversible colour transforms are undone by the decoder: the samples are RGB.
  if (photometric === 'YBR_RCT' || photometric === 'YBR_ICT') photometric = 'RGB';
  // Copy out of the wasm heap view so that the next call cannot overwrite it.
  return { pixels: new Uint8Array(pixels), photometric, planarConfiguration: out.getPlanarConfiguration() ?? 0 };
}

export type EncoderKind = 'rle' | 'jpeg-lossless' | 'jpeg-ls' | 'j2k' | 'htj2k' | 'jpeg-baseline';

export const ENCODED_SYNTAX: Record<EncoderKind, string> = {
  rle: TS.RLELossless,
  'jpeg-lossless': TS.JPEGLosslessSV1,
  'jpeg-ls': TS.JPEGLSLossless,
  j2k: TS.JPEG2000Lossless,
  htj2k: TS_HTJ2K_LOSSLESS,
  'jpeg-baseline': TS.JPEGBaseline,
};

export interface EncodedFrame {
  readonly encoded: Uint8Array;
  readonly photometric: string;
}

/** Encodes one native frame (interleaved, little-endian). JPEG baseline is lossy and 8-bit only. */
export function encodeFrame(kind: EncoderKind, d: PixelDescriptor, pixels: Uint8Array, quality = 95): EncodedFrame {
  ensureReady();
  const ctx = context(d, { decoded: pixels });
  let out;
  try {
    switch (kind) {
      case 'rle':
        out = NativeCodecs.encodeRle(ctx, {});
        break;
      case 'jpeg-lossless':
        out = NativeCodecs.encodeJpeg(ctx, { lossy: false, predictor: 1, pointTransform: 0 });
        break;
      case 'jpeg-ls':
        out = NativeCodecs.encodeJpegLs(ctx, { lossy: false });
        break;
      case 'j2k':
        out = NativeCodecs.encodeJpeg2000(ctx, { lossy: false, allowMct: false } as { lossy: boolean });
        break;
      case 'htj2k':
        out = NativeCodecs.encodeHtJpeg2000(ctx, { lossy: false, allowMct: false } as { lossy: boolean });
        break;
      case 'jpeg-baseline':
        // 4:4:4 sampling: masks stay sharp-edged and nothing of the neighbourhood bleeds into them.
        out = NativeCodecs.encodeJpeg(ctx, { lossy: true, quality, predictor: 0, pointTransform: 0, sampleFactor: constants.JpegSampleFactor.Sf444 });
        break;
    }
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new DeidError('DEID_ERR_PIXEL_ENCODE', `${kind}: ${msg.split('\n')[0].replace(/[^\x20-\x7e]/g, '').slice(0, 120)}`);
  }
  const encoded = out.getEncodedBuffer();
  if (!encoded || encoded.length === 0) throw new DeidError('DEID_ERR_PIXEL_ENCODE', `${kind}: empty output`);
  // libjpeg converts RGB to YCbCr for lossy JPEG; the data set must then say YBR_FULL.
  const photometric = kind === 'jpeg-baseline' && d.samplesPerPixel === 3 ? 'YBR_FULL' : d.photometric;
  return { encoded: new Uint8Array(encoded), photometric };
}
