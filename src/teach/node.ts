// The teaching step on onnxruntime-node: what the benchmark compares the browser with, and what
// the tests use to check the page's results in Node.

import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import type { TeachRuntime } from './core.js';

// All cores, as src/runtime/device.ts's sessions (onnxruntime's own default may count one).
export function nodeTeachRuntime(threads = availableParallelism()): TeachRuntime {
  return {
    tensor: (data, dims) => new ort.Tensor('float32', data, dims),
    // Step graphs take their weights as inputs: 'extended' as in src/runtime/step-runner.ts's StepRunner.
    session: (bytes, kind) => ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: kind === 'step' ? 'extended' : 'all' }),
  };
}
