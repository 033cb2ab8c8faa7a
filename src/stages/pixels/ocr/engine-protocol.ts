import type { Gray8 } from '../render.js';
import type { Box } from '../text-regions.js';
import type { BoxParams, DetectedBox, EdgeFill } from './db-postprocess.js';
import type { ReadLine } from './ctc.js';

/** Messages between the text engine pool and its worker threads. */
export type EngineRequest =
  | { readonly id: number; readonly op: 'detect'; readonly gray: Gray8; readonly scale: number; readonly params?: BoxParams; readonly fill?: EdgeFill }
  | { readonly id: number; readonly op: 'recognize'; readonly gray: Gray8; readonly boxes: readonly Box[] };

export type EngineReply =
  | { readonly id: number; readonly boxes: DetectedBox[] }
  | { readonly id: number; readonly lines: ReadLine[] }
  | { readonly id: number; readonly error: string };

/** Sent once by a worker when its models are loaded. */
export const READY = 'ready';
