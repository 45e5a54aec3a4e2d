// onnxruntime-web: the WASM runtime, for places without native addons (edge runtimes, Deno,
// browsers). The same package runs in Node (it resolves to its Node build there).

import * as ort from 'onnxruntime-web';
import { floatOutputs, type InferenceBackend, type InferenceSession, type TensorData } from './types.js';

export interface OrtWebOptions {
  /** Where the ort-wasm-*.wasm / .mjs files are: a URL prefix, or a folder path ending in '/' under Node. */
  wasmPaths?: string;
  /** The .wasm binary itself, for runtimes that cannot fetch or read files. */
  wasmBinary?: ArrayBuffer | Uint8Array;
  /** WASM threads; 1 needs neither workers nor SharedArrayBuffer. */
  numThreads?: number;
}

export function ortWebBackend(options: OrtWebOptions = {}): InferenceBackend {
  // ort.env is global to the process; set it once, before the first session.
  ort.env.wasm.numThreads = options.numThreads ?? 1;
  if (options.wasmPaths !== undefined) ort.env.wasm.wasmPaths = options.wasmPaths;
  if (options.wasmBinary !== undefined) ort.env.wasm.wasmBinary = options.wasmBinary;
  return {
    name: 'onnxruntime-web',
    async load(model: Uint8Array): Promise<InferenceSession> {
      const session = await ort.InferenceSession.create(model, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
      // One WASM instance runs one call at a time: queue them.
      let tail: Promise<unknown> = Promise.resolve();
      return {
        inputNames: session.inputNames,
        outputNames: session.outputNames,
        run(feeds: Record<string, TensorData>) {
          const result = tail.then(async () => {
            const tensors: Record<string, ort.Tensor> = {};
            for (const [name, t] of Object.entries(feeds)) tensors[name] = new ort.Tensor('float32', t.data, t.dims);
            return floatOutputs(await session.run(tensors));
          });
          tail = result.catch(() => undefined);
          return result;
        },
        release: () => session.release(),
      };
    },
  };
}
