import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DeidError } from '../errors.js';
import { IdMap, exportMidiB, isRedisLocation, loadReidKey, MIDI_B_FILES } from '../idmap/index.js';

const common = {
  'id-map': { type: 'string' },
  'reid-key': { type: 'string' },
  'redis-prefix': { type: 'string' },
} as const;

/** Opens an existing map for reading: its key must exist already (a new key opens no map). */
async function openForReading(values: { 'id-map'?: string; 'reid-key'?: string; 'redis-prefix'?: string }): Promise<IdMap> {
  if (!values['id-map']) throw new DeidError('DEID_ERR_USAGE', '--id-map <dir> is required');
  const location = isRedisLocation(values['id-map']) ? values['id-map'] : resolve(values['id-map']);
  return IdMap.open(location, { key: loadReidKey({ file: values['reid-key'] }), redisPrefix: values['redis-prefix'] });
}

/** `deid reid`: one answer per line, `<field>\t<value>` (the value on the other side of the map). */
export async function reidCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...common, original: { type: 'string' }, json: { type: 'boolean', default: false } } });
  const byOriginal = values.original !== undefined;
  if (byOriginal ? positionals.length !== 0 : positionals.length !== 1) throw new DeidError('DEID_ERR_USAGE', 'give either one <new id> or --original <value>');
  const map = await openForReading(values);
  try {
    const matches = byOriginal ? await map.lookupOriginal(values.original!) : await map.lookupNew(positionals[0]);
    // The id is not repeated: it may be an original, and stderr ends up in logs.
    if (matches.length === 0) throw new DeidError('DEID_ERR_NOT_FOUND', 'the map has no entry for that id');
    if (values.json) console.log(JSON.stringify(matches, null, 2));
    else {
      for (const m of matches) {
        console.log(`${m.field}\t${m.value}`);
        if (m.dateOffsetDays !== undefined) console.log(`dateOffsetDays\t${m.dateOffsetDays}`);
      }
    }
    return 0;
  } finally {
    await map.close();
  }
}

/** `deid map export --format midi-b`. */
export async function mapCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'export') throw new DeidError('DEID_ERR_USAGE', 'deid map takes: export');
  const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { ...common, format: { type: 'string' }, out: { type: 'string' } } });
  if (positionals.length) throw new DeidError('DEID_ERR_USAGE', 'deid map export takes no positional arguments');
  if (values.format !== 'midi-b') throw new DeidError('DEID_ERR_USAGE', '--format midi-b is the one export format');
  if (!values.out) throw new DeidError('DEID_ERR_USAGE', '--out <dir> is required');
  const map = await openForReading(values);
  try {
    const out = resolve(values.out);
    const r = await exportMidiB(map, out);
    console.log(`${MIDI_B_FILES.uids}: ${r.uidPairs} UID pair(s); ${MIDI_B_FILES.patientIds}: ${r.patientIdPairs} PatientID pair(s)`);
    if (r.conflicts) console.log(`warning: ${r.conflicts} original(s) were recorded with more than one new value (another secret?); the first is kept`);
    console.log(`output: ${out}`);
    return 0;
  } finally {
    await map.close();
  }
}
