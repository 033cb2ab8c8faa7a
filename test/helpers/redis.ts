import { spawn, type ChildProcess } from 'node:child_process';
import { freePort, waitFor } from './ports.js';

export interface RedisHandle {
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * A real redis-server on 127.0.0.1. Redis has no listen-on-0 (port 0 turns TCP off), so it gets a port
 * that was free a moment ago, and another one if a racing process took that port before it started.
 */
export async function startRedis(extraArgs: string[] = []): Promise<RedisHandle> {
  const { Redis } = await import('ioredis');
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs], { stdio: 'ignore' });
    let exited = false;
    child.once('exit', () => (exited = true));
    const url = `redis://127.0.0.1:${port}`;
    try {
      await waitFor(async () => {
        if (exited) throw new Error('redis-server exited');
        const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        r.on('error', () => undefined); // refused while it starts: connect() rejects, which is enough
        try {
          await r.connect();
          return (await r.ping()) === 'PONG';
        } finally {
          r.disconnect();
        }
      }, 15_000, 'redis-server');
    } catch (e) {
      child.kill('SIGKILL');
      if (attempt < 2 && exited) continue;
      throw e;
    }
    return {
      url,
      stop: () =>
        new Promise<void>((resolve) => {
          if (exited) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        }),
    };
  }
}
