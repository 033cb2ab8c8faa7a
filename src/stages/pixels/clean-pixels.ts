import { findElement, withElement, type DicomFile, type Element, type Item } from '../../dicom/element.js';
import { initCodecs } from '../../dicom/pixels/codecs.js';
import type { PixelDescriptor } from '../../dicom/pixels/descriptor.js';
import { readPalette, type Palette } from '../../dicom/pixels/palette.js';
import { decodePixelData, encodePixelData, type PixelImage } from '../../dicom/pixels/pixel-data.js';
import { isNativeSyntax, outputSyntaxFor } from '../../dicom/transfer-syntax.js';
import { tagForKeyword } from '../../dicom/dictionary.js';
import { DeidError } from '../../errors.js';
import { asciiBytes, rawString } from '../../dicom/values.js';
import { optionCode } from '../../profiles/options.js';
import { isTextProneKind } from '../../profiles/text-prone.js';
import type { PixelSettings } from '../../profiles/pixel-settings.js';
import type { Identifier } from '../identifiers.js';
import { readText, type FrameSource } from './detect.js';
import { maskFrame } from './mask.js';
import { sharedOcrPool, type OcrPool } from './ocr-pool.js';
import { PhiMatcher, decideMasks } from './phi-boxes.js';
import { previewPng } from './preview.js';
import { frameWords, monochromeValues, renderBrightest, renderGray, renderLocalContrast, renderRgb, renderWindow, type FrameWords, type Gray8, type VoiWindow } from './render.js';
import type { NamedRender } from './find-text.js';
import { selectImage } from './select.js';
import { matchSignatures } from './signatures.js';
import { boxArea, clampBox, coveredShare, drawnIn, grow, type Box } from './text-regions.js';
import { keepMap, ultrasoundRegions } from './us-regions.js';
import { TAG } from '../../dicom/tag.js';

/**
 * Lines read with low confidence whose masks would blank more than this share of the frame are texture
 * that the detector took for text (noise enlarged into blocks, by a nearest-neighbour zoom or by the
 * detector's own enlarging of a small frame), not burned-in text. On the real and generated images of
 * `npm run eval:pixels` they blank at most 1.9% (the threshold is three times that); on noise cut from a
 * real radiograph's background, 200 to 320 pixels square, 5-25%, and on noisy radiographs zoomed twice,
 * up to half, with the lines read "surely" in that noise blanking more besides. Such an image
 * is quarantined for review (DEID_ERR_PIXEL_TEXTURE) rather than passed on blanked, or with whatever
 * text it holds. So is one where the detector found so many candidates that it read only the first,
 * and those were texture (find-text.ts).
 */
const TEXTURE_SHARE = 0.06;

/**
 * The pixel stage (PS3.15 Clean Pixel Data option): decides whether an image needs cleaning, finds
 * the regions to blank (profile signatures, OCR, optionally everything outside the ultrasound data
 * areas), masks them in every frame, and writes the pixels back without loss where the input had
 * none. Verification of the written bytes is a separate step (verify-pixels.ts) that the pipeline
 * runs on the output; BurnedInAnnotation is set to NO here and an output that fails verification is
 * never passed on.
 */
export interface PixelStageContext {
  readonly settings: PixelSettings;
  /** Defaults to the process-wide pool. */
  readonly pool?: OcrPool;
  /** Produce the before/after preview PNGs. */
  readonly previews?: boolean;
  /** Regions a reviewer drew: masked in every frame, and the image is cleaned even if not selected. */
  readonly manual?: readonly Box[];
  /** Text that verification found unmasked (pixel-stage.ts, verify-pixels.ts): masked in every frame, with the margin. */
  readonly verified?: readonly Box[];
}

export interface PixelBox extends Box {
  readonly source: 'ocr' | 'signature' | 'manual';
}

export interface PixelReport {
  readonly action: 'cleaned' | 'skipped';
  /** Why the image was (or was not) cleaned. Never quotes a patient value. */
  readonly reason: string;
  readonly frames?: number;
  /** Boxes masked in every frame, by coordinates only. */
  readonly boxes?: readonly PixelBox[];
  readonly signatures?: readonly string[];
  /** Ultrasound data areas kept (everything else blanked), when that option is on. */
  readonly ultrasoundRegions?: readonly Box[];
  readonly pixelsMasked?: number;
  /** What text finding did: counts only, never the text. */
  readonly text?: {
    /**
     * The first pass: 'text-free' (no strokes as dense as letters: nothing else ran), 'candidates'
     * (somewhere text may be: detected and read), or 'whole-frame' (an image of a kind that commonly
     * carries text is always read).
     */
    readonly firstPass: 'text-free' | 'candidates' | 'whole-frame';
    readonly linesMasked: number;
    /** Lines read with low confidence and masked from their shape and strokes (masked-unread). */
    readonly linesUnread: number;
    /** sensitive-text: lines kept as identifying no one. */
    readonly linesKept: number;
    /** Detector boxes that were not text (texture). */
    readonly candidatesDropped: number;
    readonly detections: number;
    /** Detections that may hold text (legible in size and shape): 0 when the detector found nothing that could be read. */
    readonly possibleLines: number;
    readonly recognitions: number;
  };
  readonly encoding?: string;
  readonly transferSyntaxUID?: string;
  readonly lossyRatio?: number;
  readonly previews?: { readonly before: Buffer; readonly after: Buffer };
}

export interface PixelStageResult {
  readonly file: DicomFile;
  readonly report: PixelReport;
}

/**
 * Adds 113101 (Clean Pixel Data Option) to DeidentificationMethodCodeSequence. The header stage
 * leaves it out: only images this stage cleaned claim it, and the pipeline passes them on only after
 * the written pixels pass verification.
 */
function withCleanPixelCode(ds: readonly Element[]): Element[] {
  const seq = findElement(ds, TAG.DeidentificationMethodCodeSequence);
  const code = optionCode('clean-pixel-data');
  const have = (seq?.items ?? []).some((it) => rawString(findElement(it.elements, TAG.CodeValue)?.value) === code.value);
  if (have) return [...ds];
  const item: Item = {
    undefinedLength: false,
    elements: [
      { tag: TAG.CodeValue, vr: 'SH', value: asciiBytes(code.value, 'SH') },
      { tag: TAG.CodingSchemeDesignator, vr: 'SH', value: asciiBytes(code.scheme, 'SH') },
      { tag: TAG.CodeMeaning, vr: 'LO', value: asciiBytes(code.meaning, 'LO') },
    ],
  };
  return withElement(ds, { tag: TAG.DeidentificationMethodCodeSequence, vr: 'SQ', undefinedLength: seq?.undefinedLength ?? false, items: [...(seq?.items ?? []), item] });
}

/** Many frames are not all rendered again to look at a strip: then it is taken to hold ink (masked). */
const INK_FRAMES = 16;

function drawnInAnyFrame(frames: ReturnType<typeof frameSource>, b: Box): boolean {
  if (frames.count > INK_FRAMES) return true;
  for (let i = 0; i < frames.count; i++) if (drawnIn(frames.gray(i), b)) return true;
  return false;
}

/** Images of a kind that commonly carries text, or that says it does: read whole, without the first pass. */
function textProne(ds: readonly Element[]): boolean {
  const text = (keyword: string) => rawString(findElement(ds, tagForKeyword(keyword)!)?.value).trim();
  return text('BurnedInAnnotation').toUpperCase() === 'YES' || isTextProneKind(text('Modality'), text('SOPClassUID'));
}

/** The data set's first VOI window, with the rescale to modality units; undefined without a usable one. */
export function voiWindowOf(ds: readonly Element[]): VoiWindow | undefined {
  const num = (keyword: string, fallback?: number) => {
    const v = parseFloat(rawString(findElement(ds, tagForKeyword(keyword)!)?.value).split('\\')[0]);
    return Number.isFinite(v) ? v : fallback;
  };
  const center = num('WindowCenter');
  const width = num('WindowWidth');
  if (center === undefined || width === undefined || width < 1) return undefined;
  return { center, width, slope: num('RescaleSlope', 1) || 1, intercept: num('RescaleIntercept', 0)! };
}

export function frameSource(image: PixelImage, palette?: Palette, voi?: VoiWindow): FrameSource & { cache: Map<number, Gray8> } {
  const cache = new Map<number, Gray8>();
  const d = image.desc;
  const gray = (i: number, words?: FrameWords) => {
    let g = cache.get(i);
    if (!g) {
      g = renderGray(d, image.frames[i], palette, words);
      // Keep renders of small images; large multi-frame objects are rendered again when needed.
      if (image.frames.length * g.data.length <= 64 * 1024 * 1024) cache.set(i, g);
    }
    return g;
  };
  return {
    count: image.frames.length,
    width: d.columns,
    height: d.rows,
    cache,
    gray,
    renders(i: number): NamedRender[] {
      // Both renders map the same distinct words: found once.
      const words = voi || !cache.has(i) ? frameWords(d, image.frames[i]) : undefined;
      const out: NamedRender[] = [{ name: 'stored', gray: gray(i, words) }];
      const windowed = voi && renderWindow(d, image.frames[i], voi, words);
      if (windowed) out.push({ name: 'window', gray: windowed });
      const brightest = renderBrightest(d, image.frames[i], palette);
      if (brightest) out.push({ name: 'brightest', gray: brightest });
      return out;
    },
    local(i: number): NamedRender {
      const values = monochromeValues(d, image.frames[i]);
      return { name: 'local', gray: values ? renderLocalContrast(values, d.columns, d.rows, d.photometric === 'MONOCHROME1') : renderLocalContrast(gray(i).data, d.columns, d.rows) };
    },
  };
}

export function paletteOf(ds: readonly Element[], d: PixelDescriptor): Palette | undefined {
  return d.photometric === 'PALETTE COLOR' ? readPalette(ds) : undefined;
}

/**
 * The share of the frame that boxes cover, their overlaps counted once. Only the comparison with
 * TEXTURE_SHARE needs it exact: boxes whose areas add up to less are not counted pixel by pixel.
 */
function frameShare(boxes: readonly Box[], width: number, height: number): number {
  const sum = boxes.reduce((s, b) => s + boxArea(clampBox(b, width, height)), 0);
  return sum < TEXTURE_SHARE * width * height ? sum / (width * height) : coveredShare(boxes, { x0: 0, y0: 0, x1: width, y1: height });
}

/**
 * Runs the stage on the header stage's output. `source` is the original data set (signatures and
 * selection look at attributes the header stage may have removed); `identifiers` are the source's
 * identifying values (sensitive-text mode).
 */
export async function cleanPixels(source: DicomFile, deidentified: DicomFile, identifiers: readonly Identifier[], ctx: PixelStageContext): Promise<PixelStageResult> {
  const s = ctx.settings;
  const manual = ctx.manual ?? [];
  const chosen = selectImage(source.dataset, s, source.meta);
  const selection = chosen.clean || !manual.length ? chosen : ({ clean: true, why: 'a reviewer drew regions to mask' } as const);
  if (!selection.clean) {
    return { file: deidentified, report: { action: 'skipped', reason: selection.why } };
  }

  await initCodecs();
  const ds = deidentified.dataset;
  const image = decodePixelData(ds, deidentified.transferSyntaxUID);
  const d = image.desc;
  const palette = paletteOf(ds, d);

  const sigHits = matchSignatures(s.signatures, source.dataset, d.columns, d.rows, source.meta);
  const sigBoxes = sigHits.flatMap((h) => h.boxes);
  const manualBoxes = manual.map((b) => clampBox(b, d.columns, d.rows)).filter((b) => b.x1 > b.x0 && b.y1 > b.y0);
  const fixed = [...sigBoxes, ...manualBoxes];
  const usRegions = s.ultrasoundRegions ? ultrasoundRegions(source.dataset, d.columns, d.rows) : [];
  const keep = usRegions.length ? keepMap(usRegions, d.columns, d.rows) : undefined;

  // Previews show the frame before anything was blanked: rendered just before the first mask, so that an
  // image left as it was costs no render.
  const previewFrame = 0;
  let before: ReturnType<typeof renderRgb> | undefined;
  const mask = (opts: Parameters<typeof maskFrame>[2]) => {
    if (ctx.previews) before ??= renderRgb(d, image.frames[previewFrame], palette);
    let n = 0;
    for (const f of image.frames) n += maskFrame(f, d, opts, palette);
    return n;
  };

  // Blank the fixed regions first: OCR then only has to read what is left.
  let pixelsMasked = 0;
  if (fixed.length || keep) pixelsMasked += mask({ boxes: fixed, keep });

  let ocrBoxes: Box[] = [];
  let text: PixelReport['text'];
  if (s.ocr) {
    const wholeFrame = textProne(source.dataset);
    const frames = frameSource(image, palette, voiWindowOf(ds));
    const read = await readText(frames, ctx.pool ?? sharedOcrPool(), { minConfidence: s.minConfidence / 100, firstPass: wholeFrame ? 'none' : 'strict' });
    const matcher = new PhiMatcher(identifiers);
    const maskOptions = { margin: s.margin, frame: { width: d.columns, height: d.rows }, inkIn: (b: Box) => drawnInAnyFrame(frames, b) };
    let lines = read.lines;
    // What masking the lines read with low confidence would blank, margins and all.
    const unsure = frameShare(decideMasks(lines.filter((l) => !l.read), s.mode, matcher, maskOptions).boxes, d.columns, d.rows);
    if (unsure > TEXTURE_SHARE || read.unreadCandidates > 0) {
      if (!manual.length) {
        throw new DeidError(
          'DEID_ERR_PIXEL_TEXTURE',
          read.unreadCandidates > 0 ? `${read.unreadCandidates} text candidates left unread: the first read as texture` : `lines read with low confidence would blank ${Math.round(100 * unsure)}% of the frame`,
        );
      }
      // A reviewer looked at it and drew the regions that hold text: they stand in for the detector's
      // reading of the texture (verification still re-reads what leaves).
      lines = [];
    }
    const decision = decideMasks(lines, s.mode, matcher, maskOptions);
    ocrBoxes = decision.boxes.map((b) => clampBox(b, d.columns, d.rows));
    text = { firstPass: wholeFrame ? 'whole-frame' : read.candidates ? 'candidates' : 'text-free', linesMasked: decision.masked, linesUnread: decision.unread, linesKept: decision.kept, candidatesDropped: read.dropped, detections: read.detections, possibleLines: read.possibleLines, recognitions: read.recognitions };
    if (ocrBoxes.length) pixelsMasked += mask({ boxes: ocrBoxes });
  }
  // After OCR, which then reads the image as it did before verification's second look (masked first,
  // they changed how the rest of a block read, and what it masked).
  const verifiedBoxes = (ctx.verified ?? []).map((b) => clampBox(grow(b, s.margin), d.columns, d.rows));
  if (verifiedBoxes.length) pixelsMasked += mask({ boxes: verifiedBoxes });

  const boxes: PixelBox[] = [...sigBoxes.map((b) => ({ ...b, source: 'signature' as const })), ...manualBoxes.map((b) => ({ ...b, source: 'manual' as const })), ...[...verifiedBoxes, ...ocrBoxes].map((b) => ({ ...b, source: 'ocr' as const }))];
  let out = ds;
  let transferSyntaxUID = deidentified.transferSyntaxUID;
  let encoding = 'unchanged';
  let lossyRatio: number | undefined;
  if (pixelsMasked > 0) {
    const nativeSyntax = isNativeSyntax(deidentified.transferSyntaxUID) ? outputSyntaxFor(deidentified.transferSyntaxUID) : outputSyntaxFor(source.transferSyntaxUID);
    const enc = encodePixelData(ds, image, nativeSyntax);
    out = enc.dataset;
    transferSyntaxUID = enc.transferSyntaxUID;
    encoding = enc.encoding;
    lossyRatio = enc.lossyRatio;
  }
  // Verified by the pipeline on the written bytes before anything leaves (verify-pixels.ts).
  out = withCleanPixelCode(withElement(out, { tag: TAG.BurnedInAnnotation, vr: 'CS', value: asciiBytes('NO', 'CS') }));

  // Only what was masked is worth a review: an untouched image gets no preview (no work, and no copy of its pixels on disk).
  let previews: PixelReport['previews'];
  if (before && pixelsMasked > 0) {
    const after = renderRgb(d, image.frames[previewFrame], palette);
    previews = { before: await previewPng(before, boxes, false, usRegions), after: await previewPng(after, boxes, true, usRegions) };
  }

  return {
    file: { ...deidentified, dataset: out, transferSyntaxUID },
    report: {
      action: 'cleaned',
      reason: selection.why,
      frames: image.frames.length,
      boxes,
      signatures: sigHits.map((h) => h.name),
      ultrasoundRegions: s.ultrasoundRegions ? usRegions : undefined,
      pixelsMasked,
      text,
      encoding,
      transferSyntaxUID,
      lossyRatio,
      previews,
    },
  };
}
