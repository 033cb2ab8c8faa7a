import type { DicomFile, Element } from '../../src/dicom/element.js';
import { sortByTag } from '../../src/dicom/element.js';
import { TS } from '../../src/dicom/transfer-syntax.js';
import { asciiBytes } from '../../src/dicom/values.js';
import type { PixelSettings } from '../../src/profiles/pixel-settings.js';

/** Small synthetic images for the pixel stage tests. */
export interface ImageSpec {
  rows: number;
  columns: number;
  samplesPerPixel?: number;
  bitsAllocated: number;
  bitsStored?: number;
  highBit?: number;
  pixelRepresentation?: number;
  planarConfiguration?: number;
  photometric: string;
  frames?: number;
  modality?: string;
  /** Secondary Capture by default. */
  sopClassUid?: string;
  /** Raw Pixel Data bytes (little endian); defaults to a ramp. */
  pixelData?: Uint8Array;
  extra?: Element[];
}

export const txt = (tag: number, vr: string, s: string): Element => ({ tag, vr, value: asciiBytes(s, vr) });
export const us = (tag: number, v: number): Element => ({ tag, vr: 'US', value: Uint8Array.of(v & 0xff, v >> 8) });

export function imageFile(spec: ImageSpec, transferSyntaxUID: string = TS.ExplicitLE): DicomFile {
  const spp = spec.samplesPerPixel ?? 1;
  const frames = spec.frames ?? 1;
  const bytes = spec.photometric === 'YBR_FULL_422' ? spec.rows * spec.columns * 2 : spec.rows * spec.columns * spp * (spec.bitsAllocated / 8);
  const pixelData =
    spec.pixelData ??
    (() => {
      const p = new Uint8Array(bytes * frames);
      for (let i = 0; i < p.length; i++) p[i] = (i * 7 + 13) & 0xff;
      return p;
    })();
  const ds: Element[] = [
    txt(0x00080016, 'UI', spec.sopClassUid ?? '1.2.840.10008.5.1.4.1.1.7'),
    txt(0x00080018, 'UI', '1.2.3.4.5.6.7.8'),
    txt(0x00080060, 'CS', spec.modality ?? 'OT'),
    txt(0x00100010, 'PN', 'DOE^JOHN'),
    txt(0x00100020, 'LO', 'MRN123456'),
    us(0x00280002, spp),
    txt(0x00280004, 'CS', spec.photometric),
    ...(spp > 1 ? [us(0x00280006, spec.planarConfiguration ?? 0)] : []),
    ...(frames > 1 ? [txt(0x00280008, 'IS', String(frames))] : []),
    us(0x00280010, spec.rows),
    us(0x00280011, spec.columns),
    us(0x00280100, spec.bitsAllocated),
    us(0x00280101, spec.bitsStored ?? spec.bitsAllocated),
    us(0x00280102, spec.highBit ?? (spec.bitsStored ?? spec.bitsAllocated) - 1),
    us(0x00280103, spec.pixelRepresentation ?? 0),
    { tag: 0x7fe00010, vr: spec.bitsAllocated > 8 ? 'OW' : 'OB', value: pixelData },
    ...(spec.extra ?? []),
  ];
  return {
    meta: [],
    dataset: sortByTag(ds),
    transferSyntaxUID,
    encoding: { explicitVR: transferSyntaxUID !== TS.ImplicitLE, littleEndian: true, deflated: false },
  };
}

/** Pixel settings for tests: signature regions only (no OCR) unless said otherwise. */
export function pixelSettings(over: Partial<PixelSettings> = {}): PixelSettings {
  return {
    mode: 'all-text',
    scope: 'all',
    modalities: new Set(['US', 'OT']),
    sopClasses: new Set(),
    ocr: false,
    ultrasoundRegions: false,
    margin: 3,
    minConfidence: 30,
    signatures: [],
    ...over,
  };
}
