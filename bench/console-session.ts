// A console session for the benchmarks: signs in with the service's admin token and subscribes to the
// live feed (server-sent events) for as long as the stream runs, the way an open dashboard does.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ConsoleSession {
  /** Events received so far (status and changed). */
  readonly events: () => number;
  close(): void;
}

export async function openConsoleSession(baseUrl: string, dataDir: string): Promise<ConsoleSession> {
  const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  const r = await fetch(`${baseUrl}/console/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
  if (!r.ok) throw new Error(`console sign-in failed: ${r.status}`);
  const cookie = (r.headers.get('set-cookie') ?? '').split(';')[0]!;
  const abort = new AbortController();
  const feed = await fetch(`${baseUrl}/api/console/events`, { headers: { cookie }, signal: abort.signal });
  let events = 0;
  void (async () => {
    try {
      for await (const chunk of feed.body as unknown as AsyncIterable<Uint8Array>) events += (Buffer.from(chunk).toString('utf8').match(/^event: /gm) ?? []).length;
    } catch {
      /* closed */
    }
  })();
  return { events: () => events, close: () => abort.abort() };
}
