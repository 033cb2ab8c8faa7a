/**
 * Tiny builders for synthetic data sets, so tests can state the few elements they are about inline.
 * Values given as strings are encoded as latin1 (ASCII or ISO_IR 100); pass bytes for any other
 * character set. Every value is padded to even length as PS3.5 requires.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeText, parseCharacterSet } from '../../src/dicom/charset.js';
import { tagForKeyword } from '../../src/dicom/dictionary.js';
import { findElement, type Dataset, type DicomFile, type Element, type Item } from '../../src/dicom/element.js';
import { TAG, formatTag, makeTag, parseTag, type Tag } from '../../src/dicom/tag.js';
import { TS, encodingOf } from '../../src/dicom/transfer-syntax.js';
import { padEven, rawString } from '../../src/dicom/values.js';
import { usesCharset } from '../../src/dicom/vr.js';
import { writeDicom } from '../../src/dicom/writer.js';
import { TESTDATA, corpusFile } from './corpus.js';
import { charsetOf } from '../../src/stages/identifiers.js';

export { REPO_ROOT } from './corpus.js';
export const TESTDATA_ROOT = TESTDATA;

/** A fixed site secret for tests (never a real one). */
export const SECRET = Buffer.from('test-secret-do-not-use-0123456789', 'utf8');

/** A tag given as a keyword ("PatientName"), a tag string ("(0010,0010)") or a number. */
export function tagOf(t: string | Tag): Tag {
  if (typeof t === 'number') return t >>> 0;
  const parsed = parseTag(t);
  if (parsed !== undefined) return parsed;
  const kw = tagForKeyword(t);
  if (kw === undefined) throw new Error(`unknown keyword or tag in test: ${t}`);
  return kw;
}

/** Bytes of a latin1 string (throws on characters latin1 cannot hold, so tests never encode by accident). */
export function latin1(s: string): Uint8Array {
  if ([...s].some((c) => c.charCodeAt(0) > 0xff)) throw new Error(`not latin1; pass bytes instead: ${JSON.stringify(s)}`);
  return Uint8Array.from(Buffer.from(s, 'latin1'));
}

export function utf8(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s, 'utf8'));
}

/** A primitive element. Strings are latin1; VR US/UL/SS/SL/FL/FD numbers can be given with `u16`/`u32`. */
export function el(tag: string | Tag, vr: string, value: string | Uint8Array = ''): Element {
  const bytes = typeof value === 'string' ? latin1(value) : value;
  return { tag: tagOf(tag), vr, value: padEven(bytes, vr) };
}

export function u16(...values: number[]): Uint8Array {
  const b = Buffer.alloc(values.length * 2);
  values.forEach((v, i) => b.writeUInt16LE(v, i * 2));
  return Uint8Array.from(b);
}

export function u32(...values: number[]): Uint8Array {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeUInt32LE(v, i * 4));
  return Uint8Array.from(b);
}

const sorted = (elements: readonly Element[]): Element[] => [...elements].sort((a, b) => a.tag - b.tag);

/** A sequence; each item is a list of elements (sorted for you). */
export function seq(tag: string | Tag, items: readonly (readonly Element[])[], undefinedLength = false): Element {
  const its: Item[] = items.map((elements) => ({ elements: sorted(elements), undefinedLength }));
  return { tag: tagOf(tag), vr: 'SQ', items: its, undefinedLength };
}

/**
 * A private block: the creator element (gggg,00bb) and the data elements (gggg,bbee).
 * `elements` are [element byte, VR, value].
 */
export function privateBlock(
  group: number,
  creator: string,
  block: number,
  elements: ReadonlyArray<readonly [number, string, string | Uint8Array | Element[][]]>,
): Element[] {
  if ((group & 1) === 0) throw new Error('private groups are odd');
  const out: Element[] = [el(makeTag(group, block), 'LO', creator)];
  for (const [e, vr, value] of elements) {
    const tag = makeTag(group, (block << 8) | e);
    out.push(Array.isArray(value) ? seq(tag, value as Element[][]) : el(tag, vr, value as string | Uint8Array));
  }
  return out;
}

/** Sorts and flattens elements (and arrays of them, as privateBlock returns) into a data set. */
export function dataset(...parts: ReadonlyArray<Element | readonly Element[]>): Element[] {
  const all = parts.flatMap((p) => (Array.isArray(p) ? (p as Element[]) : [p as Element]));
  const tags = new Set<number>();
  for (const e of all) {
    if (tags.has(e.tag)) throw new Error(`duplicate ${formatTag(e.tag)} in test data set`);
    tags.add(e.tag);
  }
  return sorted(all);
}

export const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';

/** A minimal CT-like object: identity, UIDs and a 2x2 image, plus whatever the test adds or overrides. */
export function baseDataset(extra: ReadonlyArray<Element | readonly Element[]> = [], n = 1): Element[] {
  const extras = extra.flatMap((p) => (Array.isArray(p) ? (p as Element[]) : [p as Element]));
  const overridden = new Set(extras.map((e) => e.tag));
  const base = [
    el('SOPClassUID', 'UI', CT_IMAGE_STORAGE),
    el('SOPInstanceUID', 'UI', `1.2.826.0.1.3680043.2.1125.1.${n}.1`),
    el('StudyDate', 'DA', '20200115'),
    el('Modality', 'CS', 'CT'),
    el('PatientName', 'PN', 'Smith^John'),
    el('PatientID', 'LO', 'PID12345'),
    el('PatientBirthDate', 'DA', '19700101'),
    el('StudyInstanceUID', 'UI', `1.2.826.0.1.3680043.2.1125.1.${n}.2`),
    el('SeriesInstanceUID', 'UI', `1.2.826.0.1.3680043.2.1125.1.${n}.3`),
    el('SamplesPerPixel', 'US', u16(1)),
    el('PhotometricInterpretation', 'CS', 'MONOCHROME2'),
    el('Rows', 'US', u16(2)),
    el('Columns', 'US', u16(2)),
    el('BitsAllocated', 'US', u16(16)),
    el('BitsStored', 'US', u16(12)),
    el('HighBit', 'US', u16(11)),
    el('PixelRepresentation', 'US', u16(0)),
    el('PixelData', 'OW', u16(1, 2, 3, 4)),
  ].filter((e) => !overridden.has(e.tag));
  return dataset(...base, ...extras);
}

/** A DicomFile around a data set (the writer builds the meta group from it). */
export function makeFile(ds: readonly Element[], transferSyntax: string = TS.ExplicitLE): DicomFile {
  const encoding = encodingOf(transferSyntax);
  if (!encoding) throw new Error(`unknown transfer syntax ${transferSyntax}`);
  return { meta: [], dataset: sorted(ds), transferSyntaxUID: transferSyntax, encoding };
}

/** Part 10 bytes of a data set, via writeDicom. */
export function makeBytes(ds: readonly Element[], transferSyntax: string = TS.ExplicitLE): Buffer {
  return writeDicom(makeFile(ds, transferSyntax));
}

/** Finds an element by a path of keywords/tags: get(ds, 'ReferencedImageSequence', 0, 'ReferencedSOPInstanceUID'). */
export function get(ds: Dataset, ...path: Array<string | Tag>): Element | undefined {
  let level: Dataset = ds;
  let found: Element | undefined;
  for (let i = 0; i < path.length; i++) {
    found = findElement(level, tagOf(path[i]));
    if (!found) return undefined;
    if (i + 1 < path.length) {
      const idx = typeof path[i + 1] === 'number' && (path[i + 1] as number) < 0x10000 ? (path[++i] as number) : 0;
      const item = found.items?.[idx];
      if (!item) return undefined;
      level = item.elements;
    }
  }
  return found;
}

/** The decoded text of a top-level (or nested, by path) element, with the data set's character set. */
export function text(ds: Dataset, ...path: Array<string | Tag>): string | undefined {
  const e = get(ds, ...path);
  if (!e) return undefined;
  if (!e.value) return '';
  const cs = charsetOf(ds);
  return usesCharset(e.vr) ? decodeText(e.value, cs, e.vr).replace(/[\0 ]+$/, '') : rawString(e.value);
}

/** Calls every element at every depth with its path of tags. */
export function walk(ds: Dataset, fn: (e: Element, path: readonly Tag[]) => void, path: readonly Tag[] = []): void {
  for (const e of ds) {
    const p = [...path, e.tag];
    fn(e, p);
    for (const item of e.items ?? []) walk(item.elements, fn, p);
  }
}

/** Every element at every depth. */
export function allElements(ds: Dataset): Element[] {
  const out: Element[] = [];
  walk(ds, (e) => out.push(e));
  return out;
}

export { TAG, parseCharacterSet };

/** The absolute path of a file in the shared corpus (../shared/testdata); fails clearly if it is missing. */
export const testDataFile = corpusFile;

/** A temporary folder with files written into it; `cleanup()` removes it. */
export function tempFolder(files: Record<string, string> = {}): { dir: string; path: (name: string) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'deid-test-'));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return { dir, path: (name) => join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The code of the DeidError (or any error with a string `code`) a function throws; undefined if it does not throw. */
export function thrownCode(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    const c = (e as { code?: unknown }).code;
    return typeof c === 'string' ? c : `not coded: ${String(e)}`;
  }
  return undefined;
}

/** The error a function throws (fails the test if it returns). */
export function thrown(f: () => unknown): Error & { code?: string } {
  try {
    f();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected the call to throw');
}
