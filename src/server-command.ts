import { parseArgs } from 'node:util';
import { loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { startService } from './server.js';

/** `deid serve` (ingest, HTTP and workers) and `deid worker` (pipeline workers only, for scaling out). */
export async function serveCommand(cmd: 'serve' | 'worker', argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      'dimse-port': { type: 'string' },
      'ae-title': { type: 'string' },
      'http-port': { type: 'string' },
      'data-dir': { type: 'string' },
      profile: { type: 'string' },
      option: { type: 'string', multiple: true },
      'secret-file': { type: 'string' },
      export: { type: 'string', multiple: true },
      redis: { type: 'string' },
      strict: { type: 'boolean' },
    },
  });
  const cfg = loadConfig({
    config: values.config,
    dimsePort: values['dimse-port'],
    aeTitle: values['ae-title'],
    httpPort: values['http-port'],
    dataDir: values['data-dir'],
    profile: values.profile,
    option: values.option,
    secretFile: values['secret-file'],
    export: values.export,
    redis: values.redis,
    strict: values.strict,
  });
  const log = createLogger(cmd === 'worker' ? 'deid-worker' : 'deid');
  const service = await startService(cfg, { workersOnly: cmd === 'worker', logger: log });
  log.info({ engine: cfg.redis ? 'bullmq' : 'embedded', dataDir: cfg.dataDir }, `deid ${cmd} started`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'shutting down: finishing work in flight');
      void service.close().then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}
