/**
 * The durable-file primitives, defined once: the temporary name a write goes through, a file written
 * and fsynced, an atomic write (temporary file, rename) that with `durable` also fsyncs the file and
 * its directory, and a directory syncer that coalesces concurrent directory fsyncs.
 *
 * A rename or a link is durable only once its directory is fsynced: an object acknowledged after a
 * file fsync alone can vanish in a power loss. The spool, the queue, the outputs and the folder
 * export all write through here.
 */
import { closeSync, fsync as fsyncCb, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeFile as writeFileCb, writeFileSync, writeSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { promisify } from 'node:util';
import { dirname } from 'node:path';

const fsync = promisify(fsyncCb);
// One native request for a whole file, instead of the open/write/close round trips of fs/promises.
const writeWhole = promisify(writeFileCb);

let seq = 0;
/** A temporary name beside `target`: unique per process and call, and ending in `.tmp` so listings can skip it. */
export const tempNameFor = (target: string): string => `${target}.${process.pid}.${seq++}.tmp`;

export const isTempName = (name: string): boolean => name.endsWith('.tmp');

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

/** Writes `target` atomically: a temporary file beside it, then a rename. */
export async function writeFileAtomic(target: string, data: Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  const dir = dirname(target);
  await ensureDir(dir);
  const tmp = tempNameFor(target);
  if (!opts.durable) {
    await writeWhole(tmp, data);
    await rename(tmp, target);
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
  if (opts.durable) {
    const fd = openSync(tmp, 'w');
    try {
      writeAllSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } else writeFileSync(tmp, data);
  try {
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

/** Writes a temporary file beside `target` for a caller that links it into place itself (no-replace semantics). */
export function writeTempSync(target: string, data: Uint8Array): string {
  ensureDirSync(dirname(target));
  const tmp = tempNameFor(target);
  writeFileSync(tmp, data);
  return tmp;
}

export { unlinkQuietly };
