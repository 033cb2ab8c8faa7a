/**
 * Real dcmtk peers for tests: `storescp` (bit-preserving receiver), `storescu` and `echoscu`.
 *
 * Every process gets TCP_NODELAY=1 (Debian's dcmtk leaves Nagle on, which stalls each object by
 * 40-90 ms), a temp dir, a timeout, and is killed on failure and at process exit. storescp cannot
 * listen on port 0, so it takes a free port and is started again on another if the bind fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

const ENV = { ...process.env, TCP_NODELAY: '1' };

/** Children still running, killed if the test process exits without stopping them. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

export interface ToolResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** stdout and stderr interleaved. */
  readonly output: string;
  readonly timedOut: boolean;
}

export interface RunningTool {
  readonly child: ChildProcess;
  /** Output so far. */
  output(): string;
  readonly result: Promise<ToolResult>;
}

/** Starts a dcmtk tool; it is killed (SIGKILL) if it runs longer than timeoutMs. */
export function spawnTool(cmd: string, args: string[], timeoutMs = 30_000): RunningTool {
  const child = track(spawn(cmd, args, { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const result = new Promise<ToolResult>((resolve, reject) => {
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} could not be started (${e.message}); is dcmtk installed?`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output: out, timedOut });
    });
  });
  return { child, output: () => out, result };
}

export interface StorescuOptions {
  readonly port: number;
  readonly host?: string;
  readonly callingAE?: string;
  readonly calledAE?: string;
  /** Extra options, e.g. ['-xs'] to propose JPEG lossless, ['-xi'] implicit VR only. */
  readonly args?: readonly string[];
  readonly files: readonly string[];
  readonly timeoutMs?: number;
}

function storescuArgs(o: StorescuOptions): string[] {
  return ['-v', '-aet', o.callingAE ?? 'STORESCU', '-aec', o.calledAE ?? 'DEID', ...(o.args ?? []), o.host ?? '127.0.0.1', String(o.port), ...o.files];
}

/** Sends files with storescu (verbose, so responses show in the output). */
export function runStorescu(o: StorescuOptions): Promise<ToolResult> {
  return spawnTool('storescu', storescuArgs(o), o.timeoutMs).result;
}

export function spawnStorescu(o: StorescuOptions): RunningTool {
  return spawnTool('storescu', storescuArgs(o), o.timeoutMs);
}

/** The DIMSE statuses storescu reported, in order (e.g. ['Success', 'Failed: ...']). */
export function storeResponses(output: string): string[] {
  return [...output.matchAll(/Received Store Response \(([^)]*)\)/g)].map((m) => m[1]);
}

export function runEchoscu(o: { port: number; host?: string; callingAE?: string; calledAE?: string; timeoutMs?: number }): Promise<ToolResult> {
  return spawnTool('echoscu', ['-v', '-aet', o.callingAE ?? 'ECHOSCU', '-aec', o.calledAE ?? 'DEID', o.host ?? '127.0.0.1', String(o.port)], o.timeoutMs).result;
}

/** Whether something accepts TCP connections on host:port. */
export function canConnect(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface Storescp {
  readonly port: number;
  readonly aeTitle: string;
  /** Where received objects are written, bit-preserving (+B): one file per SOP instance. */
  readonly dir: string;
  /** Its verbose log so far. */
  log(): string;
  /** Associations it has accepted so far. */
  associations(): number;
  /** Received files (full paths), sorted by name. */
  files(): string[];
  /** Removes every received file. */
  clear(): void;
  /** Stops it (SIGTERM, then SIGKILL after 5 s) and removes its temp dir. */
  stop(): Promise<void>;
}

export interface StorescpOptions {
  readonly aeTitle?: string;
  /** Extra options (default: accept all supported transfer syntaxes, +xa). */
  readonly args?: readonly string[];
  readonly startTimeoutMs?: number;
}

/**
 * Starts `storescp +B` (dcmtk's bit-preserving receiver: it writes the data set bytes exactly as
 * received) on a free port, and waits until it accepts connections.
 */
export async function startStorescp(opts: StorescpOptions = {}): Promise<Storescp> {
  const aeTitle = opts.aeTitle ?? 'STORESCP';
  const dir = mkdtempSync(join(tmpdir(), 'deid-storescp-'));
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const tool = spawnTool('storescp', ['-v', '+B', '-aet', aeTitle, '-od', dir, ...(opts.args ?? ['+xa']), String(port)], 24 * 3600_000);
    // Never rejects: a spawn failure (dcmtk missing) becomes output to report.
    const exited: Promise<ToolResult> = tool.result.catch((e: Error) => ({ code: null, signal: null, output: e.message, timedOut: false }));
    const deadline = Date.now() + (opts.startTimeoutMs ?? 10_000);
    let up = false;
    let gone = false;
    void exited.then(() => (gone = true));
    while (!up && !gone && Date.now() < deadline) {
      up = await canConnect(port);
      if (!up) await new Promise((r) => setTimeout(r, 50));
    }
    if (up) {
      const stop = async () => {
        if (tool.child.exitCode === null && tool.child.signalCode === null) {
          tool.child.kill('SIGTERM');
          const t = setTimeout(() => tool.child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(t);
        }
        rmSync(dir, { recursive: true, force: true });
      };
      return {
        port,
        aeTitle,
        dir,
        log: tool.output,
        associations: () => (tool.output().match(/Association Acknowledged/g) ?? []).length,
        files: () => readdirSync(dir).sort().map((f) => join(dir, f)),
        clear: () => {
          for (const f of readdirSync(dir)) rmSync(join(dir, f), { force: true });
        },
        stop,
      };
    }
    tool.child.kill('SIGKILL');
    lastError = (await exited).output;
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`storescp did not start:\n${lastError.slice(-2000)}`);
}

/** Reads a received file. */
export const readReceived = (path: string): Buffer => readFileSync(path);
