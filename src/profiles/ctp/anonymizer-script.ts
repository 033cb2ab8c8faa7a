/**
 * Reading RSNA CTP DicomAnonymizer scripts: the XML form CTP writes (`<script>` with `<p>` parameters,
 * `<e>` element rules, `<k>` keep and `<r>` remove group rules) — the same form as its anonymizer
 * profiles (DICOM-PS3.15-Basic, TCIA-Basic) — and the lookup tables (`LookupTable.properties`).
 * Every entry keeps its line number, so a translation can account for each one.
 */

export interface ScriptParam {
  readonly line: number;
  readonly name: string;
  readonly value: string;
}

export interface ElementEntry {
  readonly line: number;
  readonly enabled: boolean;
  /** The `t` attribute as written: `ggggeeee`, or `gggg[CREATOR]ee` for a private element. */
  readonly tag: string;
  readonly name: string;
  readonly script: string;
}

/** `<k>`: keep a group (`t="0018"`) or the safe private elements (`t="safeprivateelements"`). */
export interface KeepEntry {
  readonly line: number;
  readonly enabled: boolean;
  readonly target: string;
}

/** `<r>`: remove curves, overlays, private groups or unspecified elements. */
export interface RemoveEntry {
  readonly line: number;
  readonly enabled: boolean;
  readonly target: string;
}

export interface AnonymizerScript {
  readonly params: readonly ScriptParam[];
  readonly elements: readonly ElementEntry[];
  readonly keeps: readonly KeepEntry[];
  readonly removes: readonly RemoveEntry[];
  /** Child elements of `<script>` that are none of the above, with their line. */
  readonly unknown: ReadonlyArray<{ readonly line: number; readonly name: string }>;
}

export class ScriptSyntaxError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
  }
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (m, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return ENTITIES[e] ?? m;
  });
}

interface XmlNode {
  readonly name: string;
  readonly attrs: Readonly<Record<string, string>>;
  readonly text: string;
  readonly line: number;
}

/**
 * The children of the root element, one level deep: the script format has no deeper nesting. A small
 * reader of our own rather than a dependency, because the translation needs each child's line number.
 */
function readChildren(xml: string, rootName: string): XmlNode[] {
  const lineAt = (() => {
    const starts = [0];
    for (let i = 0; i < xml.length; i++) if (xml[i] === '\n') starts.push(i + 1);
    return (index: number) => {
      let lo = 0;
      let hi = starts.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >>> 1;
        if (starts[mid] <= index) lo = mid;
        else hi = mid - 1;
      }
      return lo + 1;
    };
  })();
  // Comments, processing instructions and doctype declarations carry nothing.
  const cleaned = xml.replace(/<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<!DOCTYPE[^>]*>/g, (m) => m.replace(/[^\n]/g, ' '));
  const open = new RegExp(`<${rootName}(\\s[^>]*)?>`).exec(cleaned);
  if (!open) throw new ScriptSyntaxError(1, `no <${rootName}> element`);
  const close = cleaned.lastIndexOf(`</${rootName}>`);
  if (close < open.index) throw new ScriptSyntaxError(lineAt(cleaned.length), `<${rootName}> is not closed`);
  const body = open.index + open[0].length;
  const out: XmlNode[] = [];
  const tagRe = /<([A-Za-z][\w.-]*)((?:\s+[\w.:-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/g;
  let i = body;
  while (i < close) {
    const lt = cleaned.indexOf('<', i);
    const gapEnd = lt < 0 || lt >= close ? close : lt;
    const stray = cleaned.slice(i, gapEnd).search(/\S/);
    if (stray >= 0) throw new ScriptSyntaxError(lineAt(i + stray), 'text outside of an element');
    if (gapEnd === close) break;
    tagRe.lastIndex = lt;
    const m = tagRe.exec(cleaned);
    if (!m || m.index !== lt) throw new ScriptSyntaxError(lineAt(lt), 'malformed element');
    const attrs: Record<string, string> = {};
    for (const a of m[2].matchAll(/([\w.:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) attrs[a[1]] = decodeEntities(a[2] ?? a[3] ?? '');
    let text = '';
    let end = tagRe.lastIndex;
    if (!m[3]) {
      const closing = cleaned.indexOf(`</${m[1]}>`, end);
      if (closing < 0) throw new ScriptSyntaxError(lineAt(lt), `<${m[1]}> is not closed`);
      const raw = cleaned.slice(end, closing);
      if (raw.includes('<')) throw new ScriptSyntaxError(lineAt(lt), `<${m[1]}> holds markup; only text is expected`);
      text = decodeEntities(raw);
      end = closing + m[1].length + 3;
    }
    out.push({ name: m[1], attrs, text, line: lineAt(lt) });
    i = end;
  }
  return out;
}

/** Parses the XML form of a DicomAnonymizer script or anonymizer profile. */
export function parseAnonymizerScript(text: string): AnonymizerScript {
  const nodes = readChildren(text.replace(/^\uFEFF/, ''), 'script');
  const params: ScriptParam[] = [];
  const elements: ElementEntry[] = [];
  const keeps: KeepEntry[] = [];
  const removes: RemoveEntry[] = [];
  const unknown: Array<{ line: number; name: string }> = [];
  for (const n of nodes) {
    const enabled = n.attrs.en === 'T';
    const t = (n.attrs.t ?? '').trim();
    switch (n.name) {
      case 'p':
        params.push({ line: n.line, name: t, value: n.text });
        break;
      case 'e':
        elements.push({ line: n.line, enabled, tag: t, name: (n.attrs.n ?? '').trim(), script: n.text.trim() });
        break;
      case 'k':
        keeps.push({ line: n.line, enabled, target: t });
        break;
      case 'r':
        removes.push({ line: n.line, enabled, target: t });
        break;
      default:
        unknown.push({ line: n.line, name: n.name });
    }
  }
  return { params, elements, keeps, removes, unknown };
}

/**
 * Reads a CTP LookupTable.properties file (Java properties: `keyType/original = replacement`) into
 * tables by key type. Lines starting with `#` or `!` are comments; `\` escapes the next character.
 */
export function parseLookupTable(text: string): Map<string, Map<string, string>> {
  const tables = new Map<string, Map<string, string>>();
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.replace(/^\uFEFF/, '').split(/\r?\n/)) {
    const line = pending ? raw.trimStart() : raw;
    // An odd number of trailing backslashes continues the line.
    const trailing = /\\+$/.exec(line)?.[0].length ?? 0;
    if (trailing % 2 === 1) {
      pending += line.slice(0, -1);
      continue;
    }
    logical.push(pending + line);
    pending = '';
  }
  if (pending) logical.push(pending);
  for (const line of logical) {
    const s = line.trim();
    if (!s || s.startsWith('#') || s.startsWith('!')) continue;
    let key = '';
    let i = 0;
    for (; i < s.length; i++) {
      const c = s[i];
      if (c === '\\' && i + 1 < s.length) key += s[++i];
      else if (c === '=' || c === ':') break;
      else key += c;
    }
    const value = s
      .slice(i + 1)
      .trim()
      .replace(/\\(.)/g, '$1');
    key = key.trim();
    const slash = key.indexOf('/');
    if (slash < 0) continue;
    const type = key.slice(0, slash).trim();
    let table = tables.get(type);
    if (!table) tables.set(type, (table = new Map()));
    table.set(key.slice(slash + 1).trim(), value);
  }
  return tables;
}
