import { spawn, type ChildProcess } from 'node:child_process';
import { CLI } from './corpus.js';
import { freePort, waitFor } from './ports.js';

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

/** Starts `deid <cmd>` as a real process on free ports and waits until it answers /healthz. */
export async function startServiceProcess(args: string[], env: Record<string, string> = {}, cmd: 'serve' | 'worker' = 'serve'): Promise<ServiceProcess> {
  const dimsePort = await freePort();
  const httpPort = await freePort();
  const portArgs = cmd === 'serve' ? ['--dimse-port', String(dimsePort), '--http-port', String(httpPort)] : [];
  const child = spawn(process.execPath, [CLI, cmd, ...portArgs, ...args], {
    env: { ...process.env, TCP_NODELAY: '1', DEID_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${httpPort}`;
  if (cmd === 'serve') {
    await Promise.race([
      waitFor(async () => (await fetch(`${url}/healthz`)).ok, 30000, 'the service to start'),
      exited.then((code) => {
        throw new Error(`service exited with ${code} before it was ready:\n${out.slice(-2000)}`);
      }),
    ]);
  } else {
    await waitFor(() => out.includes('started'), 30000, 'the worker to start');
  }
  return {
    dimsePort,
    httpPort,
    url,
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
