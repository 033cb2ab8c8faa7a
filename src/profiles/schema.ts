import { GENERALIZE_SCHEMA } from './generalize.js';
import { PIXELS_SCHEMA, SIGNATURE_SCHEMA } from './pixel-settings.js';

/** JSON Schema of a profile file (YAML or JSON). Validated when a profile loads. */
export const PROFILE_SCHEMA = {
  $id: 'https://deid.local/profile.schema.json',
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' },
    description: { type: 'string' },
    edition: { type: 'string' },
    extends: { type: 'string', minLength: 1 },
    options: { type: 'array', items: { type: 'string' }, uniqueItems: true },
    removeUnlisted: { type: 'boolean', description: 'Allow-list mode: remove every element no rule names.' },
    passBurnedInAnnotation: {
      type: 'boolean',
      description: 'Without clean-pixel-data, images that declare BurnedInAnnotation YES are quarantined unless this is true.',
    },
    dateShift: {
      type: 'object',
      additionalProperties: false,
      properties: { minDays: { type: 'integer' }, maxDays: { type: 'integer' } },
    },
    generalize: { ...GENERALIZE_SCHEMA, description: 'Generalisation of kept quasi-identifiers: Safe Harbor ages, age bins, rounded weight and size.' },
    rules: { type: 'array', items: { $ref: '#/$defs/rule' } },
    pixels: { $ref: '#/$defs/pixels', description: 'Settings of the pixel stage (the clean-pixel-data option).' },
  },
  $defs: {
    pixels: PIXELS_SCHEMA,
    pixelSignature: SIGNATURE_SCHEMA,
    code: { type: 'string', pattern: '^(D|Z|X|K|C|U)(/(D|Z|X|K|C|U)\\*?)*$' },
    rule: {
      type: 'object',
      additionalProperties: false,
      required: ['select', 'action'],
      properties: {
        select: { type: 'string', minLength: 1 },
        name: { type: 'string' },
        action: { $ref: '#/$defs/action' },
        options: { type: 'object', additionalProperties: { $ref: '#/$defs/code' } },
      },
    },
    action: {
      oneOf: [
        { $ref: '#/$defs/code' },
        { enum: ['keep', 'remove', 'hash', 'dateshift', 'clean', 'remap', 'empty', 'dummy'] },
        {
          type: 'object',
          additionalProperties: false,
          required: ['hash'],
          properties: {
            hash: {
              type: 'object',
              additionalProperties: false,
              properties: { length: { type: 'integer', minimum: 4, maximum: 64 }, prefix: { type: 'string', maxLength: 16 } },
            },
          },
        },
        { type: 'object', additionalProperties: false, required: ['set'], properties: { set: { type: 'string' } } },
        {
          type: 'object',
          additionalProperties: false,
          required: ['lookup'],
          properties: {
            lookup: {
              type: 'object',
              additionalProperties: false,
              required: ['file'],
              properties: {
                file: { type: 'string' },
                keyType: {
                  type: 'string',
                  minLength: 1,
                  description: 'Read the file as a CTP LookupTable.properties (keyType/original = new) and use the entries of this key type.',
                },
              },
            },
          },
        },
        { type: 'object', additionalProperties: false, required: ['dateShift'], properties: { dateShift: { type: 'object' } } },
      ],
    },
  },
} as const;
