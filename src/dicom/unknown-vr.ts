import { lookupTag } from './dictionary.js';
import type { Dataset, DicomFile, Element, Item } from './element.js';
import { isPrivateTag } from './tag.js';
import { isValidVR, swapWidth } from './vr.js';

/** Swaps the bytes of every `width`-byte value (big endian UN bytes to the little endian we write). */
function swapValues(bytes: Uint8Array, width: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i + width <= bytes.length; i += width) for (let j = 0; j < width; j++) out[i + j] = bytes[i + width - 1 - j];
  return out;
}

/** The dictionary VR a standard element sent as UN is read with, or undefined if there is no single one. */
function dictionaryVR(el: Element): string | undefined {
  if (el.vr !== 'UN' || !el.value || isPrivateTag(el.tag)) return undefined;
  const vr = lookupTag(el.tag)?.vr;
  // Alternatives ("OB or OW", "US or SS") stay UN, and so do sequences the reader could not parse as items.
  return vr && vr !== 'UN' && vr !== 'SQ' && isValidVR(vr) ? vr : undefined;
}

/** The file with its standard UN elements read with their dictionary VRs; itself when the reader met no UN. */
export function withDictionaryVRsOf(file: DicomFile): DicomFile {
  if (file.hasUN === false) return file;
  const dataset = withDictionaryVRs(file.dataset, file.encoding.littleEndian);
  return dataset === file.dataset ? file : { ...file, dataset, hasUN: false };
}

/**
 * Reads standard attributes that a file sent as UN with the VR the dictionary gives them (PS3.5 6.2.2
 * lets a receiver do so): a SOP Instance UID or a PatientName coded UN is then handled as the UI or PN it
 * is, rather than as opaque bytes that a dummy would overwrite with zeros. Values keep their bytes
 * (swapped to little endian for a big endian source). Returns the same array when nothing is UN.
 */
export function withDictionaryVRs(ds: Dataset, littleEndian: boolean): Dataset {
  let out: Element[] | undefined;
  for (let i = 0; i < ds.length; i++) {
    const el = ds[i];
    let next = el;
    if (el.items) {
      let items: Item[] | undefined;
      el.items.forEach((item, j) => {
        const elements = withDictionaryVRs(item.elements, littleEndian);
        if (elements !== item.elements) (items ??= el.items!.slice(0, j)).push({ ...item, elements });
        else items?.push(item);
      });
      if (items) next = { ...el, items };
    } else {
      const vr = dictionaryVR(el);
      if (vr) {
        const w = littleEndian ? 0 : swapWidth(vr);
        next = { tag: el.tag, vr, value: w > 1 ? swapValues(el.value!, w) : el.value };
      }
    }
    if (next !== el) (out ??= ds.slice(0, i)).push(next);
    else out?.push(el);
  }
  return out ?? ds;
}
