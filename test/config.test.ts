import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, minFreeBytes, restartOnlyChanges, stageConfig } from '../src/config.js';
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
    const config = file('a.yaml', `dimse: { port: 4000, aeTitle: FROMFILE }\nhttp: { port: 9000 }\npipeline:\n  - { stage: header, profile: research }\n  - { stage: verify }\n  - { stage: export, destinations: ["file://${tmp.path}/out"] }\n`);
    const env = { DEID_HTTP_PORT: '9100', DEID_AE_TITLE: 'FROMENV', REDIS_URL: 'redis://127.0.0.1:1', DEID_EXPORT_TOKEN: 'archive-token' };
    const cfg = loadConfig({ config, dimsePort: '4100', option: ['retain-uids'] }, env);
    expect(cfg.dimse).toMatchObject({ port: 4100, aeTitle: 'FROMENV' });
    expect(cfg.http.port).toBe(9100);
    expect(cfg.redis).toBe('redis://127.0.0.1:1');
    expect(cfg.auth.exportToken).toBe('archive-token');
    // Pixel cleaning is on by default, whatever options are given.
    expect(stageConfig(cfg, 'header')).toMatchObject({ profile: 'research', options: ['retain-uids', 'clean-pixel-data'] });
    // A file:// destination is a folder.
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

  const message = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      return e instanceof DeidError ? `${e.code}: ${e.detail}` : String(e);
    }
    return 'no error';
  };

  it('should default to the secure settings: HTTP on the loopback interface, the called AE title checked, logs as JSON', () => {
    const cfg = loadConfig({}, {});
    expect(cfg.http.host).toBe('127.0.0.1');
    expect(cfg.dimse.host).toBe('0.0.0.0');
    expect(cfg.dimse.checkCalledAE).toBe(true);
    expect(cfg.auth.stowToken).toBeUndefined(); // generated at start-up: STOW-RS is open only with stowToken: none
    expect(cfg.log).toEqual({ level: 'info', format: 'json' });
    expect(cfg.minFreeSpace).toBe('2%');
    expect(loadConfig({ logFormat: 'pretty' }, { DEID_LOG_LEVEL: 'debug' }).log).toEqual({ level: 'debug', format: 'pretty' });
    expect(loadConfig({}, { DEID_LOG_FORMAT: 'pretty' }).log.format).toBe('pretty');
    expect(loadConfig({ config: file('open.yaml', 'auth: { stowToken: none, metricsToken: metrics-secret-1 }\n') }, {}).auth).toEqual({ stowToken: 'none', metricsToken: 'metrics-secret-1' });
    expect(message(() => loadConfig({ logFormat: 'xml' }, {}))).toMatch(/DEID_ERR_CONFIG: log format "xml"/);
  });

  it('should stop on a destination that is neither dicom://, http(s)://, file:// nor an absolute path, naming it without credentials', () => {
    expect(message(() => loadConfig({ export: ['ftp://x'] }, {}))).toBe('DEID_ERR_CONFIG: --export: destination "ftp://x" is neither dicom://, http(s)://, file:// nor an absolute folder path');
    // A mistyped dicom:// would otherwise become a folder in the working directory.
    expect(message(() => loadConfig({}, { DEID_EXPORT: 'dicom:/PACS@host:104' }))).toMatch(/^DEID_ERR_CONFIG: DEID_EXPORT: destination "dicom:\/PACS@host:104"/);
    expect(message(() => loadConfig({ export: ['out'] }, {}))).toMatch(/destination "out" is neither/);
    const inFile = message(() => loadConfig({ config: file('dest.yaml', 'pipeline:\n  - { stage: header }\n  - { stage: verify }\n  - { stage: export, destinations: ["sftp://user:hunter2@host/x"] }\n') }, {}));
    expect(inFile).toContain('dest.yaml: pipeline export destinations: destination "sftp://***@host/x"');
    expect(inFile).not.toContain('hunter2');
    const ok = loadConfig({ export: ['/srv/out', 'file:///srv/other', 'dicom://PACS:DEID@10.0.0.5:104', 'https://a.example/dicomweb'] }, {});
    expect(stageConfig(ok, 'export')?.destinations).toEqual(['/srv/out', '/srv/other', 'dicom://PACS:DEID@10.0.0.5:104', 'https://a.example/dicomweb']);
  });

  it('should name the file and the setting of an invalid configuration', () => {
    const f = file('typo.yaml', 'http: { prot: 8080 }\ndimse: { port: "x" }\npipeline: [{ stage: headr }]\n');
    const m = message(() => loadConfig({ config: f }, {}));
    expect(m).toContain(`${f}: `);
    expect(m).toContain('http.prot: unknown setting');
    expect(m).toContain('dimse.port: must be integer');
    expect(m).toContain('pipeline[0].stage: must be one of filter, header, pixels, verify, export');
    expect(message(() => loadConfig({ config: file('top.yaml', 'workerz: 2\n') }, {}))).toContain('workerz: unknown setting');
    expect(message(() => loadConfig({ config: file('size.yaml', 'minFreeSpace: lots\n') }, {}))).toContain('minFreeSpace');
  });

  it('should take the free-space reserve as a share of the volume or as a size', () => {
    expect(minFreeBytes('2%', 20 * 2 ** 20)).toBe(Math.ceil(0.02 * 20 * 2 ** 20));
    expect(minFreeBytes('512MiB', 0)).toBe(512 * 2 ** 20);
    expect(minFreeBytes('1GB', 0)).toBe(1e9);
    expect(minFreeBytes(4096, 1e12)).toBe(4096);
    expect(() => minFreeBytes('lots', 1)).toThrow(DeidError);
  });

  it('should say which changed settings need a restart and which a reload applies', () => {
    const a = loadConfig({}, {});
    const b = loadConfig({ profile: 'research', httpPort: '9999', dataDir: '/elsewhere' }, { DEID_ADMIN_TOKEN: 'another-admin-token', DEID_LOG_LEVEL: 'debug' });
    expect(restartOnlyChanges(a, b)).toEqual(['dataDir', 'http']);
    expect(restartOnlyChanges(a, loadConfig({ profile: 'research', export: ['/x'] }, { DEID_LOG_LEVEL: 'warn' }))).toEqual([]);
  });
});
