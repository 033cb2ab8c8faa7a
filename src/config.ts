import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Ajv } from 'ajv';
import jsYaml from 'js-yaml';
import { DeidError } from './errors.js';
import type { Condition } from './stages/filter.js';

/** One stage of the pipeline, as configured. */
export type StageConfig =
  | { stage: 'filter'; concurrency?: number; accept?: Condition[]; reject?: Condition[] }
  | { stage: 'header'; concurrency?: number; profile?: string; options?: string[] }
  | { stage: 'pixels'; concurrency?: number }
  | { stage: 'verify'; concurrency?: number }
  | { stage: 'export'; concurrency?: number; destinations?: string[]; maxAttempts?: number; backoffMs?: number };


export interface ServiceConfig {
  dataDir: string;
  secretFile?: string;
  redis?: string;
  dimse: { enabled: boolean; port: number; host: string; aeTitle: string; allowedCallingAEs: string[]; maxPduLength: number };
  http: { enabled: boolean; port: number; host: string; maxBodyBytes: number };
  folder?: { path: string; settleMs: number };
  pipeline: StageConfig[];
  studies: { quietSeconds: number; webhook?: string };
  /** adminToken guards the admin API, stowToken our STOW-RS ingest; exportToken is sent to STOW-RS destinations. */
  auth: { adminToken?: string; stowToken?: string; exportToken?: string };
  /** Objects larger than this are refused at ingest. */
  maxObjectBytes: number;
  /** Run pipeline workers in this process (serve does unless told otherwise; a pure ingest node sets false). */
  workers: boolean;
  /** The re-identification map (opt-in): `path` a folder or Redis URL (default: Redis in Redis mode, else <dataDir>/idmap). */
  idMap?: { enabled: boolean; path?: string; keyFile?: string; redisPrefix?: string };
  /** Per-object records for the per-study manifests and the study and day reports; groups below `kThreshold` subjects are listed. */
  reports: { enabled: boolean; kThreshold: number };
}

const STAGE_NAMES = ['filter', 'header', 'pixels', 'verify', 'export'] as const;

const PORT = { type: 'integer', minimum: 0, maximum: 65535 } as const;
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
        },
      },
    },
    studies: {
      type: 'object',
      additionalProperties: false,
      properties: { quietSeconds: { type: 'number', minimum: 0 }, webhook: { type: 'string' } },
    },
    auth: {
      type: 'object',
      additionalProperties: false,
      properties: { adminToken: { type: 'string', minLength: 8 }, stowToken: { type: 'string', minLength: 8 }, exportToken: { type: 'string', minLength: 1 } },
    },
    maxObjectBytes: { type: 'integer', minimum: 1024 },
    workers: { type: 'boolean' },
    idMap: {
      type: 'object',
      additionalProperties: false,
      required: ['enabled'],
      properties: { enabled: { type: 'boolean' }, path: { type: 'string' }, keyFile: { type: 'string' }, redisPrefix: { type: 'string', minLength: 1 } },
    },
    reports: {
      type: 'object',
      additionalProperties: false,
      properties: { enabled: { type: 'boolean' }, kThreshold: { type: 'integer', minimum: 1 } },
    },
  },
} as const;

const validate = new Ajv({ allErrors: true, strict: false }).compile(SCHEMA);

export function defaultConfig(): ServiceConfig {
  return {
    dataDir: './data',
    dimse: { enabled: true, port: 11112, host: '0.0.0.0', aeTitle: 'DEID', allowedCallingAEs: [], maxPduLength: 262144 },
    http: { enabled: true, port: 8080, host: '0.0.0.0', maxBodyBytes: 512 * 1024 * 1024 },
    pipeline: [{ stage: 'filter' }, { stage: 'header', profile: 'basic' }, { stage: 'verify' }, { stage: 'export' }],
    studies: { quietSeconds: 60 },
    auth: {},
    maxObjectBytes: 1024 * 1024 * 1024,
    workers: true,
    reports: { enabled: true, kThreshold: 5 },
  };
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
      const first = validate.errors!.slice(0, 3).map((er) => `${er.instancePath || '/'} ${er.message}`).join('; ');
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

  const header = stage(cfg, 'header');
  const exporter = stage(cfg, 'export');
  if (!header || !stage(cfg, 'verify') || !exporter) throw new DeidError('DEID_ERR_CONFIG', 'the pipeline needs header, verify and export stages');
  const order = cfg.pipeline.map((s) => STAGE_NAMES.indexOf(s.stage));
  if (order.some((v, i) => i > 0 && v <= order[i - 1])) throw new DeidError('DEID_ERR_CONFIG', 'stages must be in order filter, header, pixels, verify, export, each once');
  if (profile) header.profile = profile;
  if (options) header.options = options;
  if (exportTo) exporter.destinations = exportTo;

  cfg.dataDir = resolve(base, cfg.dataDir);
  if (cfg.secretFile) cfg.secretFile = resolve(base, cfg.secretFile);
  if (cfg.folder) cfg.folder.path = resolve(base, cfg.folder.path);
  if (cfg.idMap?.keyFile) cfg.idMap.keyFile = resolve(base, cfg.idMap.keyFile);
  if (cfg.idMap?.path && !/^(rediss?:\/\/|unix:)/.test(cfg.idMap.path)) cfg.idMap.path = resolve(base, cfg.idMap.path);
  // A relative folder destination is relative to the config file; the default is <dataDir>/export.
  exporter.destinations = (exporter.destinations ?? [resolve(cfg.dataDir, 'export')]).map((d) => (/^(dicom|https?):\/\//i.test(d) ? d : resolve(base, d)));
  if (!/^[ -~]{1,16}$/.test(cfg.dimse.aeTitle)) throw new DeidError('DEID_ERR_CONFIG', 'the AE title must be 1 to 16 printable characters');
  return cfg;
}

export const stageConfig = stage;
