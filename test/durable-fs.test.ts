import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DirSyncer, DirSyncers, isTempName, writeFileAtomic, writeFileAtomicSync } from '../src/pipeline/durable-fs.js';
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
});
