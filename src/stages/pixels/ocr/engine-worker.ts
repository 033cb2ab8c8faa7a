import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { decodeCtc, LINE_HEIGHT, recognizerInput } from './ctc.js';
import { boxesFromProbability, detectorInput } from './db-postprocess.js';
import type { EngineReply, EngineRequest } from './engine-protocol.js';
import { DETECTOR_FILE, modelDir, RECOGNIZER_FILE, recognizerCharset } from './models.js';
import { READY } from './engine-protocol.js';

/**
 * A text engine thread: the detector and the recogniser as ONNX Runtime sessions with one thread
 * each (the pool runs one such thread per core). onnxruntime-node runs inference synchronously, so it
 * lives here and never on a thread that serves a protocol.
 */
const port = parentPort!;
const { startTimeoutMs } = workerData as { startTimeoutMs: number };
// A start that hangs ends this thread (the pool has stopped waiting for it by then).
const watchdog = setTimeout(() => process.exit(70), startTimeoutMs);

// Errors only: ONNX Runtime's warnings would reach the user's terminal from native code.
const options: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential', logSeverityLevel: 3, enableMemPattern: false };
const dir = modelDir();
const charset = recognizerCharset(dir);
const [detector, recognizer] = await Promise.all([
  ort.InferenceSession.create(join(dir, DETECTOR_FILE), options),
  ort.InferenceSession.create(join(dir, RECOGNIZER_FILE), options),
]);
clearTimeout(watchdog);

async function handle(m: EngineRequest): Promise<EngineReply> {
  if (m.op === 'detect') {
    const input = detectorInput(m.gray, m.scale, m.fill);
    const out = await detector.run({ [detector.inputNames[0]]: new ort.Tensor('float32', input.data, [1, 3, input.height, input.width]) });
    const prob = out[detector.outputNames[0]].data as Float32Array;
    return { id: m.id, boxes: boxesFromProbability(prob, input, m.gray, m.params) };
  }
  const lines = [];
  for (const b of m.boxes) {
    const input = recognizerInput(m.gray, b);
    if (!input) {
      lines.push({ text: '', confidence: 0, chars: [] });
      continue;
    }
    const out = await recognizer.run({ [recognizer.inputNames[0]]: new ort.Tensor('float32', input.data, [1, 3, LINE_HEIGHT, input.width]) });
    const t = out[recognizer.outputNames[0]];
    const [, steps, classes] = t.dims as number[];
    const x0 = Math.max(0, Math.floor(b.x0));
    const width = Math.min(m.gray.width, Math.ceil(b.x1)) - x0;
    lines.push(decodeCtc(t.data as Float32Array, steps, classes, charset, (step) => x0 + ((step + 0.5) * width) / steps));
  }
  return { id: m.id, lines };
}

port.on('message', (m: EngineRequest) => {
  handle(m).then(
    (reply) => port.postMessage(reply),
    (e: unknown) => port.postMessage({ id: m.id, error: e instanceof Error ? e.message : String(e) }),
  );
});
port.postMessage(READY);
