/**
 * The console's server-side rules without a browser: sessions (expiry, CSRF), which objects the review
 * hold keeps, how drawn regions are checked, and the element path a finding names.
 */
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { elementPath } from '../src/http/console/api.js';
import { ConsoleSessions, cookieValue } from '../src/http/console/session.js';
import { mergeRegions } from '../src/pipeline/review-desk.js';
import { holdReason } from '../src/pipeline/review.js';
import type { PixelFacts } from '../src/stages/stage.js';

const cleaned = (r: Partial<PixelFacts['report']>): PixelFacts => ({ report: { action: 'cleaned', reason: 'test', ...r } });

describe('console sessions', () => {
  async function appWith(sessions: ConsoleSessions) {
    const app = Fastify();
    app.post('/open', async (_req, reply) => {
      const s = sessions.open({ name: 'admin', role: 'admin' });
      sessions.setCookie(reply, s);
      return { csrf: s.csrf };
    });
    app.all('/check', async (req) => ({ state: sessions.check(req) }));
    return app;
  }

  it('should set an HttpOnly, SameSite=Strict cookie and ask state-changing requests for the CSRF token', async () => {
    const sessions = new ConsoleSessions();
    const app = await appWith(sessions);
    const opened = await app.inject({ method: 'POST', url: '/open' });
    const setCookie = String(opened.headers['set-cookie']);
    expect(setCookie).toMatch(/^deid_session=[\w-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    const cookie = setCookie.split(';')[0]!;
    const { csrf } = opened.json() as { csrf: string };
    const state = async (method: 'GET' | 'POST', headers: Record<string, string>) => ((await app.inject({ method, url: '/check', headers })).json() as { state: string }).state;
    expect(await state('GET', { cookie })).toBe('ok');
    expect(await state('POST', { cookie })).toBe('csrf');
    expect(await state('POST', { cookie, 'x-csrf-token': 'x'.repeat(43) })).toBe('csrf');
    expect(await state('POST', { cookie, 'x-csrf-token': csrf })).toBe('ok');
    expect(await state('GET', {})).toBe('none');
    expect(await state('GET', { cookie: 'deid_session=forged' })).toBe('none');
    await app.close();
  });

  it('should end a session when it is closed, unused for the idle time, or past its age', () => {
    const sessions = new ConsoleSessions({ idleMs: 1000, maxAgeMs: 5000 });
    const req = (id: string) => ({ headers: { cookie: `other=1; deid_session=${id}` }, method: 'GET' }) as never;
    const a = sessions.open({ name: 'admin', role: 'admin' }, 0);
    expect(sessions.of(req(a.id), 900)?.id).toBe(a.id);
    expect(sessions.of(req(a.id), 1800)?.id).toBe(a.id); // used at 900: still within the idle time
    expect(sessions.of(req(a.id), 3000)).toBeUndefined(); // idle for 1200 ms
    const b = sessions.open({ name: 'admin', role: 'admin' }, 0);
    for (let t = 800; t < 5000; t += 800) expect(sessions.of(req(b.id), t)).toBeDefined();
    expect(sessions.of(req(b.id), 5200)).toBeUndefined(); // in use, but past its age
    const c = sessions.open({ name: 'admin', role: 'admin' });
    sessions.close(c.id);
    expect(sessions.of(req(c.id))).toBeUndefined();
  });

  it('should read one cookie among several', () => {
    expect(cookieValue('a=1; deid_session=xyz; b=2', 'deid_session')).toBe('xyz');
    expect(cookieValue('deid_session_other=1', 'deid_session')).toBeUndefined();
    expect(cookieValue(undefined, 'deid_session')).toBeUndefined();
  });
});

describe('the review hold', () => {
  it('should hold what the mode asks for, and say why', () => {
    const text = (firstPass: 'text-free' | 'candidates' | 'whole-frame', linesMasked: number, linesKept: number, candidatesDropped = 0) => ({ firstPass, linesMasked, linesUnread: 0, linesKept, candidatesDropped, detections: linesMasked + linesKept + candidatesDropped, possibleLines: linesMasked + linesKept, recognitions: linesMasked + linesKept + candidatesDropped });
    const masked = cleaned({ pixelsMasked: 1200, boxes: [{ x0: 0, y0: 0, x1: 10, y1: 10, source: 'ocr' }], text: text('candidates', 2, 0) });
    // An ultrasound (read whole) with text-like regions, none of which could be read; and one without any.
    const blank = cleaned({ pixelsMasked: 0, text: text('whole-frame', 0, 0, 2) });
    const empty = cleaned({ pixelsMasked: 0, text: text('whole-frame', 0, 0) });
    const readable = cleaned({ pixelsMasked: 0, text: text('whole-frame', 0, 3) });
    const skipped: PixelFacts = { report: { action: 'skipped', reason: 'not known to carry text' } };
    expect(holdReason('off', masked)).toBeUndefined();
    expect(holdReason(undefined, masked)).toBeUndefined();
    expect(holdReason('pixels', masked)).toBe('pixels were masked (1 region)');
    expect(holdReason('pixels', blank)).toMatch(/could not read any text/);
    expect(holdReason('pixels', readable)).toBeUndefined();
    expect(holdReason('pixels', empty)).toBeUndefined();
    expect(holdReason('pixels', skipped)).toBeUndefined();
    expect(holdReason('pixels', undefined)).toBeUndefined();
    expect(holdReason('all', undefined)).toMatch(/every object/);
  });

  it('should keep drawn regions in whole pixels, corners in order, without empty or repeated ones, at most 64', () => {
    expect(mergeRegions(undefined, [{ x0: 30.4, y0: 40, x1: 10, y1: 20 }])).toEqual([{ x0: 10, y0: 20, x1: 30, y1: 40 }]);
    expect(mergeRegions([{ x0: 10, y0: 20, x1: 30, y1: 40 }], [{ x0: 10, y0: 20, x1: 30, y1: 40 }, { x0: 5, y0: 5, x1: 5, y1: 9 }])).toHaveLength(1);
    const many = Array.from({ length: 80 }, (_, i) => ({ x0: i, y0: 0, x1: i + 2, y1: 2 }));
    expect(mergeRegions(undefined, many)).toHaveLength(64);
  });

  it('should find the element path a header finding names', () => {
    expect(elementPath('2 finding(s), first at (0040,0275)[0]/(0032,1060) (name)')).toBe('(0040,0275)[0]/(0032,1060)');
    expect(elementPath('element 00100010')).toBe('00100010');
    expect(elementPath('spool write failed')).toBeUndefined();
  });
});
