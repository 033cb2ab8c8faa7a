import { DeidError } from '../errors.js';
import { DEID_METHOD_CODES } from './deid-method-codes.generated.js';

/** Every PS3.15 option, by the kebab-case name users select it with, and its CID 7050 code meaning. */
export const OPTIONS = {
  'retain-safe-private': 'Retain Safe Private Option',
  'retain-uids': 'Retain UIDs Option',
  'retain-device-identity': 'Retain Device Identity Option',
  'retain-institution-identity': 'Retain Institution Identity Option',
  'retain-patient-characteristics': 'Retain Patient Characteristics Option',
  'retain-long-full-dates': 'Retain Longitudinal Temporal Information Full Dates Option',
  'retain-long-modified-dates': 'Retain Longitudinal Temporal Information Modified Dates Option',
  'clean-descriptors': 'Clean Descriptors Option',
  'clean-structured-content': 'Clean Structured Content Option',
  'clean-graphics': 'Clean Graphics Option',
  'clean-pixel-data': 'Clean Pixel Data Option',
} as const;

export type OptionName = keyof typeof OPTIONS;
export const OPTION_NAMES = Object.keys(OPTIONS) as OptionName[];

/** Options whose machinery lives in a later stage that this build does not have yet. */
const UNAVAILABLE = new Set<OptionName>([]);

export function checkOptions(names: readonly string[]): OptionName[] {
  for (const n of names) {
    if (!(n in OPTIONS)) throw new DeidError('DEID_ERR_OPTION_UNKNOWN', n.replace(/[^a-z0-9-]/gi, '').slice(0, 40));
    if (UNAVAILABLE.has(n as OptionName)) throw new DeidError('DEID_ERR_OPTION_UNAVAILABLE', `${n}: pixel masking is not in this build`);
  }
  if (names.includes('retain-long-full-dates') && names.includes('retain-long-modified-dates')) {
    throw new DeidError('DEID_ERR_OPTION_CONFLICT', 'retain-long-full-dates and retain-long-modified-dates');
  }
  return [...new Set(names)] as OptionName[];
}

export interface MethodCode {
  readonly value: string;
  readonly scheme: string;
  readonly meaning: string;
}

function codeByMeaning(meaning: string): MethodCode {
  const row = DEID_METHOD_CODES.find(([, , m]) => m.toLowerCase() === meaning.toLowerCase());
  if (!row) throw new Error(`CID 7050 has no code for "${meaning}"`);
  return { value: row[0], scheme: row[1], meaning: row[2] };
}

export const BASIC_PROFILE_CODE = codeByMeaning('Basic Application Confidentiality Profile');
export const optionCode = (o: OptionName): MethodCode => codeByMeaning(OPTIONS[o]);
