import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Every file below `dir` (none when it does not exist), sorted; only those ending in `suffix` when given. */
export const filesUnder = (dir: string, suffix = ''): string[] =>
  existsSync(dir)
    ? readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((d) => d.isFile() && d.name.endsWith(suffix))
        .map((d) => join(d.parentPath, d.name))
        .sort()
    : [];

/** `dir` and every folder below it. */
export const dirsUnder = (dir: string): string[] =>
  existsSync(dir) ? [dir, ...readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => join(d.parentPath, d.name))] : [];
