// The inference backend seen by the app: load an ONNX model from bytes, run it on float32
// tensors. Implemented with onnxruntime-node (native, fastest) and onnxruntime-web (WASM,
// runs where native addons cannot: edge runtimes, browsers, Deno).

export interface TensorData {
  data: Float32Array;
  dims: readonly number[];
}

export interface InferenceSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, TensorData>): Promise<Record<string, TensorData>>;
  release(): Promise<void>;
}

export interface InferenceBackend {
  /** Short name for /healthz and logs, e.g. 'onnxruntime-node'. */
  readonly name: string;
  load(model: Uint8Array): Promise<InferenceSession>;
}

/** Float32 copies of a session's outputs (the runtimes may reuse or free their buffers). */
export function floatOutputs(outputs: Record<string, { type: string; data: unknown; dims: readonly number[] }>): Record<string, TensorData> {
  const result: Record<string, TensorData> = {};
  for (const [name, t] of Object.entries(outputs)) {
    if (t.type !== 'float32' || !(t.data instanceof Float32Array)) throw new Error(`model output '${name}' is ${t.type}, expected float32`);
    result[name] = { data: new Float32Array(t.data), dims: [...t.dims] };
  }
  return result;
}
