/**
 * The status port's contract, run against both engines: the embedded one and Redis (a real
 * redis-server). Two instances on one namespace stand for two processes of a deployment: an ingest
 * node and a worker. What one reports, the other reads and hears.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStatus, workerIdentity, type StatusEvent, type StatusPort } from '../src/pipeline/status/index.js';
import { waitFor } from './helpers/ports.js';
import { startRedis, type RedisHandle } from './helpers/redis.js';

let redis: RedisHandle | undefined;

interface Engine {
  readonly name: string;
  open(namespace: string, role: 'serve' | 'worker', host: string): StatusPort;
}

const engines: Engine[] = [
  { name: 'embedded', open: (ns, role, host) => createStatus({ namespace: ns, worker: workerIdentity(role, host), flushMs: 100 }) },
  { name: 'redis', open: (ns, role, host) => createStatus({ redisUrl: redis!.url, namespace: `${ns}:status`, worker: workerIdentity(role, host), flushMs: 100 }) },
];

beforeAll(async () => {
  redis = await startRedis();
}, 30_000);

afterAll(async () => {
  await redis?.stop();
});

describe.each(engines)('the status port ($name)', (engine) => {
  const opened: StatusPort[] = [];
  const pair = () => {
    const ns = `t-${randomBytes(6).toString('hex')}`;
    const ingest = engine.open(ns, 'serve', 'node-a');
    const worker = engine.open(ns, 'worker', 'node-b');
    opened.push(ingest, worker);
    return { ingest, worker };
  };

  afterAll(async () => {
    await Promise.all(opened.map((s) => s.close()));
  });

  it('should add up what every worker reports, per stage and per worker, with throughput and an hour of history', async () => {
    const { ingest, worker } = pair();
    for (let i = 0; i < 3; i++) ingest.stageDone('header', 5);
    for (let i = 0; i < 2; i++) worker.stageDone('header', 5);
    worker.stageDone('export', 9);
    worker.stageRetried('export');
    worker.quarantined('verify', 'DEID_ERR_VERIFY_LEAK');
    ingest.ingested('dimse', true);
    ingest.ingested('dimse', true);
    ingest.ingested('stow', false);
    ingest.quarantined('ingest', 'DEID_ERR_NOT_DICOM');
    await worker.flush();

    const s = await ingest.snapshot();
    expect(s.stages.header).toMatchObject({ done: 5, failed: 0, retried: 0 });
    expect(s.stages.header.throughput).toBeGreaterThan(0);
    expect(s.stages.export).toMatchObject({ done: 1, retried: 1 });
    expect(s.stages.verify).toMatchObject({ done: 0, failed: 1 });
    // A refusal at ingest counts by source, not as a stage.
    expect(s.stages.ingest).toBeUndefined();
    expect(s.ingest.dimse).toMatchObject({ stored: 2, refused: 0 });
    expect(s.ingest.stow).toMatchObject({ stored: 0, refused: 1 });
    expect(s.ingest.dimse.rate).toBeGreaterThan(0);
    expect(s.quarantined).toEqual(expect.arrayContaining([{ stage: 'verify', code: 'DEID_ERR_VERIFY_LEAK', count: 1 }, { stage: 'ingest', code: 'DEID_ERR_NOT_DICOM', count: 1 }]));
    expect(s.recentErrors.map((e) => e.code).sort()).toEqual(['DEID_ERR_NOT_DICOM', 'DEID_ERR_VERIFY_LEAK']);

    const byId = new Map(s.workers.map((w) => [w.id, w]));
    expect(s.workers.map((w) => w.role)).toEqual(['serve', 'worker']);
    expect(byId.get(ingest.worker.id)).toMatchObject({ alive: true, host: 'node-a', stages: { header: { done: 3 } } });
    expect(byId.get(worker.worker.id)).toMatchObject({ alive: true, host: 'node-b', stages: { header: { done: 2 }, export: { done: 1, retried: 1 }, verify: { failed: 1 } } });
    expect(s.history).toHaveLength(60);
    expect(s.history.at(-1)!.done.header).toBe(5);
    // The worker's own view is the same cluster.
    expect((await worker.snapshot()).stages.header.done).toBe(5);
  });

  it('should deliver every instance\'s events to every subscriber: stage counts, studies, quarantine, workers', async () => {
    const { ingest, worker } = pair();
    const got: StatusEvent[] = [];
    const stop = ingest.subscribe((e) => got.push(e));
    await ingest.flush(); // subscribed from here on
    worker.stageDone('verify', 3);
    worker.studyChanged({ id: 'a'.repeat(32), received: 2, processed: 1, quarantined: 0, exported: 1, firstAt: 't0', lastAt: 't1' });
    worker.studyChanged({ id: 'a'.repeat(32), received: 2, processed: 2, quarantined: 0, exported: 2, firstAt: 't0', lastAt: 't2' });
    worker.quarantineChanged({ action: 'added', id: 'b'.repeat(32), stage: 'verify', code: 'DEID_ERR_VERIFY_LEAK' });
    await worker.flush();
    await waitFor(() => got.some((e) => e.type === 'quarantine'), 5000, 'the quarantine event');
    const counts = got.find((e) => e.type === 'counts' && e.worker === worker.worker.id);
    expect(counts).toMatchObject({ delta: { stages: { verify: { done: 1, failed: 0, retried: 0 } } } });
    // One event per study per report: its latest counts.
    const studies = got.filter((e) => e.type === 'study');
    expect(studies).toEqual([{ type: 'study', study: expect.objectContaining({ id: 'a'.repeat(32), exported: 2 }) }]);
    expect(got.filter((e) => e.type === 'quarantine')).toEqual([{ type: 'quarantine', change: { action: 'added', id: 'b'.repeat(32), stage: 'verify', code: 'DEID_ERR_VERIFY_LEAK' } }]);

    stop();
    const before = got.length;
    worker.stageDone('verify', 3);
    await worker.flush();
    await ingest.flush();
    await new Promise((r) => setTimeout(r, 200));
    expect(got.length).toBe(before);

    // A worker that stops says so, stays in the list as not alive, and its counts stay in the totals.
    const downs: StatusEvent[] = [];
    ingest.subscribe((e) => e.type === 'worker' && downs.push(e));
    await ingest.flush();
    await worker.close();
    await waitFor(() => downs.length > 0, 5000, 'the worker-down event');
    expect(downs[0]).toMatchObject({ type: 'worker', state: 'down', worker: { id: worker.worker.id, role: 'worker' } });
    const s = await ingest.snapshot();
    expect(s.workers.find((w) => w.id === worker.worker.id)).toMatchObject({ alive: false });
    expect(s.stages.verify.done).toBe(2);
  });
});
