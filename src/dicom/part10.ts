import { DeidError } from '../errors.js';
import { findElement, type DicomFile } from './element.js';
import { hasPart10Preamble, readDicom, readMetaGroup, type ReadOptions } from './reader.js';
import type { ScratchBuffer } from './scratch-buffer.js';
import { TAG } from './tag.js';
import { rawString } from './values.js';
import { writeDicom } from './writer.js';

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

/**
 * One Part 10 object, known by its parsed elements, its encoded bytes, or both. Each form is made from
 * the other at most once, when it is first needed, so that an object handed from stage to stage is
 * parsed once and written once.
 */
export class Part10 {
  private constructor(
    private parsed: DicomFile | undefined,
    private bytes: Buffer | undefined,
    private readonly read: ReadOptions,
  ) {}

  /** An object as elements (a stage's output): encoded on first need. */
  static ofFile(file: DicomFile): Part10 {
    return new Part10(file, undefined, {});
  }

  /** An object as bytes (received, or read from the store): parsed on first need, within the read options. */
  static ofBytes(bytes: Uint8Array, read: ReadOptions = {}): Part10 {
    return new Part10(undefined, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), read);
  }

  /** An object known in both forms (they must be of the same object: `file` parsed from `bytes`). */
  static of(file: DicomFile, bytes: Uint8Array): Part10 {
    return new Part10(file, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), {});
  }

  /** The elements; parsing throws a coded error for anything that is not complete DICOM. */
  get file(): DicomFile {
    return (this.parsed ??= readDicom(this.bytes!, this.read));
  }

  /** The bytes this object was made from, or its elements written once (into `scratch` when given). */
  encode(opts: { scratch?: ScratchBuffer } = {}): Buffer {
    return (this.bytes ??= writeDicom(this.parsed!, { scratch: opts.scratch }));
  }

  /** The bytes, when the object has been encoded (or was made from bytes). */
  get encoded(): Buffer | undefined {
    return this.bytes;
  }
}
