/**
 * One object through the pipeline's stages in memory (stage-list.ts): `deid run` does this for every
 * file, and tools and tests call it directly.
 */
import type { DicomFile } from '../dicom/element.js';
import { Part10 } from '../dicom/part10.js';
import { readDicom } from '../dicom/reader.js';
import type { ScratchBuffer } from '../dicom/scratch-buffer.js';
import { DeidError } from '../errors.js';
import type { CompiledProfile } from '../profiles/compile.js';
import type { HeaderReport } from '../stages/header.js';
// Types only: the pixel stage (codecs, sharp, the text engine) loads on demand, so header-only runs never pay for it.
import type { PixelReport } from '../stages/pixels/clean-pixels.js';
import type { OcrPool } from '../stages/pixels/ocr-pool.js';
import type { PixelVerifyReport } from '../stages/pixels/verify-pixels.js';
import type { ObjectFacts, StageObject } from '../stages/stage.js';
import type { VerifyReport } from '../stages/verify.js';
import type { Destination } from './ports.js';
import { runStages, stageList } from './stage-list.js';

export interface ProcessContext {
  readonly profile: CompiledProfile;
  readonly secret: Uint8Array;
  /** Objects larger than this are refused (hostile sizes). */
  readonly maxBytes?: number;
  /** Pixel stage (clean-pixel-data): the OCR pool (default: the process-wide one) and whether to make previews. */
  readonly ocrPool?: OcrPool;
  readonly previews?: boolean;
  /** Encode the output into this reused area (a caller that writes each output out before the next). */
  readonly scratch?: ScratchBuffer;
  /** Also learn what the profile did to every element (`facts.dispositions`, for a tag inventory). */
  readonly dispositions?: boolean;
}

export interface ProcessedObject {
  readonly output: Buffer;
  /** The output as elements (parsed already: the stages hand the object on in both forms). */
  readonly outputFile: DicomFile;
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid: string;
  readonly sopInstanceUid: string;
  readonly header: HeaderReport;
  readonly verify: VerifyReport;
  /** Present when the profile has clean-pixel-data (processObjectAsync). */
  readonly pixels?: PixelReport;
  readonly pixelVerify?: PixelVerifyReport;
  readonly previews?: { before: Buffer; after: Buffer };
  /** Everything the stages learned. */
  readonly facts: ObjectFacts;
}

/** The object as received: parsed completely (a coded error otherwise), and kept as the bytes it came in. */
function received(input: Uint8Array, ctx: Pick<ProcessContext, 'maxBytes'>, origin: StageObject['origin'] = {}): StageObject {
  const source = readDicom(input, { maxBytes: ctx.maxBytes });
  return { source, current: Part10.of(source, input), facts: {}, origin };
}

function processed(o: StageObject): ProcessedObject {
  const f = o.facts;
  return {
    output: o.current.encode(),
    outputFile: o.current.file,
    studyInstanceUid: f.identity!.studyInstanceUid,
    seriesInstanceUid: f.identity!.seriesInstanceUid,
    sopInstanceUid: f.identity!.sopInstanceUid,
    header: f.header!,
    verify: f.verify!,
    pixels: f.pixels?.report,
    pixelVerify: f.pixels?.verify,
    previews: f.previews,
    facts: f,
  };
}

const noDestinations = { destinations: [] } as const;

/**
 * The stages up to the quality check on one object: parse completely, de-identify the header, write,
 * then re-parse and verify the written bytes. Anything wrong throws a coded DeidError (fail closed).
 */
export function processObject(input: Uint8Array, ctx: ProcessContext): ProcessedObject {
  // The pixel stage is asynchronous (OCR): never pass an object on with its pixels unexamined.
  if (ctx.profile.pixels) throw new DeidError('DEID_ERR_INTERNAL', 'clean-pixel-data needs processObjectAsync');
  const done = runStages(stageList({ profile: ctx.profile, through: 'verify' }), received(input, ctx), { ...ctx, ...noDestinations });
  if (done instanceof Promise) throw new DeidError('DEID_ERR_INTERNAL', 'an asynchronous stage in processObject');
  return processed(done);
}

/** The same, with the pixel stage between header and verify when the profile has clean-pixel-data. */
export async function processObjectAsync(input: Uint8Array, ctx: ProcessContext): Promise<ProcessedObject> {
  return processed(await runStages(stageList({ profile: ctx.profile, through: 'verify' }), received(input, ctx), { ...ctx, ...noDestinations }));
}

/** Every stage, export included: the de-identified object delivered to `destinations`. */
export async function processAndExport(input: Uint8Array, ctx: ProcessContext & { readonly destinations: readonly Destination[] }): Promise<ProcessedObject> {
  return processed(await runStages(stageList({ profile: ctx.profile }), received(input, ctx), ctx));
}
