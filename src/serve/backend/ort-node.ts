// onnxruntime-node: the native CPU runtime (concurrent runs share its thread pool).

import * as ort from 'onnxruntime-node';
import { floatOutputs, type InferenceBackend, type InferenceSession, type TensorData } from './types.js';

export interface OrtNodeOptions {
  /** Threads per run (default 1: concurrent requests use the other cores). */
  intraOpNumThreads?: number;
  /** Execution provider (default cpu); check it first with probeDevice. */
  device?: 'cpu' | 'cuda' | 'webgpu';
}

export function ortNodeBackend(options: OrtNodeOptions = {}): InferenceBackend {
  // One thread per run and no spinning: a server runs many small runs at once, and threads that
  // spin-wait between runs take the cores from the HTTP loop and the PNG encoder.
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: [options.device ?? 'cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: options.intraOpNumThreads ?? 1,
    extra: { session: { 'intra_op.allow_spinning': '0', 'inter_op.allow_spinning': '0' } },
  };
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
