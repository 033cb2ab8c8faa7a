/**
 * A private Orthanc (Debian's `Orthanc` binary) for tests and benchmarks: free DICOM and HTTP ports,
 * loopback only, storage and index in a temp dir, TCP_NODELAY=1 (Orthanc's dcmtk leaves Nagle on).
 * Orthanc cannot listen on port 0: it takes free ports, is started again on others if a bind fails,
 * and answers to a name of its own, so that the helper never talks to another process's server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { freePort } from './ports.js';

export interface OrthancHandle {
  /** e.g. http://127.0.0.1:34567 (no authentication). */
  readonly httpUrl: string;
  readonly dicomPort: number;
  readonly aet: string;
  /** Orthanc's own log so far (stdout + stderr). */
  log(): string;
  /** GET a REST path and parse the JSON answer (throws on a non-2xx status). */
  get<T = unknown>(path: string): Promise<T>;
  /** Stops it (SIGTERM, then SIGKILL after 10 s) and removes its temp dir. */
  stop(): Promise<void>;
}

export interface OrthancOptions {
  readonly aet?: string;
  readonly startTimeoutMs?: number;
  /** Extra configuration entries, merged over the defaults. */
  readonly config?: Record<string, unknown>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

/** Starts Orthanc and waits until GET /system answers. Retries on other ports if it cannot bind. */
export async function startOrthanc(opts: OrthancOptions = {}): Promise<OrthancHandle> {
  const aet = opts.aet ?? 'ORTHANC';
  let lastLog = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), 'deid-orthanc-'));
    const [dicomPort, httpPort] = [await freePort(), await freePort()];
    const name = `deid-test-${randomBytes(6).toString('hex')}`;
    const config = {
      Name: name,
      StorageDirectory: join(dir, 'db'),
      IndexDirectory: join(dir, 'db'),
      Plugins: [],
      HttpServerEnabled: true,
      HttpPort: httpPort,
      RemoteAccessAllowed: false,
      AuthenticationEnabled: false,
      DicomServerEnabled: true,
      DicomAet: aet,
      DicomPort: dicomPort,
      DicomCheckCalledAet: false,
      DicomAlwaysAllowStore: true,
      DicomAlwaysAllowEcho: true,
      UnknownSopClassAccepted: true,
      StorageCompression: false,
      OverwriteInstances: true,
      DicomScpTimeout: 30,
      ConcurrentJobs: 2,
      SaveJobs: false,
      ...opts.config,
    };
    writeFileSync(join(dir, 'orthanc.json'), JSON.stringify(config, null, 2));
    const child = spawn('Orthanc', [join(dir, 'orthanc.json')], { cwd: dir, env: { ...process.env, TCP_NODELAY: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<void>((resolve) => {
      child.once('close', () => {
        live.delete(child);
        resolve();
      });
      child.once('error', (e) => {
        out += `\nspawn failed: ${e.message} (is the orthanc package installed?)`;
        live.delete(child);
        resolve();
      });
    });
    let gone = false;
    void exited.then(() => (gone = true));
    const httpUrl = `http://127.0.0.1:${httpPort}`;
    const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
    let up = false;
    while (!up && !gone && Date.now() < deadline) {
      try {
        up = (await getJson<{ Name?: string }>(`${httpUrl}/system`)).Name === name;
        if (!up) break; // another server holds the port: start again on others
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    };
    if (up) {
      return { httpUrl, dicomPort, aet, log: () => out, get: (path) => getJson(`${httpUrl}${path}`), stop };
    }
    lastLog = out;
    child.kill('SIGKILL');
    await stop();
  }
  throw new Error(`Orthanc did not start:\n${lastLog.slice(-3000)}`);
}
