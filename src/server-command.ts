import { DeidError } from './errors.js';

/** Placeholder until the service lands: says so clearly instead of failing obscurely. */
export async function serveCommand(cmd: string, _argv: string[]): Promise<number> {
  throw new DeidError('DEID_ERR_USAGE', `"${cmd}" is not available in this build yet`);
}
