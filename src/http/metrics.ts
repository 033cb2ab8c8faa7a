import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ErrorCode } from '../errors.js';
import type { IngestSource } from '../pipeline/ports.js';
import type { PipelineObserver, StageName, StageStatus } from '../pipeline/runtime.js';
import type { ClusterStatus } from '../pipeline/status/types.js';

/**
 * Prometheus metrics. Two kinds, told apart by name:
 * - `deid_…` without `cluster`: this process (its ingest, the stages its workers ran, its durations);
 *   summing over every process's target gives the deployment;
 * - `deid_cluster_…` and `deid_queue_jobs`: the whole deployment as the status port and the queue
 *   see it, the same on every node (aggregate with max, not sum).
 * Labels are stages, sources, error codes and worker names: never PHI.
 */
export class Metrics implements PipelineObserver {
  readonly registry = new Registry();
  private readonly ingestTotal = new Counter({ name: 'deid_ingest_objects_total', help: 'Objects received by this process, by source and outcome', labelNames: ['source', 'outcome'], registers: [this.registry] });
  private readonly stageSeconds = new Histogram({
    name: 'deid_stage_duration_seconds',
    help: 'Time a stage took per object in this process',
    labelNames: ['stage'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [this.registry],
  });
  private readonly retries = new Counter({ name: 'deid_stage_retries_total', help: 'Stage attempts in this process that failed and were retried', labelNames: ['stage'], registers: [this.registry] });
  private readonly quarantinedTotal = new Counter({ name: 'deid_quarantined_total', help: 'Objects this process quarantined, by stage and code', labelNames: ['stage', 'code'], registers: [this.registry] });
  private readonly queueDepth = new Gauge({ name: 'deid_queue_jobs', help: 'Jobs per stage and state, whole deployment', labelNames: ['stage', 'state'], registers: [this.registry] });
  private readonly clusterJobs = new Gauge({ name: 'deid_cluster_stage_jobs', help: 'Jobs finished per stage and outcome (done, failed, retried), whole deployment', labelNames: ['stage', 'outcome'], registers: [this.registry] });
  private readonly clusterThroughput = new Gauge({ name: 'deid_cluster_stage_throughput', help: 'Objects per second per stage over the last minute, whole deployment', labelNames: ['stage'], registers: [this.registry] });
  private readonly workerJobs = new Gauge({ name: 'deid_cluster_worker_stage_jobs', help: 'Jobs finished per worker, stage and outcome', labelNames: ['worker', 'role', 'stage', 'outcome'], registers: [this.registry] });
  private readonly workers = new Gauge({ name: 'deid_cluster_workers', help: 'Processes reporting, by role and whether they are alive', labelNames: ['role', 'alive'], registers: [this.registry] });
  private readonly clusterIngest = new Gauge({ name: 'deid_cluster_ingest_objects', help: 'Objects received by source and outcome, whole deployment', labelNames: ['source', 'outcome'], registers: [this.registry] });
  private readonly clusterQuarantined = new Gauge({ name: 'deid_cluster_quarantined', help: 'Objects quarantined by stage and code, whole deployment', labelNames: ['stage', 'code'], registers: [this.registry] });

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

  /** Sets the deployment-wide series from a status snapshot, just before a scrape. */
  observeDeployment(stages: Record<string, StageStatus>, cluster?: ClusterStatus): void {
    for (const g of [this.queueDepth, this.clusterJobs, this.clusterThroughput, this.workerJobs, this.workers, this.clusterIngest, this.clusterQuarantined]) g.reset();
    for (const [stage, c] of Object.entries(stages)) {
      for (const state of ['queued', 'active'] as const) this.queueDepth.set({ stage, state }, c[state]);
      for (const outcome of ['done', 'failed', 'retried'] as const) this.clusterJobs.set({ stage, outcome }, c[outcome]);
      this.clusterThroughput.set({ stage }, c.throughput);
    }
    if (!cluster) return;
    const byRole = new Map<string, number>();
    for (const w of cluster.workers) {
      const key = `${w.role}|${w.alive}`;
      byRole.set(key, (byRole.get(key) ?? 0) + 1);
      for (const [stage, t] of Object.entries(w.stages)) {
        for (const outcome of ['done', 'failed', 'retried'] as const) this.workerJobs.set({ worker: w.id, role: w.role, stage, outcome }, t[outcome]);
      }
    }
    for (const [key, n] of byRole) {
      const [role, alive] = key.split('|');
      this.workers.set({ role, alive }, n);
    }
    for (const [source, t] of Object.entries(cluster.ingest)) {
      this.clusterIngest.set({ source, outcome: 'stored' }, t.stored);
      this.clusterIngest.set({ source, outcome: 'refused' }, t.refused);
    }
    for (const q of cluster.quarantined) this.clusterQuarantined.set({ stage: q.stage, code: q.code }, q.count);
  }
}
