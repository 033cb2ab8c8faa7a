export interface TruthText {
  readonly text: string;
  readonly bbox: [number, number, number, number];
}
export interface TruthItem {
  readonly key?: TruthText;
  readonly value: TruthText;
}
export interface TciaCase {
  readonly name: string;
  readonly path: string;
  readonly truth: TruthItem[];
}
export interface CliWord {
  readonly text: string;
  readonly conf: number;
  readonly box: { x0: number; y0: number; x1: number; y1: number };
}
export interface ImageScore {
  readonly total: number;
  readonly recalled: number;
  readonly recalledAsGiven: number;
  readonly trimmed: number;
  readonly invisible: number;
  readonly outside: number;
  readonly missed: Array<{ box: number[]; masked: number }>;
  readonly masked: number;
  readonly free: number;
  readonly tokensBefore: number;
  readonly tokens: number;
}
export function valueTokens(annotation: TruthItem[]): string[];
export function tciaCases(testdata: string): TciaCase[];
export function scoreImage(args: {
  truth: TruthItem[];
  width: number;
  height: number;
  values: ArrayLike<number>;
  boxes: ReadonlyArray<{ x0: number; y0: number; x1: number; y1: number }>;
  cliIn: CliWord[];
  cliOut: CliWord[];
}): ImageScore;
/** Words Debian's tesseract CLI reads in a PNG (one thread, sparse text), with boxes. */
export function tesseractWords(png: string): CliWord[];
