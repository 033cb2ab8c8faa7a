import { keywordOf } from '../dicom/dictionary.js';
import { formatTag, isPrivateTag, tagGroup, type Tag } from '../dicom/tag.js';
import { DISPOSITIONS, dispositionIndex, dispositionsHash, keptByOf, sameDispositions, type Disposition, type ElementDispositions } from '../stages/element-dispositions.js';

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

const CREATOR_DISPOSITIONS = ['kept (E.3.10-1)', 'kept (TCIA knowledge base)', 'kept by a rule', 'removed'] as const;
export type CreatorDisposition = (typeof CREATOR_DISPOSITIONS)[number];

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

/** Code-unit order: localeCompare loads ICU's collation data, a tenth of a short run's report. */
const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

const hex = (n: number, width: number) => n.toString(16).toUpperCase().padStart(width, '0');

function attributeName(tag: Tag, creator: string | undefined): string {
  if (creator !== undefined) return `(${hex(tagGroup(tag), 4)},"${creator}",${hex(tag & 0xff, 2).toLowerCase()})`;
  if (isPrivateTag(tag)) return formatTag(tag);
  return keywordOf(tag) ?? formatTag(tag);
}

const REMOVED = DISPOSITIONS.indexOf('removed');

/** The index in CREATOR_DISPOSITIONS of a private element's creator disposition, from its disposition code. */
function creatorDisposition(code: number): number {
  if (dispositionIndex(code) === REMOVED) return CREATOR_DISPOSITIONS.indexOf('removed');
  const keptBy = keptByOf(code);
  return CREATOR_DISPOSITIONS.indexOf(keptBy === 'E.3.10-1' ? 'kept (E.3.10-1)' : keptBy === 'TCIA' ? 'kept (TCIA knowledge base)' : 'kept by a rule');
}

/**
 * Counts of one attribute (or one creator's block): objects, occurrences, and occurrences by
 * disposition, indexed as DISPOSITIONS (or CREATOR_DISPOSITIONS) are: named only in the report.
 */
interface Tally {
  objects: number;
  occurrences: number;
  readonly counts: number[];
  /** The last list of elements counted, so that an attribute met twice in one object counts one object. */
  lastObject: number;
}

type AttributeTally = Tally & { readonly tag: Tag; readonly creator?: string };

/** Counts an occurrence in `times` objects that share one list of elements (`list` marks which). */
function bump(t: Tally, code: number, list: number, times: number): void {
  if (t.lastObject !== list) {
    t.objects += times;
    t.lastObject = list;
  }
  t.occurrences += times;
  t.counts[code] += times;
}

const zeros = (n: number) => new Array<number>(n).fill(0);
const attributeTally = (tag: Tag, creator?: string): AttributeTally => ({ objects: 0, occurrences: 0, counts: zeros(DISPOSITIONS.length), lastObject: -1, tag, creator });
const creatorTally = (): Tally => ({ objects: 0, occurrences: 0, counts: zeros(CREATOR_DISPOSITIONS.length), lastObject: -1 });

/** The counts by name, those that are not zero. */
function named<K extends string>(names: readonly K[], counts: readonly number[]): Partial<Record<K, number>> {
  const out: Partial<Record<K, number>> = {};
  names.forEach((name, i) => {
    if (counts[i]) out[name] = counts[i];
  });
  return out;
}

/** The tally under `key` in `m`, made on first use. */
function tallyIn<K, T>(m: Map<K, T>, key: K, make: (key: K) => T): T {
  let t = m.get(key);
  if (t === undefined) m.set(key, (t = make(key)));
  return t;
}

const newMap = <K, V>() => new Map<K, V>();

/** Distinct lists of elements held before they are counted (see TagInventory.add). */
const HELD_LISTS = 64;

export class TagInventory {
  private objects = 0;
  /**
   * Lists of elements not counted yet, by hash, with the number of objects that had exactly that list:
   * the objects of a series mostly do, so each distinct list is counted once, times its objects.
   */
  private readonly held = new Map<number, Array<{ readonly elements: ElementDispositions; objects: number }>>();
  private heldLists = 0;
  /** Lists counted so far: each count marks the tallies it touches with its number. */
  private counted = 0;
  // Keyed by numbers and nested by creator, and counted by index, not by composed strings or names:
  // this runs for every element of every object, and most elements of some objects are private.
  private readonly byTag = new Map<number, AttributeTally>();
  private readonly byCreator = new Map<string, Map<number, AttributeTally>>();
  private readonly creators = new Map<string, Map<number, Tally>>();

  /** Adds one object: the dispositions of its elements at every depth. */
  add(elements: ElementDispositions): void {
    this.objects++;
    const hash = dispositionsHash(elements);
    const lists = this.held.get(hash);
    const same = lists?.find((l) => sameDispositions(l.elements, elements));
    if (same) {
      same.objects++;
      return;
    }
    if (this.heldLists === HELD_LISTS) this.countHeld();
    const entry = { elements, objects: 1 };
    const bucket = this.held.get(hash);
    if (bucket) bucket.push(entry);
    else this.held.set(hash, [entry]);
    this.heldLists++;
  }

  /** Counts the lists held, each for as many objects as had it. */
  private countHeld(): void {
    for (const lists of this.held.values()) for (const l of lists) this.count(l.elements, l.objects);
    this.held.clear();
    this.heldLists = 0;
  }

  private count({ tags, codes, creators }: ElementDispositions, times: number): void {
    const list = this.counted++;
    for (let i = 0; i < tags.length; i++) {
      const tag = tags[i];
      const creator = creators[i];
      if (creator === undefined) {
        bump(tallyIn(this.byTag, tag, attributeTally), dispositionIndex(codes[i]), list, times);
        continue;
      }
      const byTag = tallyIn(this.byCreator, creator, newMap<number, AttributeTally>);
      let t = byTag.get(tag);
      if (t === undefined) byTag.set(tag, (t = attributeTally(tag, creator)));
      bump(t, dispositionIndex(codes[i]), list, times);
      bump(tallyIn(tallyIn(this.creators, creator, newMap<number, Tally>), tagGroup(tag), creatorTally), creatorDisposition(codes[i]), list, times);
    }
  }

  report(): TagInventoryReport {
    this.countHeld();
    const all = [...this.byTag.values()];
    for (const tags of this.byCreator.values()) all.push(...tags.values());
    const attributes = all
      .sort((a, b) => a.tag - b.tag || byText(a.creator ?? '', b.creator ?? ''))
      .map((a) => ({
        attribute: attributeName(a.tag, a.creator),
        tag: formatTag(a.tag),
        ...(a.creator !== undefined ? { creator: a.creator } : {}),
        objects: a.objects,
        occurrences: a.occurrences,
        dispositions: named(DISPOSITIONS, a.counts),
      }));
    const privateCreators: PrivateCreatorCount[] = [];
    for (const [creator, groups] of this.creators) {
      for (const [g, t] of groups) {
        const group = hex(g, 4);
        const removed = t.counts[CREATOR_DISPOSITIONS.indexOf('removed')];
        const verdict: PrivateCreatorCount['verdict'] = removed === 0 ? 'kept' : removed === t.occurrences ? 'removed' : 'partly kept';
        privateCreators.push({ creator, group, objects: t.objects, elements: t.occurrences, dispositions: named(CREATOR_DISPOSITIONS, t.counts), verdict });
      }
    }
    privateCreators.sort((a, b) => byText(a.group, b.group) || byText(a.creator, b.creator));
    return { objects: this.objects, attributes, privateCreators };
  }
}

/** The inventory of a whole batch at once: one list of element dispositions per object. */
export function tagInventory(objects: Iterable<ElementDispositions>): TagInventoryReport {
  const inv = new TagInventory();
  for (const o of objects) inv.add(o);
  return inv.report();
}
