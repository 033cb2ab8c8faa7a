import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DeidError, ERRORS, isDeidError } from './errors.js';
import type { RunSettings } from './cli/process-file.js';
import { collectFiles, runFiles, type RunSummary } from './cli/run.js';
import { BASIC_PROFILE_CODE, OPTIONS, OPTION_NAMES, optionCode } from './profiles/options.js';
import { describeKept } from './profiles/kept-identifiers.js';
import { compileProfile, listBuiltinProfiles, loadProfile, readProfileChain, withKeptIdentifiers, type CompiledProfile } from './profiles/profile.js';
import { loadSecret } from './secret.js';

/** Each command's usage, shown by `deid <command> --help` and, all together, by `deid --help`. */
const COMMANDS: Record<string, string> = {
  run: `  deid run <file-or-folder>... --out <dir> --quarantine <dir> [--profile basic|<name>|<path>]
           [--option <name>]... [--secret-file <path>] [--jobs N] [--json] [--strict]
           [--max-bytes N]      (object size limit, inflated data sets and declared lengths included; default 1 GiB)
           [--previews <dir>]   (with --option clean-pixel-data: before/after PNGs of masked images)
           [--id-map <dir> [--reid-key <file>]]   (record every object in the re-identification map)
           [--manifest <file.csv>] [--report <file.html> [--k-threshold N]]   (the report's JSON goes beside it)
`,
  verify: `  deid verify <original> <deidentified> [--profile <p>] [--option <name>]... [--json]
`,
  profiles: `  deid profiles            (the built-in profiles and the options, with their CID 7050 codes)
  deid profiles --check <profile> [--option <name>]... [--strict]
`,
  import: `  deid import ctp <DicomAnonymizer.script> [--lookup <LookupTable.properties>] [--allow-partial] -o <profile.yaml>
                  [--name <name>] [--param NAME=VALUE]... [--extends <profile> (default basic) | --standalone] [--json]
  deid import ctp-pixels <DicomPixelAnonymizer.script> [--allow-partial] -o <signatures.yaml> [--json]
`,
  serve: `  deid serve [--config <file.yaml>] [--dimse-port N] [--ae-title AE] [--http-port N] [--data-dir <dir>]
             [--profile <p>] [--option <name>]... [--secret-file <path>] [--export <destination>]...
             [--redis <url>] [--log-format json|pretty] [--strict]
             (the service: DIMSE C-STORE SCP, STOW-RS, admin API, metrics, watched folder, pipeline;
              SIGTERM stops it gracefully, SIGHUP reloads the configuration)
`,
  worker: `  deid worker [--config <file.yaml>] [--redis <url>] [--data-dir <dir>] [--secret-file <path>]
              [--profile <p>] [--option <name>]... [--export <destination>]... [--http-port N]
              [--log-format json|pretty]
              (pipeline workers only, to scale out with Redis; --http-port serves /healthz, /readyz, /metrics)
`,
  reid: `  deid reid --id-map <dir> [--reid-key <file>] <new id>            (the original: needs the re-identification key)
  deid reid --id-map <dir> [--reid-key <file>] --original <value>  (the pseudonyms)
`,
  map: `  deid map export --id-map <dir> [--reid-key <file>] --format midi-b --out <dir>
`,
};

const USAGE = `deid — DICOM de-identification (PS3.15 Annex E)

Usage:
${Object.values(COMMANDS).join('')}
  deid <command> --help     (one command's usage)

--strict: refuse a profile that keeps attributes PS3.15 Table E.1-1 removes or replaces (otherwise listed as a warning).

Exit codes: 0 every file de-identified, 2 some file quarantined (or verify found a leak, or import found
rules without a translation), 1 usage or configuration error.
`;

/** The same object size limit as the service's default maxObjectBytes. */
const DEFAULT_MAX_BYTES = 1024 ** 3;

function fail(code: keyof typeof ERRORS, detail?: string): never {
  throw new DeidError(code, detail);
}

function printSummary(s: RunSummary, out: string, quarantine: string, written: Record<string, string>): void {
  const lines = [
    `${s.files} file(s): ${s.deidentified} de-identified, ${s.quarantined} quarantined in ${s.seconds.toFixed(2)} s ` +
      `(${s.filesPerSecond.toFixed(0)} files/s, ${s.mbPerSecond.toFixed(1)} MB/s)`,
  ];
  const reasons = Object.entries(s.reasons).sort((a, b) => b[1]! - a[1]!);
  if (reasons.length) {
    lines.push('quarantine reasons:');
    for (const [code, n] of reasons) lines.push(`  ${String(n).padStart(6)}  ${code}  ${ERRORS[code as keyof typeof ERRORS]}`);
  }
  if (s.pixelsCleaned !== undefined) lines.push(`pixels: ${s.pixelsCleaned} image(s) examined and cleaned, ${s.pixelsSkipped} skipped (not known to carry text)`);
  lines.push(`output:     ${out}`, `quarantine: ${quarantine}`);
  if (written.idMap) lines.push(`id map:     ${written.idMap} (${s.deidentified} object(s) recorded)`);
  if (written.manifest) lines.push(`manifest:   ${written.manifest}`);
  if (written.report) lines.push(`report:     ${written.report} (and ${written.reportJson})`);
  console.log(lines.join('\n'));
}

/**
 * Lists the attributes a profile keeps against Table E.1-1 on stderr, or in strict mode refuses the
 * profile. Returns the profile with the list, which the header stage records in each object's report.
 */
function checkKeptIdentifiers(profile: CompiledProfile, strict: boolean): CompiledProfile {
  const checked = withKeptIdentifiers(profile);
  const kept = checked.keptIdentifiers ?? [];
  if (kept.length === 0) return checked;
  if (strict) fail('DEID_ERR_PROFILE_KEEPS_IDENTIFIERS', `${profile.name} keeps ${kept.length}: ${kept.map((k) => k.select).join(', ')}`.slice(0, 2000));
  process.stderr.write(
    `deid: warning: profile '${profile.name}' keeps ${kept.length} attribute(s) that PS3.15 Table E.1-1 removes or replaces (--strict refuses this):\n` +
      kept.map((k) => `  ${describeKept(k)}\n`).join(''),
  );
  return checked;
}

function parseMaxBytes(s: string | undefined): number {
  if (s === undefined) return DEFAULT_MAX_BYTES;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) fail('DEID_ERR_USAGE', '--max-bytes takes a positive whole number of bytes');
  return n;
}

async function cmdRun(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      quarantine: { type: 'string' },
      profile: { type: 'string', default: 'basic' },
      option: { type: 'string', multiple: true, default: [] },
      'secret-file': { type: 'string' },
      jobs: { type: 'string' },
      json: { type: 'boolean', default: false },
      'max-bytes': { type: 'string' },
      previews: { type: 'string' },
      strict: { type: 'boolean', default: false },
      'id-map': { type: 'string' },
      'reid-key': { type: 'string' },
      'redis-prefix': { type: 'string' },
      manifest: { type: 'string' },
      report: { type: 'string' },
      'k-threshold': { type: 'string' },
    },
  });
  if (positionals.length === 0) fail('DEID_ERR_USAGE', 'give at least one file or folder');
  const kThreshold = values['k-threshold'] === undefined ? 5 : Number(values['k-threshold']);
  if (!Number.isInteger(kThreshold) || kThreshold < 1) fail('DEID_ERR_USAGE', '--k-threshold takes a whole number of at least 1');
  if (values['reid-key'] && !values['id-map']) fail('DEID_ERR_USAGE', '--reid-key goes with --id-map <dir>');
  if (!values.out) fail('DEID_ERR_USAGE', '--out <dir> is required');
  if (!values.quarantine) fail('DEID_ERR_USAGE', '--quarantine <dir> is required');
  // Read and check the profile up front so that a bad profile or option stops here, before any file is touched.
  const chain = readProfileChain(values.profile!);
  const compiled = checkKeptIdentifiers(compileProfile(chain, values.option!), values.strict!);
  const maxBytes = parseMaxBytes(values['max-bytes']);
  const secret = loadSecret(values['secret-file']);
  if (secret.created) process.stderr.write(`deid: generated a new secret at ${secret.path}; it is used again next time, so the same inputs map the same way. Keep it safe.\n`);
  let jobs;
  try {
    jobs = collectFiles(positionals);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    fail('DEID_ERR_USAGE', `cannot read input ${err.path ?? ''}: ${err.code ?? 'error'}`.replace(' :', ':'));
  }
  const out = resolve(values.out!);
  const quarantine = resolve(values.quarantine!);
  const { settings: idMap, map } = values['id-map'] ? await openMapForRun(values['id-map'], values['reid-key'], values['redis-prefix']) : {};
  const { ManifestFile, writeReport } = await import('./cli/run-outputs.js');
  let manifest: InstanceType<typeof ManifestFile> | undefined;
  let run: Awaited<ReturnType<typeof runFiles>>;
  try {
    const m = (manifest = values.manifest ? new ManifestFile(resolve(values.manifest)) : undefined);
    const settings: RunSettings = {
      chain,
      options: values.option!,
      secretHex: secret.key.toString('hex'),
      outDir: out,
      quarantineDir: quarantine,
      maxBytes,
      previewsDir: values.previews ? resolve(values.previews) : undefined,
      idMap,
      manifest: !!m,
      report: !!values.report,
    };
    const threads = values.jobs ? Number(values.jobs) : undefined;
    run = await runFiles(jobs, settings, { compiled, threads, progress: process.stderr.isTTY && !values.json, onRecord: m && ((r) => m.add(r)), idMap: map });
  } catch (e) {
    manifest?.abort();
    // The run did not close the map: an open Redis connection would keep the process from exiting.
    await map?.close().catch(() => undefined);
    throw e;
  }
  const { report, ...summary } = run;
  manifest?.close();
  // Where things were written (a Redis URL without its credentials).
  const written: Record<string, string> = {};
  if (idMap) written.idMap = idMap.location.replace(/^(rediss?:\/\/)[^@/]*@/, '$1');
  if (manifest) written.manifest = resolve(values.manifest!);
  if (report) {
    const html = resolve(values.report!);
    const profile = { name: compiled.name, options: [...compiled.options] };
    written.report = html;
    written.reportJson = writeReport(html, report.report({ title: `deid run, ${summary.files} file(s)`, kThreshold, profile }));
  }
  if (values.json) console.log(JSON.stringify({ ...summary, ...written, keptIdentifiers: compiled.keptIdentifiers?.map((k) => k.select) ?? [] }));
  else printSummary(summary, out, quarantine, written);
  return summary.quarantined > 0 ? 2 : 0;
}

/**
 * The map `deid run --id-map` records into: its key read (or created, and the user told where), and
 * the map opened here, so that a wrong key stops the run before any file is touched.
 */
async function openMapForRun(location: string, keyFile: string | undefined, redisPrefix: string | undefined) {
  const [{ isRedisLocation, loadReidKey }, { openRunMap }] = await Promise.all([import('./idmap/index.js'), import('./cli/thread-run.js')]);
  const key = loadReidKey({ file: keyFile, create: true });
  if (key.created) process.stderr.write(`deid: generated a new re-identification key at ${key.source}; only its holders can read the map. Keep it safe, apart from the map.\n`);
  const where = isRedisLocation(location) ? location : resolve(location);
  const settings: NonNullable<RunSettings['idMap']> = { location: where, keyHex: key.key.toString('hex'), keySource: key.source, ...(redisPrefix ? { redisPrefix } : {}) };
  return { settings, map: await openRunMap(settings, key) };
}

async function cmdVerify(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { profile: { type: 'string', default: 'basic' }, option: { type: 'string', multiple: true, default: [] }, json: { type: 'boolean', default: false } },
  });
  if (positionals.length !== 2) fail('DEID_ERR_USAGE', 'verify takes <original> <deidentified>');
  const profile = loadProfile(values.profile!, values.option!);
  // Loaded here, not at the top: `deid run` does this work in its worker threads, not on the main thread.
  const [{ readDicom }, { verifyAgainstSource }] = await Promise.all([import('./dicom/reader.js'), import('./stages/verify.js')]);
  const report = verifyAgainstSource(readDicom(readFileSync(positionals[0])), readFileSync(positionals[1]), profile);
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else {
    console.log(`quality check: ${report.ok ? 'PASS' : 'FAIL'}`);
    console.log(`  elements scanned:       ${report.elementsScanned}`);
    console.log(`  identifying values:     ${report.identifiersChecked}`);
    console.log(`  source UIDs checked:    ${report.uidsChecked}${profile.options.has('retain-uids') ? ' (retain-uids: UIDs are kept)' : ''}`);
    for (const f of report.findings) console.log(`  ${f.code}  ${f.path}  (${f.kind})`);
  }
  return report.ok ? 0 : 2;
}

function cmdProfiles(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: { check: { type: 'string' }, option: { type: 'string', multiple: true, default: [] }, strict: { type: 'boolean', default: false } },
  });
  if (values.check !== undefined) {
    // Validates the profile (an invalid one throws DEID_ERR_PROFILE_INVALID) and lists what it keeps.
    const profile = checkKeptIdentifiers(loadProfile(values.check, values.option!), values.strict!);
    console.log(`profile '${profile.name}': valid; options: ${[...profile.options].sort().join(', ') || 'none'}`);
    const kept = profile.keptIdentifiers?.length ?? 0;
    console.log(kept ? `keeps ${kept} attribute(s) that Table E.1-1 removes or replaces (listed above)` : 'keeps nothing that Table E.1-1 removes or replaces');
    return 0;
  }
  console.log('Built-in profiles:');
  for (const p of listBuiltinProfiles()) console.log(`  ${p.name.padEnd(12)} ${p.description}`);
  console.log(`\nEvery output records ${BASIC_PROFILE_CODE.value} (${BASIC_PROFILE_CODE.meaning}) plus one code per option.`);
  console.log('\nOptions (--option <name>), with their CID 7050 code:');
  for (const o of OPTION_NAMES) {
    const c = optionCode(o);
    console.log(`  ${o.padEnd(32)} ${c.value}  ${OPTIONS[o]}`);
  }
  console.log('\n`deid profiles --check <profile>` validates a profile and lists what it keeps against Table E.1-1.');
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd && COMMANDS[cmd] && (rest.includes('--help') || rest.includes('-h'))) {
    process.stdout.write(`Usage:\n${COMMANDS[cmd]}`);
    return 0;
  }
  try {
    switch (cmd) {
      case 'run':
        return await cmdRun(rest);
      case 'verify':
        return await cmdVerify(rest);
      case 'profiles':
        return cmdProfiles(rest);
      case 'reid':
        return await (await import('./cli/idmap-commands.js')).reidCommand(rest);
      case 'map':
        return await (await import('./cli/idmap-commands.js')).mapCommand(rest);
      case 'import': {
        const { importCommand } = await import('./cli/import.js');
        return await importCommand(rest);
      }
      case 'serve':
      case 'worker': {
        const { serveCommand } = await import('./server-command.js');
        return await serveCommand(cmd, rest);
      }
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(USAGE);
        return cmd === undefined ? 1 : 0;
      default:
        fail('DEID_ERR_USAGE', `unknown command "${cmd.replace(/[^\w-]/g, '').slice(0, 20)}"`);
    }
  } catch (e) {
    if (isDeidError(e)) {
      process.stderr.write(`deid: ${e.message}\n`);
      return 1;
    }
    if (e instanceof TypeError && (e as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`deid: DEID_ERR_USAGE: ${e.message}\n${USAGE}`);
      return 1;
    }
    throw e;
  }
}
