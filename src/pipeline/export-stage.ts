/**
 * The export stage: the verified bytes to every destination, filed under the new identity the header
 * stage found. A destination that already has the object (an earlier attempt) is skipped.
 */
import { DeidError, toDeidError } from '../errors.js';
import type { Stage } from '../stages/stage.js';
import type { Destination } from './ports.js';

export interface ExportContext {
  readonly destinations: readonly Destination[];
  /** Told after each delivery, so that a retry sends only to the destinations that lack the object. */
  readonly delivered?: (names: readonly string[]) => void;
}

export const exportStage: Stage<ExportContext> = async (object, ctx) => {
  const identity = object.facts.identity;
  if (!identity) throw new DeidError('DEID_ERR_INTERNAL', 'export without the new identity');
  const bytes = object.current.encode();
  const delivered = [...(object.facts.delivered ?? [])];
  for (const d of ctx.destinations) {
    if (delivered.includes(d.name)) continue;
    try {
      await d.send(bytes, identity);
    } catch (e) {
      // Where and why, for the retry and quarantine logs: the destination's name never holds credentials.
      const err = toDeidError(e);
      throw new DeidError(err.code, `${d.name}: ${err.detail ?? 'failed'}`);
    }
    delivered.push(d.name);
    ctx.delivered?.(delivered);
  }
  return { facts: { delivered } };
};
