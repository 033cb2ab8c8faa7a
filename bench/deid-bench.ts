// `npm run bench` (built by tsconfig.bench.json after `npm run build`): deid run --profile basic over 1,000 files (about 125 MB), measured in the same run as
// GDCM's gdcmanon (basic profile, the fastest peer), our own plain read+write copy (the I/O floor), and deid run with the
// re-identification map and the report on (the goal: at least 0.9x the plain run), and with the manifest on (which hashes every input).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, WORK, buildCorpus, fmt, median, requireTool, timed, totalBytes } from './lib.js';

// Two sizes: the 1,000 files the issue names, and 5,000, where the fixed start-up of a Node process
// (module loading, a cold JIT) is amortised as it is in real batch runs. BENCH_FILES=n runs one size.
const SIZES = process.env.BENCH_FILES ? [Number(process.env.BENCH_FILES)] : [1000, 5000];
// Five rounds: on a shared machine a single round can be a fifth off either way.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
requireTool('gdcmanon', 'libgdcm-tools');
requireTool('openssl', 'openssl');

// gdcmanon -e needs a certificate to encrypt the original attributes into; a throwaway self-signed one.
const certDir = join(WORK, 'cert');
if (!existsSync(join(certDir, 'cert.pem'))) {
  mkdirSync(certDir, { recursive: true });
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem'), '-days', '2', '-subj', '/CN=deid-bench'], { stdio: 'ignore' });
}
const secretFile = join(WORK, 'secret');
writeFileSync(secretFile, 'benchmark-secret-0123456789abcdef\n');

for (const COUNT of SIZES) {
const corpus = join(WORK, `corpus-${COUNT}`);
const files = await buildCorpus(corpus, COUNT);
const bytes = totalBytes(files);
console.log(`\ncorpus: ${files.length} files, ${fmt(bytes / 1e6, 1)} MB (CT_small, MR_small, CT1_UNC; 10 per study, one patient per study)`);
const listFile = join(WORK, 'files.txt');
writeFileSync(listFile, files.join('\n'));
// Every run writes into a directory of its own, and outputs are deleted only after the last round:
// ext4 allocates inodes slowly right after thousands were freed (its recently-deleted check showed as a
// third of all cycles when each run reused the folder the previous run had just emptied).
const runsDir = join(WORK, `runs-${process.pid}-${COUNT}`);
type Command = (out: string) => [string, string[]];
const deidRun = (out: string) => [join(ROOT, 'bin/deid.js'), 'run', corpus, '--out', join(out, 'out'), '--quarantine', join(out, 'quarantine'), '--profile', 'basic', '--secret-file', secretFile, '--json'];
const cmds: Record<'deid' | 'records' | 'manifest' | 'gdcmanon' | 'copy', Command> = {
  deid: (out) => [process.execPath, deidRun(out)],
  // A fresh map per run (its key from DEID_REID_KEY), and the report with its JSON: what the goal is about.
  records: (out) => [process.execPath, [...deidRun(out), '--id-map', join(out, 'map'), '--report', join(out, 'report.html')]],
  // The manifest apart: the SHA-256 of every input is its cost, whatever else is on.
  manifest: (out) => [process.execPath, [...deidRun(out), '--manifest', join(out, 'manifest.csv')]],
  gdcmanon: (out) => ['gdcmanon', ['-e', '--continue', '-c', join(certDir, 'cert.pem'), '-i', corpus, '-o', out]],
  copy: (out) => [process.execPath, [fileURLToPath(new URL('./copy-files.js', import.meta.url)), listFile, out]],
};

// Read every input once before timing, so that no command pays for bringing the corpus into the page
// cache and the others not; and each round runs the commands in a rotated order.
for (const f of files) readFileSync(f);
const best: Record<string, number> = {};
const mem: Record<number, number[]> = {};
const roundRatios: number[] = []; // deid against gdcmanon, run back to back in the same round
const recordRatios: number[] = []; // deid with the map and report against plain deid, in the same round
const manifestRatios: number[] = []; // deid with the manifest against plain deid
const perRound: Record<string, number[]> = { deid: [], records: [], manifest: [], gdcmanon: [], copy: [] };
const rounds = COUNT > 1000 ? Math.max(1, Math.ceil(ROUNDS / 2)) : ROUNDS;
for (let round = 0; round < rounds; round++) {
  const seconds: Record<string, number> = {};
  const order = Object.entries(cmds);
  for (const [name, make] of [...order.slice(round % order.length), ...order.slice(0, round % order.length)]) {
    const out = join(runsDir, `${name}-${round}`);
    mkdirSync(out, { recursive: true });
    // Flush earlier runs' dirty pages first, so that no run pays for another's writeback.
    execFileSync('sync');
    const [cmd, args] = make(out);
    const r = await timed(cmd, args, { TCP_NODELAY: '1', DEID_REID_KEY: 'b3'.repeat(32) });
    if (name === 'deid' || name === 'records' || name === 'manifest') {
      const summary = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { deidentified: number; quarantined: number; reasons: unknown };
      if (summary.deidentified !== files.length) throw new Error(`deid run quarantined ${summary.quarantined} files: ${JSON.stringify(summary.reasons)}`);
    } else if (r.code !== 0) throw new Error(`${name} failed (${r.code}): ${r.stderr.slice(0, 400)}`);
    best[name] = Math.min(best[name] ?? Infinity, r.seconds);
    if (name === 'deid') mem[round] = r.rssMb;
    seconds[name] = r.seconds;
    perRound[name].push(r.seconds);
  }
  roundRatios.push(seconds.gdcmanon / seconds.deid);
  recordRatios.push(seconds.deid / seconds.records);
  manifestRatios.push(seconds.deid / seconds.manifest);
}

const rate = (s: number) => files.length / s;
console.log('wall time, best of %d rounds (process start to exit, same files, same machine):', rounds);
for (const [name, label] of [['deid', 'deid run --profile basic (with quality check)'], ['records', '  the same with --id-map --report'], ['manifest', '  the same with --manifest'], ['gdcmanon', 'gdcmanon -e (GDCM basic profile)'], ['copy', 'our read+write copy (I/O floor)']]) {
  console.log(`  ${label.padEnd(48)} ${fmt(rate(best[name])).padStart(6)} files/s  ${fmt(bytes / 1e6 / best[name], 1).padStart(7)} MB/s  ${fmt(best[name], 2)} s`);
}
console.log(`wall time per round (s): ${Object.entries(perRound).map(([n, xs]) => `${n} ${xs.map((x) => fmt(x, 2)).join(' ')}`).join('; ')}`);
// The machine's load drifts from round to round; deid and gdcmanon run back to back within a round, so
// their ratio in each round, and its median, compare like with like. Best against best pairs whichever
// moments were luckiest for each.
console.log(`\ndeid / gdcmanon, round by round: ${roundRatios.map((x) => `${fmt(x, 2)}x`).join(', ')}; median ${fmt(median(roundRatios), 2)}x`);
console.log(`best against best: deid / gdcmanon = ${fmt(best.gdcmanon / best.deid, 2)}x   deid / copy floor = ${fmt(best.copy / best.deid, 2)}x`);
console.log(`with the map and report / without, round by round: ${recordRatios.map((x) => `${fmt(x, 2)}x`).join(', ')}; median ${fmt(median(recordRatios), 2)}x; best against best ${fmt(best.deid / best.records, 2)}x (goal >= 0.90x)`);
console.log(`with the manifest / without, round by round: ${manifestRatios.map((x) => `${fmt(x, 2)}x`).join(', ')}; median ${fmt(median(manifestRatios), 2)}x; best against best ${fmt(best.deid / best.manifest, 2)}x`);
const samples = mem[rounds - 1] ?? []; // one run, start to end
if (samples.length > 4) {
  const q = Math.floor(samples.length / 4);
  console.log(`deid memory (RSS of the run, MB): first quarter max ${fmt(Math.max(...samples.slice(0, q)))}, last quarter max ${fmt(Math.max(...samples.slice(-q)))}, overall max ${fmt(Math.max(...samples))}`);
}
rmSync(runsDir, { recursive: true, force: true });
}
