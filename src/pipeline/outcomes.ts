/**
 * What the service keeps about each object besides the object itself: its row in the
 * re-identification map (opt-in), and its record (src/report/object-record.ts) for the per-study
 * manifests and the study and day reports. The stage runner calls in at two points: before the export
 * stage sends anything (the map row, durable first, so no destination ever holds an object the map
 * cannot reverse), and when the object leaves the pipeline, exported or quarantined (its record,
 * durable before the spooled original is deleted).
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ServiceConfig } from '../config.js';
import type { ErrorCode } from '../errors.js';
import { IdMap, identityFactsOf, isRedisLocation, loadReidKey } from '../idmap/index.js';
import type { CompiledProfile } from '../profiles/compile.js';
import { renderReportHtml } from '../report/html.js';
import { manifestHeader, manifestRow } from '../report/manifest.js';
import { objectDetails, type ObjectRecord } from '../report/object-record.js';
import { SubmissionReport, type SubmissionReportJson } from '../report/submission.js';
import { deidentifyHeader } from '../stages/header.js';
import type { StageObject } from '../stages/stage.js';
import type { ObjectJob } from './jobs.js';
import type { IngestSource } from './ports.js';
import { RecordLog, dayOf } from './record-log.js';
import type { StudyTracker } from './studies.js';

/** Where the service's map lives: the configured folder or URL, else Redis in Redis mode, else `<dataDir>/idmap`. */
export function idMapLocation(cfg: ServiceConfig): string {
  if (cfg.idMap?.path) return cfg.idMap.path;
  if (cfg.redis) return isRedisLocation(cfg.redis) ? cfg.redis : `unix:${cfg.redis}`;
  return join(cfg.dataDir, 'idmap');
}

/**
 * Opens the map when `idMap.enabled`: its key from `idMap.keyFile`, `$DEID_REID_KEY`,
 * `$DEID_REID_KEY_FILE` or `~/.config/deid/reid-key` (created on first use, and logged where). A
 * wrong key stops start-up (DEID_ERR_REID_KEY_MISMATCH), before any object is taken.
 */
export async function openServiceIdMap(cfg: ServiceConfig, log: Logger): Promise<IdMap | undefined> {
  if (!cfg.idMap?.enabled) return undefined;
  const key = loadReidKey({ file: cfg.idMap.keyFile, create: true });
  if (key.created) log.info({ path: key.source }, 'generated a re-identification key; every worker needs it, and only its holders can read the map');
  return IdMap.open(idMapLocation(cfg), { key, create: true, redisPrefix: cfg.idMap.redisPrefix, actor: 'deid service' });
}

/** Where an object came from, without a patient value: the ingest route, the calling AE, the peer. */
function sourceOf(origin: IngestSource): string {
  return [origin.kind, origin.callingAE, origin.remote && `from ${origin.remote}`].filter(Boolean).join(' ');
}

export interface OutcomeSettings {
  readonly secret: Uint8Array;
  readonly idMap?: IdMap;
  /** Records for manifests and reports (`reports.enabled`). */
  readonly records?: RecordLog;
}

export class ObjectOutcomes {
  constructor(private readonly s: OutcomeSettings) {}

  /** Whether the header stage should report what it did to every element (for the reports' tag inventory). */
  get dispositions(): boolean {
    return !!this.s.records;
  }

  /** Before the export stage sends the object anywhere: its map row, durable when this resolves. */
  async beforeExport(object: StageObject): Promise<void> {
    if (this.s.idMap) await this.s.idMap.record(identityFactsOf(object.facts));
  }

  /**
   * The object was exported to every destination: its record, durable when this resolves. `profile`
   * is the one the object was processed under (after a reload, or a requeue's own, not the start-up one).
   */
  async exported(job: ObjectJob, object: StageObject, profile: CompiledProfile): Promise<void> {
    const records = this.s.records;
    if (!records) return;
    let facts = object.facts;
    // Known when the header stage ran in this process; derived again (deterministically) when the job crossed a process.
    if (!facts.dispositions) facts = { ...facts, dispositions: deidentifyHeader(object.source, { profile, secret: this.s.secret, dispositions: true }).dispositions };
    const id = facts.identity;
    await records.append({
      source: sourceOf(job.origin),
      sha256: job.hash,
      outcome: 'written',
      output: (facts.delivered ?? []).join(' '),
      studyInstanceUid: id?.studyInstanceUid,
      seriesInstanceUid: id?.seriesInstanceUid,
      sopInstanceUid: id?.sopInstanceUid,
      study: job.study,
      at: new Date().toISOString(),
      details: objectDetails(facts, object.current.file.dataset, this.s.secret),
    });
  }

  /** The object was quarantined (at ingest, or by a stage): its record. */
  async quarantined(o: { hash: string; origin: IngestSource; study?: string }, stage: string, code: ErrorCode): Promise<void> {
    await this.s.records?.append({ source: sourceOf(o.origin), sha256: o.hash, outcome: 'quarantined', code, stage, ...(o.study ? { study: o.study } : {}), at: new Date().toISOString() });
  }

  /** Writes what is pending and releases the map and the record files. */
  async close(): Promise<void> {
    await this.s.records?.close();
    await this.s.idMap?.close();
  }
}

/** The admin API's view of the records: a study's manifest and report, a day's report. */
export class Submissions {
  constructor(
    private readonly log: RecordLog,
    private readonly tracker: StudyTracker,
    private readonly settings: { readonly kThreshold: number; readonly profile: CompiledProfile },
  ) {}

  /** A study's records, the latest per object; undefined for a study the tracker does not know. */
  async study(id: string): Promise<ObjectRecord[] | undefined> {
    const s = await this.tracker.get(id);
    if (!s) return undefined;
    // Every record falls between the study's first and last event; a day either side for clocks that differ between machines.
    const day = (iso: string, by: number) => dayOf(new Date(Date.parse(iso) + by * 86_400_000).toISOString());
    const [from, to] = [day(s.firstAt, -1), day(s.lastAt, 1)];
    const days = (await this.log.days()).filter((d) => d >= from && d <= to);
    return this.log.read(days, (r) => r.study === id);
  }

  async studyManifest(id: string): Promise<string | undefined> {
    const records = await this.study(id);
    return records && manifestHeader() + records.map(manifestRow).join('');
  }

  async studyReport(id: string): Promise<SubmissionReportJson | undefined> {
    const records = await this.study(id);
    return records && this.report(`Study ${id}`, records);
  }

  /** Every object that left the pipeline on a day (UTC), across studies; undefined for a day without any. */
  async dayReport(day: string): Promise<SubmissionReportJson | undefined> {
    if (!(await this.log.days()).includes(day)) return undefined;
    return this.report(`Day ${day} (UTC)`, await this.log.read([day]));
  }

  private report(title: string, records: readonly ObjectRecord[]): SubmissionReportJson {
    const r = new SubmissionReport();
    for (const record of records) r.add(record);
    const p = this.settings.profile;
    return r.report({ title, kThreshold: this.settings.kThreshold, profile: { name: p.name, options: [...p.options] } });
  }

  html(report: SubmissionReportJson): string {
    return renderReportHtml(report);
  }
}
