/**
 * The console's live feed (server-sent events): a `status` event with the dashboard's figures every
 * two seconds while anyone listens (computed once for all listeners; it holds the review hold's size),
 * and a `changed` event, at most once a second, when studies or the quarantine changed anywhere in the
 * deployment (the status port's events: the same on the embedded and the Redis engines). Pages then
 * fetch what they show. No PHI: counts, codes and hashes; and however fast objects arrive, a listener gets at
 * most one status event every two seconds and one "changed" event a second.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { StatusPort } from '../../pipeline/status/types.js';

export interface EventsOptions {
  readonly status?: StatusPort;
  /** The dashboard's figures (overview route). */
  readonly overview: () => Promise<unknown>;
  readonly statusEveryMs?: number;
}

export function registerEvents(api: FastifyInstance, opts: EventsOptions): { close(): void } {
  const clients = new Set<FastifyReply['raw']>();
  let dirty: { studies?: boolean; quarantine?: boolean } = {};
  let tick: NodeJS.Timeout | undefined;
  let flush: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;

  const send = (event: string, data: unknown) => {
    const line = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const c of clients) c.write(line);
  };
  const changed = (what: 'studies' | 'quarantine') => {
    dirty[what] = true;
    flush ??= setTimeout(() => {
      flush = undefined;
      const d = dirty;
      dirty = {};
      send('changed', d);
    }, 1000);
  };
  const status = async () => {
    try {
      send('status', await opts.overview());
    } catch {
      /* the next tick tries again */
    }
  };
  const start = () => {
    tick = setInterval(() => void status(), opts.statusEveryMs ?? 2000);
    unsubscribe = opts.status?.subscribe((e) => {
      if (e.type === 'study') changed('studies');
      else if (e.type === 'quarantine') changed('quarantine');
    });
  };
  const stop = () => {
    if (tick) clearInterval(tick);
    if (flush) clearTimeout(flush);
    tick = flush = undefined;
    unsubscribe?.();
    unsubscribe = undefined;
  };

  api.get('/api/console/events', (req, reply) => {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    raw.write('retry: 3000\n\n');
    if (clients.size === 0) start();
    clients.add(raw);
    void opts.overview().then((o) => raw.write(`event: status\ndata: ${JSON.stringify(o)}\n\n`), () => undefined);
    req.raw.on('close', () => {
      clients.delete(raw);
      if (clients.size === 0) stop();
    });
  });

  return {
    close() {
      for (const c of clients) c.end();
      clients.clear();
      stop();
    },
  };
}
