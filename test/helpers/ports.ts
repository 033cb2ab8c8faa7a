/**
 * Ports and waiting, shared by every suite and by the benchmarks. Servers of our own listen on port 0
 * and read back the port the system chose: nothing can take it between a check and its use.
 */
import { createServer, type Server } from 'node:net';

/** Listens on 127.0.0.1:0 and resolves the port the system chose. */
export function listenOnFreePort(server: Pick<Server, 'listen' | 'address' | 'once' | 'off'>, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : 0);
    });
  });
}

/**
 * A port with no listener a moment ago on 127.0.0.1. Only for what cannot listen on port 0 and report
 * the port back (Orthanc and dcmtk's storescp take a fixed port: their helpers retry on a failed
 * bind and check that what answers is theirs; the ingest benchmark's service logs at warn, so it
 * reports no port), and for a port that must refuse connections.
 */
export async function freePort(): Promise<number> {
  const s = createServer();
  s.unref();
  const port = await listenOnFreePort(s);
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** Polls `check` every 50 ms until it returns something truthy (resolved with it); fails after `ms` naming `what`. */
export async function waitFor<T>(check: () => Promise<T | undefined | false> | T | undefined | false, ms = 20000, what = 'condition'): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
