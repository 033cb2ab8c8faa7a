/**
 * The per-submission report (a `deid run`, a study, a day of service): built from one ObjectRecord per
 * object as they come, in memory that grows with distinct attributes, values and reasons, not with
 * objects (per-image pixel rows and quarantined objects are listed up to a limit, then counted).
 *
 * ```ts
 * const r = new SubmissionReport();
 * for (const record of records) r.add(record);
 * const json = r.report({ title: 'deid run', kThreshold: 5 });   // plain JSON; renderReportHtml(json) for people
 * ```
 *
 * Threads of one run each fill their own and `merge` their `state()` at the end.
 */
import { ERRORS, type ErrorCode } from '../errors.js';
import { DISPOSITIONS, type Disposition } from '../stages/element-dispositions.js';
import { KAnonymity, type KAnonymityReport, type KAnonymityState } from './k-anonymity.js';
import type { ObjectRecord, Outcome, PixelOutcome } from './object-record.js';
import { TagInventory, type TagInventoryReport, type TagInventoryState } from './tag-inventory.js';

/** Rows listed per list (pixel outcomes per image, quarantined objects); beyond, they are counted. */
const MAX_LISTED = 5000;

export interface PixelImageRow extends PixelOutcome {
  readonly sopInstanceUid: string;
}

export interface SubmissionReportJson {
  readonly format: 'deid-report';
  readonly version: 1;
  readonly title: string;
  readonly generatedAt: string;
  readonly profile?: { readonly name: string; readonly options: readonly string[] };
  readonly objects: number;
  readonly outcomes: Readonly<Record<Outcome, number>>;
  /** Written objects by Modality. */
  readonly modalities: Readonly<Record<string, number>>;
  /** Element occurrences of the written objects by what the profile did. */
  readonly actions: Readonly<Record<Disposition, number>>;
  /** Objects whose elements were inventoried (all written ones, unless some were recorded without). */
  readonly inventory: TagInventoryReport;
  readonly pixels: {
    /** Whether the pixel stage ran on any written object (the profile cleans pixel data). */
    readonly ran: boolean;
    readonly examined: number;
    readonly masked: number;
    /** Images in which text was masked without being read. */
    readonly unreadMasked: number;
    readonly skipped: number;
    readonly skippedBecause: Readonly<Record<string, number>>;
    readonly images: readonly PixelImageRow[];
    readonly imagesNotListed: number;
  };
  readonly quarantine: {
    readonly reasons: ReadonlyArray<{ readonly code: ErrorCode; readonly stage: string; readonly objects: number; readonly message: string }>;
    /** By quarantine id (the first 32 hex digits of the SHA-256 of the received bytes). */
    readonly objects: ReadonlyArray<{ readonly id: string; readonly code: ErrorCode; readonly stage: string }>;
    readonly objectsNotListed: number;
  };
  /** Warnings of the stages (kept identifiers, …), with the number of objects that had each. */
  readonly warnings: ReadonlyArray<{ readonly kind: string; readonly detail: string; readonly objects: number }>;
  readonly kAnonymity: KAnonymityReport;
}

export interface SubmissionReportOptions {
  readonly title: string;
  /** Groups of fewer subjects than this are listed (default 5). */
  readonly kThreshold?: number;
  readonly profile?: { readonly name: string; readonly options: readonly string[] };
  readonly generatedAt?: Date;
}

/** A report's counts as plain data (structured-clone safe). */
export interface SubmissionState {
  readonly outcomes: Record<Outcome, number>;
  readonly modalities: Map<string, number>;
  readonly inventory: TagInventoryState;
  readonly k: KAnonymityState;
  readonly pixels: { ran: boolean; examined: number; masked: number; unreadMasked: number; skipped: number; skippedBecause: Map<string, number>; images: PixelImageRow[]; imagesNotListed: number };
  readonly quarantine: { reasons: Map<string, number>; objects: Array<{ id: string; code: ErrorCode; stage: string }>; objectsNotListed: number };
  readonly warnings: Map<string, number>;
}

const bump = (m: Map<string, number>, k: string, n = 1) => m.set(k, (m.get(k) ?? 0) + n);

function listUpTo<T>(list: T[], items: readonly T[]): number {
  const room = Math.max(0, MAX_LISTED - list.length);
  list.push(...items.slice(0, room));
  return items.length - Math.min(room, items.length);
}

export class SubmissionReport {
  private readonly outcomes: Record<Outcome, number> = { written: 0, quarantined: 0, unreadable: 0 };
  private readonly modalities = new Map<string, number>();
  private readonly inventory = new TagInventory();
  private readonly k = new KAnonymity();
  private readonly pixels: SubmissionState['pixels'] = { ran: false, examined: 0, masked: 0, unreadMasked: 0, skipped: 0, skippedBecause: new Map(), images: [], imagesNotListed: 0 };
  private readonly quarantine: SubmissionState['quarantine'] = { reasons: new Map(), objects: [], objectsNotListed: 0 };
  private readonly warnings = new Map<string, number>();

  add(r: ObjectRecord): void {
    this.outcomes[r.outcome]++;
    if (r.outcome !== 'written') {
      const code = r.code ?? 'DEID_ERR_INTERNAL';
      const stage = r.stage ?? '';
      bump(this.quarantine.reasons, `${code}\0${stage}`);
      this.quarantine.objectsNotListed += listUpTo(this.quarantine.objects, [{ id: r.sha256.slice(0, 32), code, stage }]);
      return;
    }
    const d = r.details;
    if (!d) return;
    bump(this.modalities, d.modality || '(none)');
    if (d.elements) this.inventory.add(d.elements);
    this.k.add({ subject: d.subject, values: d.quasiIdentifiers });
    if (d.warnings?.length) for (const w of new Set(d.warnings.map((w) => `${w.kind}\0${w.detail}`))) bump(this.warnings, w);
    const p = d.pixels;
    if (!p) return;
    this.pixels.ran = true;
    if (p.examined) this.pixels.examined++;
    else {
      this.pixels.skipped++;
      bump(this.pixels.skippedBecause, p.reason || '(no reason given)');
    }
    if (p.masked) this.pixels.masked++;
    if (p.unreadMasked > 0) this.pixels.unreadMasked++;
    this.pixels.imagesNotListed += listUpTo(this.pixels.images, [{ sopInstanceUid: r.sopInstanceUid ?? '', ...p }]);
  }

  state(): SubmissionState {
    return {
      outcomes: this.outcomes,
      modalities: this.modalities,
      inventory: this.inventory.state(),
      k: this.k.state(),
      pixels: this.pixels,
      quarantine: this.quarantine,
      warnings: this.warnings,
    };
  }

  /** Adds another share of the same submission (another thread's objects). */
  merge(o: SubmissionState): void {
    for (const k of Object.keys(this.outcomes) as Outcome[]) this.outcomes[k] += o.outcomes[k];
    for (const [k, n] of o.modalities) bump(this.modalities, k, n);
    this.inventory.merge(o.inventory);
    this.k.merge(o.k);
    const p = this.pixels;
    p.ran ||= o.pixels.ran;
    p.examined += o.pixels.examined;
    p.masked += o.pixels.masked;
    p.unreadMasked += o.pixels.unreadMasked;
    p.skipped += o.pixels.skipped;
    for (const [k, n] of o.pixels.skippedBecause) bump(p.skippedBecause, k, n);
    p.imagesNotListed += o.pixels.imagesNotListed + listUpTo(p.images, o.pixels.images);
    for (const [k, n] of o.quarantine.reasons) bump(this.quarantine.reasons, k, n);
    this.quarantine.objectsNotListed += o.quarantine.objectsNotListed + listUpTo(this.quarantine.objects, o.quarantine.objects);
    for (const [k, n] of o.warnings) bump(this.warnings, k, n);
  }

  report(opts: SubmissionReportOptions): SubmissionReportJson {
    const inventory = this.inventory.report();
    const actions = Object.fromEntries(DISPOSITIONS.map((d) => [d, 0])) as Record<Disposition, number>;
    for (const a of inventory.attributes) for (const [d, n] of Object.entries(a.dispositions) as [Disposition, number][]) actions[d] += n;
    const byCount = <T>(m: Map<string, number>, f: (k: string, n: number) => T) => [...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([k, n]) => f(k, n));
    return {
      format: 'deid-report',
      version: 1,
      title: opts.title,
      generatedAt: (opts.generatedAt ?? new Date()).toISOString(),
      ...(opts.profile ? { profile: { name: opts.profile.name, options: [...opts.profile.options] } } : {}),
      objects: this.outcomes.written + this.outcomes.quarantined + this.outcomes.unreadable,
      outcomes: { ...this.outcomes },
      modalities: Object.fromEntries(byCount(this.modalities, (k, n) => [k, n])),
      actions,
      inventory,
      pixels: {
        ran: this.pixels.ran,
        examined: this.pixels.examined,
        masked: this.pixels.masked,
        unreadMasked: this.pixels.unreadMasked,
        skipped: this.pixels.skipped,
        skippedBecause: Object.fromEntries(byCount(this.pixels.skippedBecause, (k, n) => [k, n])),
        images: [...this.pixels.images],
        imagesNotListed: this.pixels.imagesNotListed,
      },
      quarantine: {
        reasons: byCount(this.quarantine.reasons, (k, n) => {
          const [code, stage] = k.split('\0') as [ErrorCode, string];
          return { code, stage, objects: n, message: ERRORS[code] ?? '' };
        }),
        objects: [...this.quarantine.objects],
        objectsNotListed: this.quarantine.objectsNotListed,
      },
      warnings: byCount(this.warnings, (k, n) => {
        const [kind, detail] = k.split('\0');
        return { kind, detail, objects: n };
      }),
      kAnonymity: this.k.report({ threshold: opts.kThreshold ?? 5 }),
    };
  }
}
