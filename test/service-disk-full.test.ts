/**
 * A full disk never ends the process (issue 11). The service runs on a small tmpfs (mounted here, so
 * the test needs root: CI runs as root) while its destination is down, and storescu streams until the
 * spool fills: first past the free-space reserve, then to the last byte. The service answers A700,
 * /readyz says not ready, every timer's write (study tracking, queue, spool) fails without a crash and
 * leaves no temporary file; once space is back and the PACS is up, every acknowledged object arrives.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { pino } from 'pino';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../src/config.js';
import { HOST_TAG } from '../src/pipeline/durable-fs.js';
import { DiskGuard } from '../src/pipeline/readiness.js';
import { EmbeddedQueue } from '../src/pipeline/queue/index.js';
import { FileStudyTracker } from '../src/pipeline/studies.js';
import { remapUid } from '../src/keyed.js';
import { tempDir } from './helpers/corpus.js';
import { runStorescu, storeResponses } from './helpers/dcmtk.js';
import { startOrthanc, type OrthancHandle } from './helpers/orthanc.js';
import { freePort, waitFor } from './helpers/ports.js';
import { filesUnder } from './helpers/files.js';
import { startServiceProcess, type ServiceProcess } from './helpers/service.js';
import { writeStudy } from './helpers/study.js';

const SECRET = 'disk-full-secret-0123456789abcdef';

/** Mounts a tmpfs of `mib` MiB at `dir`; the reason it cannot, if it cannot. */
function mountTmpfs(dir: string, mib: number): string | undefined {
  if (process.getuid?.() !== 0) return 'it needs root to mount a small tmpfs (CI runs as root)';
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m,mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
    return undefined;
  } catch (e) {
    return `mount -t tmpfs failed: ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`;
  }
}

/** Writes zeros into `path` until the volume is full to the last byte (ENOSPC), or `bytes` at most. */
function fill(path: string, bytes = Infinity): void {
  const fd = openSync(path, 'a');
  let written = 0;
  try {
    for (let size = 64 * 1024; size >= 1; size = Math.floor(size / 4)) {
      const chunk = Buffer.alloc(size);
      try {
        while (written < bytes) written += writeSync(fd, chunk, 0, Math.min(size, bytes - written));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
      }
    }
  } finally {
    closeSync(fd);
  }
}

const freeBytes = (dir: string): number => {
  const out = execFileSync('df', ['-B1', '--output=avail', dir], { encoding: 'utf8' });
  return Number(out.trim().split('\n').pop());
};

const tmp = tempDir('deid-diskfull-');
const volume = join(tmp.path, 'volume');
mkdirSync(volume);
const cannot = mountTmpfs(volume, 16);
if (cannot) console.warn(`[service-disk-full] skipped: ${cannot}`);

afterAll(() => {
  if (!cannot) execFileSync('umount', ['-l', volume]);
  tmp.cleanup();
});

describe.skipIf(!!cannot)('a full disk (service on a 16 MiB tmpfs)', () => {
  const dataDir = join(volume, 'data');
  let service: ServiceProcess;
  let orthanc: OrthancHandle | undefined;
  let pacsPort = 0;
  const args = () => ['--config', join(tmp.path, 'deid.yaml'), '--data-dir', dataDir, '--secret-file', join(tmp.path, 'secret')];

  beforeAll(async () => {
    pacsPort = await freePort(); // the PACS is down for now: objects wait in the spool
    writeFileSync(join(tmp.path, 'secret'), SECRET);
    writeFileSync(
      join(tmp.path, 'deid.yaml'),
      [
        'minFreeSpace: 256KiB',
        'studies: { quietSeconds: 1 }',
        'pipeline:',
        '  - { stage: header }',
        '  - { stage: verify }',
        `  - { stage: export, destinations: ["dicom://ORTHANC:DEID@127.0.0.1:${pacsPort}"], maxAttempts: 100, backoffMs: 200, maxBackoffMs: 1000 }`,
        '',
      ].join('\n'),
    );
    service = await startServiceProcess(args());
  }, 60_000);

  afterAll(async () => {
    await service?.stop();
    await orthanc?.stop();
  });

  // Room again for the next test, whatever became of this one.
  afterEach(() => {
    for (const f of readdirSync(volume)) if (f.startsWith('filler-')) rmSync(join(volume, f));
  });

  it('should answer A700, say not ready, stay up through a completely full disk, and deliver every acknowledged object once there is room', async () => {
    const files = writeStudy(join(tmp.path, 'in'), {
      patientName: 'FULL^FRIEDA',
      patientId: 'DF-1',
      studyUid: '1.2.826.0.1.3680043.10.1138.88.1',
      sources: [{ file: 'pydicom/CT_small.dcm', series: 1, copies: 120 }],
    });
    // About 2.5 MB left for 120 objects of 39 kB: the reserve is reached part way through.
    fill(join(volume, 'filler-1'), Math.max(0, freeBytes(volume) - 2.5 * 2 ** 20));
    // -nh: storescu goes on after a refusal, as a PACS's queue would.
    const first = await runStorescu({ port: service.dimsePort, files: files.map((f) => f.path), args: ['-nh'], timeoutMs: 120_000 });
    const answers = storeResponses(first.output);
    expect(answers).toHaveLength(files.length);
    const acked = files.filter((_, i) => answers[i] === 'Success');
    const refused = files.filter((_, i) => answers[i] !== 'Success');
    expect(acked.length).toBeGreaterThan(10);
    expect(refused.length).toBeGreaterThan(0);
    expect(new Set(answers.filter((a) => a !== 'Success'))).toEqual(new Set(['Refused: OutOfResources']));
    expect((await fetch(`${service.url}/readyz`)).status).toBe(503);

    // Now to the last byte: every write of every timer meets ENOSPC for a while.
    fill(join(volume, 'filler-2'));
    expect(freeBytes(volume)).toBe(0);
    const more = await runStorescu({ port: service.dimsePort, files: refused.slice(0, 3).map((f) => f.path), args: ['-nh'] });
    expect(storeResponses(more.output)).toEqual(['Refused: OutOfResources', 'Refused: OutOfResources', 'Refused: OutOfResources']);
    await new Promise((r) => setTimeout(r, 4000)); // study tracking (1 s), export retries (≤ 1 s), heartbeats
    expect(service.child.exitCode).toBeNull();
    expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
    // The export retries (the PACS is still down) could not be written as job files: kept in memory.
    expect(service.logs()).toMatch(/no room to write a retry: retries are kept in memory until there is/);
    // A write that failed took its temporary file with it.
    expect(filesUnder(join(dataDir, 'spool'), '.tmp').filter((f) => !f.includes(`${HOST_TAG}-${service.child.pid}.`))).toEqual([]);

    // Space comes back and the PACS comes up: work goes on by itself.
    rmSync(join(volume, 'filler-2'));
    rmSync(join(volume, 'filler-1'));
    orthanc = await startOrthanc({ config: { DicomPort: pacsPort } });
    await waitFor(async () => (await fetch(`${service.url}/readyz`)).status === 200, 20_000, 'ready again');
    const key = Buffer.from(SECRET);
    const lookup = async (uid: string) => ((await (await fetch(`${orthanc!.httpUrl}/tools/lookup`, { method: 'POST', body: uid })).json()) as unknown[]).length;
    await waitFor(async () => (await orthanc!.get<{ CountInstances: number }>('/statistics')).CountInstances >= acked.length, 90_000, 'every acknowledged object in Orthanc');
    for (const f of acked) expect(await lookup(remapUid(key, f.sopInstanceUid)), f.sopInstanceUid).toBe(1);
    // The senders try again what was refused, and it goes through.
    const retried = await runStorescu({ port: service.dimsePort, files: refused.map((f) => f.path), timeoutMs: 60_000 });
    expect(storeResponses(retried.output)).toEqual(refused.map(() => 'Success'));
    await waitFor(async () => (await orthanc!.get<{ CountInstances: number }>('/statistics')).CountInstances === files.length, 60_000, 'the retried objects in Orthanc');
    expect(service.child.exitCode).toBeNull();
    expect(service.logs()).not.toMatch(/FRIEDA|DF-1/);
  }, 240_000);

  it('should scale the default free-space reserve with the volume: a small volume is ready until less than 2% of it is free', async () => {
    const total = 16 * 2 ** 20;
    const guard = new DiskGuard(volume, defaultConfig().minFreeSpace);
    const fresh = guard.check();
    expect(fresh.reserve).toBe(Math.ceil(total * 0.02));
    expect(fresh.ok).toBe(true);
    expect(guard.low).toBe(false);
    // Just above the reserve: still ready; just below it: not.
    fill(join(volume, 'filler-4'), Math.max(0, freeBytes(volume) - fresh.reserve - 64 * 1024));
    expect(guard.check().ok).toBe(true);
    fill(join(volume, 'filler-5'), 128 * 1024);
    expect(guard.check()).toMatchObject({ ok: false, reserve: fresh.reserve });
    expect(guard.low).toBe(true);
  });

  it('should let the timers\' writes fail on a full disk without a throw, and write again once there is room', async () => {
    const dir = join(volume, 'timers');
    mkdirSync(dir);
    const warnings: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
    const tracker = new FileStudyTracker(join(dir, 'studies.json'), log);
    const queue = new EmbeddedQueue(join(dir, 'queue'));
    fill(join(volume, 'filler-3'));
    expect(freeBytes(volume)).toBe(0);
    await tracker.record('s'.repeat(32), 'received', 'a'.repeat(64));
    await expect(queue.add('header', { id: 'job-1' })).rejects.toMatchObject({ code: 'ENOSPC' });
    // The tracker writes from a timer (after a second): ENOSPC there is logged, never thrown.
    await waitFor(() => warnings.some((w) => w.includes('study tracking could not be written; trying again')), 5000, 'the warning');
    expect(filesUnder(dir, '.tmp')).toEqual([]);
    rmSync(join(volume, 'filler-3'));
    await waitFor(() => existsSync(join(dir, 'studies.json')), 10_000, 'the study file written once there is room');
    expect(JSON.parse(readFileSync(join(dir, 'studies.json'), 'utf8'))).toHaveLength(1);
    await queue.add('header', { id: 'job-1' });
    await queue.close();
    await tracker.close();
  }, 30_000);

  it('should remove temporary files a crashed write left behind when it starts again', async () => {
    await service.kill9();
    const leftovers = [join(dataDir, 'spool', 'work', 'header', `x.dcm.${HOST_TAG}-4194999.3.tmp`), join(dataDir, `studies.json.${HOST_TAG}-4194999.0.tmp`)];
    mkdirSync(join(dataDir, 'spool', 'work', 'header'), { recursive: true });
    for (const f of leftovers) writeFileSync(f, 'half written');
    service = await startServiceProcess(args());
    expect(leftovers.filter(existsSync)).toEqual([]);
    expect(service.logs()).toMatch(/removed temporary files left by an interrupted write/);
  }, 60_000);
});
