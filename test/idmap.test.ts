import { spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDicom } from '../src/dicom/reader.js';
import { IdMap, identityFacts, loadReidKey, type AuditEntry, type MapRow, type ReidKey } from '../src/idmap/index.js';
import { decodeSegment, encodeRecord, segmentFiles } from '../src/idmap/file-store.js';
import { deriveMapKeys } from '../src/idmap/key.js';
import { Tokenizer } from '../src/idmap/row.js';
import { remapUid } from '../src/keyed.js';
import { processObject } from '../src/pipeline/process-object.js';
import { loadProfile } from '../src/profiles/profile.js';
import { SECRET } from './helpers/dicom-builder.js';
import { CLI, REPO_ROOT, corpusFile, dcmdump, tempDir } from './helpers/corpus.js';
import { startRedis, type RedisHandle } from './helpers/redis.js';
import { writeStudy, type StudyFile } from './helpers/study.js';
import { objectRow } from './fixtures/idmap-rows.mjs';

const KEY_HEX = 'a1'.repeat(32);
const OTHER_KEY_HEX = 'b2'.repeat(32);
const envKey = (hex = KEY_HEX): ReidKey => ({ key: Buffer.from(hex, 'hex'), source: '$DEID_REID_KEY', created: false });
const WRITER = join(REPO_ROOT, 'test/fixtures/idmap-writer.mjs');
const IDMAP_DIST = pathToFileURL(join(REPO_ROOT, 'dist/idmap/index.js')).href;

function deid(args: string[], env: Record<string, string> = {}) {
  const e: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete e.DEID_REID_KEY;
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: e });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Every byte of every file under a folder, as one latin1 string (to search for values that must not be there). */
function allBytes(dir: string): string {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => readFileSync(join(d.parentPath, d.name)).toString('latin1'))
    .join('\n');
}

function listing(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => `${join(d.parentPath, d.name)} ${statSync(join(d.parentPath, d.name)).size}`)
    .sort();
}

/** Runs the writer fixture; resolves with the acknowledged object numbers when it exits (or is killed). */
function runWriter(cfg: Record<string, unknown>, killAfterAcks?: number): Promise<{ acks: number[]; code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [WRITER, IDMAP_DIST, JSON.stringify({ keyHex: KEY_HEX, concurrency: 8, ...cfg })], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acks: number[] = [];
    let buf = '';
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) {
        if (l.startsWith('ack ')) acks.push(Number(l.slice(4)));
        if (killAfterAcks !== undefined && acks.length >= killAfterAcks) child.kill('SIGKILL');
      }
    });
    child.on('exit', (code, signal) => resolve({ acks, code, signal, stderr }));
  });
}

interface Processed {
  readonly src: StudyFile;
  readonly original: ReturnType<typeof identityFacts>;
  readonly outPath: string;
}

/** De-identifies real corpus objects as the pipeline does, records each, and writes each output. */
async function deidentifyAndRecord(files: StudyFile[], map: IdMap, outDir: string): Promise<Processed[]> {
  const profile = loadProfile('research');
  mkdirSync(outDir, { recursive: true });
  return Promise.all(
    files.map(async (src, i) => {
      const input = readFileSync(src.path);
      const r = processObject(input, { profile, secret: SECRET });
      const facts = identityFacts(readDicom(input).dataset, readDicom(r.output).dataset, r.header.dateOffsetDays);
      const outPath = join(outDir, `${i}.dcm`);
      writeFileSync(outPath, r.output);
      await map.record(facts);
      return { src, original: facts, outPath };
    }),
  );
}

const PATIENTS = [
  { patientName: 'DOE^JANE^Q', patientId: 'MRN-0001', studyUid: '1.2.826.0.1.3680043.10.1138.7001' },
  { patientName: 'ROE^RICHARD', patientId: 'MRN-0002', studyUid: '1.2.826.0.1.3680043.10.1138.7002' },
];

describe('the re-identification map on files', () => {
  const tmp = tempDir('deid-idmap-');
  const mapDir = join(tmp.path, 'map');
  let map: IdMap;
  let objects: Processed[];
  afterAll(async () => {
    await map?.close();
    tmp.cleanup();
  });

  beforeAll(async () => {
    const files = PATIENTS.flatMap((p, i) =>
      writeStudy(join(tmp.path, `in${i}`), { ...p, sources: [{ file: 'pydicom/CT_small.dcm', series: 1, copies: 30 }, { file: 'pydicom/MR_small.dcm', series: 2, copies: 10 + 10 * i }] }),
    );
    map = await IdMap.open(mapDir, { key: envKey(), create: true, actor: 'test-runner' });
    objects = await deidentifyAndRecord(files, map, join(tmp.path, 'out'));
  });

  it('should round-trip every object by its new SOP Instance UID and by its original', async () => {
    expect(objects).toHaveLength(90);
    for (const o of objects) {
      const newSop = remapUid(SECRET, o.src.sopInstanceUid);
      expect(o.original.new.SOPInstanceUID).toBe(newSop);
      expect(await map.lookupNew(newSop)).toEqual([{ field: 'SOPInstanceUID', value: o.src.sopInstanceUid, objects: 1 }]);
      expect(await map.lookupOriginal(o.src.sopInstanceUid)).toEqual([{ field: 'SOPInstanceUID', value: newSop, objects: 1 }]);
    }
  });

  it('should find a patient, study and series through the keyed index with their object counts and date offset', async () => {
    const jane = objects.filter((o) => o.original.original.PatientID === 'MRN-0001');
    const newId = jane[0].original.new.PatientID;
    expect(newId).not.toBe('MRN-0001');
    // The research profile: pseudonymous PatientID and PatientName from a keyed hash, dates shifted.
    const byNew = await map.lookupNew(newId);
    expect(byNew).toEqual([{ field: 'PatientID', value: 'MRN-0001', objects: 40, dateOffsetDays: jane[0].original.dateOffsetDays }]);
    expect(typeof byNew[0].dateOffsetDays).toBe('number');
    expect(await map.lookupOriginal('MRN-0001')).toEqual([{ field: 'PatientID', value: newId, objects: 40, dateOffsetDays: jane[0].original.dateOffsetDays }]);
    expect(await map.lookupNew(remapUid(SECRET, PATIENTS[1].studyUid))).toEqual([{ field: 'StudyInstanceUID', value: PATIENTS[1].studyUid, objects: 50 }]);
    expect(await map.lookupOriginal(`${PATIENTS[0].studyUid}.2`)).toEqual([{ field: 'SeriesInstanceUID', value: remapUid(SECRET, `${PATIENTS[0].studyUid}.2`), objects: 10 }]);
    expect(await map.lookupOriginal('DOE^JANE^Q')).toEqual([{ field: 'PatientName', value: jane[0].original.new.PatientName, objects: 40 }]);
    // A pseudonym is no original, and an original no pseudonym.
    expect(await map.lookupOriginal(newId)).toEqual([]);
    expect(await map.lookupNew('MRN-0001')).toEqual([]);
  });

  it('should keep no identifier, date offset or time in the clear in the map folder', () => {
    const bytes = allBytes(mapDir);
    const values = objects.flatMap((o) => [...Object.values(o.original.original), ...Object.values(o.original.new)]).filter((v) => v.length > 3);
    for (const v of new Set(values)) expect(bytes.includes(v), v).toBe(false);
    // Name parts outside the sealed boxes: a box is base64, in which three letters such as DOE turn up by
    // chance (in one run of five).
    const outsideBoxes = bytes.replace(/"b":"[A-Za-z0-9+/=]*"/g, '');
    expect(outsideBoxes.length).toBeLessThan(bytes.length);
    for (const v of ['DOE', 'JANE', 'RICHARD', 'MRN-000']) expect(outsideBoxes.includes(v), v).toBe(false);
    expect(bytes).not.toMatch(/dateOffset|"d":|"t":/);
  });

  it('should write an audit entry for every lookup that names who and when, with the keyed token and never the value', async () => {
    const before = (await collect(map.auditEntries())).length;
    await map.lookupNew(objects[3].original.new.SOPInstanceUID);
    await map.lookupOriginal('ROE^RICHARD');
    const entries: AuditEntry[] = await collect(map.auditEntries());
    expect(entries).toHaveLength(before + 2);
    const [a, b] = entries.slice(-2);
    const tokens = new Tokenizer(deriveMapKeys(Buffer.from(KEY_HEX, 'hex')).index);
    expect(a).toMatchObject({ actor: 'test-runner', action: 'reid-new', query: tokens.token('new', objects[3].original.new.SOPInstanceUID), pid: process.pid });
    expect(b).toMatchObject({ actor: 'test-runner', action: 'reid-original', query: tokens.token('orig', 'ROE^RICHARD') });
    expect(Date.now() - Date.parse(b.at)).toBeLessThan(60_000);
    const log = readFileSync(join(mapDir, 'audit.log'), 'latin1');
    for (const v of ['ROE', 'RICHARD', objects[3].original.new.SOPInstanceUID, objects[3].src.sopInstanceUid]) expect(log.includes(v), v).toBe(false);
    expect(statSync(join(mapDir, 'audit.log')).mode & 0o777).toBe(0o600);
  });

  it('should refuse a wrong key before reading or writing anything', async () => {
    const before = listing(mapDir);
    await expect(IdMap.open(mapDir, { key: envKey(OTHER_KEY_HEX), create: true })).rejects.toMatchObject({ code: 'DEID_ERR_REID_KEY_MISMATCH' });
    await expect(IdMap.open(mapDir, { key: envKey(OTHER_KEY_HEX) })).rejects.toMatchObject({ code: 'DEID_ERR_REID_KEY_MISMATCH' });
    expect(listing(mapDir)).toEqual(before);
    await expect(IdMap.open(join(tmp.path, 'no-map'), { key: envKey() })).rejects.toMatchObject({ code: 'DEID_ERR_IDMAP' });
    expect(existsSync(join(tmp.path, 'no-map'))).toBe(false);
  });

  it('should refuse a record whose tokens were moved, even with a valid checksum', async () => {
    const dir = join(tmp.path, 'tampered');
    const m = await IdMap.open(dir, { key: envKey(), create: true });
    await Promise.all([0, 1].map((n) => m.record(objectRow(n, 0))));
    await m.close();
    const [seg] = segmentFiles(dir);
    const { rows } = decodeSegment(readFileSync(seg), 'seg');
    // Give row 0 the tokens of row 1 (a lookup of row 1's values would then find row 0), checksum redone.
    writeFileSync(seg, encodeRecord({ ...rows[0], tokens: rows[1].tokens }) + encodeRecord(rows[1]));
    const reopened = await IdMap.open(dir, { key: envKey() });
    await expect(collect(reopened.rows())).rejects.toMatchObject({ code: 'DEID_ERR_IDMAP_CORRUPT' });
    // A damaged record followed by good ones is not a torn tail: the read fails rather than skip it.
    writeFileSync(seg, encodeRecord(rows[0]).replace('"i":"', '"i":"X') + encodeRecord(rows[1]));
    await expect(collect(reopened.rows())).rejects.toMatchObject({ code: 'DEID_ERR_IDMAP_CORRUPT' });
    await reopened.close();
  });
});

describe('the file store\'s segment index', () => {
  const tmp = tempDir('deid-idmap-index-');
  afterAll(tmp.cleanup);

  it('should find rows through the index of a segment and in the bytes past it while its writer still appends', async () => {
    const dir = join(tmp.path, 'map');
    const writer = await IdMap.open(dir, { key: envKey(), create: true });
    const reader = await IdMap.open(dir, { key: envKey() });
    const record = (from: number, to: number) => Promise.all(Array.from({ length: to - from }, (_, i) => writer.record(objectRow(from + i, 5))));
    await record(0, 2500); // more than a megabyte: the first lookup indexes the segment
    const [seg] = segmentFiles(dir);
    expect(existsSync(`${seg}.idx`)).toBe(false);
    expect(await reader.lookupNew(objectRow(1234, 5).new.SOPInstanceUID)).toEqual([{ field: 'SOPInstanceUID', value: objectRow(1234, 5).original.SOPInstanceUID, objects: 1 }]);
    expect(existsSync(`${seg}.idx`)).toBe(true);
    await record(2500, 2600); // past the indexed prefix
    for (const n of [7, 2499, 2500, 2599]) {
      expect(await reader.lookupNew(objectRow(n, 5).new.SOPInstanceUID)).toEqual([{ field: 'SOPInstanceUID', value: objectRow(n, 5).original.SOPInstanceUID, objects: 1 }]);
    }
    // A patient whose rows lie on both sides of the indexed prefix.
    expect(await reader.lookupOriginal(objectRow(2550, 5).original.PatientID)).toEqual([expect.objectContaining({ field: 'PatientID', objects: 100 })]);
    await writer.close();
    await reader.close();
    // A damaged index is ignored and the segment scanned instead.
    writeFileSync(`${seg}.idx`, 'not an index');
    const again = await IdMap.open(dir, { key: envKey() });
    expect(await again.lookupNew(objectRow(42, 5).new.SOPInstanceUID)).toHaveLength(1);
    await again.close();
  });
});

describe('the re-identification key', () => {
  const tmp = tempDir('deid-reid-key-');
  afterAll(tmp.cleanup);

  it('should be created on first use with mode 0600 and read back the same', () => {
    const file = join(tmp.path, 'conf', 'reid-key');
    expect(() => loadReidKey({ file })).toThrow(expect.objectContaining({ code: 'DEID_ERR_REID_KEY' }));
    const created = loadReidKey({ file, create: true });
    expect(created).toMatchObject({ source: file, created: true });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);
    expect(loadReidKey({ file })).toMatchObject({ created: false, key: created.key });
  });

  it('should take $DEID_REID_KEY_FILE, then the key itself from $DEID_REID_KEY', () => {
    const file = join(tmp.path, 'env-key');
    writeFileSync(file, `${KEY_HEX}\n`, { mode: 0o600 });
    const saved = { f: process.env.DEID_REID_KEY_FILE, k: process.env.DEID_REID_KEY };
    try {
      process.env.DEID_REID_KEY_FILE = file;
      delete process.env.DEID_REID_KEY;
      expect(loadReidKey()).toMatchObject({ source: file, key: Buffer.from(KEY_HEX, 'hex') });
      process.env.DEID_REID_KEY = OTHER_KEY_HEX;
      expect(loadReidKey()).toMatchObject({ source: '$DEID_REID_KEY', key: Buffer.from(OTHER_KEY_HEX, 'hex') });
      process.env.DEID_REID_KEY = 'too short';
      expect(() => loadReidKey()).toThrow(expect.objectContaining({ code: 'DEID_ERR_REID_KEY' }));
    } finally {
      if (saved.f === undefined) delete process.env.DEID_REID_KEY_FILE;
      else process.env.DEID_REID_KEY_FILE = saved.f;
      if (saved.k === undefined) delete process.env.DEID_REID_KEY;
      else process.env.DEID_REID_KEY = saved.k;
    }
  });

  it('should refuse a key file that others can read', () => {
    const file = join(tmp.path, 'open-key');
    writeFileSync(file, KEY_HEX);
    chmodSync(file, 0o644);
    expect(() => loadReidKey({ file })).toThrow(expect.objectContaining({ code: 'DEID_ERR_REID_KEY' }));
  });

  it('should refuse a key kept inside the map folder', async () => {
    const mapDir = join(tmp.path, 'map');
    for (const file of [join(mapDir, 'reid-key'), join(mapDir, 'sub', 'k')]) {
      const key = loadReidKey({ file, create: true });
      await expect(IdMap.open(mapDir, { key, create: true })).rejects.toMatchObject({ code: 'DEID_ERR_REID_KEY_IN_MAP' });
    }
    expect(existsSync(join(mapDir, 'idmap.json'))).toBe(false);
  });
});

describe('the map under crashes and concurrent writers', () => {
  const tmp = tempDir('deid-idmap-crash-');
  afterAll(tmp.cleanup);

  it('should lose no acknowledged row and duplicate none when a writer is killed -9 mid-stream, and after the stream is retried', async () => {
    const location = join(tmp.path, 'crash');
    const killed = await runWriter({ location, count: 1000, from: 0, tag: 0 }, 300);
    expect(killed.signal).toBe('SIGKILL');
    expect(killed.acks.length).toBeGreaterThanOrEqual(300);
    expect(killed.acks.length).toBeLessThan(1000);
    // Whatever the kill left, a torn last record is what a crash in mid-write leaves: add one.
    const [seg] = segmentFiles(location);
    appendFileSync(seg, readFileSync(seg).toString('latin1').split('\n')[0].slice(0, 120), 'latin1');
    expect(decodeSegment(readFileSync(seg), 'seg').tornTail).toBe(true);

    const map = await IdMap.open(location, { key: envKey() });
    const rows: MapRow[] = await collect(map.rows());
    const sops = rows.map((r) => r.new.SOPInstanceUID);
    expect(new Set(sops).size).toBe(sops.length);
    for (const n of killed.acks) {
      expect(await map.lookupNew(objectRow(n, 0).new.SOPInstanceUID)).toEqual([{ field: 'SOPInstanceUID', value: objectRow(n, 0).original.SOPInstanceUID, objects: 1 }]);
    }
    // Every row read back is one the writer recorded, whole.
    for (const r of rows) {
      const n = Number(r.new.SOPInstanceUID.slice(-6));
      expect(r).toMatchObject({ original: objectRow(n, 0).original, new: objectRow(n, 0).new, dateOffsetDays: objectRow(n, 0).dateOffsetDays });
    }
    await map.close();

    // The pipeline retries the whole stream: rows stored already are not stored twice.
    const retried = await runWriter({ location, count: 1000, from: 0, tag: 0 });
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.acks).toHaveLength(1000);
    const after = await IdMap.open(location, { key: envKey() });
    const all: MapRow[] = await collect(after.rows());
    expect(all).toHaveLength(1000);
    expect(new Set(all.map((r) => r.original.SOPInstanceUID)).size).toBe(1000);
    await after.close();
  });

  it('should keep every row once when four processes write to one folder at once', async () => {
    const location = join(tmp.path, 'concurrent');
    // Two of them record the same 300 objects (a retry on another worker), two record their own.
    const runs = await Promise.all([0, 0, 2, 3].map((tag) => runWriter({ location, count: 300, from: 0, tag })));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    expect(segmentFiles(location).length).toBe(4);
    const map = await IdMap.open(location, { key: envKey() });
    const rows: MapRow[] = await collect(map.rows());
    expect(rows).toHaveLength(900);
    const expected = [0, 2, 3].flatMap((tag) => Array.from({ length: 300 }, (_, n) => objectRow(n, tag).new.SOPInstanceUID)).sort();
    expect(rows.map((r) => r.new.SOPInstanceUID).sort()).toEqual(expected);
    expect(await map.lookupOriginal(objectRow(0, 2).original.PatientID)).toEqual([expect.objectContaining({ field: 'PatientID', value: objectRow(0, 2).new.PatientID, objects: 100 })]);
    await map.close();
  });
});

describe('the map on Redis', () => {
  let redis: RedisHandle;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('should keep every row once with two writers at once, look up through the index and audit to a stream', async () => {
    const redisPrefix = 'test:idmap';
    const runs = await Promise.all([0, 0, 1].map((tag) => runWriter({ location: `unix:${redis.url}`, redisPrefix, count: 500, from: 0, tag })));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const map = await IdMap.open(`unix:${redis.url}`, { key: envKey(), redisPrefix, actor: 'redis-test' });
    const rows: MapRow[] = await collect(map.rows());
    expect(rows).toHaveLength(1000);
    expect(new Set(rows.map((r) => r.new.SOPInstanceUID)).size).toBe(1000);
    expect(await map.lookupNew(objectRow(417, 1).new.SOPInstanceUID)).toEqual([{ field: 'SOPInstanceUID', value: objectRow(417, 1).original.SOPInstanceUID, objects: 1 }]);
    expect(await map.lookupOriginal(objectRow(250, 0).original.StudyInstanceUID)).toEqual([{ field: 'StudyInstanceUID', value: objectRow(250, 0).new.StudyInstanceUID, objects: 20 }]);
    const audit: AuditEntry[] = await collect(map.auditEntries());
    expect(audit.map((a) => a.action)).toEqual(['export', 'reid-new', 'reid-original']);
    expect(JSON.stringify(audit)).not.toContain(objectRow(250, 0).original.StudyInstanceUID);
    await map.close();
    await expect(IdMap.open(`unix:${redis.url}`, { key: envKey(OTHER_KEY_HEX), redisPrefix })).rejects.toMatchObject({ code: 'DEID_ERR_REID_KEY_MISMATCH' });
  });

  it('should let deid run exit with its coded error, its map connection closed, when its manifest cannot be created after the map was opened', () => {
    const tmp = tempDir('deid-idmap-redis-run-');
    try {
      writeFileSync(join(tmp.path, 'a-file'), '');
      writeFileSync(join(tmp.path, 'secret'), 'idmap-redis-run-secret-0123456789\n', { mode: 0o600 });
      const r = spawnSync(
        process.execPath,
        [CLI, 'run', corpusFile('pydicom/CT_small.dcm'), '--out', join(tmp.path, 'out'), '--quarantine', join(tmp.path, 'q'), '--secret-file', join(tmp.path, 'secret'),
          '--id-map', `unix:${redis.url}`, '--redis-prefix', 'test:run-fails', '--manifest', join(tmp.path, 'a-file', 'manifest.csv')],
        { encoding: 'utf8', env: { ...process.env, DEID_REID_KEY: KEY_HEX }, timeout: 30_000 },
      );
      // Killed by the timeout (signal set, no status) is what an open connection did.
      expect(r.signal).toBeNull();
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('DEID_ERR_OUTPUT');
    } finally {
      tmp.cleanup();
    }
  });
});

/** `dcmdump`'s value of one top-level element (an independent reader of what we wrote). */
const dumps = new Map<string, string>();
function dumped(path: string, tag: string): string {
  if (!dumps.has(path)) dumps.set(path, dcmdump(path, ['+P', '0008,0018', '+P', '0020,000d', '+P', '0020,000e', '+P', '0010,0020'])!);
  const line = dumps.get(path)!.split('\n').find((l) => l.startsWith(tag));
  return /\[(.*?)\]/.exec(line ?? '')?.[1] ?? '';
}

/** Python's csv module reads the CSVs, as the validation script's pandas would. */
function readCsv(path: string): string[][] {
  const r = spawnSync('python3', ['-c', 'import csv,json,sys; print(json.dumps(list(csv.reader(open(sys.argv[1], newline="")))))', path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as string[][];
}

describe('deid reid and deid map export', () => {
  const tmp = tempDir('deid-reid-cli-');
  const mapDir = join(tmp.path, 'map');
  const keyFile = join(tmp.path, 'keys', 'reid-key');
  let objects: Processed[];
  afterAll(tmp.cleanup);

  beforeAll(async () => {
    const key = loadReidKey({ file: keyFile, create: true });
    const map = await IdMap.open(mapDir, { key, create: true });
    const files = PATIENTS.flatMap((p, i) => writeStudy(join(tmp.path, `in${i}`), { ...p, studyUid: `${p.studyUid}.9`, sources: [{ file: 'pydicom/CT_small.dcm', series: 1, copies: 4 }, { file: 'pydicom/MR_small.dcm', series: 2, copies: 3 }] }));
    // A patient ID the CSV must quote.
    files.push(...writeStudy(join(tmp.path, 'in-q'), { patientName: 'QUOTE^Q', patientId: 'ID,"7"', studyUid: '1.2.826.0.1.3680043.10.1138.7003', sources: [{ file: 'pydicom/CT_small.dcm', series: 1, copies: 2 }] }));
    objects = await deidentifyAndRecord(files, map, join(tmp.path, 'out'));
    await map.close();
  });

  it('should print the original of a new id, and the pseudonyms of an original', () => {
    const o = objects[5];
    const r = deid(['reid', '--id-map', mapDir, '--reid-key', keyFile, dumped(o.outPath, '(0008,0018)')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`SOPInstanceUID\t${o.src.sopInstanceUid}\n`);
    const p = deid(['reid', '--id-map', mapDir, '--reid-key', keyFile, '--original', 'MRN-0002']);
    expect(p.code, p.stderr).toBe(0);
    const newId = dumped(objects.find((x) => x.original.original.PatientID === 'MRN-0002')!.outPath, '(0010,0020)');
    expect(p.stdout).toMatch(new RegExp(`^PatientID\\t${newId}\\ndateOffsetDays\\t-?\\d+\\n$`));
  });

  it('should say that an id is not in the map without repeating it', () => {
    const r = deid(['reid', '--id-map', mapDir, '--reid-key', keyFile, '--original', 'NOBODY-123']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('DEID_ERR_NOT_FOUND');
    expect(r.stderr).not.toContain('NOBODY');
    expect(r.stdout).toBe('');
  });

  it('should refuse a wrong key with a coded error and print or write nothing', () => {
    const wrong = join(tmp.path, 'keys', 'wrong');
    writeFileSync(wrong, OTHER_KEY_HEX, { mode: 0o600 });
    const r = deid(['reid', '--id-map', mapDir, '--reid-key', wrong, '--original', 'MRN-0001']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('DEID_ERR_REID_KEY_MISMATCH');
    expect(r.stdout).toBe('');
    const out = join(tmp.path, 'wrong-export');
    const e = deid(['map', 'export', '--id-map', mapDir, '--reid-key', wrong, '--format', 'midi-b', '--out', out]);
    expect(e.code).toBe(1);
    expect(e.stderr).toContain('DEID_ERR_REID_KEY_MISMATCH');
    expect(listing(out)).toEqual([]);
    const missing = deid(['map', 'export', '--id-map', mapDir, '--reid-key', join(tmp.path, 'keys', 'none'), '--format', 'midi-b', '--out', out]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('DEID_ERR_REID_KEY');
    expect(listing(out)).toEqual([]);
  });

  it('should export the MIDI-B uid_mapping.csv and patid_mapping.csv that match the de-identified files', () => {
    const out = join(tmp.path, 'midi-b');
    const r = deid(['map', 'export', '--id-map', mapDir, '--reid-key', keyFile, '--format', 'midi-b', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['patid_mapping.csv', 'uid_mapping.csv']);
    const uids = readCsv(join(out, 'uid_mapping.csv'));
    const patids = readCsv(join(out, 'patid_mapping.csv'));
    expect(uids[0]).toEqual(['id_old', 'id_new']);
    expect(patids[0]).toEqual(['id_old', 'id_new']);
    // Expected from the files themselves, read by dcmdump: every source UID to the output's.
    const expectedUids = new Map<string, string>();
    const expectedPatids = new Map<string, string>();
    for (const o of objects) {
      for (const tag of ['(0020,000d)', '(0020,000e)', '(0008,0018)']) expectedUids.set(dumped(o.src.path, tag), dumped(o.outPath, tag));
      expectedPatids.set(o.original.original.PatientID, dumped(o.outPath, '(0010,0020)'));
    }
    expect(expectedUids.size).toBe(objects.length + 3 + 5);
    expect(new Map(uids.slice(1).map(([a, b]) => [a, b]))).toEqual(expectedUids);
    expect(uids.length - 1).toBe(expectedUids.size);
    expect(new Map(patids.slice(1).map(([a, b]) => [a, b]))).toEqual(expectedPatids);
    expect(patids.length - 1).toBe(3);
    expect(expectedPatids.get('ID,"7"')).toMatch(/^\w+$/);
    expect(r.stdout).toContain(`uid_mapping.csv: ${expectedUids.size} UID pair(s)`);
  });
});

describe('the keyed index tokens', () => {
  it('should be the HMAC-SHA256 of the kind and value under the index key, truncated, for values of any length and script', () => {
    const index = deriveMapKeys(Buffer.from(KEY_HEX, 'hex')).index;
    const tokens = new Tokenizer(index);
    const values = ['MRN-000', 'DOE^JANE', `1.2.826.0.1.3680043.2.1125.1.${'9'.repeat(30)}`, 'Ωmega^Ürsula', '山田^太郎', 'x'.repeat(5000), ''];
    for (const value of values) {
      for (const kind of ['orig', 'new'] as const) {
        // Twice: the second comes from the memo.
        for (let i = 0; i < 2; i++) expect(tokens.token(kind, value)).toBe(createHmac('sha256', index).update(`${kind}\0${value}`).digest('hex').slice(0, 32));
      }
    }
  });
});
