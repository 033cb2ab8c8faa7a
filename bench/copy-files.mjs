// The I/O floor: our own plain read + parse + write copy of every file, with the same worker threads.
import { availableParallelism } from 'node:os';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

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
  const { readDicom } = await import('../dist/dicom/reader.js');
  const { writeDicom } = await import('../dist/dicom/writer.js');
  for (const f of workerData.files) writeFileSync(join(workerData.outDir, basename(f)), writeDicom(readDicom(readFileSync(f))));
  parentPort?.close();
}
