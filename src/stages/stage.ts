/**
 * The stage contract. A stage is a function of (object, context) → { output, facts }: it reads the
 * object as the previous stage left it, never changes it in place, and returns a new object (or
 * none, when it changed nothing) and what it learned. The pipeline runs one ordered list of stages
 * (src/pipeline/stage-list.ts), in `deid run` and in the service alike.
 */
import type { DicomFile } from '../dicom/element.js';
import type { Part10 } from '../dicom/part10.js';
import type { ElementDispositions } from './element-dispositions.js';
import type { HeaderReport } from './header.js';
import type { Identifier } from './identifiers.js';
import type { PixelReport } from './pixels/clean-pixels.js';
import type { PixelVerifyReport } from './pixels/verify-pixels.js';
import type { VerifyReport } from './verify.js';

/** The stages, in the order every object goes through those it needs. */
export const STAGE_ORDER = ['filter', 'header', 'pixels', 'verify', 'export'] as const;
export type StageName = (typeof STAGE_ORDER)[number];

/** Who an object is: its patient, and its study, series and instance. */
export interface ObjectIdentity {
  readonly patientId: string;
  readonly patientName: string;
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid: string;
  readonly sopInstanceUid: string;
  readonly sopClassUid: string;
  readonly accessionNumber: string;
}

/** The identity an output is filed and exported under: the new UIDs and the pseudonymous patient. */
export interface NewIdentity extends ObjectIdentity {
  /** The transfer syntax of the output's bytes. */
  readonly transferSyntaxUid: string;
}

/** The source's own identity, for authorised re-identification. */
export type OriginalIdentity = ObjectIdentity;

/** What the pixel stage found and did: PHI-free (boxes by coordinates, counts, the encoding). */
export interface PixelFacts {
  readonly report: Omit<PixelReport, 'previews'>;
  /** The re-reading of the written pixels, when something was cleaned. */
  readonly verify?: PixelVerifyReport;
}

/** Something a stage lets through but reports, e.g. an identifying attribute a profile keeps. PHI-free. */
export interface StageWarning {
  readonly kind: string;
  /** Where (a tag, a path) and why, never a value. */
  readonly detail: string;
}

/**
 * What the stages learn about an object, in the order they learn it:
 * - header: `identifiers`, `remappedUids`, `original`, `dateOffsetDays`, `identity`, `header`, and
 *   `dispositions` when the context asks for them (a tag inventory);
 * - pixels: `pixels`, `previews`, and `identity.transferSyntaxUid` when it re-encoded the pixels;
 * - verify: `verify`;
 * - export: `delivered`.
 * Any stage may add `warnings`. The source values (`identifiers`, `remappedUids`, `original`,
 * `dateOffsetDays`, the `previews`' before image) never leave the process: jobs carry only the
 * PHI-free facts (pipeline/jobs.ts), and the rest is derived again from the source after a durable
 * stage boundary.
 */
export interface ObjectFacts {
  /** Identifying values of the source, for the quality check and sensitive-text masking. */
  readonly identifiers?: readonly Identifier[];
  /** Source UIDs the profile remapped: each became `remapUid(secret, uid)` (keyed.ts), and none may remain. */
  readonly remappedUids?: ReadonlySet<string>;
  readonly original?: OriginalIdentity;
  /** The patient's date offset, when the profile shifted dates. */
  readonly dateOffsetDays?: number;
  readonly identity?: NewIdentity;
  readonly header?: HeaderReport;
  /** What the profile did to every element (PHI-free: tags, creators, actions), when the context asks. */
  readonly dispositions?: ElementDispositions;
  readonly pixels?: PixelFacts;
  /** Before/after PNGs of a masked image, for review. The before image shows the burned-in text. */
  readonly previews?: { readonly before: Buffer; readonly after: Buffer };
  readonly verify?: VerifyReport;
  readonly warnings?: readonly StageWarning[];
  /** Destinations that have the object. */
  readonly delivered?: readonly string[];
}

/** An object between stages. */
export interface StageObject {
  /** The object as received, parsed once. */
  readonly source: DicomFile;
  /** The object as the previous stage left it (the source, before the header stage). */
  readonly current: Part10;
  readonly facts: ObjectFacts;
  /** Where it came from (what the filter may decide on). */
  readonly origin: { readonly callingAE?: string };
}

export interface StageResult {
  /** The new object, when the stage changed it. */
  readonly output?: Part10;
  readonly facts?: ObjectFacts;
}

/** A stage: synchronous when it can be (the command line runs header-only profiles without a promise per object). */
export type Stage<Context> = (object: StageObject, context: Context) => StageResult | Promise<StageResult>;

/** The object after a stage: its output (or the same object), and the facts so far with the stage's added. */
export function afterStage(object: StageObject, result: StageResult): StageObject {
  const f = result.facts;
  if (!result.output && !f) return object;
  const warnings = f?.warnings && object.facts.warnings ? [...object.facts.warnings, ...f.warnings] : (f?.warnings ?? object.facts.warnings);
  return { ...object, current: result.output ?? object.current, facts: { ...object.facts, ...f, ...(warnings ? { warnings } : {}) } };
}
