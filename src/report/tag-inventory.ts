import { keywordOf } from '../dicom/dictionary.js';
import { formatTag, isPrivateTag, tagGroup, type Tag } from '../dicom/tag.js';
import type { Disposition, ElementDisposition } from '../stages/header.js';

/**
 * The tag inventory of a submission, in the manner of TCIA's TagSniffer: every attribute seen, in how
 * many objects, and what the profile did to it; and every private creator with its disposition (kept
 * by PS3.15 E.3.10-1, kept by the TCIA private tag knowledge base, kept by a rule of the profile, or
 * removed).
 *
 * Input: per object, what happened to each element — exactly what the header stage returns with
 * `dispositions: true` (`deidentifyHeader(src, { profile, secret, dispositions: true }).dispositions`).
 * Output: plain JSON. Pure and incremental, so a run or a day of service adds objects as they come.
 *
 * ```ts
 * const inv = new TagInventory();
 * for (const src of sources) inv.add(deidentifyHeader(src, { profile, secret, dispositions: true }).dispositions!);
 * inv.report();  // { objects, attributes: [{ attribute, tag, objects, occurrences, dispositions }], privateCreators: [...] }
 * ```
 */

/** What the inventory needs of an element; the header stage's ElementDisposition fits. */
export type InventoryElement = Pick<ElementDisposition, 'tag' | 'creator' | 'disposition' | 'keptBy'>;

export interface AttributeCount {
  /** The keyword, a private element in selector form `(gggg,"CREATOR",ee)`, or the tag. */
  readonly attribute: string;
  readonly tag: string;
  readonly creator?: string;
  /** Objects in which it occurs (at any depth). */
  readonly objects: number;
  /** Occurrences, counting every sequence item. */
  readonly occurrences: number;
  readonly dispositions: Readonly<Partial<Record<Disposition, number>>>;
}

export type CreatorDisposition = 'kept (E.3.10-1)' | 'kept (TCIA knowledge base)' | 'kept by a rule' | 'removed';

export interface PrivateCreatorCount {
  readonly creator: string;
  readonly group: string;
  readonly objects: number;
  /** Element occurrences of this creator's blocks. */
  readonly elements: number;
  readonly dispositions: Readonly<Partial<Record<CreatorDisposition, number>>>;
  /** kept: every element stayed; removed: none did; partly kept: some did. */
  readonly verdict: 'kept' | 'removed' | 'partly kept';
}

export interface TagInventoryReport {
  readonly objects: number;
  readonly attributes: readonly AttributeCount[];
  readonly privateCreators: readonly PrivateCreatorCount[];
}

const hex = (n: number, width: number) => n.toString(16).toUpperCase().padStart(width, '0');

function attributeName(tag: Tag, creator: string | undefined): string {
  if (creator !== undefined) return `(${hex(tagGroup(tag), 4)},"${creator}",${hex(tag & 0xff, 2).toLowerCase()})`;
  if (isPrivateTag(tag)) return formatTag(tag);
  return keywordOf(tag) ?? formatTag(tag);
}

function creatorDisposition(e: InventoryElement): CreatorDisposition {
  if (e.disposition === 'removed') return 'removed';
  if (e.keptBy === 'E.3.10-1') return 'kept (E.3.10-1)';
  if (e.keptBy === 'TCIA') return 'kept (TCIA knowledge base)';
  return 'kept by a rule';
}

export interface Tally<K extends string> {
  objects: number;
  occurrences: number;
  counts: Partial<Record<K, number>>;
  lastObject: number;
}

function bump<K extends string>(t: Tally<K>, what: K, object: number): void {
  if (t.lastObject !== object) {
    t.objects++;
    t.lastObject = object;
  }
  t.occurrences++;
  t.counts[what] = (t.counts[what] ?? 0) + 1;
}

const tally = <K extends string>(): Tally<K> => ({ objects: 0, occurrences: 0, counts: {}, lastObject: -1 });

/** An inventory's counts as plain data (structured-clone safe): what a thread sends to be merged. */
export interface TagInventoryState {
  readonly objects: number;
  /** By tag for standard elements, by `tag|creator` for private ones. */
  readonly attributes: ReadonlyMap<number | string, Tally<Disposition> & { tag: Tag; creator?: string }>;
  readonly creators: ReadonlyMap<string, Tally<CreatorDisposition>>;
}

function mergeTally<K extends string>(into: Tally<K>, from: Tally<K>): void {
  into.objects += from.objects;
  into.occurrences += from.occurrences;
  for (const [k, n] of Object.entries(from.counts) as [K, number][]) into.counts[k] = (into.counts[k] ?? 0) + n;
}

type AttributeTally = Tally<Disposition> & { tag: Tag; creator?: string };

/** The tally under `key` in `m`, made on first use. */
function tallyIn<K, T>(m: Map<K, T>, key: K, make: () => T): T {
  let t = m.get(key);
  if (t === undefined) m.set(key, (t = make()));
  return t;
}

export class TagInventory {
  private objects = 0;
  // Keyed by numbers and nested by creator, not by composed strings: this runs for every element of
  // every object, and most elements of some objects are private.
  private readonly byTag = new Map<number, AttributeTally>();
  /** creator → tag → tally */
  private readonly byCreator = new Map<string, Map<number, AttributeTally>>();
  /** creator → group → tally */
  private readonly creators = new Map<string, Map<number, Tally<CreatorDisposition>>>();

  state(): TagInventoryState {
    const attributes = new Map<number | string, AttributeTally>(this.byTag);
    for (const tags of this.byCreator.values()) for (const a of tags.values()) attributes.set(`${a.tag}|${a.creator}`, a);
    const creators = new Map<string, Tally<CreatorDisposition>>();
    for (const [creator, groups] of this.creators) for (const [group, t] of groups) creators.set(`${hex(group, 4)}|${creator}`, t);
    return { objects: this.objects, attributes, creators };
  }

  /** Adds the counts of another inventory over other objects (another thread's share of a run). */
  merge(other: TagInventoryState): void {
    this.objects += other.objects;
    // lastObject -1: a merged tally is never mistaken for one of this inventory's objects.
    const into = <K extends string, T extends Tally<K>>(mine: T | undefined, from: T, set: (t: T) => void) => {
      if (mine) mergeTally(mine, from);
      else set({ ...from, counts: { ...from.counts }, lastObject: -1 });
    };
    for (const a of other.attributes.values()) {
      const m = a.creator === undefined ? this.byTag : tallyIn(this.byCreator, a.creator, () => new Map<number, AttributeTally>());
      into(m.get(a.tag), a, (t) => m.set(a.tag, t));
    }
    for (const [key, c] of other.creators) {
      const group = parseInt(key.slice(0, 4), 16);
      const m = tallyIn(this.creators, key.slice(5), () => new Map<number, Tally<CreatorDisposition>>());
      into(m.get(group), c, (t) => m.set(group, t));
    }
  }

  /** Adds one object: the dispositions of its elements at every depth. */
  add(elements: readonly InventoryElement[]): void {
    const object = this.objects++;
    for (const e of elements) {
      if (e.creator === undefined) {
        bump(tallyIn(this.byTag, e.tag, () => ({ ...tally<Disposition>(), tag: e.tag })), e.disposition, object);
        continue;
      }
      const tags = tallyIn(this.byCreator, e.creator, () => new Map<number, AttributeTally>());
      bump(tallyIn(tags, e.tag, () => ({ ...tally<Disposition>(), tag: e.tag, creator: e.creator })), e.disposition, object);
      const groups = tallyIn(this.creators, e.creator, () => new Map<number, Tally<CreatorDisposition>>());
      bump(tallyIn(groups, tagGroup(e.tag), () => tally<CreatorDisposition>()), creatorDisposition(e), object);
    }
  }

  report(): TagInventoryReport {
    const all = [...this.byTag.values()];
    for (const tags of this.byCreator.values()) all.push(...tags.values());
    const attributes = all
      .sort((a, b) => a.tag - b.tag || (a.creator ?? '').localeCompare(b.creator ?? ''))
      .map((a) => ({
        attribute: attributeName(a.tag, a.creator),
        tag: formatTag(a.tag),
        ...(a.creator !== undefined ? { creator: a.creator } : {}),
        objects: a.objects,
        occurrences: a.occurrences,
        dispositions: { ...a.counts },
      }));
    const privateCreators = [...this.state().creators.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([key, t]) => {
        const [group, creator] = [key.slice(0, 4), key.slice(5)];
        const removed = t.counts.removed ?? 0;
        const verdict: PrivateCreatorCount['verdict'] = removed === 0 ? 'kept' : removed === t.occurrences ? 'removed' : 'partly kept';
        return { creator, group, objects: t.objects, elements: t.occurrences, dispositions: { ...t.counts }, verdict };
      });
    return { objects: this.objects, attributes, privateCreators };
  }
}

/** The inventory of a whole batch at once: one list of element dispositions per object. */
export function tagInventory(objects: Iterable<readonly InventoryElement[]>): TagInventoryReport {
  const inv = new TagInventory();
  for (const o of objects) inv.add(o);
  return inv.report();
}
