import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { open, readdir, readFile, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DeidError } from '../errors.js';
import { sha256Hex, type SealedRow } from './row.js';
import { encodeIndex, searchIndex, writeIndex } from './segment-index.js';
import type { AuditEntry, MapStore } from './store.js';

/**
 * The file store: a folder that any number of processes, on one machine or sharing it over a network
 * filesystem, write to at once without a lock. Each writing process appends to segment files of its
 * own (`segments/*.seg`, O_APPEND, one fdatasync per batch), so writers never interleave and a crash
 * can only tear the last record of the crashed writer's own segment, which readers detect and skip.
 *
 *   idmap.json            format, version, key fingerprint (created once, atomically)
 *   segments/<…>.seg      one record a line: <8 hex of SHA-256 of the rest> <JSON {i, k, b}>
 *   segments/<…>.seg.idx  the sorted tokens of a segment's first bytes (segment-index.ts)
 *   audit.log             one JSON line per lookup or export
 */
const META = 'idmap.json';
const SEGMENTS = 'segments';
const AUDIT = 'audit.log';
/** A writer starts a new segment past this size (offsets in the index are 32-bit; readers hold one segment at most). */
const SEGMENT_BYTES = 64 * 1024 * 1024;
/** A lookup that finds more unindexed bytes than this in a segment indexes it for the next lookups. */
const REINDEX_BYTES = 1024 * 1024;

const NL = 0x0a;

function checksum(json: string): string {
  return sha256Hex(json).slice(0, 8);
}

export function encodeRecord(r: SealedRow): string {
  const json = JSON.stringify({ i: r.id, k: r.tokens, b: r.box.toString('base64') });
  return `${checksum(json)} ${json}\n`;
}

/** A record line (without its newline), or undefined when it is damaged. */
function decodeRecord(line: string): SealedRow | undefined {
  if (line.length < 10 || line[8] !== ' ') return undefined;
  const json = line.slice(9);
  if (checksum(json) !== line.slice(0, 8)) return undefined;
  try {
    const o = JSON.parse(json) as { i: string; k: string[]; b: string };
    return { id: o.i, tokens: o.k, box: Buffer.from(o.b, 'base64') };
  } catch {
    return undefined;
  }
}

/**
 * Every record of a segment with its offset, and where the last good record ends. A damaged stretch
 * at the very end is a record torn by a crash and is skipped; a damaged record followed by good ones
 * cannot come from a crash and fails the read.
 */
export function decodeSegment(buf: Buffer, name: string): { rows: Array<SealedRow & { offset: number }>; tornTail: boolean; validEnd: number } {
  const rows: Array<SealedRow & { offset: number }> = [];
  let damagedAt = -1;
  let validEnd = 0;
  let start = 0;
  while (start < buf.length) {
    const end = buf.indexOf(NL, start);
    if (end === -1) {
      if (damagedAt < 0) damagedAt = start;
      break;
    }
    const row = decodeRecord(buf.toString('latin1', start, end));
    if (row) {
      if (damagedAt >= 0) throw new DeidError('DEID_ERR_IDMAP_CORRUPT', `${name} at byte ${damagedAt}`);
      rows.push({ ...row, offset: start });
      validEnd = end + 1;
    } else if (damagedAt < 0) damagedAt = start;
    start = end + 1;
  }
  return { rows, tornTail: damagedAt >= 0, validEnd };
}

/** Indexes a segment up to its last good record (best effort: the index only saves reading). */
async function indexSegment(path: string): Promise<void> {
  try {
    const { rows, validEnd } = decodeSegment(await readFile(path), path);
    await writeIndex(path, encodeIndex(rows, validEnd));
  } catch {
    // A read-only folder or a damaged segment: lookups scan it instead.
  }
}

/** The record line starting at `offset`. */
async function readRecordAt(fh: FileHandle, offset: number): Promise<SealedRow | undefined> {
  for (let len = 4096; ; len *= 4) {
    const buf = Buffer.alloc(len);
    const { bytesRead } = await fh.read(buf, 0, len, offset);
    const end = buf.indexOf(NL);
    if (end !== -1 && end < bytesRead) return decodeRecord(buf.toString('latin1', 0, end));
    if (bytesRead < len) return undefined;
  }
}

function ioError(what: string, e: unknown): DeidError {
  if (e instanceof DeidError) return e;
  return new DeidError('DEID_ERR_IDMAP', `${what}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export class FileMapStore implements MapStore {
  private segment?: { fh: FileHandle; path: string; size: number };
  /** Appends of this process, one at a time (the caller batches; this keeps the order of its batches). */
  private tail: Promise<void> = Promise.resolve();

  /**
   * `syncEachBatch` false: batches are written (a process crash keeps them, as the page cache does)
   * but fsynced only when the writer closes. For a caller whose own outputs are not fsynced either
   * (`deid run`), where an fsync per batch would make the kernel write back its outputs early.
   */
  constructor(
    readonly dir: string,
    private readonly syncEachBatch = true,
  ) {}

  async claimKeyId(keyId: string | undefined): Promise<string | undefined> {
    const path = join(this.dir, META);
    const read = () => {
      try {
        return (JSON.parse(readFileSync(path, 'utf8')) as { keyId?: string }).keyId;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new DeidError('DEID_ERR_IDMAP', `${META} unreadable`);
      }
    };
    const existing = read();
    if (existing || !keyId) return existing;
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      // Written aside, then linked into place: link fails if another process got there first, and
      // nobody ever sees a half-written file.
      const tmp = join(this.dir, `.${META}.${process.pid}.${randomBytes(4).toString('hex')}`);
      writeFileSync(tmp, JSON.stringify({ format: 'deid-idmap', version: 1, keyId, created: new Date().toISOString() }) + '\n', { mode: 0o600, flush: true });
      try {
        linkSync(tmp, path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      } finally {
        unlinkSync(tmp);
      }
      fsyncDir(this.dir);
    } catch (e) {
      throw ioError('creating the map', e);
    }
    return read();
  }

  append(rows: readonly SealedRow[]): Promise<void> {
    const text = rows.map(encodeRecord).join('');
    const next = this.tail.then(() => this.write(Buffer.from(text, 'latin1')));
    this.tail = next.catch(() => undefined);
    return next;
  }

  private async write(buf: Buffer): Promise<void> {
    if (buf.length === 0) return;
    try {
      if (!this.segment || this.segment.size >= SEGMENT_BYTES) await this.openSegment();
      const seg = this.segment!;
      // Written here and now: a copy into the page cache, cheaper than the trip through libuv's
      // thread pool that an asynchronous write takes (only the fdatasync waits on the disk).
      let off = 0;
      while (off < buf.length) off += writeSync(seg.fh.fd, buf, off, buf.length - off);
      if (this.syncEachBatch) await seg.fh.datasync();
      seg.size += buf.length;
    } catch (e) {
      // A failed write may have left part of a record behind: this segment takes no more, so the
      // damage stays a torn tail that readers skip, and the next batch starts a segment of its own.
      const seg = this.segment;
      this.segment = undefined;
      await seg?.fh.close().catch(() => undefined);
      throw ioError('writing a segment', e);
    }
  }

  private async openSegment(): Promise<void> {
    await this.closeSegment();
    const dir = join(this.dir, SEGMENTS);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const host = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
    const name = `${Date.now().toString(36)}-${host}-${process.pid}-${randomBytes(4).toString('hex')}.seg`;
    // 'ax': O_APPEND | O_CREAT | O_EXCL, so no two writers ever share a file.
    const path = join(dir, name);
    const fh = await open(path, 'ax', 0o600);
    fsyncDir(dir);
    this.segment = { fh, path, size: 0 };
  }

  private async segmentNames(): Promise<string[]> {
    try {
      return (await readdir(join(this.dir, SEGMENTS))).filter((n) => n.endsWith('.seg')).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw ioError('listing segments', e);
    }
  }

  private async readSegment(name: string): Promise<Buffer> {
    try {
      return await readFile(join(this.dir, SEGMENTS, name));
    } catch (e) {
      throw ioError('reading a segment', e);
    }
  }

  /**
   * Looks the token up in each segment's index, and searches the raw bytes past the indexed prefix
   * (memchr speed): no JSON parse, let alone a decryption, of rows that do not match.
   */
  async find(token: string): Promise<SealedRow[]> {
    const out: SealedRow[] = [];
    const seen = new Set<string>();
    const take = (row: SealedRow | undefined) => {
      if (row && row.tokens.includes(token) && !seen.has(row.id)) {
        seen.add(row.id);
        out.push(row);
      }
    };
    for (const name of await this.segmentNames()) {
      const path = join(this.dir, SEGMENTS, name);
      try {
        const { covered, offsets } = await searchIndex(path, token);
        const fh = await open(path, 'r');
        let tail: Buffer;
        try {
          for (const offset of offsets) take(await readRecordAt(fh, offset));
          const size = (await fh.stat()).size;
          tail = Buffer.alloc(Math.max(0, size - covered));
          if (tail.length) await fh.read(tail, 0, tail.length, covered);
        } finally {
          await fh.close();
        }
        const needle = Buffer.from(`"${token}"`, 'latin1');
        for (let at = tail.indexOf(needle); at !== -1; ) {
          const end = tail.indexOf(NL, at);
          if (end === -1) break; // the torn tail of a crashed writer, or a record being written
          take(decodeRecord(tail.toString('latin1', tail.lastIndexOf(NL, at) + 1, end)));
          at = tail.indexOf(needle, end);
        }
        if (tail.length > REINDEX_BYTES) await indexSegment(path);
      } catch (e) {
        throw ioError('reading a segment', e);
      }
    }
    return out;
  }

  async *scan(): AsyncIterable<SealedRow> {
    const seen = new Set<string>();
    for (const name of await this.segmentNames()) {
      for (const row of decodeSegment(await this.readSegment(name), name).rows) {
        if (seen.has(row.id)) continue;
        seen.add(row.id);
        yield row;
      }
    }
  }

  async audit(entry: AuditEntry): Promise<void> {
    let fh: FileHandle | undefined;
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      // One write per entry on O_APPEND: entries of concurrent processes never interleave.
      fh = await open(join(this.dir, AUDIT), 'a', 0o600);
      await fh.write(JSON.stringify(entry) + '\n');
      await fh.datasync();
    } catch (e) {
      throw ioError('writing the audit log', e);
    } finally {
      await fh?.close();
    }
  }

  async *auditEntries(): AsyncIterable<AuditEntry> {
    let text = '';
    try {
      text = await readFile(join(this.dir, AUDIT), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('reading the audit log', e);
    }
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        yield JSON.parse(line) as AuditEntry;
      } catch {
        // a torn last entry
      }
    }
  }

  /**
   * Closes this writer's segment. It is not indexed here, at the end of a run or of a segment, but by
   * the first lookup that finds more than REINDEX_BYTES of it unindexed (below that, reading it costs
   * no more than its index would).
   */
  private async closeSegment(): Promise<void> {
    const seg = this.segment;
    this.segment = undefined;
    if (!seg) return;
    try {
      if (!this.syncEachBatch) await seg.fh.datasync();
    } catch (e) {
      throw ioError('writing a segment', e);
    } finally {
      await seg.fh.close();
    }
  }

  async close(): Promise<void> {
    await this.tail;
    await this.closeSegment();
  }
}

/** The folder's segment files (for tests and tools). */
export function segmentFiles(dir: string): string[] {
  try {
    return readdirSync(join(dir, SEGMENTS)).filter((n) => n.endsWith('.seg')).sort().map((n) => join(dir, SEGMENTS, n));
  } catch {
    return [];
  }
}
