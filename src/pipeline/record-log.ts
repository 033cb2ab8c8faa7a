/**
 * The service's object records (src/report/object-record.ts), one per object that left the pipeline:
 * what its manifest and report are built from. Appended, per day (UTC) and per writing process, to
 * `<dir>/<YYYY-MM-DD>/<writer>.jsonl`, one JSON line per record, group-committed (one fdatasync for
 * the records that finish together) and durable before `append` resolves. Every process writes files
 * of its own, so any number of them share a folder (also over a network filesystem) without a lock.
 *
 * The header stage's dispositions (hundreds of elements per object, and the same for every object of a
 * series) are stored once per file under their hash, and records name the hash.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, readdir, readFile, rm, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ObjectRecord } from '../report/object-record.js';
import { packDispositions, unpackDispositions, type Disposition, type ElementDispositions, type KeptBy } from '../stages/element-dispositions.js';
import { fsyncDir } from './durable-fs.js';


/** A line of a record file: a dispositions list under its hash, or a record naming such a hash. */
type Line = { d: string; e: Compact[] } | { r: ObjectRecord; e?: string };

const DAY = /^\d{4}-\d{2}-\d{2}$/;
export const dayOf = (iso: string): string => iso.slice(0, 10);
const isMissing = (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT';

type Compact = [tag: number, disposition: string, creator: string | null, keptBy?: string];

const compact = (d: ElementDispositions): Compact[] => unpackDispositions(d).map((e) => (e.keptBy ? [e.tag, e.disposition, e.creator ?? null, e.keptBy] : [e.tag, e.disposition, e.creator ?? null]));

const expand = (rows: readonly Compact[]): ElementDispositions =>
  packDispositions(
    rows.map(([tag, disposition, creator, keptBy]) => ({
      tag,
      disposition: disposition as Disposition,
      ...(creator !== null ? { creator } : {}),
      ...(keptBy ? { keptBy: keptBy as KeptBy } : {}),
    })),
  );

interface Pending {
  readonly record: ObjectRecord;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

/** How often old days are looked for. */
const FORGET_EVERY_MS = 3_600_000;

/**
 * Removes, now and then every hour, the days of records older than `keepDays()` days (0: keeps them
 * all), so that a service that runs for years keeps a bounded history.
 */
export function watchRecordRetention(records: RecordLog, keepDays: () => number, log: Logger, now: () => number = Date.now): { close(): void } {
  const sweep = async () => {
    const days = keepDays();
    if (!days) return;
    try {
      const gone = await records.forgetDaysBefore(dayOf(new Date(now() - days * 86_400_000).toISOString()));
      if (gone.length) log.info({ days: gone.length, keepDays: days }, 'removed records older than the retention period');
    } catch (e) {
      log.warn({ err: (e as NodeJS.ErrnoException).code ?? (e as Error).name }, 'record retention failed');
    }
  };
  void sweep();
  const timer = setInterval(sweep, FORGET_EVERY_MS);
  timer.unref();
  return { close: () => clearInterval(timer) };
}

export class RecordLog {
  private file?: { fh: FileHandle; day: string; hashes: Set<string> };
  private pending: Pending[] = [];
  private writing?: Promise<void>;
  private readonly writer = `${Date.now().toString(36)}-${createHash('sha256').update(hostname()).digest('hex').slice(0, 8)}-${process.pid}-${randomBytes(4).toString('hex')}`;

  constructor(readonly dir: string) {}

  /** Appends a record; resolves once it is durable. */
  append(record: ObjectRecord): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ record, resolve, reject });
      // After this turn of the event loop, so that the records of objects finishing together share a write.
      this.writing ??= new Promise<void>((r) => setImmediate(r)).then(() => this.drain());
    });
  }

  private async drain(): Promise<void> {
    while (this.pending.length) {
      const batch = this.pending.splice(0, 1000);
      try {
        const byDay = new Map<string, typeof batch>();
        for (const p of batch) {
          const day = dayOf(p.record.at);
          byDay.set(day, [...(byDay.get(day) ?? []), p]);
        }
        for (const [day, items] of byDay) await this.write(day, items.map((p) => p.record));
        for (const p of batch) p.resolve();
      } catch (e) {
        for (const p of batch) p.reject(e);
      }
    }
    this.writing = undefined;
  }

  private async write(day: string, records: readonly ObjectRecord[]): Promise<void> {
    const f = await this.fileFor(day);
    let text = '';
    for (const record of records) {
      const { details, ...rest } = record;
      let hash: string | undefined;
      if (details?.elements) {
        const rows = compact(details.elements);
        const json = JSON.stringify(rows);
        hash = createHash('sha256').update(json).digest('hex').slice(0, 24);
        if (!f.hashes.has(hash)) {
          text += `{"d":"${hash}","e":${json}}\n`;
          f.hashes.add(hash);
        }
      }
      const { elements: _, ...kept } = details ?? {};
      const line: Line = { r: details ? { ...rest, details: kept as NonNullable<ObjectRecord['details']> } : rest, ...(hash ? { e: hash } : {}) };
      text += JSON.stringify(line) + '\n';
    }
    try {
      await f.fh.write(text);
      await f.fh.datasync();
    } catch (e) {
      // A failed write may have left part of a line: this file takes no more (readers skip a torn line).
      this.file = undefined;
      await f.fh.close().catch(() => undefined);
      throw e;
    }
  }

  private async fileFor(day: string): Promise<NonNullable<RecordLog['file']>> {
    if (this.file?.day === day) return this.file;
    await this.file?.fh.close().catch(() => undefined);
    const dir = join(this.dir, day);
    mkdirSync(dir, { recursive: true });
    const fh = await open(join(dir, `${this.writer}-${randomBytes(2).toString('hex')}.jsonl`), 'ax', 0o640);
    await fsyncDir(dir);
    this.file = { fh, day, hashes: new Set() };
    return this.file;
  }

  /** Waits for what is pending, then closes the current file. */
  async close(): Promise<void> {
    while (this.writing) await this.writing;
    await this.file?.fh.close().catch(() => undefined);
    this.file = undefined;
  }

  /** Removes the records of the days before `day` (YYYY-MM-DD, UTC), never the day this log writes; returns the days removed. */
  async forgetDaysBefore(day: string): Promise<string[]> {
    const old = (await this.days()).filter((d) => d < day && d !== this.file?.day);
    for (const d of old) await rm(join(this.dir, d), { recursive: true, force: true });
    return old;
  }

  /** The days that have records, oldest first. */
  async days(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).filter((d) => DAY.test(d)).sort();
    } catch (e) {
      if (isMissing(e)) return [];
      throw e;
    }
  }

  /**
   * The records of the given days that `keep` selects, the latest per object (its SHA-256): an object
   * exported again after a crash, or quarantined and then requeued and exported, is counted once, by
   * its last outcome. Objects without a hash (never received whole) are all kept.
   */
  async read(days: readonly string[], keep: (r: ObjectRecord) => boolean = () => true): Promise<ObjectRecord[]> {
    const latest = new Map<string, ObjectRecord>();
    const unhashed: ObjectRecord[] = [];
    for (const day of days) {
      if (!DAY.test(day)) continue;
      let names: string[];
      try {
        names = (await readdir(join(this.dir, day))).filter((n) => n.endsWith('.jsonl')).sort();
      } catch (e) {
        if (isMissing(e)) continue;
        throw e;
      }
      for (const name of names) {
        const dictionary = new Map<string, ElementDispositions>();
        for (const text of (await readFile(join(this.dir, day, name), 'utf8')).split('\n')) {
          if (!text) continue;
          let line: Line;
          try {
            line = JSON.parse(text) as Line;
          } catch {
            continue; // a line torn by a crash
          }
          if ('d' in line) {
            dictionary.set(line.d, expand(line.e));
            continue;
          }
          const r = line.r;
          if (!keep(r)) continue;
          const elements = line.e ? dictionary.get(line.e) : undefined;
          const record: ObjectRecord = elements && r.details ? { ...r, details: { ...r.details, elements } } : r;
          if (!record.sha256) unhashed.push(record);
          else {
            const had = latest.get(record.sha256);
            if (!had || had.at <= record.at) latest.set(record.sha256, record);
          }
        }
      }
    }
    return [...latest.values(), ...unhashed].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  }
}
