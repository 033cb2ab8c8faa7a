import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CachedStore } from '../src/pipeline/cached-store.js';
import { LocalFolderStore, isNotFound } from '../src/pipeline/storage.js';
import { tempDir } from './helpers/corpus.js';
import { CountingStore } from './helpers/stores.js';

describe('the storage port', () => {
  const tmp = tempDir('deid-store-');
  afterAll(tmp.cleanup);

  it('should put durably and atomically, get, rename, list and delete in a local folder', async () => {
    const s = new LocalFolderStore(join(tmp.path, 'a'));
    await s.put('incoming/x.dcm', Buffer.from('one'), { durable: true });
    await s.put('incoming/y.dcm', Buffer.from('two'));
    expect((await s.get('incoming/x.dcm')).toString()).toBe('one');
    expect(await s.list('incoming')).toEqual(['incoming/x.dcm', 'incoming/y.dcm']);
    await s.rename('incoming/y.dcm', 'quarantine/y.dcm');
    expect(await s.list('')).toEqual(['incoming/x.dcm', 'quarantine/y.dcm']);
    await s.delete('incoming/x.dcm');
    await s.delete('incoming/x.dcm'); // deleting what is gone is not an error
    await expect(s.get('incoming/x.dcm')).rejects.toSatisfy(isNotFound);
    await expect(s.put('../escape', Buffer.from('x'))).rejects.toThrow(/escapes/);
  });

  it('should serve repeated reads from the cache and stay coherent through writes, renames and deletes', async () => {
    const counting = new CountingStore(new LocalFolderStore(join(tmp.path, 'b')));
    const s = new CachedStore(counting, 1000);
    await s.put('k', Buffer.from('first'));
    expect((await s.get('k')).toString()).toBe('first');
    expect(counting.reads).toBe(0); // written through, so cached
    await s.put('k', Buffer.from('second'));
    expect((await s.get('k')).toString()).toBe('second');
    await s.rename('k', 'moved');
    await expect(s.get('k')).rejects.toSatisfy(isNotFound);
    expect((await s.get('moved')).toString()).toBe('second');
    await s.delete('moved');
    await expect(s.get('moved')).rejects.toSatisfy(isNotFound);
    // Bounded: older entries are evicted once the byte budget is spent.
    for (let i = 0; i < 10; i++) await s.put(`big${i}`, Buffer.alloc(200, i));
    const before = counting.reads;
    await s.get('big0');
    expect(counting.reads).toBe(before + 1);
    await s.get('big9');
    expect(counting.reads).toBe(before + 1);
  });

  it('should keep deferred outputs in memory until flushed, and drop them without touching the disk', async () => {
    const folder = new LocalFolderStore(join(tmp.path, 'c'));
    const counting = new CountingStore(folder);
    const s = new CachedStore(counting, 1_000_000);
    await s.putDeferred('work/a', Buffer.from('a'));
    await s.putDeferred('work/b', Buffer.from('b'));
    expect((await s.get('work/a')).toString()).toBe('a');
    expect(await folder.list('work')).toEqual([]);
    expect(await s.list('work')).toEqual(['work/a', 'work/b']);
    await s.delete('work/a');
    await expect(s.get('work/a')).rejects.toSatisfy(isNotFound);
    await s.flush(['work/b']);
    expect(await folder.list('work')).toEqual(['work/b']);
    expect((await folder.get('work/b')).toString()).toBe('b');
    await s.delete('work/b');
    expect(await folder.list('work')).toEqual([]);
  });
});
