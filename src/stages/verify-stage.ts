/**
 * The verify stage: the quality check (verify.ts) on the bytes that leave, fail closed. The object
 * is written here if no stage has written it yet; the check parses the written bytes again.
 */
import type { ScratchBuffer } from '../dicom/scratch-buffer.js';
import { DeidError } from '../errors.js';
import type { CompiledProfile } from '../profiles/compile.js';
import type { Stage } from './stage.js';
import { assertVerified, verifyOutput } from './verify.js';

export interface VerifyContext {
  readonly profile: CompiledProfile;
  /** Encode the output into this reused area (a caller that is done with each output before the next). */
  readonly scratch?: ScratchBuffer;
}

export const verifyStage: Stage<VerifyContext> = (object, ctx) => {
  const { identifiers, remappedUids } = object.facts;
  // Without the header stage's facts there is nothing to check against: never pass such an object on.
  if (!identifiers || !remappedUids) throw new DeidError('DEID_ERR_INTERNAL', 'verify without the header facts');
  const report = verifyOutput(object.current.encode({ scratch: ctx.scratch }), { identifiers, remappedUids, profile: ctx.profile });
  assertVerified(report);
  return { facts: { verify: report } };
};
