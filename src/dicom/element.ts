import type { Tag } from './tag.js';

/**
 * The lossless element model. Values are kept as raw bytes (little-endian; big-endian input is swapped
 * on read) so that anything no rule touches is written back byte for byte.
 */
export interface Element {
  readonly tag: Tag;
  /** The VR as the file gave it (explicit) or as the dictionary gives it (implicit); 'UN' if unknown. */
  readonly vr: string;
  /** Raw value bytes for everything but sequences and encapsulated pixel data. */
  readonly value?: Uint8Array;
  /** Items of a sequence: VR SQ, or UN / unknown implicit elements parsed per CP-246. */
  readonly items?: readonly Item[];
  /** Encapsulated pixel data: fragments[0] is the basic offset table (possibly empty). */
  readonly fragments?: readonly Uint8Array[];
  /** The source used undefined length; writing keeps it. */
  readonly undefinedLength?: boolean;
  /** Items are encoded implicit VR little endian whatever the transfer syntax (UN sequences, CP-246). */
  readonly implicitItems?: boolean;
}

export interface Item {
  readonly elements: readonly Element[];
  readonly undefinedLength: boolean;
}

/** A data set or item content: elements in ascending tag order. */
export type Dataset = readonly Element[];

export interface Encoding {
  readonly explicitVR: boolean;
  readonly littleEndian: boolean;
  readonly deflated: boolean;
}

export interface DicomFile {
  /** The 128-byte preamble, when the file had one. */
  readonly preamble?: Uint8Array;
  /** File meta information (group 0002); empty for a bare data set. */
  readonly meta: Dataset;
  readonly dataset: Dataset;
  /** Transfer syntax of the data set as read (for bare data sets: the one detected). */
  readonly transferSyntaxUID: string;
  readonly encoding: Encoding;
  /** Set by the reader: whether some element was sent with VR UN (withDictionaryVRs has work then). */
  readonly hasUN?: boolean;
}

export function findElement(ds: Dataset, tag: Tag): Element | undefined {
  // Data sets are small and sorted; a binary search keeps large ones cheap.
  let lo = 0;
  let hi = ds.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const t = ds[mid].tag;
    if (t === tag) return ds[mid];
    if (t < tag) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

/** Returns a new data set with `el` inserted or replacing the element of the same tag. */
export function withElement(ds: Dataset, el: Element): Element[] {
  const out = ds.filter((e) => e.tag !== el.tag);
  let i = out.length;
  while (i > 0 && out[i - 1].tag > el.tag) i--;
  out.splice(i, 0, el);
  return out;
}

/** withElement for several elements of distinct tags: one copy of the data set instead of one each. */
export function withElements(ds: Dataset, els: readonly Element[]): Element[] {
  const tags = new Set(els.map((e) => e.tag));
  const out = ds.filter((e) => !tags.has(e.tag));
  for (const el of els) {
    let i = out.length;
    while (i > 0 && out[i - 1].tag > el.tag) i--;
    out.splice(i, 0, el);
  }
  return out;
}

export function sortByTag(elements: Element[]): Element[] {
  return elements.sort((a, b) => a.tag - b.tag);
}
