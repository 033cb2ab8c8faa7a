// Shared helpers for the benchmarks: corpus building, timing child processes, memory sampling.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const WORK = join(ROOT, 'bench', '.work');
export const TESTDATA = resolve(ROOT, '../shared/testdata');

const dist = (p) => import(join(ROOT, 'dist', p));

export function requireTool(cmd, pkg) {
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
export async function buildCorpus(dir, count = 1000, perStudy = 10) {
  const { readDicom } = await dist('dicom/reader.js');
  const { writeDicom } = await dist('dicom/writer.js');
  const { withElement } = await dist('dicom/element.js');
  const { asciiBytes, uidBytes } = await dist('dicom/values.js');
  const marker = `${dir}.built-${count}`;
  if (existsSync(marker)) return listFiles(dir);
  rmSync(dir, { recursive: true, force: true });
  rmSync(marker, { force: true });
  mkdirSync(dir, { recursive: true });
  const sources = [
    ['pydicom/CT_small.dcm', 2],
    ['pydicom/MR_small.dcm', 2],
    ['dicomparser/CT1_UNC.explicit_little_endian.dcm', 1],
  ].flatMap(([p, w]) => Array(w).fill(readDicom(readFileSync(join(TESTDATA, p)))));
  const root = '1.2.826.0.1.3680043.10.1138';
  for (let i = 0; i < count; i++) {
    const study = Math.floor(i / perStudy);
    const src = sources[i % sources.length];
    let ds = src.dataset;
    const set = (tag, vr, bytes) => (ds = withElement(ds, { tag, vr, value: bytes }));
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

export function listFiles(dir) {
  const out = [];
  const walk = (d) => {
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

export const totalBytes = (files) => files.reduce((n, f) => n + statSync(f).size, 0);

/** Runs a command, sampling its resident memory (with children) from /proc every 50 ms. */
export function timed(cmd, args, env = {}) {
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const rss = [];
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
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function fmt(n, d = 0) {
  return n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

/** Starts a throwaway Orthanc (Debian package) on free ports with TCP_NODELAY=1; returns its handle. */
export async function startOrthanc(dir) {
  const { createServer } = await import('node:net');
  const free = () => new Promise((res) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); }); });
  const [dicomPort, httpPort] = [await free(), await free()];
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'orthanc.json');
  writeFileSync(config, JSON.stringify({
    Name: 'bench', StorageDirectory: join(dir, 'db'), IndexDirectory: join(dir, 'db'), Plugins: [], HttpPort: httpPort,
    RemoteAccessAllowed: false, AuthenticationEnabled: false, DicomAet: 'ORTHANC', DicomPort: dicomPort, DicomCheckCalledAet: false,
    DicomAlwaysAllowStore: true, DicomAlwaysAllowEcho: true, UnknownSopClassAccepted: true, StorageCompression: false, SaveJobs: false,
  }));
  const child = spawn('Orthanc', [`--logdir=${dir}`, config], { stdio: 'ignore', env: { ...process.env, TCP_NODELAY: '1' } });
  const url = `http://127.0.0.1:${httpPort}`;
  for (let i = 0; i < 300; i++) {
    try { if ((await fetch(`${url}/system`)).ok) break; } catch { /* starting */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url, dicomPort, child,
    count: async () => (await (await fetch(`${url}/statistics`)).json()).CountInstances,
    stop: () => new Promise((res) => { child.once('exit', res); child.kill('SIGTERM'); }),
  };
}
