import { createServer } from 'node:http';
import { listenOnFreePort } from './ports.js';

/** A webhook receiver on 127.0.0.1: every JSON body POSTed to it lands in `received`. */
export async function startWebhookReceiver<T = unknown>(): Promise<{ url: string; received: T[]; close(): void }> {
  const received: T[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      received.push(JSON.parse(body) as T);
      res.end('ok');
    });
  });
  const port = await listenOnFreePort(server);
  return { url: `http://127.0.0.1:${port}/hook`, received, close: () => void server.close() };
}
