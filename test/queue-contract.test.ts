import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type JobData, type JobInfo, type JobQueue, type StageCounts, createQueue } from '../src/pipeline/queue/index.js';
import { REPO_ROOT, tempDir } from './helpers/corpus.js';
import { waitFor } from './helpers/ports.js';
import { startRedis, type RedisHandle } from './helpers/redis.js';

// One contract, two engines: every test below runs against the embedded queue and against BullMQ
// on a redis-server started here. Child processes run the queue code transpiled from src/ into a
// temp folder, so this suite never depends on a stale or half-built dist/.

const FIXTURE = join(REPO_ROOT, 'test', 'fixtures', 'queue-worker.mjs');
const STAGE = 'header';
// Short BullMQ locks so that a killed worker's job is found stalled within a few seconds.
const BULL_OPTS = { lockDurationMs: 4000, stalledIntervalMs: 500 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Transpiles src/pipeline/queue/*.ts, and the pipeline modules they import, to plain ESM for the
 * child processes (node_modules linked in), keeping their relative layout.
 */
function buildQueueModule(outDir: string): string {
  const pipeline = join(REPO_ROOT, 'src', 'pipeline');
  writeFileSync(join(outDir, 'package.json'), '{"type":"module"}');
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(outDir, 'node_modules'), 'dir');
  mkdirSync(join(outDir, 'queue'));
  const files = [...readdirSync(join(pipeline, 'queue')).filter((n) => n.endsWith('.ts')).map((n) => `queue/${n}`), 'durable-fs.ts', 'redis-libs.ts'];
  for (const f of files) {
    const { outputText } = ts.transpileModule(readFileSync(join(pipeline, f), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
    });
    writeFileSync(join(outDir, f.replace(/\.ts$/, '.js')), outputText);
  }
  return pathToFileURL(join(outDir, 'queue', 'index.js')).href;
}

interface Child {
  readonly proc: ChildProcess;
  readonly lines: string[];
  readonly exited: Promise<number | null>;
}

interface Engine {
  readonly name: string;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** A queue on namespace `ns` (its own folder or Redis prefix). */
  open(ns: string): JobQueue;
  /** Child-process configuration for the same namespace. */
  childConfig(ns: string): Record<string, unknown>;
  /** Upper bound for a dead worker's job to come back. */
  readonly recoveryMs: number;
}

const tmp = tempDir('deid-queue-');
let moduleUrl = '';
let redis: RedisHandle | undefined;

const engines: Engine[] = [
  {
    name: 'embedded',
    setup: async () => undefined,
    teardown: async () => undefined,
    open: (ns) => createQueue({ dir: join(tmp.path, ns, 'queue') }),
    childConfig: (ns) => ({ engine: 'embedded', dir: join(tmp.path, ns, 'queue') }),
    // Below the 1 s periodic sweep: a dead owner's job must come back when the stage starts.
    recoveryMs: 800,
  },
  {
    name: 'bullmq',
    setup: async () => {
      redis = await startRedis();
    },
    teardown: async () => {
      await redis?.stop();
    },
    open: (ns) => createQueue({ dir: join(tmp.path, ns, 'unused'), redisUrl: redis!.url, prefix: `t-${ns}`, bullmq: BULL_OPTS }),
    childConfig: (ns) => ({ engine: 'bullmq', redisUrl: redis!.url, prefix: `t-${ns}`, bullmq: BULL_OPTS }),
    recoveryMs: BULL_OPTS.lockDurationMs + 4 * BULL_OPTS.stalledIntervalMs + 3000,
  },
];

beforeAll(() => {
  const out = join(tmp.path, 'queue-js');
  mkdirSync(out);
  moduleUrl = buildQueueModule(out);
});
afterAll(tmp.cleanup);

describe.each(engines)('$name job queue', (engine) => {
  const queues: JobQueue[] = [];
  const children: Child[] = [];
  let nsSeq = 0;
  let ns = '';

  beforeAll(() => engine.setup());
  afterAll(() => engine.teardown());
  afterEach(async () => {
    for (const c of children.splice(0)) {
      c.proc.kill('SIGKILL');
      await c.exited;
    }
    await Promise.all(queues.splice(0).map((q) => q.close()));
  });

  /** A fresh namespace per test, so tests never see each other's jobs. */
  const next = () => {
    ns = `${engine.name}-${++nsSeq}`;
    mkdirSync(join(tmp.path, ns), { recursive: true });
  };
  const open = () => {
    const q = engine.open(ns);
    queues.push(q);
    return q;
  };
  const job = (id: string, extra: Record<string, unknown> = {}): JobData => ({ id, input: `incoming/${id}.dcm`, ...extra });

  /** Records every delivery; `body` runs inside the handler. */
  function recorder(body: (job: JobData, info: JobInfo) => Promise<void> = async () => undefined) {
    const seen: { id: string; attempt: number; at: number }[] = [];
    const handler = async (j: JobData, info: JobInfo) => {
      seen.push({ id: j.id, attempt: info.attempt, at: Date.now() });
      await body(j, info);
    };
    return { seen, handler, ids: () => seen.map((s) => s.id) };
  }

  const settled = (q: JobQueue, want: Partial<StageCounts>, timeoutMs = 5000) =>
    waitFor(async () => {
      const c = await q.counts(STAGE);
      return Object.entries(want).every(([k, v]) => c[k as keyof StageCounts] === v);
    }, timeoutMs, `counts ${JSON.stringify(want)}`);

  function startChild(cfg: Record<string, unknown>): Child {
    const proc = spawn(process.execPath, [FIXTURE, moduleUrl, JSON.stringify({ ...engine.childConfig(ns), stage: STAGE, ...cfg })], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines: string[] = [];
    let partial = '';
    proc.stdout!.on('data', (d: Buffer) => {
      const parts = (partial + d.toString()).split('\n');
      partial = parts.pop()!;
      lines.push(...parts);
    });
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    const child = { proc, lines, exited };
    children.push(child);
    return child;
  }

  it('should deliver jobs added before a close and reopen (durability)', async () => {
    next();
    const q1 = open();
    for (const id of ['a', 'b', 'c']) await q1.add(STAGE, job(id));
    await q1.close();

    const q2 = open();
    expect(await q2.counts(STAGE)).toMatchObject({ queued: 3, active: 0 });
    const r = recorder();
    q2.process(STAGE, 2, r.handler);
    await settled(q2, { done: 3, queued: 0, active: 0 });
    expect(r.ids().sort()).toEqual(['a', 'b', 'c']);
    expect(r.seen[0]).toMatchObject({ attempt: 1 });
  });

  it('should make adding a queued or active (id, attempt) a no-op', async () => {
    next();
    const q = open();
    await q.add(STAGE, job('dup'));
    await q.add(STAGE, job('dup'));
    await q.add(STAGE, job('odd id: with/slashes\\and ünïcode ✓'));
    expect(await q.counts(STAGE)).toMatchObject({ queued: 2 });

    const r = recorder(async (j) => {
      await q.add(STAGE, j); // the same job while it is active
      await sleep(150);
    });
    q.process(STAGE, 1, r.handler);
    await settled(q, { done: 2, queued: 0, active: 0 });
    await sleep(300);
    expect(r.ids().sort()).toEqual(['dup', 'odd id: with/slashes\\and ünïcode ✓']);
  });

  it.each([
    ['by the instance that processes the stage', false],
    ['by another instance (a process that only adds)', true],
  ])('should deliver a non-durable job added again while it runs once more, after it, %s; a queued one once', async (_, apart) => {
    next();
    const q = open();
    const producer = apart ? open() : q;
    const seen: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    q.process(STAGE, 1, async (j) => {
      seen.push(`${j.id}:${String(j.copy)}`);
      if (j.copy === 1) await gate;
    });
    await producer.add(STAGE, job('same', { copy: 1 }), { durable: false });
    await waitFor(() => seen.length === 1, engine.recoveryMs + 5000, 'the first delivery');
    // While it runs: the same job again, and another job queued twice.
    await producer.add(STAGE, job('same', { copy: 2 }), { durable: false });
    await producer.add(STAGE, job('other', { copy: 1 }), { durable: false });
    await producer.add(STAGE, job('other', { copy: 2 }), { durable: false });
    release();
    await waitFor(() => seen.length === 3, 10_000, 'three deliveries');
    await sleep(300); // room for a duplicate to show up
    expect([...seen].sort()).toEqual(['other:1', 'same:1', 'same:2']);
    expect(seen[0]).toBe('same:1');
  });

  it('should deliver a retry re-added from inside the handler with attempt + 1', async () => {
    next();
    const q = open();
    const r = recorder(async (j, info) => {
      if (info.attempt === 1) {
        await q.add(STAGE, j, { attempt: info.attempt + 1, delayMs: 100 });
        throw new Error('transient');
      }
    });
    q.process(STAGE, 1, r.handler);
    await q.add(STAGE, job('retry-me'));
    await settled(q, { done: 1, failed: 1, queued: 0, active: 0 });
    expect(r.seen.map((s) => s.attempt)).toEqual([1, 2]);
    expect(r.seen[1]!.at - r.seen[0]!.at).toBeGreaterThanOrEqual(90);
  });

  it('should respect the concurrency limit', async () => {
    next();
    const q = open();
    let now = 0;
    let max = 0;
    const r = recorder(async () => {
      max = Math.max(max, ++now);
      await sleep(60);
      now--;
    });
    for (let i = 0; i < 12; i++) await q.add(STAGE, job(`c${i}`));
    q.process(STAGE, 3, r.handler);
    await settled(q, { done: 12, queued: 0, active: 0 });
    expect(max).toBe(3);
  });

  it('should deliver in enqueue order (FIFO) with concurrency 1', async () => {
    next();
    const q = open();
    const ids = Array.from({ length: 15 }, (_, i) => `f${String(i).padStart(2, '0')}`);
    for (const id of ids) await q.add(STAGE, job(id));
    const r = recorder();
    q.process(STAGE, 1, r.handler);
    await settled(q, { done: 15 });
    // Jobs added while the stage runs join the end of the line, and are picked up at once.
    const t0 = Date.now();
    await q.add(STAGE, job('late-1'));
    await q.add(STAGE, job('late-2'));
    await settled(q, { done: 17 });
    expect(r.ids()).toEqual([...ids, 'late-1', 'late-2']);
    expect(r.seen[15]!.at - t0).toBeLessThan(150);
  });

  it('should not deliver a delayed job before its delay', async () => {
    next();
    const q = open();
    const r = recorder();
    q.process(STAGE, 2, r.handler);
    const t0 = Date.now();
    await q.add(STAGE, job('later'), { delayMs: 700 });
    await q.add(STAGE, job('now'));
    await settled(q, { done: 1 });
    expect(await q.counts(STAGE)).toMatchObject({ queued: 1, active: 0 });
    await settled(q, { done: 2, queued: 0 }, 3000);
    const later = r.seen.find((s) => s.id === 'later')!;
    expect(r.ids()).toEqual(['now', 'later']);
    expect(later.at - t0).toBeGreaterThanOrEqual(700);
    expect(later.at - t0).toBeLessThan(2000);
  });

  it('should hold a non-durable delayed job (a retry when the disk is full) until its delay, count and list it, and keep it across a graceful close', async () => {
    next();
    const q = open();
    const r = recorder();
    q.process(STAGE, 1, r.handler);
    const t0 = Date.now();
    await q.add(STAGE, job('wait'), { delayMs: 600, attempt: 2, durable: false });
    expect(await q.counts(STAGE)).toMatchObject({ queued: 1, active: 0 });
    expect((await q.pending(STAGE)).map((j) => j.id)).toEqual(['wait']);
    await settled(q, { done: 1, queued: 0 }, 3000);
    expect(r.seen).toEqual([{ id: 'wait', attempt: 2, at: expect.any(Number) }]);
    expect(r.seen[0].at - t0).toBeGreaterThanOrEqual(600);
    // Not yet due at a graceful close: it is there after a reopen.
    await q.add(STAGE, job('kept'), { delayMs: 60_000, durable: false });
    await q.close();
    const q2 = open();
    expect((await q2.pending(STAGE)).map((j) => j.id)).toEqual(['kept']);
    await q2.close();
  });

  it('should count a failing handler as failed and not deliver it again', async () => {
    next();
    const q = open();
    const r = recorder(async () => {
      throw new Error('permanent');
    });
    q.process(STAGE, 1, r.handler);
    await q.add(STAGE, job('bad'));
    await settled(q, { failed: 1, queued: 0, active: 0 });
    await sleep(500);
    expect(r.ids()).toEqual(['bad']);
    expect(await q.counts(STAGE)).toEqual({ queued: 0, active: 0, done: 0, failed: 1 });
  });

  it('should deliver a finished job again when it is added again (e.g. a quarantine requeue)', async () => {
    next();
    const q = open();
    const r = recorder(async (j) => {
      if (j.fail) throw new Error('fails');
    });
    q.process(STAGE, 1, r.handler);
    await q.add(STAGE, job('ok'));
    await q.add(STAGE, job('bad', { fail: true }));
    await settled(q, { done: 1, failed: 1, queued: 0, active: 0 });
    await q.add(STAGE, job('ok'));
    await q.add(STAGE, job('bad', { fail: false }));
    await settled(q, { done: 3, failed: 1, queued: 0, active: 0 });
    expect(r.ids()).toEqual(['ok', 'bad', 'ok', 'bad']);
  });

  it('should report accurate counts while jobs wait, run, succeed and fail', async () => {
    next();
    const q = open();
    expect(await q.counts(STAGE)).toEqual({ queued: 0, active: 0, done: 0, failed: 0 });
    for (const id of ['k1', 'k2', 'k3', 'k4']) await q.add(STAGE, job(id));
    await q.add(STAGE, job('k-delayed'), { delayMs: 60_000 });
    expect(await q.counts(STAGE)).toEqual({ queued: 5, active: 0, done: 0, failed: 0 });

    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const r = recorder(async (j) => {
      await gate;
      if (j.id === 'k3') throw new Error('fails');
    });
    q.process(STAGE, 2, r.handler);
    await settled(q, { active: 2 });
    expect(await q.counts(STAGE)).toEqual({ queued: 3, active: 2, done: 0, failed: 0 });
    release();
    await settled(q, { queued: 1, active: 0, done: 3, failed: 1 });
  });

  it('should deliver again, with attempt + 1, a job whose worker process was killed', async () => {
    next();
    const log = join(tmp.path, ns, 'deliveries.log');
    const child = startChild({ concurrency: 1, mode: 'hang', log });
    await waitFor(() => child.lines.includes('ready'), 5000, 'the child to start');
    const q = open();
    await q.add(STAGE, job('crash-me'));
    await waitFor(() => child.lines.includes('start crash-me'), 5000, 'the child to take the job');

    // A live owner keeps its job: a second process on the stage must not take it.
    const peer = open();
    const early = recorder();
    peer.process(STAGE, 1, early.handler);
    await sleep(700);
    expect(early.seen).toEqual([]);
    await peer.close();

    child.proc.kill('SIGKILL');
    await child.exited;
    const fresh = open();
    const r = recorder();
    fresh.process(STAGE, 1, r.handler);
    await waitFor(() => r.seen.length > 0, engine.recoveryMs, 'the job to come back');
    await settled(fresh, { done: 1, queued: 0, active: 0 });
    expect(r.seen.map(({ id, attempt }) => ({ id, attempt }))).toEqual([{ id: 'crash-me', attempt: 2 }]);
  });

  it('should share a stage between two processes, handling every job exactly once', async () => {
    next();
    const log = join(tmp.path, ns, 'deliveries.log');
    const workers = [0, 1].map(() => startChild({ concurrency: 2, mode: 'work', workMs: 15, log }));
    await waitFor(() => workers.every((w) => w.lines.includes('ready')), 5000, 'both children to start');
    const q = open();
    const ids = Array.from({ length: 60 }, (_, i) => `s${i}`);
    await Promise.all(ids.map((id) => q.add(STAGE, job(id))));
    const lines = () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);
    await waitFor(() => lines().length >= 60, 10_000, '60 deliveries');
    await settled(q, { queued: 0, active: 0 });
    await sleep(300); // room for a duplicate to show up

    const delivered = lines().map((l) => l.split(' '));
    expect(delivered.map(([, id]) => id).sort()).toEqual([...ids].sort());
    expect(new Set(delivered.map(([pid]) => pid)).size).toBe(2);
    for (const w of workers) w.proc.kill('SIGTERM');
    expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0]);
  });
});

