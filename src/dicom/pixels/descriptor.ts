import { DeidError } from '../../errors.js';
import { findElement, type Dataset } from '../element.js';
import { rawString, uint16Value } from '../values.js';
import { TAG } from '../tag.js';

/** The Image Pixel module attributes that describe how the samples of Pixel Data are laid out. */
export interface PixelDescriptor {
  readonly rows: number;
  readonly columns: number;
  readonly samplesPerPixel: number;
  readonly bitsAllocated: number;
  readonly bitsStored: number;
  readonly highBit: number;
  /** 0 unsigned, 1 two's complement. */
  readonly pixelRepresentation: number;
  /** 0 interleaved (R1G1B1R2…), 1 planar (R…G…B…); 0 for one sample. */
  readonly planarConfiguration: number;
  readonly photometric: string;
  readonly frames: number;
}

/** Photometric interpretations the pixel stage can render and mask. */
const SUPPORTED_PHOTOMETRIC = new Set(['MONOCHROME1', 'MONOCHROME2', 'RGB', 'YBR_FULL', 'YBR_FULL_422', 'YBR_RCT', 'YBR_ICT', 'YBR_PARTIAL_422', 'YBR_PARTIAL_420', 'PALETTE COLOR']);

function unsupported(detail: string): never {
  throw new DeidError('DEID_ERR_PIXEL_UNSUPPORTED', detail);
}

/**
 * Reads and checks the pixel description of a data set. Anything missing or outside what the standard
 * allows is refused with DEID_ERR_PIXEL_UNSUPPORTED: guessing a layout could mask the wrong pixels.
 */
export function readPixelDescriptor(ds: Dataset): PixelDescriptor {
  const us = (tag: number, name: string, required = true): number | undefined => {
    const v = uint16Value(findElement(ds, tag));
    if (v === undefined && required) unsupported(`${name} is missing`);
    return v;
  };
  const rows = us(TAG.Rows, 'Rows')!;
  const columns = us(TAG.Columns, 'Columns')!;
  const samplesPerPixel = us(TAG.SamplesPerPixel, 'SamplesPerPixel')!;
  const bitsAllocated = us(TAG.BitsAllocated, 'BitsAllocated')!;
  const bitsStored = us(TAG.BitsStored, 'BitsStored', false) ?? bitsAllocated;
  const highBit = us(TAG.HighBit, 'HighBit', false) ?? bitsStored - 1;
  const pixelRepresentation = us(TAG.PixelRepresentation, 'PixelRepresentation', false) ?? 0;
  const planarConfiguration = samplesPerPixel > 1 ? (us(TAG.PlanarConfiguration, 'PlanarConfiguration', false) ?? 0) : 0;
  const photometric = rawString(findElement(ds, TAG.PhotometricInterpretation)?.value).trim().toUpperCase();
  const nfText = rawString(findElement(ds, TAG.NumberOfFrames)?.value).trim();
  const frames = nfText === '' ? 1 : /^\+?\d+$/.test(nfText) ? Number(nfText) : NaN;

  if (rows === 0 || columns === 0) unsupported('Rows or Columns is zero');
  if (!Number.isInteger(frames) || frames < 1) unsupported('NumberOfFrames is not a positive integer');
  if (samplesPerPixel !== 1 && samplesPerPixel !== 3) unsupported(`SamplesPerPixel ${samplesPerPixel}`);
  // One bit per pixel (segmentations, scanned documents): a monochrome bitmap, as the standard allows it.
  if (bitsAllocated === 1 && (samplesPerPixel !== 1 || bitsStored !== 1 || highBit !== 0 || pixelRepresentation !== 0)) unsupported('BitsAllocated 1 other than a one-sample bitmap (BitsStored 1, HighBit 0, unsigned)');
  if (bitsAllocated !== 1 && bitsAllocated !== 8 && bitsAllocated !== 16 && bitsAllocated !== 32) unsupported(`BitsAllocated ${bitsAllocated}`);
  if (bitsStored < 1 || bitsStored > bitsAllocated) unsupported(`BitsStored ${bitsStored} with BitsAllocated ${bitsAllocated}`);
  if (highBit >= bitsAllocated || highBit < bitsStored - 1) unsupported(`HighBit ${highBit} with BitsStored ${bitsStored}`);
  if (pixelRepresentation !== 0 && pixelRepresentation !== 1) unsupported(`PixelRepresentation ${pixelRepresentation}`);
  if (planarConfiguration !== 0 && planarConfiguration !== 1) unsupported(`PlanarConfiguration ${planarConfiguration}`);
  // As the value may be shown in a message: defined terms' characters only, and short.
  const shown = photometric.replace(/[^A-Z0-9_ ]/g, '').slice(0, 20);
  if (bitsAllocated === 1 && !photometric.startsWith('MONOCHROME')) unsupported(`PhotometricInterpretation ${shown} with BitsAllocated 1`);
  if (!SUPPORTED_PHOTOMETRIC.has(photometric)) unsupported(`PhotometricInterpretation "${shown}"`);
  const mono = photometric.startsWith('MONOCHROME') || photometric === 'PALETTE COLOR';
  if (mono !== (samplesPerPixel === 1)) unsupported(`PhotometricInterpretation ${photometric} with ${samplesPerPixel} sample(s) per pixel`);
  return { rows, columns, samplesPerPixel, bitsAllocated, bitsStored, highBit, pixelRepresentation, planarConfiguration, photometric, frames };
}

/** Bytes of one native frame as stored: YBR_FULL_422 keeps two luma and one pair of chroma samples per two pixels. */
export function frameBytes(d: PixelDescriptor): number {
  const bytesPerSample = d.bitsAllocated / 8;
  if (d.photometric === 'YBR_FULL_422' && d.samplesPerPixel === 3) return d.rows * d.columns * 2 * bytesPerSample;
  return d.rows * d.columns * d.samplesPerPixel * bytesPerSample;
}

/** Bytes of one frame in memory, fully sampled. */
export const fullFrameBytes = (d: PixelDescriptor): number => d.rows * d.columns * d.samplesPerPixel * (d.bitsAllocated / 8);
