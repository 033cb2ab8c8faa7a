import { parseArgs } from 'node:util';
import { loadConfig, type ConfigFlags } from './config.js';
import { isDeidError, toDeidError } from './errors.js';
import { createLogger } from './logger.js';
import { startService } from './server.js';

/**
 * `deid serve` (ingest, HTTP and workers) and `deid worker` (pipeline workers only, for scaling out).
 * SIGTERM and SIGINT stop it gracefully; SIGHUP reads the configuration again (file, environment and
 * the same flags) and applies what can change while running.
 */
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
      'log-format': { type: 'string' },
    },
  });
  const flags: ConfigFlags = {
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
    logFormat: values['log-format'],
  };
  const cfg = loadConfig(flags);
  const log = createLogger(cmd === 'worker' ? 'deid-worker' : 'deid', cfg.log);
  const service = await startService(cfg, {
    workersOnly: cmd === 'worker',
    logger: log,
    // A worker serves health and metrics only when asked: several workers may share one configuration file.
    workerHttpPort: cmd === 'worker' && values['http-port'] !== undefined ? cfg.http.port : undefined,
  });
  log.info({ engine: cfg.redis ? 'bullmq' : 'embedded', dataDir: cfg.dataDir }, `deid ${cmd} started`);

  // One reload at a time; a SIGHUP during one is taken up after it.
  let reloading = Promise.resolve();
  process.on('SIGHUP', () => {
    reloading = reloading.then(async () => {
      log.info({ signal: 'SIGHUP' }, 'reloading the configuration');
      try {
        const restart = await service.reload(loadConfig(flags));
        if (restart.length) log.warn({ settings: restart }, 'these changed settings take effect only after a restart');
        log.info('configuration reloaded: profiles, destinations, filters, tokens, log level and limits apply from now on');
      } catch (e) {
        const err = toDeidError(e);
        // A coded error's detail names the file, key or value; anything else is named by its class only.
        log.error({ code: err.code, detail: isDeidError(e) ? err.detail : undefined }, 'reload refused: the running configuration stays');
      }
    });
  });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'shutting down: finishing work in flight');
      void reloading.then(() => service.close()).then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}
