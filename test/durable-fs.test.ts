import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DirSyncer, DirSyncers, HOST_TAG, isTempName, placeFile, placeFileSync, sweepStaleTemps, tempNameFor, writeFileAtomic, writeFileAtomicSync } from '../src/pipeline/durable-fs.js';
import { tempDir } from './helpers/corpus.js';

const openFds = () => readdirSync('/proc/self/fd').length;

describe('the durable-file primitives', () => {
  const tmp = tempDir('deid-durable-');
  afterAll(tmp.cleanup);

  it('should write a file atomically, durable or not, creating its folder and leaving no temporary file', async () => {
    const dir = join(tmp.path, 'a', 'b');
    await writeFileAtomic(join(dir, 'x.dcm'), Buffer.from('one'), { durable: true });
    await writeFileAtomic(join(dir, 'x.dcm'), Buffer.from('two'));
    writeFileAtomicSync(join(dir, 'y.json'), Buffer.from('three'), { durable: true });
    writeFileAtomicSync(join(dir, 'y.json'), Buffer.from('four'));
    expect(readFileSync(join(dir, 'x.dcm'), 'utf8')).toBe('two');
    expect(readFileSync(join(dir, 'y.json'), 'utf8')).toBe('four');
    expect(readdirSync(dir).sort()).toEqual(['x.dcm', 'y.json']);
  });

  it('should leave neither the target nor a temporary file when the write fails', async () => {
    const dir = join(tmp.path, 'fail');
    mkdirSync(join(dir, 'target.dcm'), { recursive: true }); // a folder where the file should go: the rename fails
    await expect(writeFileAtomic(join(dir, 'target.dcm'), Buffer.from('x'), { durable: true })).rejects.toThrow();
    expect(() => writeFileAtomicSync(join(dir, 'target.dcm'), Buffer.from('x'))).toThrow();
    expect(readdirSync(dir).filter(isTempName)).toEqual([]);
  });

  it('should coalesce concurrent directory syncs, each caller getting one that started after its call', async () => {
    const dir = join(tmp.path, 'sync');
    mkdirSync(dir);
    const s = new DirSyncer(dir);
    const order: string[] = [];
    writeFileSync(join(dir, 'f'), 'x');
    const first = s.sync().then(() => order.push('first'));
    // These arrive while the first runs: they share one more sync, after it.
    const later = Array.from({ length: 20 }, (_, i) => s.sync().then(() => order.push(`later${i}`)));
    await Promise.all([first, ...later]);
    expect(order[0]).toBe('first');
    expect(order).toHaveLength(21);
    expect(s.idle).toBe(true);
    s.close();
    await s.sync(); // opens the folder again
    s.close();
  });

  it('should keep the open directories bounded when syncing many folders', async () => {
    const syncers = new DirSyncers(8);
    const before = openFds();
    for (let i = 0; i < 60; i++) {
      const dir = join(tmp.path, 'many', String(i));
      await writeFileAtomic(join(dir, 'x'), Buffer.from('x'), { durable: true, syncers });
    }
    expect(openFds() - before).toBeLessThanOrEqual(8);
    syncers.close();
    expect(openFds()).toBeLessThanOrEqual(before);
  });

  it('should place a file without ever replacing a different one: the same bytes are a no-op, other bytes get a content-hash name', async () => {
    const dir = join(tmp.path, 'place');
    const target = join(dir, '2.25.123.dcm');
    expect(await placeFile(target, Buffer.from('first'), { durable: true })).toBe(target);
    expect(await placeFile(target, Buffer.from('first'), { durable: true })).toBe(target);
    const other = await placeFile(target, Buffer.from('second'), { durable: true });
    expect(other).toMatch(/\/2\.25\.123-[0-9a-f]{12}\.dcm$/);
    expect(placeFileSync(target, Buffer.from('second'))).toBe(other);
    expect(readFileSync(target, 'utf8')).toBe('first');
    expect(readFileSync(other, 'utf8')).toBe('second');
    expect(readdirSync(dir).sort()).toEqual(['2.25.123.dcm', other.slice(dir.length + 1)].sort());
    // A folder removed behind the writer's back is made again.
    rmSync(dir, { recursive: true });
    expect(await placeFile(target, Buffer.from('third'))).toBe(target);
    await writeFileAtomic(join(dir, 'y'), Buffer.from('y'));
    expect(readdirSync(dir).sort()).toEqual(['2.25.123.dcm', 'y']);
  });

  it('should sweep temporary files of writers that are gone, and leave a write in progress alone', async () => {
    const dir = join(tmp.path, 'sweep', 'work', 'header');
    mkdirSync(dir, { recursive: true });
    const mine = tempNameFor(join(dir, 'live.dcm'));
    writeFileSync(mine, 'in progress');
    // A process of this host that no longer exists (pids wrap far below this).
    const dead = join(dir, `gone.dcm.${HOST_TAG}-4194999.0.tmp`);
    writeFileSync(dead, 'left by a crash');
    // Another host's: judged by age only.
    const remoteFresh = join(dir, 'remote.dcm.0123456789ab-77.0.tmp');
    const remoteOld = join(dir, 'remote-old.dcm.0123456789ab-77.1.tmp');
    writeFileSync(remoteFresh, 'x');
    writeFileSync(remoteOld, 'x');
    const longAgo = new Date(Date.now() - 2 * 3_600_000);
    utimesSync(remoteOld, longAgo, longAgo);
    writeFileSync(join(dir, 'kept.dcm'), 'not a temporary file');
    expect(await sweepStaleTemps(join(tmp.path, 'sweep'))).toBe(2);
    expect([mine, dead, remoteFresh, remoteOld, join(dir, 'kept.dcm')].map(existsSync)).toEqual([true, false, true, false, true]);
    expect(await sweepStaleTemps(join(tmp.path, 'no-such-folder'))).toBe(0);
  });
});
