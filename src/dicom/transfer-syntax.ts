import type { Encoding } from './element.js';

export const TS = {
  ImplicitLE: '1.2.840.10008.1.2',
  ExplicitLE: '1.2.840.10008.1.2.1',
  DeflatedExplicitLE: '1.2.840.10008.1.2.1.99',
  ExplicitBE: '1.2.840.10008.1.2.2',
  JPEGBaseline: '1.2.840.10008.1.2.4.50',
  JPEGExtended12: '1.2.840.10008.1.2.4.51',
  JPEGLossless57: '1.2.840.10008.1.2.4.57',
  JPEGLosslessSV1: '1.2.840.10008.1.2.4.70',
  JPEGLSLossless: '1.2.840.10008.1.2.4.80',
  JPEGLSNearLossless: '1.2.840.10008.1.2.4.81',
  JPEG2000Lossless: '1.2.840.10008.1.2.4.90',
  JPEG2000: '1.2.840.10008.1.2.4.91',
  RLELossless: '1.2.840.10008.1.2.5',
} as const;

/**
 * The encoding of a transfer syntax's data set, or undefined if it is not one we can read.
 * Every standard transfer syntax other than the three special ones is explicit VR little endian
 * with encapsulated pixel data.
 */
export function encodingOf(uid: string): Encoding | undefined {
  switch (uid) {
    case TS.ImplicitLE:
      return { explicitVR: false, littleEndian: true, deflated: false };
    case TS.ExplicitBE:
      return { explicitVR: true, littleEndian: false, deflated: false };
    case TS.DeflatedExplicitLE:
      return { explicitVR: true, littleEndian: true, deflated: true };
    default:
      return /^1\.2\.840\.10008\.1\.2\.\d+(\.\d+)*$/.test(uid) ? { explicitVR: true, littleEndian: true, deflated: false } : undefined;
  }
}

/** Native (not encapsulated) pixel data. */
export const isNativeSyntax = (uid: string): boolean =>
  uid === TS.ImplicitLE || uid === TS.ExplicitLE || uid === TS.ExplicitBE || uid === TS.DeflatedExplicitLE;

/** The transfer syntax a file is written in: big-endian and deflated input become explicit little endian. */
export function outputSyntaxFor(inputUid: string): string {
  return inputUid === TS.ExplicitBE || inputUid === TS.DeflatedExplicitLE ? TS.ExplicitLE : inputUid;
}
