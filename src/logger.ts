import { pino, type Logger } from 'pino';

/**
 * Structured JSON logs. Nothing identifying is ever logged: objects are named by a prefix of the
 * hash of their bytes, studies by their keyed hash, and errors by code.
 */
export function createLogger(name: string, level = process.env.DEID_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}

export type { Logger };
