/**
 * What the profile did to every element of an object, in the words of a tag inventory: kept,
 * removed, replaced, cleaned or remapped, and for a kept private element why (Retain Safe Private's
 * lists, or a rule of the profile). The header stage records it as it walks the object, packed into
 * three arrays rather than an object per element: there are hundreds per object.
 *
 * ```ts
 * const d = deidentifyHeader(src, { profile, secret, dispositions: true }).dispositions!;
 * unpackDispositions(d);   // [{ tag: 0x00100010, disposition: 'replaced' }, { tag: 0x00191023, creator: 'GEMS_ACQU_01', disposition: 'kept', keptBy: 'E.3.10-1' }, ...]
 * ```
 */
import { tagGroup, type Tag } from '../dicom/tag.js';

export const DISPOSITIONS = ['kept', 'removed', 'replaced', 'cleaned', 'remapped'] as const;
export type Disposition = (typeof DISPOSITIONS)[number];

/** Why a kept private element was kept. */
export const KEPT_BY = ['E.3.10-1', 'TCIA', 'rule'] as const;
export type KeptBy = (typeof KEPT_BY)[number];

/** One element's disposition, readable: as record files store it. */
export interface ElementDisposition {
  readonly tag: Tag;
  /** The private creator of a private element. */
  readonly creator?: string;
  readonly disposition: Disposition;
  readonly keptBy?: KeptBy;
}

/** The dispositions of an object's elements at every depth (private creators aside), in the order met. */
export interface ElementDispositions {
  /** Each element's tag. */
  readonly tags: readonly number[];
  /** Each element's DISPOSITIONS index, plus 8 × (1 + its KEPT_BY index) for a kept private element. */
  readonly codes: readonly number[];
  /** Each element's private creator (undefined for a standard element). */
  readonly creators: ReadonlyArray<string | undefined>;
}

const code = (disposition: Disposition, keptBy: KeptBy | undefined): number => DISPOSITIONS.indexOf(disposition) + (keptBy ? 8 * (1 + KEPT_BY.indexOf(keptBy)) : 0);

/** The disposition in a code. */
export const dispositionIndex = (c: number): number => c & 7;
/** Why a kept private element was kept (undefined: not said), from its code. */
export const keptByOf = (c: number): KeptBy | undefined => KEPT_BY[(c >> 3) - 1];

/** A hash of an object's dispositions, to find the same list again (sameDispositions decides). */
export function dispositionsHash({ tags, codes }: ElementDispositions): number {
  let h = tags.length;
  for (let i = 0; i < tags.length; i++) h = Math.imul(h ^ tags[i], 0x01000193) ^ codes[i];
  return h;
}

export function sameDispositions(a: ElementDispositions, b: ElementDispositions): boolean {
  if (a === b) return true;
  const n = a.tags.length;
  if (b.tags.length !== n) return false;
  for (let i = 0; i < n; i++) if (a.tags[i] !== b.tags[i] || a.codes[i] !== b.codes[i] || a.creators[i] !== b.creators[i]) return false;
  return true;
}

/**
 * Lists recorded lately, by hash. The objects of a series mostly have one list: it is kept once, and
 * the others' copies die at once rather than live on, in every record, until the report counts them
 * (objects that live across collections made V8 double its young generation).
 */
const recent = new Map<number, ElementDispositions>();
const RECENT = 64;

/** The header stage's record, as it walks: each element with its depth, which only the walk needs. */
export class DispositionLog implements ElementDispositions {
  readonly tags: number[] = [];
  readonly codes: number[] = [];
  readonly creators: Array<string | undefined> = [];
  private readonly depths: number[] = [];

  get length(): number {
    return this.tags.length;
  }

  /** Records an element; returns its index. */
  add(tag: Tag, creator: string | undefined, depth: number, disposition: Disposition, keptBy?: KeptBy): number {
    this.tags.push(tag);
    this.codes.push(code(disposition, keptBy));
    this.creators.push(creator);
    this.depths.push(depth);
    return this.tags.length - 1;
  }

  /** Changes what happened to the element at `i` (why it was kept stays). */
  redispose(i: number, disposition: Disposition): void {
    this.codes[i] = code(disposition, keptByOf(this.codes[i]));
  }

  /** The elements recorded from index `from` on at `depth` whose group is in `groups`, removed. */
  removeGroups(from: number, depth: number, groups: ReadonlySet<number>): void {
    for (let i = from; i < this.tags.length; i++) if (this.depths[i] === depth && groups.has(tagGroup(this.tags[i]))) this.redispose(i, 'removed');
  }

  /** The dispositions recorded: the same object as an equal list recorded lately, if any. */
  packed(): ElementDispositions {
    const d: ElementDispositions = { tags: this.tags, codes: this.codes, creators: this.creators };
    const hash = dispositionsHash(d);
    const seen = recent.get(hash);
    if (seen && sameDispositions(seen, d)) return seen;
    if (recent.size >= RECENT) recent.clear();
    recent.set(hash, d);
    return d;
  }
}

export function unpackDispositions(d: ElementDispositions): ElementDisposition[] {
  return d.tags.map((tag, i) => {
    const creator = d.creators[i];
    const keptBy = keptByOf(d.codes[i]);
    return { tag, ...(creator !== undefined ? { creator } : {}), disposition: DISPOSITIONS[dispositionIndex(d.codes[i])], ...(keptBy ? { keptBy } : {}) };
  });
}

export function packDispositions(elements: readonly ElementDisposition[]): ElementDispositions {
  return { tags: elements.map((e) => e.tag), codes: elements.map((e) => code(e.disposition, e.keptBy)), creators: elements.map((e) => e.creator) };
}
