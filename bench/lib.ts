// Shared helpers for the benchmarks: where things are, the build's modules, corpus building, timing
// child processes, memory sampling. The peers (Orthanc, ports) come from the test helpers.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The package root: the benchmarks run from their build (bench/.build/bench/), not from bench/. */
function packageRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bin', 'deid.js'))) return dir;
  }
  throw new Error('bench: the package root (package.json and bin/deid.js) was not found');
}

export const ROOT = packageRoot();
export const WORK = join(ROOT, 'bench', '.work');
export const TESTDATA = resolve(ROOT, '../shared/testdata');

/**
 * A module of the build (dist/), typed by its source: the benchmarks time what `npm run build` made,
 * the same code `deid` runs (and its files, such as the pre-parsed profiles, sit where it expects them).
 */
export const fromDist = <T>(rel: string): Promise<T> => import(pathToFileURL(join(ROOT, 'dist', rel)).href) as Promise<T>;

export function requireTool(cmd: string, pkg: string): void {
  const paths = (process.env.PATH ?? '').split(':');
  if (!paths.some((p) => existsSync(join(p, cmd)))) {
    console.error(`bench: ${cmd} not found; install the Debian package ${pkg} (apt-get install -y ${pkg})`);
    process.exit(1);
  }
}

/**
 * Builds `count` files from CT_small, MR_small and the 530 KB CT1_UNC (about 125 MB for 1,000),
 * grouped 10 to a study; every study has its own patient and every object distinct UIDs.
 */
export async function buildCorpus(dir: string, count = 1000, perStudy = 10): Promise<string[]> {
  const { readDicom } = await fromDist<typeof import('../src/dicom/reader.js')>('dicom/reader.js');
  const { writeDicom } = await fromDist<typeof import('../src/dicom/writer.js')>('dicom/writer.js');
  const { withElement } = await fromDist<typeof import('../src/dicom/element.js')>('dicom/element.js');
  const { asciiBytes, uidBytes } = await fromDist<typeof import('../src/dicom/values.js')>('dicom/values.js');
  const marker = `${dir}.built-${count}`;
  if (existsSync(marker)) return listFiles(dir);
  rmSync(dir, { recursive: true, force: true });
  rmSync(marker, { force: true });
  mkdirSync(dir, { recursive: true });
  const sources = ([['pydicom/CT_small.dcm', 2], ['pydicom/MR_small.dcm', 2], ['dicomparser/CT1_UNC.explicit_little_endian.dcm', 1]] as const).flatMap(([p, w]) =>
    Array(w).fill(readDicom(readFileSync(join(TESTDATA, p)))),
  );
  const root = '1.2.826.0.1.3680043.10.1138';
  for (let i = 0; i < count; i++) {
    const study = Math.floor(i / perStudy);
    const src = sources[i % sources.length];
    let ds = src.dataset;
    const set = (tag: number, vr: string, bytes: Uint8Array) => (ds = withElement(ds, { tag, vr, value: bytes }));
    set(0x0020000d, 'UI', uidBytes(`${root}.${study}`));
    set(0x0020000e, 'UI', uidBytes(`${root}.${study}.${i % sources.length}`));
    set(0x00080018, 'UI', uidBytes(`${root}.${study}.${i % sources.length}.${i}`));
    set(0x00200052, 'UI', uidBytes(`${root}.${study}.9`));
    set(0x00100010, 'PN', asciiBytes(`PATIENT${study}^BENCH`, 'PN'));
    set(0x00100020, 'LO', asciiBytes(`MRN${100000 + study}`, 'LO'));
    set(0x00080050, 'SH', asciiBytes(`ACC${study}`, 'SH'));
    writeFileSync(join(dir, `f${String(i).padStart(5, '0')}.dcm`), writeDicom({ ...src, dataset: ds }));
  }
  writeFileSync(marker, '');
  return listFiles(dir);
}

export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      if (f.startsWith('.')) continue;
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

export const totalBytes = (files: readonly string[]): number => files.reduce((n, f) => n + statSync(f).size, 0);

export interface Timed {
  readonly code: number | null;
  readonly seconds: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Resident memory samples (MB), every 50 ms. */
  readonly rssMb: number[];
}

/** Runs a command, sampling its resident memory (with children) from /proc every 50 ms. */
export function timed(cmd: string, args: readonly string[], env: Record<string, string> = {}): Promise<Timed> {
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const rss: number[] = [];
    const timer = setInterval(() => {
      try {
        const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) rss.push(Number(m[1]) / 1024);
      } catch {
        /* exited */
      }
    }, 50);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(timer);
      resolvePromise({ code, seconds: (performance.now() - started) / 1000, stdout: out, stderr: err, rssMb: rss });
    });
  });
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function fmt(n: number, d = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}
