// The I/O floor: our own plain read + parse + write copy of every file, with the same worker threads.
import { availableParallelism } from 'node:os';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fromDist } from './lib.js';

if (isMainThread) {
  const [listFile, outDir] = process.argv.slice(2);
  const files = readFileSync(listFile, 'utf8').split('\n').filter(Boolean);
  mkdirSync(outDir, { recursive: true });
  const n = availableParallelism();
  await Promise.all(
    Array.from({ length: n }, (_, k) =>
      new Promise((res, rej) => {
        const w = new Worker(new URL(import.meta.url), { workerData: { files: files.filter((_, i) => i % n === k), outDir } });
        w.on('exit', res);
        w.on('error', rej);
      }),
    ),
  );
} else {
  const { readDicom } = await fromDist<typeof import('../src/dicom/reader.js')>('dicom/reader.js');
  const { writeDicom } = await fromDist<typeof import('../src/dicom/writer.js')>('dicom/writer.js');
  const { files, outDir } = workerData as { files: string[]; outDir: string };
  for (const f of files) writeFileSync(join(outDir, basename(f)), writeDicom(readDicom(readFileSync(f))));
  parentPort?.close();
}
