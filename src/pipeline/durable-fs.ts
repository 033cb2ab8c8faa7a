/**
 * The durable-file primitives, defined once: the temporary name a write goes through, a file written
 * and fsynced, an atomic write (temporary file, rename) that with `durable` also fsyncs the file and
 * its directory, and a directory syncer that coalesces concurrent directory fsyncs.
 *
 * A rename or a link is durable only once its directory is fsynced: an object acknowledged after a
 * file fsync alone can vanish in a power loss. The spool, the queue, the outputs and the folder
 * export all write through here.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsync as fsyncCb, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeFile as writeFileCb, writeFileSync, writeSync } from 'node:fs';
import { link, mkdir, readFile, readdir, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { promisify } from 'node:util';
import { basename, dirname, join } from 'node:path';

const fsync = promisify(fsyncCb);
// One native request for a whole file, instead of the open/write/close round trips of fs/promises.
const writeWhole = promisify(writeFileCb);

/** This host, as a short hash: temporary files and queue claims name their writer by host and pid. */
export const HOST_TAG = createHash('sha256').update(hostname()).digest('hex').slice(0, 12);

let seq = 0;
/**
 * A temporary name beside `target`: `<target>.<host>-<pid>.<n>.tmp`, unique per process and call, ending
 * in `.tmp` so listings skip it, and naming its writer so that a sweep can tell a leftover of a dead
 * process from a write in progress.
 */
export const tempNameFor = (target: string): string => `${target}.${HOST_TAG}-${process.pid}.${seq++}.tmp`;

export const isTempName = (name: string): boolean => name.endsWith('.tmp');

const TEMP_WRITER = /\.([0-9a-f]{12})-(\d+)\.\d+\.tmp$/;

/** Whether a process of this host is alive (a signal-0 probe; EPERM means it exists). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temporary files a crashed write left under `dir` (recursively unless told otherwise): those
 * of a process of this host that is gone, and any older than `maxAgeMs` (default an hour: a writer on
 * another host sharing the folder).
 * A write in progress is never touched. Resolves to the number removed.
 */
export async function sweepStaleTemps(dir: string, opts: { recursive?: boolean; maxAgeMs?: number } = {}): Promise<number> {
  const maxAgeMs = opts.maxAgeMs ?? 3_600_000;
  let entries;
  try {
    entries = await readdir(dir, { recursive: opts.recursive ?? true, withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
  const startedAt = Date.now() - process.uptime() * 1000;
  let removed = 0;
  for (const d of entries) {
    if (!d.isFile() || !isTempName(d.name)) continue;
    const path = join(d.parentPath, d.name);
    const writer = TEMP_WRITER.exec(d.name);
    try {
      const mtime = (await stat(path)).mtimeMs;
      const ours = writer?.[1] === HOST_TAG;
      const pid = Number(writer?.[2]);
      // Our own pid on a file older than this process: a previous process that had the same pid.
      const dead = ours && (pid === process.pid ? mtime < startedAt : !pidAlive(pid));
      if (dead || Date.now() - mtime > maxAgeMs) {
        await unlink(path);
        removed++;
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  return removed;
}

function writeAllSync(fd: number, data: Uint8Array): void {
  for (let off = 0; off < data.byteLength; ) off += writeSync(fd, data, off, data.byteLength - off);
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* a leftover temporary file is skipped by listings */
  }
}

/**
 * Writes a new file and fsyncs it. Only the wait for the disk leaves this thread: open, write into
 * the page cache and close take microseconds, and as thread-pool requests each would cost a hand-off.
 */
export async function writeFileSynced(path: string, data: Uint8Array): Promise<void> {
  const fd = openSync(path, 'w');
  try {
    writeAllSync(fd, data);
    await fsync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkQuietly(path);
    throw e;
  }
  closeSync(fd);
}

/** Coalesces the fsyncs of one directory: every caller gets a sync that started after its call. */
export class DirSyncer {
  private fd: number | undefined;
  private running: Promise<void> | undefined;
  private again: Promise<void> | undefined;

  constructor(readonly dir: string) {}

  private async once(): Promise<void> {
    // The directory stays open between syncs: one descriptor per folder, not one open per object.
    this.fd ??= openSync(this.dir, 'r');
    await fsync(this.fd);
  }

  private start(): Promise<void> {
    const p = this.once().finally(() => {
      if (this.running === p) this.running = undefined;
    });
    this.running = p;
    return p;
  }

  sync(): Promise<void> {
    if (!this.running) return this.start();
    // A sync is running but may have started before the caller's rename: exactly one more after it.
    this.again ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.again = undefined;
        return this.start();
      });
    return this.again;
  }

  get idle(): boolean {
    return !this.running && !this.again;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** One DirSyncer per directory, made on first use; the least recently used idle ones are closed beyond `max`. */
export class DirSyncers {
  private readonly byDir = new Map<string, DirSyncer>();

  constructor(private readonly max = 64) {}

  sync(dir: string): Promise<void> {
    let s = this.byDir.get(dir);
    if (s) this.byDir.delete(dir);
    else {
      s = new DirSyncer(dir);
      // A folder export meets a new series folder per series: keep the open directories bounded.
      for (const [d, old] of this.byDir) {
        if (this.byDir.size < this.max) break;
        if (!old.idle) continue;
        old.close();
        this.byDir.delete(d);
      }
    }
    this.byDir.set(dir, s); // most recently used last
    return s.sync();
  }

  close(): void {
    for (const s of this.byDir.values()) s.close();
    this.byDir.clear();
  }
}

/** fsyncs a directory once (new entries in it survive a power loss). */
export async function fsyncDir(dir: string): Promise<void> {
  const s = new DirSyncer(dir);
  try {
    await s.sync();
  } finally {
    s.close();
  }
}

/** Folders known to exist, so that each is created once per process. */
const madeDirs = new Set<string>();

export async function ensureDir(dir: string): Promise<void> {
  if (madeDirs.has(dir)) return;
  await mkdir(dir, { recursive: true });
  madeDirs.add(dir);
}

/** Forgets the folders under `root` (it was removed), so that they are created again when next needed. */
export function forgetDirs(root: string): void {
  for (const d of madeDirs) if (d === root || d.startsWith(`${root}/`)) madeDirs.delete(d);
}

export function ensureDirSync(dir: string): void {
  if (madeDirs.has(dir)) return;
  mkdirSync(dir, { recursive: true });
  madeDirs.add(dir);
}

export interface AtomicWriteOptions {
  /** fsync the file before the rename and its directory after it (coalesced through `syncers`). */
  readonly durable?: boolean;
  /** The directory syncers to coalesce through (a store or destination keeps its own); default: a fresh one. */
  readonly syncers?: DirSyncers;
}

/**
 * Runs a write into `dir`, creating the folder first. Folders are remembered as made, so one removed
 * behind the service's back (an operator emptying the export folder) gives ENOENT: it is made again,
 * and the write tried once more.
 */
async function intoDir<T>(dir: string, write: () => Promise<T>): Promise<T> {
  await ensureDir(dir);
  try {
    return await write();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    forgetDirs(dir);
    await ensureDir(dir);
    return write();
  }
}

/** Writes `target` atomically: a temporary file beside it, then a rename. */
export function writeFileAtomic(target: string, data: Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  return intoDir(dirname(target), () => writeAtomicIn(target, data, opts));
}

async function writeAtomicIn(target: string, data: Uint8Array, opts: AtomicWriteOptions): Promise<void> {
  const dir = dirname(target);
  const tmp = tempNameFor(target);
  if (!opts.durable) {
    try {
      await writeWhole(tmp, data);
      await rename(tmp, target);
    } catch (e) {
      // A full disk leaves a partial temporary file: never keep it.
      unlinkQuietly(tmp);
      throw e;
    }
    return;
  }
  await writeFileSynced(tmp, data);
  try {
    renameSync(tmp, target);
  } catch (e) {
    unlinkQuietly(tmp);
    throw e;
  }
  if (opts.syncers) await opts.syncers.sync(dir);
  else await fsyncDir(dir);
}

/** The same, synchronously (the CLI, which writes each output before it reads the next input). */
export function writeFileAtomicSync(target: string, data: Uint8Array, opts: { durable?: boolean } = {}): void {
  const dir = dirname(target);
  ensureDirSync(dir);
  const tmp = tempNameFor(target);
  try {
    if (opts.durable) {
      const fd = openSync(tmp, 'w');
      try {
        writeAllSync(fd, data);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } else writeFileSync(tmp, data);
    renameSync(tmp, target);
  } catch (e) {
    unlinkQuietly(tmp);
    throw e;
  }
  if (opts.durable) {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * The name a different object gets when `target` holds other bytes: `<name>-<12 hex of its SHA-256>.<ext>`.
 * Computed only on a collision: hashing every output would cost a pass over it.
 */
export function contentNameFor(target: string, data: Uint8Array): string {
  const dot = basename(target).lastIndexOf('.');
  const [stem, ext] = dot > 0 ? [target.slice(0, target.length - basename(target).length + dot), basename(target).slice(dot)] : [target, ''];
  return `${stem}-${createHash('sha256').update(data).digest('hex').slice(0, 12)}${ext}`;
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

/**
 * Places `data` at `target` without ever replacing a different file: the temporary file is linked
 * into place (a link fails if the name exists). The same bytes already there are a no-op; other bytes
 * make it go to contentNameFor(target). Resolves to the path that holds the data. With `durable`, the
 * file and its directory are fsynced.
 */
export function placeFile(target: string, data: Uint8Array, opts: AtomicWriteOptions = {}): Promise<string> {
  return intoDir(dirname(target), () => placeIn(target, data, opts));
}

async function placeIn(target: string, data: Uint8Array, opts: AtomicWriteOptions): Promise<string> {
  const dir = dirname(target);
  const tmp = tempNameFor(target);
  try {
    if (opts.durable) await writeFileSynced(tmp, data);
    else await writeWhole(tmp, data);
    for (const candidate of candidatesFor(target, data)) {
      try {
        await link(tmp, candidate);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        if (!sameBytes(await readFile(candidate), data)) continue;
      }
      if (opts.durable) await (opts.syncers ? opts.syncers.sync(dir) : fsyncDir(dir));
      return candidate;
    }
    throw new Error('output name collision');
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/** The name asked for, then the content-named one: hashed only when the first is taken by other bytes. */
function* candidatesFor(target: string, data: Uint8Array): Generator<string> {
  yield target;
  yield contentNameFor(target, data);
}

/** The same, synchronously and without fsync (the CLI, which writes each output before it reads the next input). */
export function placeFileSync(target: string, data: Uint8Array): string {
  ensureDirSync(dirname(target));
  const tmp = tempNameFor(target);
  try {
    writeFileSync(tmp, data);
    for (const candidate of candidatesFor(target, data)) {
      try {
        linkSync(tmp, candidate);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        if (!sameBytes(readFileSync(candidate), data)) continue;
      }
      return candidate;
    }
    throw new Error('output name collision');
  } finally {
    unlinkQuietly(tmp);
  }
}

export { unlinkQuietly };
