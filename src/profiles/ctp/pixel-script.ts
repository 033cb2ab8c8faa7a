import { keywordOf, tagForKeyword } from '../../dicom/dictionary.js';
import { formatTag, parseTag, type Tag } from '../../dicom/tag.js';
import type { RawCondition, RawConditionObject, RawSignature } from '../pixel-settings.js';
import type { Outcome } from './translate-anonymizer.js';

/**
 * Translating a CTP DicomPixelAnonymizer script (its library of burned-in annotation regions) into our
 * signature format. The script is free text: each `{ condition }` is a signature, the `(x,y,w,h)`
 * rectangles after it are its regions, and every other line is a label. Conditions are CTP DicomFilter
 * expressions — `Element.method("value")` terms joined by `*` (and), `+` (or), `!` (not) and
 * parentheses — which become our `when` conditions: the expression in disjunctive normal form, the
 * terms common to every alternative in `when`, the rest in `anyOf`.
 *
 * Two differences hold for every signature and are stated once: CTP blanks the regions of the first
 * signature that matches, we blank those of every signature that matches (a superset); and a condition
 * we cannot express is dropped from its alternative, which makes the signature match more images,
 * never fewer (reported, like every untranslatable rule).
 */

export interface PixelAccount {
  readonly line: number;
  readonly entry: string;
  readonly outcome: Exclude<Outcome, 'disabled'>;
  readonly note?: string;
}

export interface PixelImport {
  readonly signatures: readonly RawSignature[];
  /** The script line of each signature's condition. */
  readonly signatureLines: readonly number[];
  readonly accounts: readonly PixelAccount[];
  readonly notes: readonly string[];
}

/** A term of a condition: `Manufacturer.containsIgnoreCase("GE")`, `true.`, `false.` */
type Term = { readonly kind: 'const'; readonly value: boolean } | { readonly kind: 'test'; readonly ident: string; readonly method: string; readonly arg: string; readonly raw: string };
type Expr = Term | { readonly kind: 'not'; readonly e: Expr } | { readonly kind: 'and' | 'or'; readonly a: Expr; readonly b: Expr };

class ConditionSyntaxError extends Error {}

/** Parses a CTP filter expression: `+` binds loosest, then `*`, then unary `!`. */
function parseCondition(src: string): Expr {
  const s = src.replace(/\/\/[^\n]*/g, ' ');
  let i = 0;
  const ws = () => {
    while (i < s.length && /\s/.test(s[i])) i++;
  };
  const term = (): Term => {
    const start = i;
    // identifier up to '.', method up to '(', argument up to ')' outside quotes
    const field = (delim: string) => {
      let f = '';
      let quoted = false;
      while (i < s.length) {
        const c = s[i++];
        if (c === '"') quoted = !quoted;
        if (!quoted && c === delim) return f;
        f += c;
      }
      throw new ConditionSyntaxError(`"${s.slice(start, start + 40).trim()}" ends before its "${delim}"`);
    };
    const ident = field('.').trim();
    if (ident === 'true' || ident === 'false') return { kind: 'const', value: ident === 'true' };
    const method = field('(').trim();
    const arg = field(')').trim();
    if (!/^".*"$/s.test(arg)) throw new ConditionSyntaxError(`the argument of ${ident}.${method} is not a quoted string`);
    return { kind: 'test', ident, method, arg: arg.slice(1, -1), raw: s.slice(start, i).replace(/\s+/g, ' ').trim() };
  };
  const primary = (): Expr => {
    ws();
    const c = s[i];
    if (c === '(') {
      i++;
      const e = or();
      ws();
      if (s[i] !== ')') throw new ConditionSyntaxError('a "(" is not closed');
      i++;
      return e;
    }
    if (c === '!') {
      i++;
      return { kind: 'not', e: primary() };
    }
    if (c === '[' || (c !== undefined && /[A-Za-z]/.test(c))) return term();
    throw new ConditionSyntaxError(c === undefined ? 'the condition is empty or ends early' : `unexpected "${c}"`);
  };
  const and = (): Expr => {
    let e = primary();
    for (ws(); s[i] === '*'; ws()) {
      i++;
      e = { kind: 'and', a: e, b: primary() };
    }
    return e;
  };
  const or = (): Expr => {
    let e = and();
    for (ws(); s[i] === '+'; ws()) {
      i++;
      e = { kind: 'or', a: e, b: and() };
    }
    return e;
  };
  const e = or();
  ws();
  if (i < s.length) throw new ConditionSyntaxError(`unexpected "${s.slice(i, i + 20)}"`);
  return e;
}

type Literal = { readonly term: Extract<Term, { kind: 'test' }>; readonly negated: boolean };
/** OR of ANDs; a conjunction that holds `false` is dropped, `true` is left out of it. */
type Dnf = Literal[][];

const MAX_ALTERNATIVES = 32;

function dnf(e: Expr, negated = false): Dnf {
  switch (e.kind) {
    case 'const':
      return e.value !== negated ? [[]] : [];
    case 'test':
      return [[{ term: e, negated }]];
    case 'not':
      return dnf(e.e, !negated);
    case 'and':
    case 'or': {
      const isAnd = (e.kind === 'and') !== negated; // De Morgan
      const a = dnf(e.a, negated);
      const b = dnf(e.b, negated);
      if (!isAnd) return [...a, ...b];
      const out: Dnf = [];
      for (const x of a) for (const y of b) out.push([...x, ...y]);
      if (out.length > MAX_ALTERNATIVES) throw new ConditionSyntaxError(`more than ${MAX_ALTERNATIVES} alternatives once expanded`);
      return out;
    }
  }
}

/** Our condition for one CTP term, or the reason there is none. */
function literalCondition(l: Literal): { attr: string; cond: RawCondition | true; note?: string } | { reason: string } {
  const { ident, method, arg } = l.term;
  if (ident.includes('::')) return { reason: `${ident}: attributes inside sequences are not tested by our conditions` };
  const bracket = /^\[([0-9a-fA-F]{4}),?([0-9a-fA-F]{4})\]$/.exec(ident);
  let tag: Tag | undefined = bracket ? parseTag(`${bracket[1]}${bracket[2]}`) : tagForKeyword(ident);
  if (tag === undefined && !bracket) return { reason: `${ident} is not a DICOM keyword we know` };
  tag = tag!;
  const attr = keywordOf(tag) && !keywordOf(tag)!.startsWith('PrivateCreator') && tagForKeyword(keywordOf(tag)!) === tag ? keywordOf(tag)! : formatTag(tag);
  const lower = method.toLowerCase();
  const ignoreCase = lower.endsWith('ignorecase');
  const base = ignoreCase ? lower.slice(0, -'ignorecase'.length) : lower;
  const hasLetters = /[A-Za-z]/.test(arg);
  const mods = (c: RawConditionObject): RawConditionObject => ({ ...c, ...(!ignoreCase && hasLetters ? { caseSensitive: true } : {}), ...(l.negated ? { not: true } : {}) });
  const numeric = /^[+-]?\d+(\.\d+)?$/.test(arg);
  switch (base) {
    case 'equals':
      // CTP reads a missing element as "": equals("") holds for a missing or empty one.
      if (arg === '') return { attr, cond: { present: !l.negated ? false : true } };
      if (numeric && !l.negated) return { attr, cond: Number(arg) };
      return { attr, cond: mods({ equals: numeric ? Number(arg) : arg }) };
    case 'contains':
    case 'startswith':
    case 'endswith': {
      if (arg === '') return l.negated ? { reason: `${l.term.raw} under "!" never holds` } : { attr, cond: true };
      const op = base === 'contains' ? 'contains' : base === 'startswith' ? 'startsWith' : 'endsWith';
      return { attr, cond: mods({ [op]: arg }) };
    }
    case 'matches': {
      if (ignoreCase) return { reason: `${method} is not a CTP method` };
      // Java's String.matches tests the whole value.
      const pattern = `^(?:${arg})$`;
      try {
        new RegExp(pattern);
      } catch {
        return { reason: `the regular expression of ${l.term.raw} is not one JavaScript reads` };
      }
      return { attr, cond: { matches: pattern, caseSensitive: true, ...(l.negated ? { not: true } : {}) } };
    }
    case 'islessthan':
    case 'isgreaterthan': {
      if (ignoreCase) return { reason: `${method} is not a CTP method` };
      const digits = arg.replace(/[^0-9.]/g, '');
      const n = Number(digits);
      if (digits === '' || !Number.isFinite(n)) return { reason: `${l.term.raw}: no number to compare with` };
      const op = base === 'islessthan' ? 'lessThan' : 'greaterThan';
      return {
        attr,
        cond: { [op]: n, ...(l.negated ? { not: true } : {}) },
        note: 'we compare the first value as a signed number; CTP drops every character but digits and the period from both sides',
      };
    }
    default:
      return { reason: `${method} is not a method of CTP's condition language` };
  }
}

const key = (attr: string, cond: RawCondition) => `${attr}\u0000${JSON.stringify(cond)}`;

/** Our `when`/`anyOf` for a condition, and the notes and dropped terms of the translation. */
function translateCondition(src: string): { when?: RawSignature['when']; anyOf?: RawSignature['anyOf']; dropped: string[]; notes: string[] } | { error: string } {
  let alternatives: Dnf;
  try {
    alternatives = dnf(parseCondition(src));
  } catch (e) {
    if (e instanceof ConditionSyntaxError) return { error: e.message };
    throw e;
  }
  if (alternatives.length === 0) return { error: 'the condition can never hold (CTP never uses this signature)' };
  const dropped: string[] = [];
  const notes = new Set<string>();
  const groups = alternatives.map((conj) => {
    const out: Array<[string, RawCondition]> = [];
    for (const l of conj) {
      const t = literalCondition(l);
      if ('reason' in t) {
        dropped.push(`${l.negated ? '!' : ''}${l.term.raw}: ${t.reason}`);
        continue;
      }
      if (t.note) notes.add(t.note);
      if (t.cond !== true && !out.some(([a, c]) => key(a, c) === key(t.attr, t.cond as RawCondition))) out.push([t.attr, t.cond]);
    }
    return out;
  });
  // Terms in every alternative go to `when`; what is left of each alternative to `anyOf`.
  const common = groups[0].filter(([a, c]) => groups.every((g) => g.some(([a2, c2]) => key(a, c) === key(a2, c2))));
  const commonKeys = new Set(common.map(([a, c]) => key(a, c)));
  const rest = groups.map((g) => g.filter(([a, c]) => !commonKeys.has(key(a, c))));
  const asGroup = (pairs: Array<[string, RawCondition]>): RawSignature['when'] => {
    const attrs = pairs.map(([a]) => a);
    // A map when every attribute is tested once; otherwise a list of single-attribute maps.
    if (new Set(attrs).size === attrs.length) return Object.fromEntries(pairs);
    return pairs.map(([a, c]) => ({ [a]: c }));
  };
  const when = common.length ? asGroup(common) : undefined;
  // An alternative with nothing left matches whenever `when` does: the others add nothing.
  const anyOf = groups.length > 1 && rest.every((r) => r.length > 0) ? rest.map(asGroup) as NonNullable<RawSignature['anyOf']> : undefined;
  return { when, anyOf, dropped, notes: [...notes] };
}

const lineAt = (text: string, index: number) => text.slice(0, index).split('\n').length;

/** Translates a DicomPixelAnonymizer script into signatures, accounting for every signature and region. */
export function translatePixelScript(text: string): PixelImport {
  const src = text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
  const blocks = [...src.matchAll(/\{[^}]*\}/g)];
  const signatures: RawSignature[] = [];
  const signatureLines: number[] = [];
  const accounts: PixelAccount[] = [];
  // Labels: section titles sit between lines of asterisks; a line at the margin names a vendor, an
  // indented one an item under it. A signature without new label lines keeps the previous label.
  let section = '';
  let vendor = '';
  let item = '';
  let labelFrom = 0;
  const lines = src.split('\n');
  blocks.forEach((m, idx) => {
    const start = m.index!;
    const end = start + m[0].length;
    const line = lineAt(src, start);
    const next = idx + 1 < blocks.length ? blocks[idx + 1].index! : src.length;
    for (let k = lineAt(src, labelFrom) - 1; k < line - 1; k++) {
      const raw = (k === lineAt(src, labelFrom) - 1 ? src.slice(labelFrom).split('\n')[0] : lines[k]).replace(/\([^)]*\)/g, '');
      const text = raw.trim();
      if (!text || /^\*+$/.test(text)) continue;
      if (/^\s*\*{3,}\s*$/.test(lines[k - 1] ?? '') && /^\s*\*{3,}\s*$/.test(lines[k + 1] ?? '')) {
        [section, vendor, item] = [text, '', ''];
      } else if (/^\S/.test(raw)) [vendor, item] = [text, ''];
      else item = text;
    }
    const short = (t: string) => (t.length > 60 ? `${t.slice(0, 59)}…` : t);
    const label = [section, vendor, item].filter(Boolean).map(short).join(' / ') || 'signature';
    const regionText = src.slice(end, next);
    const regions: number[][] = [];
    let lastRegionEnd = end;
    for (const r of regionText.matchAll(/\(([^)]*)\)/g)) {
      const parts = r[1].split(',').map((p) => p.trim());
      const rline = lineAt(src, end + r.index!);
      const nums = parts.map((p) => (/^[+-]?\d+$/.test(p) ? Number(p) : NaN));
      // Text in parentheses is part of a label (CTP skips it too); numbers that are not four are a broken region.
      if (!nums.every((n) => Number.isInteger(n))) continue;
      if (nums.length !== 4) {
        accounts.push({ line: rline, entry: `region (${r[1]})`, outcome: 'untranslatable', note: 'not four numbers (x,y,w,h); skipped, as CTP does' });
        continue;
      }
      if (nums[0] < 0 || nums[1] < 0 || nums[2] <= 0 || nums[3] <= 0) {
        accounts.push({
          line: rline,
          entry: `region (${r[1]})`,
          outcome: 'untranslatable',
          note: 'a negative origin or an empty size: our negative coordinates count from the right or bottom edge, CTP has no such meaning; skipped',
        });
        continue;
      }
      regions.push(nums);
      lastRegionEnd = end + r.index! + r[0].length;
    }
    labelFrom = lastRegionEnd;
    const condition = m[0].slice(1, -1);
    const entry = `{ ${condition.replace(/\s+/g, ' ').trim()} }`;
    if (regions.length === 0) {
      accounts.push({ line, entry, outcome: 'untranslatable', note: 'a signature without a region blanks nothing; skipped' });
      return;
    }
    const t = translateCondition(condition);
    if ('error' in t) {
      accounts.push({ line, entry, outcome: 'untranslatable', note: `${t.error}; skipped` });
      return;
    }
    const sig: RawSignature = { name: `${label} (line ${line})`, ...(t.when ? { when: t.when } : {}), ...(t.anyOf ? { anyOf: t.anyOf } : {}), regions };
    signatures.push(sig);
    signatureLines.push(line);
    if (t.dropped.length) {
      const everyImage = !t.when && !t.anyOf;
      accounts.push({
        line,
        entry,
        outcome: 'untranslatable',
        note: `condition${t.dropped.length > 1 ? 's' : ''} dropped, so the signature matches more images${everyImage ? ' (every image)' : ''}: ${t.dropped.join('; ')}`,
      });
    } else {
      accounts.push({ line, entry, outcome: t.notes.length ? 'approximated' : 'translated', note: t.notes.length ? t.notes.join('; ') : `${regions.length} region(s)` });
    }
  });
  accounts.sort((a, b) => a.line - b.line);
  return {
    signatures,
    signatureLines,
    accounts,
    notes: [
      'CTP blanks the regions of the first signature that matches an image; we blank those of every signature that matches, so at least CTP\'s regions are blanked.',
      'Text tests ignore case where CTP\'s method does (…IgnoreCase); the others carry caseSensitive: true.',
    ],
  };
}
