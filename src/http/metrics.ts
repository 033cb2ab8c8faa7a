import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ErrorCode } from '../errors.js';
import type { IngestSource } from '../pipeline/ports.js';
import type { PipelineObserver, StageName } from '../pipeline/runtime.js';

/** Prometheus metrics of one process. Labels are stages, sources and error codes: never PHI. */
export class Metrics implements PipelineObserver {
  readonly registry = new Registry();
  private readonly ingestTotal = new Counter({ name: 'deid_ingest_objects_total', help: 'Objects received, by source and outcome', labelNames: ['source', 'outcome'], registers: [this.registry] });
  private readonly stageSeconds = new Histogram({
    name: 'deid_stage_duration_seconds',
    help: 'Time a stage took per object',
    labelNames: ['stage'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [this.registry],
  });
  private readonly retries = new Counter({ name: 'deid_stage_retries_total', help: 'Stage attempts that failed and were retried', labelNames: ['stage'], registers: [this.registry] });
  private readonly quarantinedTotal = new Counter({ name: 'deid_quarantined_total', help: 'Objects quarantined, by stage and code', labelNames: ['stage', 'code'], registers: [this.registry] });
  readonly queueDepth = new Gauge({ name: 'deid_queue_jobs', help: 'Jobs per stage and state', labelNames: ['stage', 'state'], registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'deid_' });
  }

  ingested(kind: IngestSource['kind'], ok: boolean): void {
    this.ingestTotal.inc({ source: kind, outcome: ok ? 'stored' : 'refused' });
  }
  stageDone(stage: StageName, ms: number): void {
    this.stageSeconds.observe({ stage }, ms / 1000);
  }
  stageRetried(stage: StageName): void {
    this.retries.inc({ stage });
  }
  quarantined(stage: string, code: ErrorCode): void {
    this.quarantinedTotal.inc({ stage, code });
  }
}
