import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DeidError, ERRORS, isDeidError } from './errors.js';
import type { RunSettings } from './cli/process-file.js';
import { collectFiles, runFiles, type RunSummary } from './cli/run.js';
import { BASIC_PROFILE_CODE, OPTIONS, OPTION_NAMES, optionCode } from './profiles/options.js';
import { compileProfile, listBuiltinProfiles, loadProfile, readProfileChain } from './profiles/profile.js';
import { loadSecret } from './secret.js';

const USAGE = `deid — DICOM de-identification (PS3.15 Annex E)

Usage:
  deid run <file-or-folder>... --out <dir> --quarantine <dir> [--profile basic|<name>|<path>]
           [--option <name>]... [--secret-file <path>] [--jobs N] [--json]
           [--previews <dir>]   (with --option clean-pixel-data: before/after PNGs of masked images)
           [--id-map <dir> [--reid-key <file>]]   (record every object in the re-identification map)
           [--manifest <file.csv>] [--report <file.html> [--k-threshold N]]   (the report's JSON goes beside it)
  deid verify <original> <deidentified> [--profile <p>] [--option <name>]...
  deid profiles
  deid import ctp <DicomAnonymizer.script> [--lookup <LookupTable.properties>] [--allow-partial] -o <profile.yaml>
                  [--name <name>] [--param NAME=VALUE]... [--extends <profile> (default basic) | --standalone] [--json]
  deid import ctp-pixels <DicomPixelAnonymizer.script> [--allow-partial] -o <signatures.yaml> [--json]
  deid serve [...]        (the service; see README)
  deid reid --id-map <dir> [--reid-key <file>] <new id>            (the original: needs the re-identification key)
  deid reid --id-map <dir> [--reid-key <file>] --original <value>  (the pseudonyms)
  deid map export --id-map <dir> [--reid-key <file>] --format midi-b --out <dir>

Exit codes: 0 every file de-identified, 2 some file quarantined (or verify found a leak, or import found
rules without a translation), 1 usage or configuration error.
`;

const DEFAULT_MAX_BYTES = 2 * 1024 ** 3;

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
  const compiled = compileProfile(chain, values.option!);
  const secret = loadSecret(values['secret-file']);
  if (secret.created) process.stderr.write(`deid: generated a new secret at ${secret.path}; it is used again next time, so the same inputs map the same way. Keep it safe.\n`);
  let jobs;
  try {
    jobs = collectFiles(positionals);
  } catch (e) {
    fail('DEID_ERR_USAGE', `cannot read input: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const out = resolve(values.out!);
  const quarantine = resolve(values.quarantine!);
  const idMap = values['id-map'] ? await openRunMap(values['id-map'], values['reid-key'], values['redis-prefix']) : undefined;
  const { ManifestFile, writeReport } = await import('./cli/run-outputs.js');
  const manifest = values.manifest ? new ManifestFile(resolve(values.manifest)) : undefined;
  const settings: RunSettings = {
    chain,
    options: values.option!,
    secretHex: secret.key.toString('hex'),
    outDir: out,
    quarantineDir: quarantine,
    maxBytes: values['max-bytes'] ? Number(values['max-bytes']) : DEFAULT_MAX_BYTES,
    previewsDir: values.previews ? resolve(values.previews) : undefined,
    idMap,
    manifest: !!manifest,
    report: !!values.report,
  };
  let run: Awaited<ReturnType<typeof runFiles>>;
  try {
    const threads = values.jobs ? Number(values.jobs) : undefined;
    run = await runFiles(jobs, settings, { compiled, threads, progress: process.stderr.isTTY && !values.json, onRecord: manifest && ((r) => manifest.add(r)) });
  } catch (e) {
    manifest?.abort();
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
  if (values.json) console.log(JSON.stringify({ ...summary, ...written }));
  else printSummary(summary, out, quarantine, written);
  return summary.quarantined > 0 ? 2 : 0;
}

/**
 * The map `deid run --id-map` records into: its key read (or created, and the user told where), and
 * the map opened once here, so that a wrong key stops the run before any file is touched.
 */
async function openRunMap(location: string, keyFile: string | undefined, redisPrefix: string | undefined): Promise<NonNullable<RunSettings['idMap']>> {
  const { IdMap, isRedisLocation, loadReidKey } = await import('./idmap/index.js');
  const key = loadReidKey({ file: keyFile, create: true });
  if (key.created) process.stderr.write(`deid: generated a new re-identification key at ${key.source}; only its holders can read the map. Keep it safe, apart from the map.\n`);
  const where = isRedisLocation(location) ? location : resolve(location);
  await (await IdMap.open(where, { key, create: true, redisPrefix })).close();
  return { location: where, keyHex: key.key.toString('hex'), keySource: key.source, ...(redisPrefix ? { redisPrefix } : {}) };
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
  const [{ readDicom }, { uidsRemappedBy }, { collectIdentifiers }, { verifyOutput }] = await Promise.all([
    import('./dicom/reader.js'),
    import('./stages/header.js'),
    import('./stages/identifiers.js'),
    import('./stages/verify.js'),
  ]);
  const original = readDicom(readFileSync(positionals[0]));
  const report = verifyOutput(readFileSync(positionals[1]), {
    identifiers: collectIdentifiers(original.dataset),
    remappedUids: uidsRemappedBy(original, profile),
    profile,
  });
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

function cmdProfiles(): number {
  console.log('Built-in profiles:');
  for (const p of listBuiltinProfiles()) console.log(`  ${p.name.padEnd(12)} ${p.description}`);
  console.log(`\nEvery output records ${BASIC_PROFILE_CODE.value} (${BASIC_PROFILE_CODE.meaning}) plus one code per option.`);
  console.log('\nOptions (--option <name>), with their CID 7050 code:');
  for (const o of OPTION_NAMES) {
    const c = optionCode(o);
    console.log(`  ${o.padEnd(32)} ${c.value}  ${OPTIONS[o]}`);
  }
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'run':
        return await cmdRun(rest);
      case 'verify':
        return await cmdVerify(rest);
      case 'profiles':
        return cmdProfiles();
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
