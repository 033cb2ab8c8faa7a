import { readFile, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Ingest } from '../pipeline/ports.js';

export interface FolderWatchOptions {
  readonly path: string;
  /** A file is taken only once its size and mtime have not changed for this long. */
  readonly settleMs: number;
  readonly pollMs?: number;
  readonly ingest: Ingest;
  readonly logger: Logger;
  /** A larger file is left where it is, unread (and logged once): the limit every ingest path enforces. */
  readonly maxObjectBytes?: () => number;
}

/**
 * Folder import: polls (portable to network filesystems, unlike inotify), takes a file only once it
 * has stopped changing, and removes the original once it is durable in the spool (or in quarantine).
 * Files still being written by convention (*.part, *.tmp, dot-files) are left alone, and so is a file
 * over the size limit: it is never read, and it is looked at again only once it changes.
 */
export function watchFolder(opts: FolderWatchOptions): { close(): Promise<void> } {
  const seen = new Map<string, { size: number; mtimeMs: number; since: number; refused?: boolean }>();
  let stopped = false;
  let running: Promise<void> = Promise.resolve();

  const scan = async () => {
    let entries;
    try {
      entries = await readdir(opts.path, { recursive: true, withFileTypes: true });
    } catch (e) {
      opts.logger.warn({ err: (e as NodeJS.ErrnoException).code }, 'watch folder not readable');
      return;
    }
    const now = Date.now();
    const present = new Set<string>();
    for (const d of entries) {
      if (stopped) return;
      if (!d.isFile() || d.name.startsWith('.') || /\.(part|tmp)$/i.test(d.name)) continue;
      const p = join(d.parentPath, d.name);
      present.add(p);
      let st;
      try {
        st = await stat(p);
      } catch {
        continue;
      }
      const prev = seen.get(p);
      if (!prev || prev.size !== st.size || prev.mtimeMs !== st.mtimeMs) {
        seen.set(p, { size: st.size, mtimeMs: st.mtimeMs, since: now });
        continue;
      }
      if (prev.refused || now - prev.since < opts.settleMs) continue;
      const limit = opts.maxObjectBytes?.();
      if (limit !== undefined && st.size > limit) {
        prev.refused = true;
        // File names may carry patient names: the log gives the size only (find it with `find -size`).
        opts.logger.warn({ bytes: st.size, limit, code: 'DEID_ERR_HOSTILE_SIZE' }, 'a file larger than maxObjectBytes was left in the watch folder, unread');
        continue;
      }
      const bytes = await readFile(p);
      const outcome = await opts.ingest(bytes, { kind: 'folder' });
      // Refused objects were quarantined by ingest: the original is safe there too. Only a spool failure keeps it here.
      if (outcome.ok || outcome.code !== 'DEID_ERR_OUT_OF_RESOURCES') {
        await unlink(p).catch(() => undefined);
        seen.delete(p);
      }
    }
    for (const p of seen.keys()) if (!present.has(p)) seen.delete(p);
  };

  const timer = setInterval(() => {
    running = running.then(scan).catch((e) => opts.logger.error({ err: (e as Error).name }, 'folder scan failed'));
  }, opts.pollMs ?? 500);
  return {
    async close() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
