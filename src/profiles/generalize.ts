import { DeidError } from '../errors.js';

/**
 * Generalisation of the quasi-identifiers a profile keeps (PatientAge, PatientWeight, PatientSize),
 * as data in the profile:
 *
 * ```yaml
 * generalize: { ageOver89: true, ageBins: 5, weightRoundKg: 5, sizeRoundCm: 5 }
 * ```
 *
 * - ageOver89: HIPAA Safe Harbor top-coding: every age of 90 years or more, in any unit, becomes 090Y;
 * - ageBins: ages become the lower end of their bin of this many years (37Y with 5 → 035Y);
 * - weightRoundKg, sizeRoundCm: weight (kg) and size (m) rounded to the nearest multiple of the step.
 *
 * Settings merge down an `extends` chain key by key: the first profile that sets a key wins, so a
 * profile can turn off what its base turns on (`ageOver89: false`).
 */
export interface GeneralizeSettings {
  readonly ageOver89: boolean;
  readonly ageBins?: number;
  readonly weightRoundKg?: number;
  readonly sizeRoundCm?: number;
}

export interface RawGeneralize {
  ageOver89?: boolean;
  ageBins?: number;
  weightRoundKg?: number;
  sizeRoundCm?: number;
}

const KEYS = ['ageOver89', 'ageBins', 'weightRoundKg', 'sizeRoundCm'] as const;

/** The merged settings of a chain (most derived first), or undefined when nothing is generalised. */
export function compileGeneralize(chain: ReadonlyArray<{ readonly raw: { name: string; generalize?: RawGeneralize } }>): GeneralizeSettings | undefined {
  const first = <K extends (typeof KEYS)[number]>(k: K): RawGeneralize[K] => chain.map((c) => c.raw.generalize?.[k]).find((v) => v !== undefined);
  const [ageOver89, ageBins, weightRoundKg, sizeRoundCm] = [first('ageOver89') ?? false, first('ageBins'), first('weightRoundKg'), first('sizeRoundCm')];
  const where = chain[0].raw.name;
  if (ageBins !== undefined && !(Number.isInteger(ageBins) && ageBins >= 1 && ageBins <= 90)) throw new DeidError('DEID_ERR_PROFILE_INVALID', `${where}: generalize.ageBins must be a whole number of years, 1-90`);
  for (const [k, v] of [['weightRoundKg', weightRoundKg], ['sizeRoundCm', sizeRoundCm]] as const) {
    if (v !== undefined && !(v > 0 && v <= 100)) throw new DeidError('DEID_ERR_PROFILE_INVALID', `${where}: generalize.${k} must be above 0 and at most 100`);
  }
  if (!ageOver89 && ageBins === undefined && weightRoundKg === undefined && sizeRoundCm === undefined) return undefined;
  return { ageOver89, ...(ageBins !== undefined ? { ageBins } : {}), ...(weightRoundKg !== undefined ? { weightRoundKg } : {}), ...(sizeRoundCm !== undefined ? { sizeRoundCm } : {}) };
}

/** The JSON Schema fragment of `generalize` in a profile (referenced from schema.ts). */
export const GENERALIZE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ageOver89: { type: 'boolean', description: 'Safe Harbor: every age of 90 years or more (in any unit) becomes 090Y.' },
    ageBins: { type: 'integer', minimum: 1, maximum: 90, description: 'Ages become the lower end of their bin of this many years.' },
    weightRoundKg: { type: 'number', exclusiveMinimum: 0, maximum: 100, description: 'PatientWeight rounded to the nearest multiple of this many kg.' },
    sizeRoundCm: { type: 'number', exclusiveMinimum: 0, maximum: 100, description: 'PatientSize rounded to the nearest multiple of this many cm.' },
  },
} as const;
