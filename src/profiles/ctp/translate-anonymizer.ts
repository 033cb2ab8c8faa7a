import { lookupTag } from '../../dicom/dictionary.js';
import { formatTag, isPrivateCreatorTag, tagGroup, type Tag } from '../../dicom/tag.js';
import { MAX_LENGTH } from '../../dicom/vr.js';
import type { RawProfile, RawRule } from '../compile.js';
import type { AnonymizerScript, ElementEntry, KeepEntry, RemoveEntry } from './anonymizer-script.js';
import { parseScriptExpr, ScriptExprError, unquote, type ScriptNode } from './script-expr.js';

/**
 * Translating a CTP DicomAnonymizer script into one of our profiles, rule by rule. Every entry of the
 * script is accounted for:
 *   - translated:     our rule does what CTP's does;
 *   - approximated:   our rule does the same job with a stated difference (new UIDs and hashes are
 *                     keyed HMACs, not CTP's MD5s; absent elements are not inserted; ...);
 *   - untranslatable: nothing of ours expresses it. The output then carries a fail-closed fallback
 *                     (the value emptied, or removed for a sequence) so that a partial profile never
 *                     keeps what the script would have changed, and the import reports it;
 *   - disabled:       unchecked in CTP (`en="F"`): CTP leaves the element alone, and so do we.
 *
 * The profile stands alone by default, like the script: what the script does not name is kept (CTP's
 * default), but our engine's defaults stay stricter than CTP's — rules apply at every depth, not only
 * at the top level; private elements are removed unless a rule keeps them; every reference to a
 * remapped UID is remapped; and every output passes the quality check before it leaves.
 */

export type Outcome = 'translated' | 'approximated' | 'untranslatable' | 'disabled';

export interface RuleAccount {
  readonly line: number;
  /** What the entry is, as the script wrote it: `(0008,0018) SOPInstanceUID: @hashuid(@UIDROOT,this)`. */
  readonly entry: string;
  readonly outcome: Outcome;
  /** Why it is approximated or untranslatable, or what it became. */
  readonly note?: string;
}

export interface ParamAccount {
  readonly line: number;
  readonly name: string;
  readonly used: boolean;
}

export interface AnonymizerImport {
  readonly profile: RawProfile;
  /** The script line each rule came from, in the order of `profile.rules`. */
  readonly ruleLines: readonly number[];
  readonly accounts: readonly RuleAccount[];
  readonly params: readonly ParamAccount[];
  /** Notes that apply to the whole translation. */
  readonly notes: readonly string[];
}

export interface TranslateOptions {
  /** The profile's name. */
  readonly name: string;
  readonly description?: string;
  /** Parameter values that override the script's `<p>` values (e.g. a placeholder DATEINC). */
  readonly params?: Readonly<Record<string, string>>;
  /** Lookup tables by key type, from `--lookup`, and the path rules should name the file by. */
  readonly lookup?: { readonly tables: ReadonlyMap<string, ReadonlyMap<string, string>>; readonly file: string };
  /**
   * The profile the translation extends, and its single-tag rules by selector: what the script does
   * not name, or leaves unchecked, gets the base's action instead of passing through unchanged.
   */
  readonly base?: { readonly name: string; readonly rules: ReadonlyMap<string, RawRule> };
  /**
   * Free-text descriptors (PS3.15's Clean Descriptors column, by selector). A @keep() of one becomes C:
   * the text is kept, with the data set's own identifying values replaced.
   */
  readonly descriptors?: ReadonlySet<string>;
}

/** Our Annex E marking writes these on every output, whatever a profile says. */
const MARKING: Record<number, string> = {
  0x00120062: 'PatientIdentityRemoved is always written as YES',
  0x00120063: 'DeidentificationMethod is always written, naming our profile and its options',
  0x00120064: 'DeidentificationMethodCodeSequence is always written, with the CID 7050 codes of the options actually applied',
  0x00280303: 'LongitudinalTemporalInformationModified is always written, saying what happened to dates',
};

type ActionKind = 'K' | 'X' | 'Z' | 'D' | 'U' | 'set' | 'hash' | 'dateshift' | 'lookup';

interface Translated {
  readonly action: RawRule['action'];
  /** The kind of action, to compare the branches of an @if by how much they let through. */
  readonly kind: ActionKind;
  readonly approx?: string;
  /** For a @select: the action for elements inside sequence items, when it differs. */
  readonly nested?: Translated;
  readonly dateInc?: number;
}

interface Untranslatable {
  readonly reason: string;
  /** The fallback the output applies instead of the default (emptying the value). */
  readonly fallback?: Translated;
}

const isUntranslatable = (t: Translated | Untranslatable): t is Untranslatable => 'reason' in t;

/** How protective an action is: the higher, the less of the value it lets through. */
const PROTECTION: Record<ActionKind, number> = { X: 4, Z: 3, D: 2, U: 2, set: 2, hash: 2, dateshift: 2, lookup: 2, K: 0 };

const HASH_MIN = 4;
const HASH_MAX = 64;
const clampHash = (n: number) => Math.min(HASH_MAX, Math.max(HASH_MIN, n));

class ElementTranslator {
  readonly usedParams = new Set<string>();

  constructor(
    private readonly params: ReadonlyMap<string, string>,
    private readonly lookup: TranslateOptions['lookup'],
  ) {}

  private param(ref: string): string | undefined {
    const name = ref.trim().replace(/^[@$]/, '');
    const v = this.params.get(name);
    if (v !== undefined) this.usedParams.add(name);
    return v;
  }

  /** An argument: a parameter reference resolved, quotes removed. */
  private arg(a: string | undefined): string {
    const s = (a ?? '').trim();
    if (s.startsWith('@') || s.startsWith('$')) return this.param(s) ?? s;
    return unquote(s);
  }

  private static isThis(a: string | undefined): boolean {
    return (a ?? '').trim() === 'this';
  }

  /** Text only (literals and @param calls), or undefined if anything else is in it. */
  private textOf(nodes: readonly ScriptNode[]): string | undefined {
    let out = '';
    for (const n of nodes) {
      if (n.kind === 'text') out += n.text;
      else if (n.name === 'param' && n.args.length >= 1) {
        const v = this.param(n.args[0]);
        if (v === undefined) return undefined;
        out += v;
      } else return undefined;
    }
    return out;
  }

  translate(nodes: readonly ScriptNode[], tag: Tag): Translated | Untranslatable {
    let always = false;
    while (nodes[0]?.kind === 'call' && nodes[0].name === 'always') {
      always = true;
      nodes = nodes.slice(1);
    }
    const t = this.body(nodes, tag);
    if (!always || isUntranslatable(t) || t.kind === 'K' || t.kind === 'X') return t;
    const note = 'an absent element is not inserted (@always): our rules change elements that are present';
    return { ...t, approx: t.approx ? `${t.approx}; ${note}` : note };
  }

  private body(nodes: readonly ScriptNode[], tag: Tag): Translated | Untranslatable {
    const trimmed = nodes.filter((n) => n.kind !== 'text' || n.text.trim() !== '');
    if (trimmed.length === 0) return { action: 'Z', kind: 'Z' };
    const text = this.textOf(nodes);
    if (text !== undefined) return this.setValue(text.trim(), tag);
    if (trimmed.length === 1 && trimmed[0].kind === 'call') return this.call(trimmed[0], tag);
    // A literal prefix and one hash of this element: `Project-@hashptid(@SITEID,this,10)`.
    const last = trimmed[trimmed.length - 1];
    if (last.kind === 'call' && ['hash', 'hashptid', 'hashname'].includes(last.name)) {
      const prefix = this.textOf(trimmed.slice(0, -1));
      const hashed = this.call(last, tag);
      if (prefix !== undefined && !isUntranslatable(hashed) && hashed.kind === 'hash') {
        if (prefix.length > 16) return { reason: `a hash prefix of ${prefix.length} characters; ours are at most 16` };
        const length = (hashed.action as { hash: { length: number } }).hash.length;
        return { action: { hash: { length, prefix } }, kind: 'hash', approx: hashed.approx };
      }
    }
    return { reason: 'text mixed with functions other than @param: our actions cannot compose values' };
  }

  private setValue(value: string, tag: Tag): Translated {
    if (value === '') return { action: 'Z', kind: 'Z' };
    const vr = lookupTag(tag)?.vr;
    const max = vr ? MAX_LENGTH[vr] : undefined;
    const approx = max !== undefined && value.length > max ? `the value is longer than ${vr} allows (${max}); written as given, as CTP does` : undefined;
    return { action: { set: value }, kind: 'set', approx };
  }

  private call(c: Extract<ScriptNode, { kind: 'call' }>, tag: Tag): Translated | Untranslatable {
    const a = c.args;
    switch (c.name) {
      case 'keep':
        return { action: 'K', kind: 'K' };
      case 'remove':
        return { action: 'X', kind: 'X' };
      case 'empty':
        return { action: 'Z', kind: 'Z' };
      case 'blank':
        return { action: 'Z', kind: 'Z', approx: 'written empty rather than as blanks, which DICOM reads the same' };
      case 'process':
        return { action: 'K', kind: 'K' };
      case 'require':
        return { action: 'K', kind: 'K', approx: 'kept when present; an absent element is not inserted (@require)' };
      case 'contents':
      case 'value':
        if (a.length === 1 && ElementTranslator.isThis(a[0])) return { action: 'K', kind: 'K' };
        return { reason: `@${c.name} copying another element or rewriting with a regular expression` };
      case 'param': {
        const v = this.param(a[0] ?? '');
        if (v === undefined) return { reason: `parameter ${a[0]} is not defined in the script` };
        return this.setValue(v.trim(), tag);
      }
      case 'hashuid':
        if (a.length < 2 || !ElementTranslator.isThis(a[1])) return { reason: '@hashuid of another element than this one' };
        return {
          action: 'U',
          kind: 'U',
          approx: `new UIDs are 2.25.<keyed HMAC-SHA256 of the UID>, not ${this.arg(a[0]) || 'the root'}.<MD5>: they differ from CTP's, and every other reference to the same UID gets the same new UID`,
        };
      case 'hash': {
        if (!ElementTranslator.isThis(a[0])) return { reason: '@hash of another element: our hash rules hash the element they apply to' };
        const n = a.length > 1 ? Number.parseInt(this.arg(a[1]), 10) : NaN;
        const length = Number.isFinite(n) ? clampHash(n) : 16;
        return { action: { hash: { length } }, kind: 'hash', approx: hashNote(n, length) };
      }
      case 'hashname': {
        if (!ElementTranslator.isThis(a[0])) return { reason: '@hashname of another element' };
        const n = Number.parseInt(this.arg(a[1]), 10);
        const length = clampHash(Number.isFinite(n) ? n : 4);
        return { action: { hash: { length } }, kind: 'hash', approx: `${hashNote(n, length)}; the whole name is hashed (CTP hashes its first words)` };
      }
      case 'hashptid': {
        if (!ElementTranslator.isThis(a[1])) return { reason: '@hashptid of another element (usually PatientID): our hash rules hash the element they apply to' };
        const n = a.length > 2 ? Number.parseInt(this.arg(a[2]), 10) : NaN;
        const length = Number.isFinite(n) ? clampHash(n) : 16;
        return { action: { hash: { length } }, kind: 'hash', approx: `${hashNote(n, length)}; the site ID is not part of it` };
      }
      case 'incrementdate': {
        if (!ElementTranslator.isThis(a[0])) return { reason: '@incrementdate of another element' };
        const raw = this.arg(a[1]);
        if (!/^[+-]?\d+$/.test(raw.trim())) {
          return { reason: `the increment ${a[1] ?? ''} is not a whole number of days ("${raw.slice(0, 60)}"): set it in the script or with --param` };
        }
        return { action: 'dateshift', kind: 'dateshift', dateInc: Number.parseInt(raw, 10) };
      }
      case 'hashdate':
        if (!ElementTranslator.isThis(a[0])) return { reason: '@hashdate of another element' };
        return {
          action: 'dateshift',
          kind: 'dateshift',
          approx: `shifted by a per-patient offset from a keyed HMAC of PatientID${(a[1] ?? '').trim() === 'PatientID' ? '' : ` (CTP hashes ${a[1] ?? '?'})`}, not CTP's MD5-derived one`,
        };
      case 'date':
      case 'time':
        return { action: 'D', kind: 'D', approx: `a fixed dummy ${c.name} (${c.name === 'date' ? '19000101' : '000000'}) rather than the ${c.name} of de-identification, so that outputs are repeatable` };
      case 'lookup':
        return this.lookupCall(c);
      case 'if':
        return this.ifCall(c, tag);
      case 'select': {
        const root = this.body(c.clauses[0] ?? [], tag);
        const nested = this.body(c.clauses[1] ?? [], tag);
        if (isUntranslatable(root)) return root;
        if (isUntranslatable(nested)) return nested;
        return { ...root, nested };
      }
      case 'quarantine':
        return { reason: '@quarantine: a profile does not quarantine by itself; the service filter stage rejects objects by their attributes' };
      case 'skip':
        return { reason: '@skip would pass the object on unmodified; deid never does that' };
      case 'append':
        return { reason: '@append adds to a value; our actions replace values' };
      default:
        return { reason: `@${c.name} has no equivalent in our profiles` };
    }
  }

  private lookupCall(c: Extract<ScriptNode, { kind: 'call' }>): Translated | Untranslatable {
    const a = c.args;
    if (!ElementTranslator.isThis(a[0])) return { reason: `@lookup keyed by another element (${a[0] ?? '?'}): our lookup rules map the element's own value` };
    const type = (a[1] ?? '').trim();
    if (!this.lookup) return { reason: `@lookup needs the lookup table: give --lookup <LookupTable.properties>` };
    if (!this.lookup.tables.has(type)) return { reason: `the lookup table has no entries of key type "${type}"` };
    const miss = a.length > 2 ? this.arg(a[2]) : '';
    return {
      action: { lookup: { file: this.lookup.file, keyType: type } },
      kind: 'lookup',
      approx: miss ? `a value missing from the table quarantines the object (CTP: ${miss})` : undefined,
    };
  }

  private ifCall(c: Extract<ScriptNode, { kind: 'call' }>, tag: Tag): Translated | Untranslatable {
    const [subject, cond] = [(c.args[0] ?? '').trim(), (c.args[1] ?? '').trim()];
    const whenTrue = this.body(c.clauses[0] ?? [], tag);
    const whenFalse = this.body(c.clauses[1] ?? [], tag);
    const onThis = subject === 'this';
    const quarantines = (nodes: readonly ScriptNode[] | undefined) => (nodes ?? []).some((n) => n.kind === 'call' && n.name === 'quarantine');
    if (quarantines(c.clauses[0]) || quarantines(c.clauses[1])) {
      const other = quarantines(c.clauses[0]) ? whenFalse : whenTrue;
      const value = unquote((c.args[2] ?? '').trim());
      const suggestion = cond === 'contains' && value ? `; in the service, a filter stage does it: reject: [{ ${subject}: "*${value}*" }]` : '';
      return {
        reason: `a conditional @quarantine: a profile does not quarantine objects by their attributes${suggestion}`,
        fallback: isUntranslatable(other) ? undefined : other,
      };
    }
    if (isUntranslatable(whenTrue)) return whenTrue;
    if (isUntranslatable(whenFalse)) return whenFalse;
    if (onThis && cond === 'exists') return whenTrue;
    if (sameAction(whenTrue, whenFalse)) return whenTrue;
    // A blank value carries nothing: the non-blank branch governs every value that could identify.
    if (onThis && cond === 'isblank') {
      return { ...whenFalse, approx: join(whenFalse.approx, 'a blank value gets the same action as a non-blank one (CTP: a different one)') };
    }
    const [a, b] = [PROTECTION[whenTrue.kind], PROTECTION[whenFalse.kind]];
    if (a === b) return { reason: `@if(${subject},${cond},…) chooses between two different replacements; we cannot test conditions per object` };
    const chosen = a > b ? whenTrue : whenFalse;
    return { ...chosen, approx: join(chosen.approx, `@if(${subject},${cond},…): we cannot test conditions per object, so the more protective branch applies always`) };
  }
}

const join = (a: string | undefined, b: string) => (a ? `${a}; ${b}` : b);

function hashNote(requested: number, length: number): string {
  const base = 'a keyed HMAC pseudonym (letters and digits), not CTP\'s unkeyed MD5 digits: values differ from CTP\'s';
  if (Number.isFinite(requested) && requested !== length) return `${base}; length ${length} (ours are ${HASH_MIN}-${HASH_MAX} characters, CTP asked for ${requested})`;
  return base;
}

function sameAction(a: Translated, b: Translated): boolean {
  return JSON.stringify(a.action) === JSON.stringify(b.action) && JSON.stringify(a.nested?.action) === JSON.stringify(b.nested?.action);
}

const hex4 = (n: number) => n.toString(16).toUpperCase().padStart(4, '0');

/** The selector of a `t` attribute, or undefined when it is not one we read. */
function selectorOf(t: string): { select: string; tag?: Tag } | undefined {
  if (/^[0-9a-fA-F]{8}$/.test(t)) {
    const tag = parseInt(t, 16) >>> 0;
    return { select: formatTag(tag), tag };
  }
  const priv = /^([0-9a-fA-F]{4}),?\[([^\]]+)\]([0-9a-fA-F]{2})$/.exec(t);
  if (priv && (parseInt(priv[1], 16) & 1) === 1 && !priv[2].includes('"')) return { select: `(${priv[1].toUpperCase()},"${priv[2].trim()}",${priv[3].toLowerCase()})` };
  return undefined;
}

/** The fail-closed stand-in for an untranslatable rule: empty the value, remove a sequence. */
function fallbackFor(tag: Tag | undefined): Translated {
  return tag !== undefined && lookupTag(tag)?.vr === 'SQ' ? { action: 'X', kind: 'X' } : { action: 'Z', kind: 'Z' };
}

const describe = (e: ElementEntry) => `(${e.tag.slice(0, 4)},${e.tag.slice(4)}) ${e.name}: ${e.script || '(empty)'}`;

/** Translates a parsed script into a profile plus an account of every entry. */
export function translateAnonymizer(script: AnonymizerScript, opts: TranslateOptions): AnonymizerImport {
  const params = new Map(script.params.map((p) => [p.name, p.value.trim()]));
  for (const [k, v] of Object.entries(opts.params ?? {})) params.set(k, v);
  const tr = new ElementTranslator(params, opts.lookup);
  const accounts: RuleAccount[] = [];
  const rules: Array<{ rule: RawRule; line: number }> = [];
  const notes: string[] = [];
  const enabled = (target: string, list: ReadonlyArray<KeepEntry | RemoveEntry>) => list.some((e) => e.enabled && e.target.toLowerCase() === target);
  const removeOverlays = enabled('overlays', script.removes);
  const dateIncs: Array<{ line: number; inc: number }> = [];
  /** Lines shifted per patient (@hashdate). */
  const perPatient: number[] = [];

  const emit = (select: string, t: Translated, line: number, name: string) => {
    rules.push({ rule: { select, action: t.action, ...(name ? { name } : {}) }, line });
    if (t.nested && !sameAction(t, t.nested)) {
      // @select: elements inside sequence items (paths are tried before single-step rules).
      rules.push({ rule: { select: `*/**/${select}`, action: t.nested.action, ...(name ? { name: `${name} (in sequence items)` } : {}) }, line });
    }
  };

  const baseNote = (select: string | undefined) => {
    const r = select ? opts.base?.rules.get(select) : undefined;
    if (!r) return 'unchecked in CTP: the element is left as it is';
    return `unchecked in CTP: ${opts.base!.name}'s rule applies (${describeAction(r.action)}${r.options ? `, options ${describeAction(r.options)}` : ''})`;
  };

  for (const e of script.elements) {
    const entry = describe(e);
    const sel = selectorOf(e.tag);
    if (!e.enabled) {
      accounts.push({ line: e.line, entry, outcome: 'disabled', note: baseNote(sel?.select) });
      continue;
    }
    if (!sel) {
      accounts.push({ line: e.line, entry, outcome: 'untranslatable', note: `"${e.tag.slice(0, 40)}" is not a tag we read (ggggeeee or gggg[CREATOR]ee); no rule written` });
      continue;
    }
    const tag = sel.tag;
    if (tag !== undefined && MARKING[tag] !== undefined) {
      const exact = tag === 0x00120062 && /^(@always\(\))?YES$/.test(e.script);
      accounts.push({ line: e.line, entry, outcome: exact ? 'translated' : 'approximated', note: `our Annex E marking: ${MARKING[tag]}` });
      continue;
    }
    if (tag !== undefined && tagGroup(tag) === 0x0002) {
      accounts.push({ line: e.line, entry, outcome: 'approximated', note: 'file meta information is rebuilt from the de-identified data set' });
      continue;
    }
    if (tag !== undefined && isPrivateCreatorTag(tag)) {
      accounts.push({ line: e.line, entry, outcome: 'approximated', note: 'a private creator element follows its block: kept while an element of the block is kept, removed with the last one' });
      continue;
    }
    if (tag !== undefined && removeOverlays && (tagGroup(tag) & 0xff00) === 0x6000) {
      accounts.push({ line: e.line, entry, outcome: 'translated', note: 'removed with the overlays (CTP applies "Remove overlays" before element scripts)' });
      continue;
    }
    let nodes: ScriptNode[];
    try {
      nodes = parseScriptExpr(e.script);
    } catch (err) {
      if (!(err instanceof ScriptExprError)) throw err;
      const fb = fallbackFor(tag);
      emit(sel.select, fb, e.line, e.name);
      accounts.push({ line: e.line, entry, outcome: 'untranslatable', note: `${err.message}; written as ${describeAction(fb.action)} instead` });
      continue;
    }
    let t = tr.translate(nodes, tag ?? 0);
    if (!isUntranslatable(t) && t.kind === 'K' && opts.descriptors?.has(sel.select)) {
      t = { ...t, action: 'C', approx: join(t.approx, 'a free-text descriptor: kept, with the data set\'s own identifying values (names, IDs, dates) replaced in it, as the Clean Descriptors option does; CTP keeps it verbatim') };
    }
    if (isUntranslatable(t)) {
      const fb = t.fallback ?? fallbackFor(tag);
      emit(sel.select, fb, e.line, e.name);
      accounts.push({ line: e.line, entry, outcome: 'untranslatable', note: `${t.reason}; written as ${describeAction(fb.action)} instead` });
      continue;
    }
    if (t.dateInc !== undefined) dateIncs.push({ line: e.line, inc: t.dateInc });
    else if (t.kind === 'dateshift' || t.nested?.kind === 'dateshift') perPatient.push(e.line);
    emit(sel.select, t, e.line, e.name);
    const approx = join(t.approx, t.nested?.approx ?? '').replace(/; $/, '') || undefined;
    accounts.push({ line: e.line, entry, outcome: approx ? 'approximated' : 'translated', note: approx ?? `${describeAction(t.action)}${t.nested ? ` (in sequence items: ${describeAction(t.nested.action)})` : ''}` });
  }

  // Dates: one shift per profile. A fixed @incrementdate is exact; @hashdate is per patient.
  let dateShift: RawProfile['dateShift'];
  if (dateIncs.length) {
    const inc = dateIncs[0].inc;
    dateShift = { minDays: inc, maxDays: inc };
    for (const d of dateIncs) {
      if (d.inc === inc) continue;
      const i = accounts.findIndex((a) => a.line === d.line);
      accounts[i] = { ...accounts[i], outcome: 'approximated', note: `shifted by ${inc} days like line ${dateIncs[0].line}: a profile has one date shift` };
    }
    for (const line of perPatient) {
      const i = accounts.findIndex((a) => a.line === line);
      accounts[i] = { ...accounts[i], outcome: 'approximated', note: `shifted by the script's fixed increment (${inc} days, line ${dateIncs[0].line}) rather than per patient: a profile has one date shift` };
    }
  }

  // Group rules.
  const keepSafe = enabled('safeprivateelements', script.keeps);
  const removePrivate = enabled('privategroups', script.removes);
  let options: string[] | undefined;
  let removeUnlisted: boolean | undefined;
  for (const k of script.keeps) {
    const entry = `<k> ${k.target}`;
    if (!k.enabled) {
      accounts.push({ line: k.line, entry, outcome: 'disabled', note: 'unchecked in CTP' });
      continue;
    }
    if (k.target.toLowerCase().startsWith('safe')) {
      if (!removePrivate) {
        accounts.push({ line: k.line, entry, outcome: 'translated', note: 'private groups are not removed by this script, so every private element is kept anyway' });
        continue;
      }
      options = ['retain-safe-private'];
      accounts.push({
        line: k.line,
        entry,
        outcome: 'approximated',
        note: 'the Retain Safe Private option: PS3.15 E.3.10-1 and the TCIA knowledge base\'s "k" elements (CTP uses its own list)',
      });
      continue;
    }
    const group = /^[0-9a-fA-F]{1,4}$/.test(k.target) ? parseInt(k.target, 16) : NaN;
    if (!Number.isFinite(group)) {
      accounts.push({ line: k.line, entry, outcome: 'untranslatable', note: 'not a group number; nothing written' });
      continue;
    }
    if (group & 1) {
      accounts.push({
        line: k.line,
        entry,
        outcome: 'untranslatable',
        note: 'keeping a private group by number: name its private creator in a rule, (gggg,"CREATOR",xx): keep; its elements stay removed',
      });
      continue;
    }
    rules.push({ rule: { select: `(${hex4(group)},xxxx)`, action: 'K', name: `keep group ${hex4(group)}` }, line: k.line });
    accounts.push({
      line: k.line,
      entry,
      outcome: 'translated',
      note: `elements of group ${hex4(group)} that no rule${opts.base ? ` (of the script or of ${opts.base.name})` : ''} names are kept`,
    });
  }
  for (const r of script.removes) {
    const target = r.target.toLowerCase();
    const entry = `<r> ${r.target}`;
    if (target === 'privategroups') {
      // Our engine removes private elements by default, so "off" has to be said explicitly.
      if (r.enabled) {
        rules.push({
          rule: keepSafe ? { select: 'private', action: 'X', options: { 'retain-safe-private': 'C' }, name: 'private groups' } : { select: 'private', action: 'X', name: 'private groups' },
          line: r.line,
        });
        accounts.push({ line: r.line, entry, outcome: 'translated', note: 'private elements are removed, at every depth' });
      } else {
        rules.push({ rule: { select: 'private', action: 'K', name: 'private groups (kept, as the script says)' }, line: r.line });
        accounts.push({
          line: r.line,
          entry,
          outcome: 'translated',
          note: 'unchecked: every private element is kept, as in CTP. Review this: private elements often hold names and IDs (the quality check scans them)',
        });
      }
      continue;
    }
    if (!r.enabled) {
      accounts.push({ line: r.line, entry, outcome: 'disabled', note: 'unchecked in CTP' });
      continue;
    }
    switch (target) {
      case 'overlays':
        rules.push({ rule: { select: '(60xx,xxxx)', action: 'X', name: 'overlays' }, line: r.line });
        accounts.push({ line: r.line, entry, outcome: 'translated', note: 'every element of groups 6000-60FF is removed' });
        break;
      case 'curves':
        rules.push({ rule: { select: '(50xx,xxxx)', action: 'X', name: 'curves' }, line: r.line });
        accounts.push({
          line: r.line,
          entry,
          outcome: 'approximated',
          note: 'every element of groups 5000-50FF is removed, as the option says (CTP\'s own code removes curves only together with "Remove unchecked elements")',
        });
        break;
      case 'unspecifiedelements':
        removeUnlisted = true;
        accounts.push({
          line: r.line,
          entry,
          outcome: 'approximated',
          note: 'allow-list mode (removeUnlisted): we keep SpecificCharacterSet, SOPClassUID, group 0028 and PixelData, and remap the SOP, study, series and frame-of-reference UIDs; CTP keeps groups 0002, 0028, 7FE0, the SOP class, SOP instance and study UIDs, and the keep groups',
        });
        break;
      default:
        accounts.push({ line: r.line, entry, outcome: 'untranslatable', note: 'unknown global rule; nothing written' });
    }
  }
  for (const u of script.unknown) accounts.push({ line: u.line, entry: `<${u.name}>`, outcome: 'untranslatable', note: 'not an element of the anonymizer script format; ignored' });

  const ageKept = rules.some((r) => r.rule.select === '(0010,1010)' && (r.rule.action === 'K' || r.rule.action === 'C'));
  if (ageKept) notes.push('The script keeps PatientAge: HIPAA Safe Harbor asks that ages over 89 be grouped; consider generalize: { ageOver89: true }.');
  if (perPatient.length && !dateShift) notes.push('Dates are shifted per patient by a keyed HMAC of PatientID, within dateShift (default -3650..-1 days).');
  if (dateShift) notes.push(`Dates are shifted by ${dateShift.minDays} days for every patient (@incrementdate).`);
  notes.push(
    opts.base
      ? `The profile extends ${opts.base.name}: what the script does not name, or leaves unchecked, gets ${opts.base.name}'s action instead of passing through (CTP keeps it). Its rules apply inside sequences at every depth, and the quality check proves every output free of the source's identifying values before it leaves.`
      : 'The profile stands alone, as the script does: what the script does not name is kept. Unlike CTP, its rules apply inside sequences at every depth, and the quality check proves every output free of the source\'s identifying values before it leaves.',
  );

  accounts.sort((x, y) => x.line - y.line);
  const params_: ParamAccount[] = script.params.map((p) => ({ line: p.line, name: p.name, used: tr.usedParams.has(p.name) }));
  const profile: RawProfile = {
    name: opts.name,
    description: opts.description ?? `Imported from a CTP DicomAnonymizer script by deid import ctp`,
    ...(opts.base ? { extends: opts.base.name } : {}),
    ...(options ? { options } : {}),
    ...(removeUnlisted ? { removeUnlisted } : {}),
    ...(dateShift ? { dateShift } : {}),
    rules: rules.map((r) => r.rule),
  };
  return { profile, ruleLines: rules.map((r) => r.line), accounts, params: params_, notes };
}

export function describeAction(a: RawRule['action']): string {
  if (typeof a === 'string') return a;
  return JSON.stringify(a).replace(/"([a-zA-Z]+)":/g, '$1: ');
}

/** Counts per outcome, and the share of enabled rules that were translated or approximated. */
export function summarize(accounts: readonly RuleAccount[]): {
  total: number;
  enabled: number;
  translated: number;
  approximated: number;
  untranslatable: number;
  disabled: number;
  share: number;
} {
  const count = (o: Outcome) => accounts.filter((a) => a.outcome === o).length;
  const [translated, approximated, untranslatable, disabled] = [count('translated'), count('approximated'), count('untranslatable'), count('disabled')];
  const enabled = accounts.length - disabled;
  return { total: accounts.length, enabled, translated, approximated, untranslatable, disabled, share: enabled ? (translated + approximated) / enabled : 1 };
}
