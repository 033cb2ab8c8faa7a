import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { readDicom } from '../src/dicom/reader.js';
import { startService, type RunningService } from '../src/server.js';
import { corpusFile, tempDir } from './helpers/corpus.js';
import { waitFor } from './helpers/ports.js';

const files = (dir: string) =>
  existsSync(dir) ? readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name)) : [];

describe('folder import', () => {
  const tmp = tempDir('deid-folder-');
  let service: RunningService;
  afterAll(async () => {
    await service?.close();
    tmp.cleanup();
  });

  it('should take a file only once it is complete, de-identify it, and move the original out', async () => {
    const inbox = join(tmp.path, 'inbox');
    const exportDir = join(tmp.path, 'export');
    mkdirSync(inbox);
    const config = join(tmp.path, 'deid.yaml');
    writeFileSync(config, `folder: { path: ${inbox}, settleMs: 600 }\ndimse: { enabled: false }\nhttp: { port: 0, host: 127.0.0.1 }\n`);
    service = await startService(loadConfig({ config, dataDir: join(tmp.path, 'data'), export: [exportDir] }), { logger: pino({ level: 'silent' }), pipelineThread: false });

    // A file that is still being written: its first half now, the rest later.
    const ct = readFileSync(corpusFile('pydicom/CT_small.dcm'));
    const growing = join(inbox, 'growing.dcm');
    writeFileSync(growing, ct.subarray(0, 20000));
    writeFileSync(join(inbox, 'notes.txt'), 'not DICOM');
    await new Promise((r) => setTimeout(r, 400));
    appendFileSync(growing, ct.subarray(20000));
    // Nothing was taken half-written: no quarantine entry for a truncated object.
    await waitFor(async () => (await service.pipeline.quarantine.list()).length === 1, 15_000, 'the non-DICOM file in quarantine');
    const q = await service.pipeline.quarantine.list();
    expect(q.map((e) => e.code)).toEqual(['DEID_ERR_NOT_DICOM']);
    await waitFor(() => files(exportDir).length === 1, 15_000, 'the export');
    expect(readDicom(readFileSync(files(exportDir)[0])).dataset.length).toBeGreaterThan(10);
    // Both originals left the inbox: one is exported, the other is in quarantine.
    await waitFor(() => readdirSync(inbox).length === 0, 5_000, 'the inbox to empty');
    expect((await service.pipeline.quarantine.object(q[0].id)).toString()).toBe('not DICOM');
  }, 60_000);
});
