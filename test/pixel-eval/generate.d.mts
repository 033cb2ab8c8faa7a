/** A burned word of the evaluation set: its text, box (end-exclusive) and ink (1 per box pixel the text changed). */
export interface BurnedWord {
  readonly text: string;
  readonly box: { x0: number; y0: number; x1: number; y1: number };
  readonly ink: number;
  readonly inkMask: number[];
}

export interface EvalCase {
  readonly name: string;
  readonly path: string;
  readonly source: string;
  readonly desc: string;
  /** The burned words of each frame. */
  readonly truth: BurnedWord[][];
}

export const TESTDATA: string;
export const PATIENT: { name: string; id: string; birthDate: string; accession: string; institution: string };
/** Builds the evaluation set into `dir` (uses the built code in dist/). */
export function buildEvalSet(dir: string): Promise<EvalCase[]>;
