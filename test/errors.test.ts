import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CATALOGUE, DeidError, ERRORS, STATUS, toDeidError, type ErrorCode } from '../src/errors.js';
import { REPO_ROOT } from './helpers/corpus.js';

/** Every .ts file under src/, with its text. */
function sources(): Array<{ path: string; text: string }> {
  const out: Array<{ path: string; text: string }> = [];
  const walk = (dir: string) => {
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, d.name);
      if (d.isDirectory()) walk(p);
      else if (d.name.endsWith('.ts')) out.push({ path: p.slice(REPO_ROOT.length + 1), text: readFileSync(p, 'utf8') });
    }
  };
  walk(join(REPO_ROOT, 'src'));
  return out;
}

const hex = (n: number) => `0x${n.toString(16).toUpperCase().padStart(4, '0')}`;

/** The README's error table: one row per code, its retry, DIMSE, STOW-RS and HTTP columns. */
function readmeRows(): Map<string, string[]> {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const rows = new Map<string, string[]>();
  for (const m of readme.matchAll(/^\| `(DEID_ERR_[A-Z0-9_]+)` \|(.*)\|$/gm)) rows.set(m[1], m[2].split('|').map((c) => c.trim()));
  return rows;
}

describe('the error catalogue', () => {
  const codes = Object.keys(CATALOGUE) as ErrorCode[];

  it('should hold every code the source uses (string literals anywhere in src/)', () => {
    const unknown: string[] = [];
    for (const { path, text } of sources()) {
      for (const m of text.matchAll(/['"`](DEID_ERR_[A-Z0-9_]+)['"`]/g)) if (!(m[1] in CATALOGUE)) unknown.push(`${path}: ${m[1]}`);
    }
    expect(unknown).toEqual([]);
  });

  it('should hold no code that nothing uses', () => {
    const used = new Set<string>();
    for (const { path, text } of sources()) {
      if (path === join('src', 'errors.ts')) continue;
      for (const m of text.matchAll(/['"`](DEID_ERR_[A-Z0-9_]+)['"`]/g)) used.add(m[1]);
    }
    expect(codes.filter((c) => !used.has(c))).toEqual([]);
  });

  it('should be documented in the README, row for row with the same statuses and no stale rows', () => {
    const rows = readmeRows();
    expect([...rows.keys()].sort()).toEqual([...codes].sort());
    for (const code of codes) {
      const e = CATALOGUE[code];
      expect(rows.get(code), code).toEqual([e.retryable ? 'yes' : 'no', hex(e.dimse), hex(e.stow), String(e.http), e.message]);
    }
  });

  it('should give every entry a message that says what to do, a known status and an HTTP error status', () => {
    const statuses = new Set<number>(Object.values(STATUS));
    for (const code of codes) {
      const e = CATALOGUE[code];
      expect(e.message, code).toMatch(/^[A-Z].*\.$/);
      expect(statuses.has(e.dimse), `${code} DIMSE ${hex(e.dimse)}`).toBe(true);
      expect(statuses.has(e.stow), `${code} STOW-RS ${hex(e.stow)}`).toBe(true);
      expect(e.dimse === STATUS.Success || e.stow === STATUS.Success, code).toBe(false);
      expect(e.http >= 400 && e.http < 600, `${code} HTTP ${e.http}`).toBe(true);
      expect(ERRORS[code]).toBe(e.message);
    }
  });

  it('should agree across protocols: one status per code, whatever the protocol', () => {
    for (const code of codes) expect(CATALOGUE[code].dimse, code).toBe(CATALOGUE[code].stow);
    expect(CATALOGUE.DEID_ERR_INTERNAL).toMatchObject({ dimse: STATUS.ProcessingFailure, retryable: true, http: 500 });
    expect(CATALOGUE.DEID_ERR_UNSUPPORTED_TRANSFER_SYNTAX.dimse).toBe(STATUS.TransferSyntaxNotSupported);
    expect(CATALOGUE.DEID_ERR_OUT_OF_RESOURCES).toMatchObject({ dimse: STATUS.OutOfResources, retryable: true, http: 503 });
  });

  it('should take retryable from the catalogue, code a full disk as out of resources and anything else as internal, without its message', () => {
    expect(new DeidError('DEID_ERR_EXPORT_FAILED', 'x').retryable).toBe(true);
    expect(new DeidError('DEID_ERR_EXPORT_REFUSED', 'x').retryable).toBe(false);
    expect(new DeidError('DEID_ERR_VERIFY_LEAK').retryable).toBe(false);
    const full = toDeidError(Object.assign(new Error('disk full while writing DOE^JOHN'), { code: 'ENOSPC' }));
    expect(full.code).toBe('DEID_ERR_OUT_OF_RESOURCES');
    expect(full.retryable).toBe(true);
    expect(full.detail).toBe('ENOSPC');
    expect(full.message).not.toContain('DOE');
    const io = toDeidError(Object.assign(new Error('I/O error reading DOE^JOHN'), { code: 'EIO' }));
    expect(io.code).toBe('DEID_ERR_INTERNAL');
    expect(io.detail).toBe('EIO');
    expect(io.message).not.toContain('DOE');
    expect(toDeidError(new TypeError('JOHN')).detail).toBe('TypeError');
  });
});
