/**
 * Writing imported profiles and signature lists as YAML that a person can review line by line: one
 * rule per line in flow style (like the generated basic profile), each with a comment naming the CTP
 * line it came from. Strings are written as JSON strings, which YAML reads as double-quoted scalars.
 */

const PLAIN = /^[A-Za-z][A-Za-z0-9_-]*$/;
const RESERVED = new Set(['true', 'false', 'null', 'yes', 'no', 'on', 'off', 'y', 'n', '~']);

export function flow(v: unknown): string {
  if (typeof v === 'string') return PLAIN.test(v) && !RESERVED.has(v.toLowerCase()) ? v : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(flow).join(', ')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined);
    return entries.length ? `{ ${entries.map(([k, x]) => `${PLAIN.test(k) ? k : JSON.stringify(k)}: ${flow(x)}`).join(', ')} }` : '{}';
  }
  return 'null';
}

/** A YAML comment block; each line prefixed, newlines inside a line flattened. */
export function comment(lines: readonly string[]): string {
  return lines.map((l) => `#${l ? ' ' : ''}${l.replace(/\s*[\r\n]+\s*/g, ' ')}`).join('\n');
}

/** Groups items that share a note: "lines 12, 17, 20: note", so long lists stay readable; a single item names its entry. */
export function groupedByNote(items: ReadonlyArray<{ line: number; note?: string; entry?: string }>): string[] {
  const byNote = new Map<string, Array<{ line: number; entry?: string }>>();
  for (const i of items) {
    const k = i.note ?? '';
    const list = byNote.get(k);
    if (list) list.push(i);
    else byNote.set(k, [i]);
  }
  return [...byNote].map(([note, list]) =>
    list.length === 1 ? `line ${list[0].line}: ${list[0].entry ? `${list[0].entry} — ` : ''}${note}` : `lines ${list.map((i) => i.line).join(', ')}: ${note}`,
  );
}

/**
 * A document whose top-level keys are written in order; `listKey` is written as a block list with
 * one flow item per line and an optional trailing comment per item.
 */
export function yamlDocument(
  header: readonly string[],
  fields: ReadonlyArray<readonly [string, unknown]>,
  listKey: string,
  items: ReadonlyArray<{ readonly value: unknown; readonly comment?: string }>,
): string {
  const out: string[] = [];
  if (header.length) out.push(comment(header));
  for (const [k, v] of fields) if (v !== undefined) out.push(`${k}: ${flow(v)}`);
  out.push(`${listKey}:`);
  for (const it of items) out.push(`  - ${flow(it.value)}${it.comment ? `   ${comment([it.comment])}` : ''}`);
  return out.join('\n') + '\n';
}

/** A list of signatures in block style, each preceded by a comment naming its CTP line. */
export function signaturesDocument(header: readonly string[], items: ReadonlyArray<{ readonly signature: Readonly<Record<string, unknown>>; readonly comment: string }>): string {
  const out: string[] = [];
  if (header.length) out.push(comment(header));
  out.push('signatures:');
  for (const { signature, comment: c } of items) {
    out.push(`  ${comment([c])}`);
    Object.entries(signature)
      .filter(([, v]) => v !== undefined)
      .forEach(([k, v], i) => out.push(`  ${i === 0 ? '-' : ' '} ${k}: ${flow(v)}`));
  }
  return out.join('\n') + '\n';
}
