/**
 * DIMSE statuses (PS3.7 Annex C, PS3.4 B.2.3): what a C-STORE-RSP we send says for a coded outcome
 * (looked up in the error catalogue), and how a status we receive is classed.
 */
import { STATUS, errorSpec, toDeidError, type ErrorCode } from '../errors.js';

export { STATUS };

/** A C-STORE answer: the status, and the code that goes into the Error Comment (never a value of the object). */
export interface StoreAnswer {
  readonly status: number;
  readonly code?: ErrorCode;
}

/** Success, or the catalogue's status for a refusal. */
export function answerFor(code?: ErrorCode): StoreAnswer {
  return code === undefined ? { status: STATUS.Success } : { status: errorSpec(code).dimse, code };
}

/** The answer for something thrown where an outcome was expected: resource errors are Out of Resources (errors.ts). */
export function answerForThrown(e: unknown): StoreAnswer {
  return answerFor(toDeidError(e).code);
}

/** Success and the warning statuses (0xB0xx, 0x0001, 0x0107, 0x0116): the object was stored. */
export function isSuccessOrWarning(status: number): boolean {
  return status === 0x0000 || status === 0x0001 || status === 0x0107 || status === 0x0116 || (status >= 0xb000 && status <= 0xbfff);
}

/** Refusals a later attempt may get past: out of resources (0xA7xx), resource limitation (0x0213), cancel (0xFE00). */
export function isRetryableStatus(status: number): boolean {
  return (status >= 0xa700 && status <= 0xa7ff) || status === 0x0213 || status === 0xfe00;
}

export const formatStatus = (n: number): string => `0x${n.toString(16).padStart(4, '0').toUpperCase()}`;
