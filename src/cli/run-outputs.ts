import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DeidError } from '../errors.js';
import { ensureDirSync, tempNameFor, writeFileAtomicSync } from '../pipeline/durable-fs.js';
import { renderReportHtml } from '../report/html.js';
import { manifestHeader, manifestRow } from '../report/manifest.js';
import type { ObjectRecord } from '../report/object-record.js';
import type { SubmissionReportJson } from '../report/submission.js';

const outputError = (e: unknown) => new DeidError('DEID_ERR_OUTPUT', (e as NodeJS.ErrnoException).code ?? 'write failed');

/**
 * `deid run --manifest`: rows are written as files are counted (memory stays flat), into a temporary
 * file beside the target that takes its name, fsynced, when the run ends: a manifest is whole or absent.
 */
export class ManifestFile {
  private readonly tmp: string;
  private readonly fd: number;
  private pending = '';

  constructor(private readonly path: string) {
    try {
      ensureDirSync(dirname(path));
      this.tmp = tempNameFor(path);
      this.fd = openSync(this.tmp, 'w', 0o644);
    } catch (e) {
      throw outputError(e);
    }
    this.pending = manifestHeader();
  }

  add(r: ObjectRecord): void {
    this.pending += manifestRow(r);
    if (this.pending.length > 1 << 16) this.write();
  }

  private write(): void {
    try {
      writeSync(this.fd, this.pending);
    } catch (e) {
      throw outputError(e);
    }
    this.pending = '';
  }

  /** The run failed: no manifest rather than a partial one. */
  abort(): void {
    try {
      closeSync(this.fd);
    } finally {
      rmSync(this.tmp, { force: true });
    }
  }

  close(): void {
    this.write();
    try {
      fsyncSync(this.fd);
      closeSync(this.fd);
      renameSync(this.tmp, this.path);
    } catch (e) {
      rmSync(this.tmp, { force: true });
      throw outputError(e);
    }
  }
}

/** `--report x.html` also writes `x.json` beside it. */
export function reportJsonPath(htmlPath: string): string {
  const name = basename(htmlPath).replace(/\.html?$/i, '');
  return join(dirname(htmlPath), `${name}.json`);
}

/** Writes the report's HTML page and its JSON beside it; returns the JSON's path. */
export function writeReport(htmlPath: string, report: SubmissionReportJson): string {
  const jsonPath = reportJsonPath(htmlPath);
  try {
    writeFileAtomicSync(jsonPath, Buffer.from(JSON.stringify(report, null, 2) + '\n'), { durable: true });
    writeFileAtomicSync(htmlPath, Buffer.from(renderReportHtml(report)), { durable: true });
  } catch (e) {
    throw outputError(e);
  }
  return jsonPath;
}
