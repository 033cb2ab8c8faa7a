/**
 * A readable, deterministic listing of a Part 10 object for golden files: one line per element at
 * every depth (items indented), text values decoded, binary values by length and a hash prefix.
 */
import { createHash } from 'node:crypto';
import type { CharacterSet } from '../../src/dicom/charset.js';
import { keywordOf } from '../../src/dicom/dictionary.js';
import type { Dataset } from '../../src/dicom/element.js';
import { readDicom } from '../../src/dicom/reader.js';
import { formatTag } from '../../src/dicom/tag.js';
import { textValue } from '../../src/dicom/values.js';
import { isTextVR } from '../../src/dicom/vr.js';
import { charsetOf } from '../../src/stages/identifiers.js';

const hash = (b: Uint8Array) => createHash('sha256').update(b).digest('hex').slice(0, 16);

function binary(v: Uint8Array): string {
  if (v.length <= 8) return `[${Buffer.from(v).toString('hex')}]`;
  return `<${v.length} bytes sha256:${hash(v)}>`;
}

function lines(ds: Dataset, depth: number, inherited: CharacterSet, out: string[]): void {
  const cs = ds.some((e) => e.tag === 0x00080005) ? charsetOf(ds) : inherited;
  const pad = '  '.repeat(depth);
  for (const el of ds) {
    const head = `${pad}${formatTag(el.tag)} ${el.vr} ${keywordOf(el.tag) ?? '?'}`;
    if (el.items) {
      out.push(`${head} (${el.items.length} item${el.items.length === 1 ? '' : 's'}${el.undefinedLength ? ', undefined length' : ''})`);
      el.items.forEach((item, i) => {
        out.push(`${pad}  item ${i + 1}`);
        lines(item.elements, depth + 2, cs, out);
      });
    } else if (el.fragments) {
      out.push(`${head} ${el.fragments.length} fragments ${el.fragments.map((f) => binary(f)).join(' ')}`);
    } else if (!el.value || el.value.length === 0) {
      out.push(`${head} (empty)`);
    } else if (isTextVR(el.vr)) {
      out.push(`${head} ${JSON.stringify(textValue(el, cs))}`);
    } else {
      out.push(`${head} ${binary(el.value)}`);
    }
  }
}

export function goldenListing(part10: Uint8Array): string {
  const f = readDicom(part10);
  const out = [`transfer syntax ${f.transferSyntaxUID}`, `${part10.length} bytes sha256:${hash(part10)}`, 'meta:'];
  lines(f.meta, 1, charsetOf(f.dataset), out);
  out.push('data set:');
  lines(f.dataset, 1, charsetOf(f.dataset), out);
  return out.join('\n') + '\n';
}
