import type { Logger } from 'pino';
import { DeidError } from '../errors.js';
import type { Destination } from '../pipeline/ports.js';
import { DimseDestination } from './dimse-scu.js';
import { FolderDestination } from './folder.js';
import { StowDestination } from './stow-client.js';

/**
 * A destination from its configured form: dicom://CALLED:CALLING@host:port, http(s)://… (STOW-RS), or a
 * folder. A STOW-RS destination sends `stowToken`, when given, as its bearer token.
 */
export function createDestination(spec: string, opts: { stowToken?: string; logger?: Logger } = {}): Destination {
  if (/^dicom:\/\//i.test(spec)) return new DimseDestination(spec, { logger: opts.logger });
  if (/^https?:\/\//i.test(spec)) return new StowDestination(spec, { token: opts.stowToken });
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) throw new DeidError('DEID_ERR_CONFIG', `unsupported destination scheme in ${spec.split('://')[0]}://`);
  return new FolderDestination(spec);
}
