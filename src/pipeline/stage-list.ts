/**
 * The pipeline, defined once: the ordered list of stages, and the runner that takes one object
 * through them in memory. `deid run` runs the list on each file; the service runs the same stages,
 * one queue worker per stage (runtime.ts), with the object and its facts handed from one to the next.
 */
import type { CompiledProfile } from '../profiles/compile.js';
import { filterStage, type FilterContext } from '../stages/filter.js';
import { headerStage, type HeaderContext } from '../stages/header-stage.js';
// Types only: the pixel stage (codecs, sharp, tesseract) loads on demand, so header-only runs never pay for it.
import type { PixelContext } from '../stages/pixels/pixel-stage.js';
import { STAGE_ORDER, afterStage, type Stage, type StageName, type StageObject } from '../stages/stage.js';
import { verifyStage, type VerifyContext } from '../stages/verify-stage.js';
import { exportStage, type ExportContext } from './export-stage.js';

/** Everything the stages read from their context. */
export type PipelineContext = FilterContext & HeaderContext & PixelContext & VerifyContext & ExportContext;

const pixelStage: Stage<PixelContext> = async (object, ctx) => (await import('../stages/pixels/pixel-stage.js')).pixelStage(object, ctx);

export const STAGES: { readonly [N in StageName]: Stage<PipelineContext> } = {
  filter: filterStage,
  header: headerStage,
  pixels: pixelStage,
  verify: verifyStage,
  export: exportStage,
};

/**
 * The stages an object goes through, in order: the filter when there is one, the header, the pixel
 * stage when the profile cleans pixel data, the quality check, and the export. A configuration can
 * leave out only the filter: every object is de-identified, checked and exported.
 */
export function stageList(opts: { profile: CompiledProfile; filter?: boolean; pixels?: boolean; through?: StageName }): StageName[] {
  const wanted = (s: StageName) => (s === 'filter' ? !!opts.filter : s === 'pixels' ? !!opts.pixels || opts.profile.options.has('clean-pixel-data') : true);
  const until = STAGE_ORDER.indexOf(opts.through ?? 'export');
  return STAGE_ORDER.filter((s, i) => i <= until && wanted(s));
}

/** The stage after `stage` in a list, if any. */
export function nextStage(list: readonly StageName[], stage: StageName): StageName | undefined {
  return list[list.indexOf(stage) + 1];
}

/**
 * Runs the stages on one object in memory, in order. Synchronous as long as every stage is (the
 * header-only command line), so that no promise is made per object where none is needed.
 */
export function runStages(list: readonly StageName[], object: StageObject, ctx: PipelineContext, from = 0): StageObject | Promise<StageObject> {
  let o = object;
  for (let i = from; i < list.length; i++) {
    const r = STAGES[list[i]](o, ctx);
    if (r instanceof Promise) return r.then((result) => runStages(list, afterStage(o, result), ctx, i + 1));
    o = afterStage(o, r);
  }
  return o;
}
