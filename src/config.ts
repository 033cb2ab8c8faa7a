import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';
import jsYaml from 'js-yaml';
import { DeidError } from './errors.js';
import type { Condition } from './stages/filter.js';

/** One stage of the pipeline, as configured. */
export type StageConfig =
  | { stage: 'filter'; concurrency?: number; accept?: Condition[]; reject?: Condition[] }
  | { stage: 'header'; concurrency?: number; profile?: string; options?: string[] }
  | { stage: 'pixels'; concurrency?: number }
  | { stage: 'verify'; concurrency?: number }
  | { stage: 'export'; concurrency?: number; destinations?: string[]; maxAttempts?: number; backoffMs?: number; maxBackoffMs?: number };


export interface ServiceConfig {
  dataDir: string;
  secretFile?: string;
  redis?: string;
  /** checkCalledAE: refuse associations whose called AE title is not aeTitle. */
  dimse: { enabled: boolean; port: number; host: string; aeTitle: string; allowedCallingAEs: string[]; maxPduLength: number; checkCalledAE: boolean };
  http: { enabled: boolean; port: number; host: string; maxBodyBytes: number };
  folder?: { path: string; settleMs: number };
  pipeline: StageConfig[];
  /** keepDays: how long a completed study stays tracked and in the catalog (0: for ever). */
  studies: { quietSeconds: number; webhook?: string; keepDays: number };
  /**
   * adminToken guards the admin API, stowToken our STOW-RS ingest ('none': open; unset: generated),
   * metricsToken /metrics (unset: open); exportToken is sent to STOW-RS destinations.
   */
  auth: { adminToken?: string; stowToken?: string; metricsToken?: string; exportToken?: string };
  /** Objects larger than this are refused while being received, and not kept. */
  maxObjectBytes: number;
  /**
   * Free space the data directory's volume keeps: below it, ingest refuses (A700 / 503) and /readyz
   * says not ready. A percentage of the volume ("2%") or a size ("512MiB", or bytes).
   */
  minFreeSpace: string | number;
  log: { level: string; format: LogFormat };
  /** Run pipeline workers in this process (serve does unless told otherwise; a pure ingest node sets false). */
  workers: boolean;
  /** Refuse to start with a profile that keeps attributes PS3.15 Table E.1-1 removes or replaces. */
  strict: boolean;
  /**
   * Clean burned-in text from pixels (the clean-pixel-data option) whatever options the header stage
   * lists: on by default, so that a new installation never exports burned-in PHI. false turns it off
   * (text-prone images are then refused, see stages/burned-in.ts).
   */
  cleanPixelData: boolean;
  /** The re-identification map (opt-in): `path` a folder or Redis URL (default: Redis in Redis mode, else <dataDir>/idmap). */
  idMap?: { enabled: boolean; path?: string; keyFile?: string; redisPrefix?: string };
  /**
   * Per-object records for the per-study manifests and the study and day reports; groups below
   * `kThreshold` subjects are listed. keepDays: days of records kept (0: for ever, the default).
   */
  reports: { enabled: boolean; kThreshold: number; keepDays: number };
  /** Hold objects before export for a reviewer (the console): those whose pixels were masked, or all. */
  review: 'off' | 'pixels' | 'all';
}

export type LogFormat = 'json' | 'pretty';

const STAGE_NAMES = ['filter', 'header', 'pixels', 'verify', 'export'] as const;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const LOG_FORMATS = ['json', 'pretty'] as const;
const TOKEN = { type: 'string', minLength: 8 } as const;

const PORT = { type: 'integer', minimum: 0, maximum: 65535 } as const;
/** A size: a percentage of the volume, or bytes with an optional unit. */
const SIZE_PATTERN = '^\\s*(\\d+(\\.\\d+)?\\s*%|\\d+\\s*([KMGT]i?B|B)?)\\s*$';
const CONDITIONS = { type: 'array', items: { type: 'object', additionalProperties: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] } } } as const;

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    dataDir: { type: 'string' },
    secretFile: { type: 'string' },
    redis: { type: 'string' },
    dimse: {
      type: 'object',
      additionalProperties: false,
      properties: {
        enabled: { type: 'boolean' },
        port: PORT,
        host: { type: 'string' },
        aeTitle: { type: 'string', pattern: '^[ -~]{1,16}$' },
        allowedCallingAEs: { type: 'array', items: { type: 'string' } },
        maxPduLength: { type: 'integer', minimum: 4096 },
        checkCalledAE: { type: 'boolean' },
      },
    },
    http: {
      type: 'object',
      additionalProperties: false,
      properties: {
        enabled: { type: 'boolean' },
        port: PORT,
        host: { type: 'string' },
        maxBodyBytes: { type: 'integer', minimum: 1024 },
      },
    },
    folder: {
      type: 'object',
      additionalProperties: false,
      required: ['path'],
      properties: { path: { type: 'string' }, settleMs: { type: 'integer', minimum: 0 } },
    },
    pipeline: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['stage'],
        additionalProperties: false,
        properties: {
          stage: { enum: [...STAGE_NAMES] },
          concurrency: { type: 'integer', minimum: 1, maximum: 256 },
          accept: CONDITIONS,
          reject: CONDITIONS,
          profile: { type: 'string' },
          options: { type: 'array', items: { type: 'string' } },
          destinations: { type: 'array', items: { type: 'string' }, minItems: 1 },
          maxAttempts: { type: 'integer', minimum: 1, maximum: 100 },
          backoffMs: { type: 'integer', minimum: 0 },
          maxBackoffMs: { type: 'integer', minimum: 0 },
        },
      },
    },
    studies: {
      type: 'object',
      additionalProperties: false,
      properties: { quietSeconds: { type: 'number', minimum: 0 }, webhook: { type: 'string' }, keepDays: { type: 'number', minimum: 0 } },
    },
    auth: {
      type: 'object',
      additionalProperties: false,
      properties: { adminToken: TOKEN, stowToken: { anyOf: [{ const: 'none' }, TOKEN] }, metricsToken: TOKEN, exportToken: { type: 'string', minLength: 1 } },
    },
    maxObjectBytes: { type: 'integer', minimum: 1024 },
    minFreeSpace: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern: SIZE_PATTERN }] },
    log: {
      type: 'object',
      additionalProperties: false,
      properties: { level: { enum: [...LOG_LEVELS] }, format: { enum: [...LOG_FORMATS] } },
    },
    workers: { type: 'boolean' },
    strict: { type: 'boolean' },
    cleanPixelData: { type: 'boolean' },
    idMap: {
      type: 'object',
      additionalProperties: false,
      required: ['enabled'],
      properties: { enabled: { type: 'boolean' }, path: { type: 'string' }, keyFile: { type: 'string' }, redisPrefix: { type: 'string', minLength: 1 } },
    },
    reports: {
      type: 'object',
      additionalProperties: false,
      properties: { enabled: { type: 'boolean' }, kThreshold: { type: 'integer', minimum: 1 }, keepDays: { type: 'integer', minimum: 0 } },
    },
    review: { enum: ['off', 'pixels', 'all'] },
  },
} as const;

const validate = new Ajv({ allErrors: true, strict: false }).compile(SCHEMA);

/**
 * The defaults are the secure ones: HTTP on the loopback interface only, the called AE title checked,
 * STOW-RS behind a token (generated when none is configured).
 */
export function defaultConfig(): ServiceConfig {
  return {
    dataDir: './data',
    dimse: { enabled: true, port: 11112, host: '0.0.0.0', aeTitle: 'DEID', allowedCallingAEs: [], maxPduLength: 262144, checkCalledAE: true },
    http: { enabled: true, port: 8080, host: '127.0.0.1', maxBodyBytes: 512 * 1024 * 1024 },
    pipeline: [{ stage: 'filter' }, { stage: 'header', profile: 'basic' }, { stage: 'verify' }, { stage: 'export' }],
    studies: { quietSeconds: 60, keepDays: 30 },
    auth: {},
    maxObjectBytes: 1024 * 1024 * 1024,
    minFreeSpace: '2%',
    log: { level: 'info', format: 'json' },
    workers: true,
    strict: false,
    cleanPixelData: true,
    reports: { enabled: true, kThreshold: 5, keepDays: 0 },
    review: 'off',
  };
}

const UNITS: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KIB: 2 ** 10, MIB: 2 ** 20, GIB: 2 ** 30, TIB: 2 ** 40 };

/** The free space `minFreeSpace` asks for on a volume of `totalBytes`. */
export function minFreeBytes(spec: string | number, totalBytes: number): number {
  if (typeof spec === 'number') return spec;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(%|[KMGT]i?B|B)?\s*$/i.exec(spec);
  if (!m) throw new DeidError('DEID_ERR_CONFIG', `minFreeSpace: ${JSON.stringify(spec)} is neither a percentage nor a size`);
  const n = Number(m[1]);
  return m[2] === '%' ? Math.ceil((totalBytes * n) / 100) : Math.ceil(n * UNITS[(m[2] ?? 'B').toUpperCase()]!);
}

/** A JSON pointer from the schema check as a setting's name: `/pipeline/2/stage` → `pipeline[2].stage`. */
const settingName = (pointer: string): string =>
  pointer.split('/').filter(Boolean).map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`)).join('') || '(top level)';

/** One schema error as a sentence that names the setting. */
function describeError(er: ErrorObject): string {
  const at = settingName(er.instancePath);
  if (er.keyword === 'additionalProperties') {
    const key = String(er.params.additionalProperty);
    return `${er.instancePath ? `${at}.` : ''}${key}: unknown setting`;
  }
  if (er.keyword === 'enum') return `${at}: must be one of ${(er.params.allowedValues as unknown[]).join(', ')}`;
  return `${at}: ${er.message}`;
}

/** A URL without its credentials, to name it in a message or a log. */
export const withoutCredentials = (spec: string): string => spec.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1***@');

/**
 * A destination as configured: dicom:// (C-STORE), http(s):// (STOW-RS), or a folder given as an
 * absolute path or a file:// URL. Anything else stops start-up: a mistyped scheme must never become
 * a folder in the working directory.
 */
function checkDestination(spec: string, where: string): string {
  if (/^dicom:\/\//i.test(spec) || /^https?:\/\//i.test(spec)) return spec;
  const bad = (why: string) => new DeidError('DEID_ERR_CONFIG', `${where}: destination ${JSON.stringify(withoutCredentials(spec))} ${why}`);
  if (/^file:/i.test(spec)) {
    try {
      return fileURLToPath(spec);
    } catch {
      throw bad('is not a valid file:// URL');
    }
  }
  if (isAbsolute(spec)) return spec;
  throw bad('is neither dicom://, http(s)://, file:// nor an absolute folder path');
}

/** Command-line flags of `deid serve` / `deid worker` (the contract names). */
export interface ConfigFlags {
  config?: string;
  dimsePort?: string;
  aeTitle?: string;
  httpPort?: string;
  dataDir?: string;
  profile?: string;
  option?: string[];
  secretFile?: string;
  export?: string[];
  redis?: string;
  strict?: boolean;
  logFormat?: string;
}

function deepMerge<T>(base: T, over: Partial<T>): T {
  const out: any = Array.isArray(base) ? [...(base as any)] : { ...(base as any) };
  for (const [k, v] of Object.entries(over ?? {})) {
    if (v === undefined) continue;
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && typeof out[k] === 'object' && !Array.isArray(out[k]) ? deepMerge(out[k], v as any) : v;
  }
  return out;
}

const intOf = (s: string, what: string): number => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new DeidError('DEID_ERR_CONFIG', `${what} must be a port number`);
  return n;
};

function stage<K extends StageConfig['stage']>(cfg: ServiceConfig, name: K): Extract<StageConfig, { stage: K }> | undefined {
  return cfg.pipeline.find((s) => s.stage === name) as Extract<StageConfig, { stage: K }> | undefined;
}

/**
 * The configuration: defaults, then the YAML file, then environment variables, then flags. Relative
 * paths in a file are relative to the file. Invalid configuration stops start-up with DEID_ERR_CONFIG.
 */
export function loadConfig(flags: ConfigFlags = {}, env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  let cfg = defaultConfig();
  let base = process.cwd();
  if (flags.config) {
    let doc: unknown;
    try {
      doc = jsYaml.load(readFileSync(flags.config, 'utf8'));
    } catch (e) {
      throw new DeidError('DEID_ERR_CONFIG', `${flags.config}: ${(e as Error).message.split('\n')[0]}`);
    }
    if (!validate(doc ?? {})) {
      // anyOf repeats its branches' errors: keep one sentence per setting.
      const first = [...new Set(validate.errors!.filter((er) => er.keyword !== 'anyOf').map(describeError))].slice(0, 3).join('; ');
      throw new DeidError('DEID_ERR_CONFIG', `${flags.config}: ${first}`);
    }
    cfg = deepMerge(cfg, doc as Partial<ServiceConfig>);
    base = dirname(resolve(flags.config));
  }
  // Environment overrides the file.
  const e = env;
  if (e.DEID_DATA_DIR) cfg.dataDir = e.DEID_DATA_DIR;
  if (e.DEID_DIMSE_PORT) cfg.dimse.port = intOf(e.DEID_DIMSE_PORT, 'DEID_DIMSE_PORT');
  if (e.DEID_AE_TITLE) cfg.dimse.aeTitle = e.DEID_AE_TITLE;
  if (e.DEID_HTTP_PORT) cfg.http.port = intOf(e.DEID_HTTP_PORT, 'DEID_HTTP_PORT');
  if (e.DEID_SECRET_FILE) cfg.secretFile = e.DEID_SECRET_FILE;
  if (e.REDIS_URL) cfg.redis = e.REDIS_URL;
  if (e.DEID_ADMIN_TOKEN) cfg.auth.adminToken = e.DEID_ADMIN_TOKEN;
  if (e.DEID_STOW_TOKEN) cfg.auth.stowToken = e.DEID_STOW_TOKEN;
  if (e.DEID_EXPORT_TOKEN) cfg.auth.exportToken = e.DEID_EXPORT_TOKEN;
  if (e.DEID_METRICS_TOKEN) cfg.auth.metricsToken = e.DEID_METRICS_TOKEN;
  if (e.DEID_LOG_LEVEL) cfg.log.level = e.DEID_LOG_LEVEL;
  if (e.DEID_LOG_FORMAT) cfg.log.format = e.DEID_LOG_FORMAT as LogFormat;
  if (e.DEID_REVIEW) cfg.review = e.DEID_REVIEW as ServiceConfig['review'];
  const profile = flags.profile ?? e.DEID_PROFILE;
  const options = flags.option?.length ? flags.option : e.DEID_OPTIONS?.split(',').map((s) => s.trim()).filter(Boolean);
  const exportTo = flags.export?.length ? flags.export : e.DEID_EXPORT?.split(',').map((s) => s.trim()).filter(Boolean);
  // Flags override everything.
  if (flags.dataDir) cfg.dataDir = flags.dataDir;
  if (flags.dimsePort) cfg.dimse.port = intOf(flags.dimsePort, '--dimse-port');
  if (flags.aeTitle) cfg.dimse.aeTitle = flags.aeTitle;
  if (flags.httpPort) cfg.http.port = intOf(flags.httpPort, '--http-port');
  if (flags.secretFile) cfg.secretFile = flags.secretFile;
  if (flags.redis) cfg.redis = flags.redis;
  if (flags.strict) cfg.strict = true;
  if (flags.logFormat) cfg.log.format = flags.logFormat as LogFormat;
  if (!(LOG_LEVELS as readonly string[]).includes(cfg.log.level)) throw new DeidError('DEID_ERR_CONFIG', `log level ${JSON.stringify(cfg.log.level)}: must be one of ${LOG_LEVELS.join(', ')}`);
  if (!(LOG_FORMATS as readonly string[]).includes(cfg.log.format)) throw new DeidError('DEID_ERR_CONFIG', `log format ${JSON.stringify(cfg.log.format)}: must be json or pretty`);
  if (!['off', 'pixels', 'all'].includes(cfg.review)) throw new DeidError('DEID_ERR_CONFIG', `review ${JSON.stringify(cfg.review)}: must be off, pixels or all`);
  minFreeBytes(cfg.minFreeSpace, 0);

  const header = stage(cfg, 'header');
  const exporter = stage(cfg, 'export');
  if (!header || !stage(cfg, 'verify') || !exporter) throw new DeidError('DEID_ERR_CONFIG', 'the pipeline needs header, verify and export stages');
  const order = cfg.pipeline.map((s) => STAGE_NAMES.indexOf(s.stage));
  if (order.some((v, i) => i > 0 && v <= order[i - 1])) throw new DeidError('DEID_ERR_CONFIG', 'stages must be in order filter, header, pixels, verify, export, each once');
  if (profile) header.profile = profile;
  if (options) header.options = options;
  const destinationsFrom = flags.export?.length ? '--export' : exportTo ? 'DEID_EXPORT' : flags.config ? `${flags.config}: pipeline export destinations` : 'the default destination';
  if (exportTo) exporter.destinations = exportTo;
  if (e.DEID_CLEAN_PIXEL_DATA) cfg.cleanPixelData = !/^(0|false|no|off)$/i.test(e.DEID_CLEAN_PIXEL_DATA);
  if (cfg.cleanPixelData && !header.options?.includes('clean-pixel-data')) header.options = [...(header.options ?? []), 'clean-pixel-data'];

  cfg.dataDir = resolve(base, cfg.dataDir);
  if (cfg.secretFile) cfg.secretFile = resolve(base, cfg.secretFile);
  if (cfg.folder) cfg.folder.path = resolve(base, cfg.folder.path);
  if (cfg.idMap?.keyFile) cfg.idMap.keyFile = resolve(base, cfg.idMap.keyFile);
  if (cfg.idMap?.path && !/^(rediss?:\/\/|unix:)/.test(cfg.idMap.path)) cfg.idMap.path = resolve(base, cfg.idMap.path);
  // The default is <dataDir>/export.
  exporter.destinations = (exporter.destinations ?? [resolve(cfg.dataDir, 'export')]).map((d) => checkDestination(d, destinationsFrom));
  if (!/^[ -~]{1,16}$/.test(cfg.dimse.aeTitle)) throw new DeidError('DEID_ERR_CONFIG', 'the AE title must be 1 to 16 printable characters');
  return cfg;
}

export const stageConfig = stage;

/** Settings a running service takes up only when it starts again (SIGHUP reloads everything else). */
const RESTART_ONLY: ReadonlyArray<[string, (c: ServiceConfig) => unknown]> = [
  ['dataDir', (c) => c.dataDir],
  ['secretFile', (c) => c.secretFile],
  ['redis', (c) => c.redis],
  ['workers', (c) => c.workers],
  ['dimse.enabled', (c) => c.dimse.enabled],
  ['dimse.port', (c) => c.dimse.port],
  ['dimse.host', (c) => c.dimse.host],
  ['dimse.maxPduLength', (c) => c.dimse.maxPduLength],
  ['http', (c) => c.http],
  ['folder', (c) => c.folder],
  ['log.format', (c) => c.log.format],
  ['pipeline stages and concurrency', (c) => c.pipeline.map((s) => [s.stage, s.concurrency])],
];

/** The settings that differ between two configurations and need a restart to take effect. */
export function restartOnlyChanges(running: ServiceConfig, next: ServiceConfig): string[] {
  return RESTART_ONLY.filter(([, get]) => JSON.stringify(get(running)) !== JSON.stringify(get(next))).map(([name]) => name);
}
