import { DeidError } from '../errors.js';
import { findElement } from './element.js';
import { hasPart10Preamble, readMetaGroup } from './reader.js';
import { TAG } from './tag.js';
import { rawString } from './values.js';

/** What a C-STORE needs from a Part 10 file's meta group, and where its data set starts. */
export interface Part10Parts {
  readonly transferSyntaxUid?: string;
  readonly sopClassUid?: string;
  readonly sopInstanceUid?: string;
  /** Offset of the first byte after group 0002 (the data set, exactly as stored). */
  readonly datasetOffset: number;
}

/**
 * Reads the meta group of a Part 10 file without touching the data set. Returns undefined when
 * there is no preamble + DICM or the group is cut short.
 */
export function splitPart10(bytes: Uint8Array): Part10Parts | undefined {
  if (!hasPart10Preamble(bytes)) return undefined;
  let group: ReturnType<typeof readMetaGroup>;
  try {
    group = readMetaGroup(bytes);
  } catch (e) {
    if (e instanceof DeidError) return undefined;
    throw e;
  }
  const uid = (tag: number) => rawString(findElement(group.meta, tag)?.value) || undefined;
  return {
    transferSyntaxUid: uid(TAG.TransferSyntaxUID),
    sopClassUid: uid(TAG.MediaStorageSOPClassUID),
    sopInstanceUid: uid(TAG.MediaStorageSOPInstanceUID),
    datasetOffset: group.datasetOffset,
  };
}
