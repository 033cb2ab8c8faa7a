/**
 * A private redis-server (Debian's package) for tests and benchmarks. It listens on a Unix socket in
 * a temp dir, not on TCP: redis cannot take port 0, and a socket path of our own cannot be taken by
 * anyone else. Its `url` is the socket path, which ioredis, BullMQ and `deid --redis` all accept.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './ports.js';

const REDIS_SERVER = '/usr/bin/redis-server';

export interface RedisHandle {
  readonly url: string;
  stop(): Promise<void>;
}

export async function startRedis(extraArgs: string[] = []): Promise<RedisHandle> {
  if (!existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} is missing: install the Debian package redis-server`);
  const dir = mkdtempSync(join(tmpdir(), 'deid-redis-'));
  const socket = join(dir, 'redis.sock');
  const child = spawn(REDIS_SERVER, ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--dir', dir, '--save', '', '--appendonly', 'no', ...extraArgs], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const { Redis } = await import('ioredis');
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
    const r = new Redis(socket, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => undefined); // not listening yet: the next poll tries again
    try {
      await r.connect();
      return (await r.ping()) === 'PONG';
    } finally {
      r.disconnect();
    }
  }, 15_000, 'redis-server');
  return {
    url: socket,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
