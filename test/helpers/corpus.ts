import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const TESTDATA = resolve(REPO_ROOT, '../shared/testdata');

/** A file of the shared corpus; fails clearly when ../shared is not beside the project. */
export function corpusFile(rel: string): string {
  if (!existsSync(TESTDATA)) throw new Error(`shared test data not found at ${TESTDATA}: check out ../shared beside the project`);
  const p = join(TESTDATA, rel);
  if (!existsSync(p)) throw new Error(`corpus file missing: ${rel}`);
  return p;
}

/** Every file of the shared corpus (or of one of its folders), recursively, as paths relative to it. */
export function corpusFiles(sub = ''): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const f of readdirSync(dir).sort()) {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(p.slice(TESTDATA.length + 1));
    }
  };
  walk(corpusFile(sub || '.'));
  return out;
}

/** dcmdump's full listing of a file, or null when dcmdump cannot read it. */
export function dcmdump(path: string, extra: string[] = []): string | null {
  try {
    return execFileSync('dcmdump', ['-q', '+L', ...extra, path], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 30 });
  } catch {
    return null;
  }
}

export function tempDir(prefix = 'deid-test-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export const CLI = join(REPO_ROOT, 'bin', 'deid.js');
