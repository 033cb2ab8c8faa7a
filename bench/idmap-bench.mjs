// `npm run bench:idmap`: the re-identification map's stores, measured in one run on the same rows.
//  1. write throughput (rows/s, durable: one fdatasync or one fsync'ed commit per batch) by batch size;
//  2. two processes writing at once;
//  3. lookup latency by token at BENCH_IDMAP_ROWS rows;
//  4. what recording costs a 1,000-file `deid run`, measured against the run itself.
// Candidates: our segment files; SQLite through better-sqlite3 (WAL, synchronous=FULL), when
// BENCH_SQLITE_DIR names a folder where `npm install better-sqlite3@12` was run (it is not a
// dependency: see README); and the Redis store on a local redis-server (appendfsync always).
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ROOT, WORK, buildCorpus, fmt, median, timed } from './lib.mjs';

const dist = (p) => import(join(ROOT, 'dist', p));
const { deriveMapKeys } = await dist('idmap/key.js');
const { Tokenizer, sealRow } = await dist('idmap/row.js');
const { FileMapStore } = await dist('idmap/file-store.js');
const { RedisMapStore } = await dist('idmap/redis-store.js');

const LOOKUP_ROWS = Number(process.env.BENCH_IDMAP_ROWS ?? 100_000);
const WRITE_ROWS = Number(process.env.BENCH_IDMAP_WRITE_ROWS ?? 20_000);
const KEY = Buffer.alloc(32, 7);
const keys = deriveMapKeys(KEY);
const tokens = new Tokenizer(keys.index);

/** Rows as a busy site makes them: 10 objects a series, 3 series a study, 2 studies a patient. */
function makeRows(n, offset = 0, tag = 'w') {
  const rows = [];
  for (let j = 0; j < n; j++) {
    const i = j + offset;
    const s = Math.floor(i / 10), st = Math.floor(i / 30), p = Math.floor(i / 60);
    rows.push(
      sealRow(
        {
          original: { PatientID: `MRN${p}`, PatientName: `PATIENT${p}^BENCH`, StudyInstanceUID: `1.2.826.0.1.${st}`, SeriesInstanceUID: `1.2.826.0.1.${st}.${s}`, SOPInstanceUID: `1.2.826.0.1.${st}.${s}.${i}.${tag}`, AccessionNumber: `ACC${st}` },
          new: { PatientID: `P${p}X`, PatientName: `P${p}X`, StudyInstanceUID: `2.25.${st}1`, SeriesInstanceUID: `2.25.${s}2`, SOPInstanceUID: `2.25.${i}3${tag}`, AccessionNumber: `A${st}` },
          dateOffsetDays: -(p % 365),
          at: new Date().toISOString(),
        },
        keys,
        tokens,
      ),
    );
  }
  return rows;
}

function loadSqlite() {
  if (!process.env.BENCH_SQLITE_DIR) return undefined;
  try {
    return createRequire(join(process.env.BENCH_SQLITE_DIR, 'package.json'))('better-sqlite3');
  } catch (e) {
    console.error(`bench: better-sqlite3 not loadable from BENCH_SQLITE_DIR (${e.code ?? e.message})`);
    return undefined;
  }
}

/** The SQLite candidate with the same port methods the bench uses. */
class SqliteStore {
  constructor(Database, path) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 10000');
    this.db.exec('CREATE TABLE IF NOT EXISTS rows (id TEXT PRIMARY KEY, box BLOB NOT NULL) WITHOUT ROWID; CREATE TABLE IF NOT EXISTS tokens (token TEXT, id TEXT, PRIMARY KEY (token, id)) WITHOUT ROWID;');
    const row = this.db.prepare('INSERT OR IGNORE INTO rows (id, box) VALUES (?, ?)');
    const tok = this.db.prepare('INSERT OR IGNORE INTO tokens (token, id) VALUES (?, ?)');
    this.insert = this.db.transaction((rows) => {
      for (const r of rows) {
        if (row.run(r.id, r.box).changes) for (const t of r.tokens) tok.run(t, r.id);
      }
    }).immediate;
    this.select = this.db.prepare('SELECT rows.id, rows.box FROM tokens JOIN rows ON rows.id = tokens.id WHERE tokens.token = ?');
  }
  async append(rows) {
    this.insert(rows);
  }
  async find(token) {
    return this.select.all(token);
  }
  async close() {
    this.db.close();
  }
}

async function freePort() {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

async function startRedis(dir) {
  const port = await freePort();
  mkdirSync(dir, { recursive: true });
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  const { Redis } = await import('ioredis');
  for (let i = 0; i < 200; i++) {
    const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => undefined);
    try {
      await r.connect();
      if ((await r.ping()) === 'PONG') break;
    } catch {
      await new Promise((res) => setTimeout(res, 50));
    } finally {
      r.disconnect();
    }
  }
  return { url, stop: () => new Promise((res) => (child.once('exit', res), child.kill('SIGTERM'))) };
}

async function writeRate(store, rows, batch) {
  const t = performance.now();
  for (let i = 0; i < rows.length; i += batch) await store.append(rows.slice(i, i + batch));
  return rows.length / ((performance.now() - t) / 1000);
}

const work = join(WORK, `idmap-${process.pid}`);

// A child of the concurrency test: writes its rows in batches of 64 into the named store.
if (process.argv[2] === 'writer') {
  const [, , , kind, location, n, offset] = process.argv;
  const rows = makeRows(Number(n), Number(offset), `c${offset}`);
  const store = kind === 'sqlite' ? new SqliteStore(loadSqlite(), location) : kind === 'redis' ? new RedisMapStore(location, 'bench') : new FileMapStore(location);
  await writeRate(store, rows, 64);
  await store.close();
  process.exit(0);
}

const Database = loadSqlite();
let redis;
try {
  redis = await startRedis(join(work, 'redis'));
} catch {
  console.error('bench: redis-server did not start; the Redis store is left out');
}
// Each candidate: a fresh location, and a store opened on it.
const candidates = {
  'segment files': [() => join(work, `files-${Math.random()}`), (loc) => new FileMapStore(loc)],
  ...(Database ? { 'SQLite (better-sqlite3)': [() => join(work, `sqlite-${Math.random()}.db`), (loc) => new SqliteStore(Database, loc)] } : {}),
  ...(redis ? { 'Redis (appendfsync always)': [() => `bench${Math.random()}`, (loc) => new RedisMapStore(redis.url, loc)] } : {}),
};
mkdirSync(work, { recursive: true });

console.log(`\n1. write throughput, durable per batch (${WRITE_ROWS} rows; rows/s)`);
const writeRows = makeRows(WRITE_ROWS);
for (const [name, [location, open]] of Object.entries(candidates)) {
  const rates = [];
  for (const batch of [1, 64, 1000]) {
    const rows = batch === 1 ? writeRows.slice(0, 2000) : writeRows;
    const store = open(location());
    rates.push(`batch ${batch}: ${fmt(await writeRate(store, rows, batch)).padStart(7)}`);
    await store.close();
  }
  console.log(`  ${name.padEnd(28)} ${rates.join('   ')}`);
}

console.log(`\n2. two processes writing ${WRITE_ROWS / 2} rows each at once, batches of 64 (total rows/s; rows found afterwards)`);
for (const [name, kind] of [['segment files', 'files'], ...(Database ? [['SQLite (better-sqlite3)', 'sqlite']] : []), ...(redis ? [['Redis (appendfsync always)', 'redis']] : [])]) {
  const location = kind === 'files' ? join(work, 'conc-files') : kind === 'sqlite' ? join(work, 'conc.db') : redis.url;
  if (kind === 'sqlite') new SqliteStore(Database, location).close(); // schema first, so neither child races to create it
  const t = performance.now();
  await Promise.all(
    [0, 1].map((w) =>
      timed(process.execPath, [new URL(import.meta.url).pathname, 'writer', kind, location, String(WRITE_ROWS / 2), String(w * WRITE_ROWS)]).then((r) => {
        if (r.code !== 0) throw new Error(`${kind} writer failed: ${r.stderr.slice(0, 300)}`);
      }),
    ),
  );
  const seconds = (performance.now() - t) / 1000;
  let count = 0;
  if (kind === 'files') for await (const _ of new FileMapStore(location).scan()) count++;
  else if (kind === 'sqlite') {
    const db = new Database(location);
    count = db.prepare('SELECT count(*) AS n FROM rows').get().n;
    db.close();
  } else {
    const s = new RedisMapStore(location, 'bench');
    for await (const _ of s.scan()) count++;
    await s.close();
  }
  console.log(`  ${name.padEnd(28)} ${fmt(WRITE_ROWS / seconds).padStart(7)} rows/s (wall, including process start)   rows found: ${count}/${WRITE_ROWS}`);
}

console.log(`\n3. lookup by token at ${LOOKUP_ROWS} rows (ms per lookup: median, p95 of 40; one object's SOP token, and a patient's token matching 60 rows)`);
const lookupRows = makeRows(LOOKUP_ROWS, 0, 'l');
for (const [name, [location, open]] of Object.entries(candidates)) {
  // Written, closed, then opened again, as a `deid reid` finds a map (the file store indexes a segment when its writer closes it).
  const loc = location();
  const writer = open(loc);
  for (let i = 0; i < lookupRows.length; i += 1000) await writer.append(lookupRows.slice(i, i + 1000));
  await writer.close();
  const store = open(loc);
  const times = async (token) => {
    const ts = [];
    for (let i = 0; i < 40; i++) {
      const t = performance.now();
      const found = await store.find(token(i));
      ts.push(performance.now() - t);
      if (found.length === 0) throw new Error(`${name}: lookup found nothing`);
    }
    ts.sort((a, b) => a - b);
    return `${fmt(median(ts), 2).padStart(7)} / ${fmt(ts[Math.floor(ts.length * 0.95)], 2).padStart(7)}`;
  };
  const one = await times((i) => tokens.token('new', `2.25.${(i * 2477) % LOOKUP_ROWS}3l`));
  const patient = await times((i) => tokens.token('orig', `MRN${(i * 31) % Math.floor(LOOKUP_ROWS / 60)}`));
  console.log(`  ${name.padEnd(28)} one object: ${one}   one patient: ${patient}`);
  await store.close();
}
await redis?.stop();

console.log('\n4. recording 1,000 objects against `deid run` on the same 1,000 files (segment files, group commit)');
const corpus = join(WORK, 'corpus-1000');
const files = await buildCorpus(corpus, 1000);
const secretFile = join(work, 'secret');
writeFileSync(secretFile, 'benchmark-secret-0123456789abcdef\n');
const runSeconds = [];
for (let round = 0; round < 3; round++) {
  const out = join(work, `run-${round}`);
  const r = await timed(process.execPath, [join(ROOT, 'bin/deid.js'), 'run', corpus, '--out', join(out, 'out'), '--quarantine', join(out, 'q'), '--secret-file', secretFile, '--json']);
  if (r.code !== 0) throw new Error(`deid run failed: ${r.stderr.slice(0, 300)}`);
  runSeconds.push(r.seconds);
}
// The pipeline has the source and output data sets in hand; parsing them here is outside the timing.
const { readDicom } = await dist('dicom/reader.js');
const { processObject } = await dist('pipeline/process-object.js');
const { compileProfile } = await dist('profiles/compile.js');
const { readProfileChain } = await dist('profiles/profile.js');
const { identityFacts } = await dist('idmap/facts.js');
const { IdMap } = await dist('idmap/id-map.js');
const profile = compileProfile(readProfileChain('basic'), []);
const secret = readFileSync(secretFile);
const pairs = files.map((f) => {
  const src = readDicom(readFileSync(f));
  const r = processObject(readFileSync(f), { profile, secret });
  return [src.dataset, readDicom(r.output).dataset, r.header.dateOffsetDays];
});
const keyFile = join(work, 'reid-key');
writeFileSync(keyFile, KEY.toString('hex'), { mode: 0o600 });
const mapSeconds = [];
for (let round = 0; round < 3; round++) {
  const map = await IdMap.open(join(work, `map-${round}`), { key: { key: KEY, source: keyFile, created: false }, create: true });
  const t = performance.now();
  // As a pipeline does it: each object's row recorded as the object finishes, all awaited before done.
  await Promise.all(pairs.map(([src, out, days]) => map.record(identityFacts(src, out, days))));
  mapSeconds.push((performance.now() - t) / 1000);
  await map.close();
}
const run = median(runSeconds);
const rec = median(mapSeconds);
console.log(`  deid run, 1,000 files:            ${fmt(run, 3)} s (median of ${runSeconds.map((s) => fmt(s, 3)).join(', ')})`);
console.log(`  extract + seal + record + fsync:  ${fmt(rec, 3)} s (median of ${mapSeconds.map((s) => fmt(s, 3)).join(', ')}), ${fmt(1000 / rec)} rows/s`);
console.log(`  ratio, as if done serially after the run: ${fmt((run + rec) / run, 3)}x the run's time (limit 1.10x)`);
rmSync(work, { recursive: true, force: true });
