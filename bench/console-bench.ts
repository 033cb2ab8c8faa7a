// `npm run bench:console`: the console's studies page with 10,000 studies against 10, in the same run.
// The service is started twice (`deid serve`, embedded), its study tracking and object catalog
// filled beforehand; chromium (headless, via playwright-core) signs in and opens the studies page,
// its next page and a filtered page. Times are from the navigation to the rendered table (25 rows),
// medians of several tries; and the API's own answer time. The goal: a page within 300 ms at 10,000.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT, WORK, fmt, median } from './lib.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const TRIES = Number(process.env.BENCH_TRIES ?? 7);
if (!existsSync(CHROMIUM)) {
  console.error(`bench: ${CHROMIUM} not found; install the Debian package chromium`);
  process.exit(1);
}

const hex = (s: string, n = 32) => createHash('sha256').update(s).digest('hex').slice(0, n);

/** A data directory holding `count` exported studies of 3 objects each, as the service would have left them. */
function fill(dir: string, count: number): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const now = Date.now();
  const studies = [];
  for (let i = 0; i < count; i++) {
    const id = hex(`study ${i}`);
    const at = new Date(now - i * 60_000).toISOString();
    const objects: Record<string, string> = {};
    const cat = join(dir, 'spool', 'catalog', id);
    mkdirSync(cat, { recursive: true });
    for (let o = 0; o < 3; o++) {
      const obj = hex(`object ${i} ${o}`, 16);
      objects[obj] = 'exported';
      const identity = { patientId: `P${hex(`patient ${i}`, 8)}`, studyInstanceUid: `2.25.${BigInt(`0x${hex(`s${i}`, 24)}`)}`, seriesInstanceUid: `2.25.${i}1`, sopInstanceUid: `2.25.${i}1${o}`, sopClassUid: '1.2.840.10008.5.1.4.1.1.2' };
      writeFileSync(join(cat, `${obj}.json`), JSON.stringify({ object: obj, state: 'exported', at, identity }));
    }
    studies.push({ id, firstAt: at, lastAt: at, completedAt: at, objects });
  }
  writeFileSync(join(dir, 'studies.json'), JSON.stringify(studies));
  writeFileSync(join(dir, 'admin-token'), 'bench-admin-token-0123456789\n', { mode: 0o600 });
}

async function serve(dir: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [join(ROOT, 'bin/deid.js'), 'serve', '--dimse-port', '0', '--http-port', '0', '--data-dir', dir, '--secret-file', join(WORK, 'secret')], {
    env: { ...process.env, DEID_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  let port = 0;
  for (let i = 0; i < 600 && !port; i++) {
    const line = out.split('\n').find((l) => l.includes('HTTP listening'));
    if (line) port = (JSON.parse(line) as { port: number }).port;
    else await new Promise((r) => setTimeout(r, 50));
  }
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    try { if ((await fetch(`${url}/healthz`)).ok) break; } catch { /* starting */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, stop: async () => { child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r)); } };
}

async function measure(count: number) {
  const dir = join(WORK, `console-${count}`);
  fill(dir, count);
  const svc = await serve(dir);
  const api: number[] = [];
  for (let i = 0; i < TRIES; i++) {
    const t = performance.now();
    const r = await fetch(`${svc.url}/api/console/studies?page=2&size=25`, { headers: { authorization: 'Bearer bench-admin-token-0123456789' } });
    await r.json();
    api.push(performance.now() - t);
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  await page.goto(svc.url);
  await page.getByLabel('Admin token').fill('bench-admin-token-0123456789');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('h1', { hasText: 'Dashboard' }).waitFor();

  const timed = async (hash: string, want: number) => {
    const out: number[] = [];
    for (let i = 0; i < TRIES; i++) {
      await page.evaluate(() => ((globalThis as unknown as { location: { hash: string } }).location.hash = '#/dashboard'));
      await page.locator('h1', { hasText: 'Dashboard' }).waitFor();
      const t = performance.now();
      await page.evaluate((h) => ((globalThis as unknown as { location: { hash: string } }).location.hash = h), hash);
      await page.locator(`table.studies tbody tr[data-study]:nth-child(${want})`).waitFor();
      out.push(performance.now() - t);
    }
    return median(out);
  };
  const first = await timed('#/studies', Math.min(25, count));
  const later = await timed(`#/studies?page=${Math.max(1, Math.floor(count / 25 / 2))}`, Math.min(25, count));
  const filtered = await timed('#/studies?state=complete&q=0', Math.min(1, count));

  await browser.close();
  await svc.stop();
  return { api: median(api), first, later, filtered };
}

mkdirSync(WORK, { recursive: true });
writeFileSync(join(WORK, 'secret'), 'benchmark-secret-0123456789abcdef\n');
const small = await measure(10);
const large = await measure(10_000);
const row = (what: string, a: number, b: number) => console.log(`  ${what.padEnd(38)} ${fmt(a, 1).padStart(7)} ms ${fmt(b, 1).padStart(9)} ms   ×${fmt(b / a, 2)}`);
console.log(`\nstudies page, median of ${TRIES} (navigation to the rendered table, chromium headless, 1280×800):`);
console.log(`  ${''.padEnd(38)} ${'10 studies'.padStart(10)} ${'10,000 studies'.padStart(13)}   ratio`);
row('API answer (GET /api/console/studies)', small.api, large.api);
row('first page', small.first, large.first);
row('a page in the middle', small.later, large.later);
row('filtered (state and key prefix)', small.filtered, large.filtered);
console.log(`\ngoal: a page within 300 ms at 10,000 studies: ${Math.max(large.first, large.later, large.filtered) <= 300 ? 'met' : 'NOT met'} (slowest ${fmt(Math.max(large.first, large.later, large.filtered), 0)} ms)`);

