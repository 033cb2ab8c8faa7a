import { spawn, type ChildProcess } from 'node:child_process';
import { CLI } from './corpus.js';
import { waitFor } from './ports.js';

export interface ServiceProcess {
  readonly dimsePort: number;
  readonly httpPort: number;
  readonly url: string;
  readonly child: ChildProcess;
  /** Everything the process logged (JSON lines), for assertions that no PHI was logged. */
  logs(): string;
  /** SIGTERM and wait for a clean exit; resolves to the exit code. */
  stop(): Promise<number | null>;
  /** kill -9, no chance to clean up. */
  kill9(): Promise<void>;
}

/** The port a JSON log line with this message reports, once the process has logged it. */
function loggedPort(out: string, msg: string): number | undefined {
  for (const line of out.split('\n')) {
    if (!line.includes(msg)) continue;
    try {
      const port = (JSON.parse(line) as { port?: number }).port;
      if (port) return port;
    } catch {
      /* a line still being written */
    }
  }
  return undefined;
}

/**
 * Starts `deid <cmd>` as a real process. `serve` listens on port 0 for DIMSE and HTTP and the ports
 * are read back from its log; it is ready once /healthz answers. A worker is ready once it says so;
 * given `--http-port 0`, its HTTP port is read back too.
 */
export async function startServiceProcess(args: string[], env: Record<string, string> = {}, cmd: 'serve' | 'worker' = 'serve'): Promise<ServiceProcess> {
  const portArgs = cmd === 'serve' ? ['--dimse-port', '0', '--http-port', '0'] : [];
  const child = spawn(process.execPath, [CLI, cmd, ...portArgs, ...args], {
    // The listening lines that report the ports are logged at info.
    env: { ...process.env, TCP_NODELAY: '1', DEID_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const failed = exited.then((code) => {
    throw new Error(`deid ${cmd} exited with ${code} before it was ready:\n${out.slice(-2000)}`);
  });
  let dimsePort = 0;
  let httpPort = 0;
  if (cmd === 'serve') {
    [dimsePort, httpPort] = await Promise.race([
      waitFor(() => {
        const d = loggedPort(out, 'DIMSE SCP listening');
        const h = loggedPort(out, 'HTTP listening');
        return d && h ? [d, h] : undefined;
      }, 30000, 'the service to listen'),
      failed,
    ]);
    await Promise.race([waitFor(async () => (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).ok, 30000, 'the service to answer'), failed]);
  } else {
    await Promise.race([waitFor(() => out.includes('started'), 30000, 'the worker to start'), failed]);
    if (args.includes('--http-port')) httpPort = (await Promise.race([waitFor(() => loggedPort(out, 'HTTP listening'), 30000, 'the worker to listen'), failed])) as number;
  }
  failed.catch(() => undefined); // exits after this point are the caller's to see
  return {
    dimsePort,
    httpPort,
    url: `http://127.0.0.1:${httpPort}`,
    child,
    logs: () => out,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      return exited;
    },
    async kill9() {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
