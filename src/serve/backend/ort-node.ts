// onnxruntime-node: the native CPU runtime (concurrent runs share its thread pool).

import * as ort from 'onnxruntime-node';
import { floatOutputs, type InferenceBackend, type InferenceSession, type TensorData } from './types.js';

export interface OrtNodeOptions {
  /** Threads per run (onnxruntime's default: one per physical core). */
  intraOpNumThreads?: number;
}

export function ortNodeBackend(options: OrtNodeOptions = {}): InferenceBackend {
  const sessionOptions: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], graphOptimizationLevel: 'all' };
  if (options.intraOpNumThreads !== undefined) sessionOptions.intraOpNumThreads = options.intraOpNumThreads;
  return {
    name: 'onnxruntime-node',
    async load(model: Uint8Array): Promise<InferenceSession> {
      const session = await ort.InferenceSession.create(model, sessionOptions);
      return {
        inputNames: session.inputNames,
        outputNames: session.outputNames,
        async run(feeds: Record<string, TensorData>) {
          const tensors: Record<string, ort.Tensor> = {};
          for (const [name, t] of Object.entries(feeds)) tensors[name] = new ort.Tensor('float32', t.data, t.dims);
          return floatOutputs(await session.run(tensors));
        },
        release: () => session.release(),
      };
    },
  };
}
