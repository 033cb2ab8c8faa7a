import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InFlightObjects } from '../src/pipeline/in-flight.js';
import type { ObjectJob } from '../src/pipeline/jobs.js';
import { LocalFolderStore } from '../src/pipeline/storage.js';
import { loadProfile } from '../src/profiles/profile.js';
import { corpusFile, tempDir } from './helpers/corpus.js';

describe('objects read back from the spool', () => {
  const bytes = readFileSync(corpusFile('dicomparser/CT1_UNC.explicit_little_endian.dcm'));
  const job = { hash: 'h'.repeat(64), source: 'incoming/a.dcm', input: 'incoming/a.dcm', facts: {}, origin: { kind: 'folder' } } as unknown as ObjectJob;
  const profile = loadProfile('basic');

  it('should read a spooled object back under the configured size limit, as it currently stands', async () => {
    const tmp = tempDir();
    try {
      const store = new LocalFolderStore(join(tmp.path, 'spool'));
      await store.put(job.source, bytes);
      let limit = bytes.length;
      const objects = new InFlightObjects(store, Buffer.from('secret'), () => ({ maxBytes: limit }));
      expect((await objects.load(job, profile)).source.dataset.length).toBeGreaterThan(10);
      // A limit lowered by a reload applies to what is read from then on: refused with the size code, not parsed.
      limit = 1024;
      await expect(objects.load(job, profile)).rejects.toMatchObject({ code: 'DEID_ERR_HOSTILE_SIZE' });
      // The same for an object remembered by its bytes only.
      objects.seed(job.hash, job.input, bytes);
      await expect(objects.load(job, profile)).rejects.toMatchObject({ code: 'DEID_ERR_HOSTILE_SIZE' });
    } finally {
      tmp.cleanup();
    }
  });
});
