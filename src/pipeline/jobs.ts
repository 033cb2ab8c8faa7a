/**
 * The pipeline's jobs: what a queue carries from one stage to the next. A job names its object by
 * store keys and hashes, never holds the object, and carries only the PHI-free facts.
 */
import { createHash } from 'node:crypto';
import type { ObjectFacts, StageName } from '../stages/stage.js';
import type { IngestSource } from './ports.js';
import type { ProfileChoice } from './profiles.js';
import type { JobData } from './queue/types.js';

/** The facts a job may carry: nothing of the source (stage.ts says which facts hold source values). */
export type PortableFacts = Pick<ObjectFacts, 'identity' | 'pixels' | 'warnings' | 'delivered'>;

export function portableFacts(f: ObjectFacts): PortableFacts {
  return {
    ...(f.identity ? { identity: f.identity } : {}),
    ...(f.pixels ? { pixels: f.pixels } : {}),
    ...(f.warnings ? { warnings: f.warnings } : {}),
    ...(f.delivered ? { delivered: f.delivered } : {}),
  };
}

export interface ObjectJob extends JobData {
  readonly id: string;
  /** Base id of the job in this stage; retries and requeues derive their ids from it. */
  readonly base: string;
  /** sha256 of the received bytes: the object's PHI-free identity in logs and keys. */
  readonly hash: string;
  /** Store key of the original, durable in the spool until the object leaves the pipeline. */
  readonly source: string;
  /** Store key of the object as the previous stage left it. */
  readonly input: string;
  /** The study's keyed hash (keyed.ts). */
  readonly study: string;
  readonly origin: IngestSource;
  readonly receivedAt: string;
  /** Intermediate outputs to delete once the object has left the pipeline. */
  readonly work: readonly string[];
  readonly facts?: PortableFacts;
  /** The configuration hash the object is processed under (profiles.ts); ids and work keys derive from it. */
  readonly config?: string;
  /** The profile chosen for this object by a requeue, for a process that has not loaded it yet. */
  readonly profile?: ProfileChoice;
  /** How often the object was requeued from quarantine. */
  readonly requeues?: number;
  /** Regions a reviewer drew (console): the pixel stage masks them in every frame, besides its own. */
  readonly regions?: readonly ManualRegion[];
  /** Approved in the review hold: export it without holding it again. */
  readonly reviewed?: boolean;
}

/** A rectangle to mask, in pixels of the image (x1, y1 exclusive). */
export interface ManualRegion {
  readonly x0: number;
  readonly y0: number;
  readonly x1: number;
  readonly y1: number;
}

/** The key job ids and work keys derive from: the configuration, and the drawn regions when there are any. */
export function variantOf(config: string, regions?: readonly ManualRegion[]): string {
  return regions?.length ? `${config}+${sha256(JSON.stringify(regions)).slice(0, 16)}` : config;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * Deterministic job ids: the stage, the object's hash and the configuration hash, so that a replay
 * of the same object under the same configuration is the same job.
 */
export class JobIds {
  constructor(private readonly first: StageName) {}

  id(stage: StageName, hash: string, config: string): string {
    return sha256(`${stage}|${hash}|${config}`).slice(0, 40);
  }

  /** Where a stage's output is kept between stages. */
  workKey(stage: StageName, hash: string, config: string): string {
    return `work/${stage}/${this.id(stage, hash, config)}.dcm`;
  }

  /** The first stage's job for a spooled object; `suffix` tells a requeue or a restart apart from the first delivery. */
  firstJob(
    o: { hash: string; key: string; study: string; origin: IngestSource; receivedAt: string; config: string; profile?: ProfileChoice; requeues?: number },
    suffix = '',
  ): ObjectJob {
    const base = `${this.id(this.first, o.hash, o.config)}${suffix}`;
    return {
      id: base,
      base,
      hash: o.hash,
      source: o.key,
      input: o.key,
      study: o.study,
      origin: o.origin,
      receivedAt: o.receivedAt,
      work: [],
      config: o.config,
      ...(o.profile ? { profile: o.profile } : {}),
      ...(o.requeues ? { requeues: o.requeues } : {}),
    };
  }
}
