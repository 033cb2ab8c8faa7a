import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';

export interface LogSettings {
  /** pino's levels: fatal, error, warn, info, debug, trace, silent. */
  readonly level?: string;
  /** json (the default: one JSON object per line) or pretty (readable lines for a person at a terminal). */
  readonly format?: 'json' | 'pretty';
}

/** The child loggers of each root, so that a new level (a reload) reaches the components that hold one. */
const children = new WeakMap<Logger, Set<WeakRef<Logger>>>();

/** pino-pretty as a stream in this thread: loaded only when asked for, so JSON logging never pays for it. */
function prettyStream(): DestinationStream {
  const build = createRequire(import.meta.url)('pino-pretty') as (o: Record<string, unknown>) => DestinationStream;
  return build({ colorize: process.stdout.isTTY === true, sync: true, translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l', ignore: 'pid,hostname' });
}

/**
 * The service's logger: JSON lines (pino) by default, or pino-pretty's readable lines. Nothing
 * identifying is ever logged: objects are named by a prefix of the hash of their bytes, studies by
 * their keyed hash, and errors by code.
 */
export function createLogger(name: string, settings: LogSettings = {}): Logger {
  const level = settings.level ?? process.env.DEID_LOG_LEVEL ?? 'info';
  const format = settings.format ?? (process.env.DEID_LOG_FORMAT === 'pretty' ? 'pretty' : 'json');
  const kids = new Set<WeakRef<Logger>>();
  const options = {
    name,
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    onChild: (child: Logger) => void kids.add(new WeakRef(child)),
  };
  const root = format === 'pretty' ? pino(options, prettyStream()) : pino(options);
  children.set(root, kids);
  return root;
}

/** Sets the level of a logger made by createLogger and of every child it gave out. */
export function setLogLevel(root: Logger, level: string): void {
  root.level = level;
  for (const ref of children.get(root) ?? []) {
    const child = ref.deref();
    if (child) child.level = level;
    else children.get(root)!.delete(ref);
  }
}

export type { Logger };
