import { closeSync, fsync as fsyncCb, openSync, readFile as readFileCb, renameSync, unlinkSync, writeFile as writeFileCb, writeSync } from 'node:fs';
import { mkdir, readdir, rename, rm, unlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import { dirname, join, relative, resolve, sep } from 'node:path';

/**
 * The storage port: where objects live between stages. Deliberately narrow (put, get, rename, list,
 * delete) so that an S3-compatible adapter can replace the local folder without touching any stage.
 * Keys are '/'-separated relative paths such as `incoming/<sha256>.dcm`.
 */
export interface ObjectStore {
  /** Writes atomically; with `durable`, the bytes are on disk (fsync) before the promise resolves. */
  put(key: string, data: Uint8Array, opts?: { durable?: boolean }): Promise<void>;
  /** Throws an error with code 'ENOENT' when the key does not exist. */
  get(key: string): Promise<Buffer>;
  rename(from: string, to: string): Promise<void>;
  /** Keys under a prefix (recursively), sorted. */
  list(prefix: string): Promise<string[]>;
  /** Deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
}

// The callback forms do the whole read or write in one native request; fs/promises readFile and
// writeFile go through several JS round trips per file (open, fstat, read, close), which shows at
// thousands of objects per minute.
const readWhole = promisify(readFileCb);
const writeWhole = promisify(writeFileCb);
const fsync = promisify(fsyncCb);

function writeAllSync(fd: number, data: Uint8Array): void {
  for (let off = 0; off < data.byteLength; ) off += writeSync(fd, data, off, data.byteLength - off);
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* a leftover .tmp is ignored by list() */
  }
}

export const isNotFound = (e: unknown): boolean => (e as NodeJS.ErrnoException)?.code === 'ENOENT';

let seq = 0;

/** The default adapter: a local (or shared network) folder. */
export class LocalFolderStore implements ObjectStore {
  readonly root: string;
  private readonly dirs = new Set<string>();

  constructor(root: string) {
    this.root = resolve(root);
  }

  private path(key: string): string {
    const p = resolve(this.root, key);
    if (p !== this.root && !p.startsWith(this.root + sep)) throw new Error('storage key escapes the store');
    return p;
  }

  private async ensureDir(dir: string): Promise<void> {
    if (this.dirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    this.dirs.add(dir);
  }

  async put(key: string, data: Uint8Array, opts: { durable?: boolean } = {}): Promise<void> {
    const target = this.path(key);
    const dir = dirname(target);
    await this.ensureDir(dir);
    const tmp = `${target}.${process.pid}.${seq++}.tmp`;
    if (!opts.durable) {
      await writeWhole(tmp, data);
      await rename(tmp, target);
      return;
    }
    // Durable: only the waits for the disk (two fsyncs) leave this thread. Open, write into the page
    // cache, close and rename take microseconds; as thread-pool requests each cost a hand-off, and
    // an acknowledgement waits for all of them in turn.
    const fd = openSync(tmp, 'w');
    try {
      writeAllSync(fd, data);
      await fsync(fd);
    } catch (e) {
      closeSync(fd);
      unlinkQuietly(tmp);
      throw e;
    }
    closeSync(fd);
    try {
      renameSync(tmp, target);
    } catch (e) {
      unlinkQuietly(tmp);
      throw e;
    }
    // The rename itself must survive a power loss: fsync the directory entry too (coalesced).
    await this.syncDir(dir);
  }

  private readonly dirSyncs = new Map<string, { running: Promise<void>; again?: Promise<void> }>();
  /** Directories kept open for their fsyncs (one per spool folder, not per object). */
  private readonly dirFds = new Map<string, number>();

  private async syncDirOnce(dir: string): Promise<void> {
    let fd = this.dirFds.get(dir);
    if (fd === undefined) {
      fd = openSync(dir, 'r');
      this.dirFds.set(dir, fd);
    }
    await fsync(fd);
  }

  /** fsyncs a directory; concurrent callers share a sync that started after their own call. */
  private syncDir(dir: string): Promise<void> {
    const once = () => this.syncDirOnce(dir);
    const cur = this.dirSyncs.get(dir);
    if (!cur) {
      const entry: { running: Promise<void>; again?: Promise<void> } = { running: once() };
      this.dirSyncs.set(dir, entry);
      void entry.running.finally(() => {
        if (this.dirSyncs.get(dir) === entry && !entry.again) this.dirSyncs.delete(dir);
      }).catch(() => undefined);
      return entry.running;
    }
    // A sync is running but may have started before our rename: queue exactly one more after it.
    cur.again ??= cur.running.catch(() => undefined).then(() => {
      const next = { running: once() };
      this.dirSyncs.set(dir, next);
      void next.running.finally(() => {
        if (this.dirSyncs.get(dir) === next) this.dirSyncs.delete(dir);
      }).catch(() => undefined);
      return next.running;
    });
    return cur.again;
  }

  get(key: string): Promise<Buffer> {
    return readWhole(this.path(key));
  }

  async rename(from: string, to: string): Promise<void> {
    const target = this.path(to);
    await this.ensureDir(dirname(target));
    await rename(this.path(from), target);
  }

  async list(prefix: string): Promise<string[]> {
    const base = this.path(prefix);
    try {
      const entries = await readdir(base, { recursive: true, withFileTypes: true });
      return entries
        .filter((e) => e.isFile() && !e.name.endsWith('.tmp'))
        .map((e) => relative(this.root, join(e.parentPath, e.name)).split(sep).join('/'))
        .sort();
    } catch (e) {
      if (isNotFound(e)) return [];
      throw e;
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await unlink(this.path(key));
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  /** Removes the whole store (tests only). */
  async destroy(): Promise<void> {
    for (const fd of this.dirFds.values()) closeSync(fd);
    this.dirFds.clear();
    this.dirs.clear();
    await rm(this.root, { recursive: true, force: true });
  }
}
