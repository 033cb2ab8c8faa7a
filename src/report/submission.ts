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
 */
import { ERRORS, type ErrorCode } from '../errors.js';
import { DISPOSITIONS, type Disposition } from '../stages/element-dispositions.js';
import { KAnonymity, type KAnonymityReport } from './k-anonymity.js';
import type { ObjectRecord, Outcome, PixelOutcome } from './object-record.js';
import { TagInventory, type TagInventoryReport } from './tag-inventory.js';

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

const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

/** Adds to a list up to MAX_LISTED; returns 1 for an item not listed, to be counted instead. */
function listUpTo<T>(list: T[], item: T): number {
  if (list.length >= MAX_LISTED) return 1;
  list.push(item);
  return 0;
}

export class SubmissionReport {
  private readonly outcomes: Record<Outcome, number> = { written: 0, quarantined: 0, unreadable: 0 };
  private readonly modalities = new Map<string, number>();
  private readonly inventory = new TagInventory();
  private readonly k = new KAnonymity();
  private readonly pixels = { ran: false, examined: 0, masked: 0, unreadMasked: 0, skipped: 0, skippedBecause: new Map<string, number>(), images: [] as PixelImageRow[], imagesNotListed: 0 };
  private readonly quarantine = { reasons: new Map<string, number>(), objects: [] as Array<{ id: string; code: ErrorCode; stage: string }>, objectsNotListed: 0 };
  private readonly warnings = new Map<string, number>();

  add(r: ObjectRecord): void {
    this.outcomes[r.outcome]++;
    if (r.outcome !== 'written') {
      const code = r.code ?? 'DEID_ERR_INTERNAL';
      const stage = r.stage ?? '';
      bump(this.quarantine.reasons, `${code}\0${stage}`);
      this.quarantine.objectsNotListed += listUpTo(this.quarantine.objects, { id: r.sha256.slice(0, 32), code, stage });
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
    this.pixels.imagesNotListed += listUpTo(this.pixels.images, { sopInstanceUid: r.sopInstanceUid ?? '', ...p });
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
