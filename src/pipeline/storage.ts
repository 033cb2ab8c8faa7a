import { readFile as readFileCb } from 'node:fs';
import { readdir, rename, rm, rmdir, unlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { DirSyncers, ensureDir, forgetDirs, isTempName, writeFileAtomic } from './durable-fs.js';

/**
 * The storage port: where objects live between stages. Deliberately narrow (put, get, rename, list,
 * delete) so that an S3-compatible adapter can replace the local folder without touching any stage.
 * Keys are '/'-separated relative paths such as `incoming/<sha256>.dcm`.
 */
export interface ObjectStore {
  /** Writes atomically; with `durable`, the bytes are on disk (fsync) before the promise resolves. */
  put(key: string, data: Uint8Array, opts?: PutOptions): Promise<void>;
  /** Throws an error with code 'ENOENT' when the key does not exist. */
  get(key: string): Promise<Buffer>;
  rename(from: string, to: string): Promise<void>;
  /** Keys under a prefix (recursively), sorted. */
  list(prefix: string): Promise<string[]>;
  /** Deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Writes what `defer` kept in memory (the given keys, or all); stores that never defer need not have it. */
  flush?(keys?: readonly string[]): Promise<void>;
  /** Removes the folder of a prefix if it holds nothing (stores without folders need not have it). */
  prune?(prefix: string): Promise<void>;
}

export interface PutOptions {
  /** fsync the file and its directory before resolving. */
  readonly durable?: boolean;
  /**
   * The caller can recreate the object if it is lost (an intermediate output whose next job stays in
   * this process): a store may keep it in memory until flush(). A plain folder writes it at once.
   */
  readonly defer?: boolean;
}

// The callback form does the whole read in one native request; fs/promises readFile goes through
// several JS round trips per file (open, fstat, read, close), which shows at thousands of objects per minute.
const readWhole = promisify(readFileCb);

export const isNotFound = (e: unknown): boolean => (e as NodeJS.ErrnoException)?.code === 'ENOENT';

/** The default adapter: a local (or shared network) folder. */
export class LocalFolderStore implements ObjectStore {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  private path(key: string): string {
    const p = resolve(this.root, key);
    if (p !== this.root && !p.startsWith(this.root + sep)) throw new Error('storage key escapes the store');
    return p;
  }

  /** Directory fsyncs of durable puts, coalesced per spool folder. */
  private readonly syncers = new DirSyncers();

  async put(key: string, data: Uint8Array, opts: PutOptions = {}): Promise<void> {
    await writeFileAtomic(this.path(key), data, { durable: opts.durable, syncers: this.syncers });
  }

  get(key: string): Promise<Buffer> {
    return readWhole(this.path(key));
  }

  async rename(from: string, to: string): Promise<void> {
    const target = this.path(to);
    await ensureDir(dirname(target));
    await rename(this.path(from), target);
  }

  async list(prefix: string): Promise<string[]> {
    const base = this.path(prefix);
    try {
      const entries = await readdir(base, { recursive: true, withFileTypes: true });
      return entries
        .filter((e) => e.isFile() && !isTempName(e.name))
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

  async prune(prefix: string): Promise<void> {
    const dir = this.path(prefix);
    if (dir === this.root) return;
    try {
      await rmdir(dir);
    } catch (e) {
      // Not empty (an object arrived meanwhile, or a write is in progress): it stays.
      if (!isNotFound(e) && (e as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      return;
    }
    // A write into it later makes it again.
    forgetDirs(dir);
  }

  /** Removes the whole store (tests only). */
  async destroy(): Promise<void> {
    this.syncers.close();
    forgetDirs(this.root);
    await rm(this.root, { recursive: true, force: true });
  }
}
