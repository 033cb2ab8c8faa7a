import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, stageConfig } from '../src/config.js';
import { DeidError } from '../src/errors.js';
import { tempDir } from './helpers/corpus.js';

describe('service configuration', () => {
  const tmp = tempDir('deid-config-');
  afterAll(tmp.cleanup);
  const file = (name: string, text: string) => {
    const p = join(tmp.path, name);
    writeFileSync(p, text);
    return p;
  };

  it('should default to the embedded engine, DIMSE 11112 as DEID, HTTP 8080, ./data and the basic profile', () => {
    const cfg = loadConfig({}, {});
    expect(cfg.redis).toBeUndefined();
    expect(cfg.dimse).toMatchObject({ port: 11112, aeTitle: 'DEID', enabled: true });
    expect(cfg.http.port).toBe(8080);
    expect(cfg.dataDir).toBe(resolve('data'));
    expect(stageConfig(cfg, 'header')?.profile).toBe('basic');
    expect(stageConfig(cfg, 'export')?.destinations).toEqual([resolve('data', 'export')]);
  });

  it('should take the file, let the environment override it, and let flags override both', () => {
    const config = file('a.yaml', 'dimse: { port: 4000, aeTitle: FROMFILE }\nhttp: { port: 9000 }\npipeline:\n  - { stage: header, profile: research }\n  - { stage: verify }\n  - { stage: export, destinations: [out] }\n');
    const env = { DEID_HTTP_PORT: '9100', DEID_AE_TITLE: 'FROMENV', REDIS_URL: 'redis://127.0.0.1:1', DEID_EXPORT_TOKEN: 'archive-token' };
    const cfg = loadConfig({ config, dimsePort: '4100', option: ['retain-uids'] }, env);
    expect(cfg.dimse).toMatchObject({ port: 4100, aeTitle: 'FROMENV' });
    expect(cfg.http.port).toBe(9100);
    expect(cfg.redis).toBe('redis://127.0.0.1:1');
    expect(cfg.auth.exportToken).toBe('archive-token');
    // Pixel cleaning is on by default, whatever options are given.
    expect(stageConfig(cfg, 'header')).toMatchObject({ profile: 'research', options: ['retain-uids', 'clean-pixel-data'] });
    // Relative paths in a file are relative to the file.
    expect(stageConfig(cfg, 'export')?.destinations).toEqual([join(tmp.path, 'out')]);
    const flagged = loadConfig({ config, export: ['dicom://PACS:DEID@10.0.0.5:104', 'https://archive.example/dicomweb'], aeTitle: 'FLAG' }, env);
    expect(stageConfig(flagged, 'export')?.destinations).toEqual(['dicom://PACS:DEID@10.0.0.5:104', 'https://archive.example/dicomweb']);
    expect(flagged.dimse.aeTitle).toBe('FLAG');
  });

  it('should stop with DEID_ERR_CONFIG on an invalid file, stage order or value', () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e instanceof DeidError ? e.code : String(e);
      }
    };
    expect(code(() => loadConfig({ config: file('b.yaml', 'dimse: { port: "x" }\n') }, {}))).toBe('DEID_ERR_CONFIG');
    expect(code(() => loadConfig({ config: file('c.yaml', 'unknownKey: 1\n') }, {}))).toBe('DEID_ERR_CONFIG');
    expect(code(() => loadConfig({ config: file('d.yaml', 'pipeline: [{ stage: verify }, { stage: header }, { stage: export }]\n') }, {}))).toBe('DEID_ERR_CONFIG');
    expect(code(() => loadConfig({ config: file('e.yaml', 'pipeline: [{ stage: header }, { stage: export }]\n') }, {}))).toBe('DEID_ERR_CONFIG');
    expect(code(() => loadConfig({ httpPort: '99999' }, {}))).toBe('DEID_ERR_CONFIG');
    expect(code(() => loadConfig({ aeTitle: 'A_TITLE_THAT_IS_TOO_LONG' }, {}))).toBe('DEID_ERR_CONFIG');
  });
});
