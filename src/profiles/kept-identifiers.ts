import { formatTag } from '../dicom/tag.js';
import type { Action, CompiledProfile, KeptIdentifier, Rule } from './compile.js';

/**
 * Which attributes a profile keeps although PS3.15 Table E.1-1 removes or replaces them. The table is
 * the built-in basic profile compiled with the same options, so an option's own K or C (Retain Patient
 * Characteristics keeps PatientSex) is the standard's choice, not the profile's.
 */

/** What the profile does with the source value, when it lets it (or some of it) through. */
function keeping(action: Action, table: Action): KeptIdentifier['action'] | undefined {
  if (table.kind === 'K') return undefined;
  switch (action.kind) {
    case 'K':
      return 'keep';
    // Cleaning keeps the text; the table's C, or its date shift under an option, allows that already.
    case 'C':
      return table.kind === 'C' || table.kind === 'safePrivate' ? undefined : 'clean';
    case 'dateShift':
      return table.kind === 'C' ? undefined : 'dateshift';
    default:
      return undefined;
  }
}

const KEEP: Action = { kind: 'K' };
const REMOVE: Action = { kind: 'X' };

/** The profile's action where the table has a rule: its own rule for the same selector, else its default. */
function actionFor(profile: CompiledProfile, tableRule: Rule): Action {
  const s = tableRule.steps[0];
  const unlisted = profile.removeUnlisted ? REMOVE : KEEP;
  switch (s.kind) {
    case 'tag':
      return profile.byTag.get(s.tag)?.action ?? profile.masks.find((m) => m.steps[0].kind === 'mask' && ((s.tag & m.steps[0].mask) >>> 0) === m.steps[0].value)?.action ?? unlisted;
    case 'mask':
      return profile.masks.find((m) => m.steps[0].kind === 'mask' && m.steps[0].mask === s.mask && m.steps[0].value === s.value)?.action ?? unlisted;
    case 'anyPrivate':
      // Private elements are removed unless a rule keeps them, even in a profile that keeps the rest.
      return profile.anyPrivate?.action ?? REMOVE;
    default:
      return unlisted;
  }
}

export function keptIdentifiers(profile: CompiledProfile, table: CompiledProfile): KeptIdentifier[] {
  const out: KeptIdentifier[] = [];
  const add = (rule: Rule, select: string, action: Action, tag?: number) => {
    const what = keeping(action, rule.action);
    if (what) out.push({ select, tag, name: rule.name ?? select, tableAction: rule.code ?? rule.action.kind, action: what });
  };
  for (const rule of [...table.byTag.values(), ...table.masks]) {
    const s = rule.steps[0];
    add(rule, rule.select, actionFor(profile, rule), s.kind === 'tag' ? s.tag : undefined);
  }
  const privateRow = table.anyPrivate;
  if (privateRow) {
    add(privateRow, 'private', actionFor(profile, privateRow));
    // Rules that keep private elements by creator or tag: the table's private row says what it does.
    for (const r of profile.byPrivate.values()) add(privateRow, r.select, r.action);
    for (const r of profile.byTag.values()) if (r.steps[0].kind === 'tag' && ((r.steps[0].tag >>> 16) & 1) === 1 && !table.byTag.has(r.steps[0].tag)) add(privateRow, r.select, r.action, r.steps[0].tag);
  }
  // Path rules that keep an attribute somewhere in a sequence: the table's row for their last step.
  for (const r of profile.paths) {
    const last = r.steps[r.steps.length - 1];
    const row = last.kind === 'tag' ? table.byTag.get(last.tag) : undefined;
    if (row && last.kind === 'tag') add(row, r.select, r.action, undefined);
  }
  return out.sort((a, b) => (a.tag ?? Infinity) - (b.tag ?? Infinity) || a.select.localeCompare(b.select));
}

/** One line per kept attribute, as `deid run`, `deid serve` and `deid profiles --check` list them. */
export function describeKept(k: KeptIdentifier): string {
  const where = k.tag !== undefined ? formatTag(k.tag) : k.select;
  return `${where.padEnd(13)} ${k.name} (Table E.1-1: ${k.tableAction}; profile: ${k.action})`;
}

const keptTags = new WeakMap<CompiledProfile, ReadonlyMap<number, string>>();

/** The tags of the kept attributes, with their names: what the report of each object lists when present. */
export function keptTagsOf(profile: CompiledProfile): ReadonlyMap<number, string> {
  let tags = keptTags.get(profile);
  if (!tags) {
    const m = new Map<number, string>();
    for (const k of profile.keptIdentifiers ?? []) if (k.tag !== undefined) m.set(k.tag, `${formatTag(k.tag)} ${k.name}`);
    keptTags.set(profile, (tags = m));
  }
  return tags;
}
