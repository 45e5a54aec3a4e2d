// A serving worker thread: runs the models (onnxruntime-node) and encodes PNGs (nodePngEncoder)
// off the HTTP thread, a /sample request in one 'draw' job. onnxruntime-node runs a session synchronously on the thread that calls it, so
// inference on the main thread would hold up every other request; here it holds one worker.

import { parentPort, workerData } from 'node:worker_threads';
import { ortNodeBackend } from '../backend/ort-node.js';
import type { InferenceSession, TensorData } from '../backend/types.js';
import { nodePngEncoder } from '../png-sharp.js';
import { imagesOf } from '../registry.js';
import { renderSamples } from '../render.js';
import type { WorkerReply, WorkerRequest } from './pool.js';

const port = parentPort;
if (!port) throw new Error('src/serve/node/worker.ts runs as a worker thread of the server (WorkerPool), not on its own');

const backend = ortNodeBackend({ device: (workerData as { device?: 'cpu' | 'cuda' | 'webgpu' } | null)?.device ?? 'cpu' });
const encoder = nodePngEncoder();
const sessions = new Map<number, InferenceSession>();

async function handle(m: WorkerRequest): Promise<{ reply: WorkerReply; transfer: ArrayBuffer[] }> {
  switch (m.kind) {
    case 'load': {
      const s = await backend.load(m.bytes);
      sessions.set(m.model, s);
      return { reply: { id: m.id, ok: true, inputNames: [...s.inputNames], outputNames: [...s.outputNames] }, transfer: [] };
    }
    case 'run': {
      const s = sessions.get(m.model);
      if (!s) throw new Error(`model ${m.model} is not loaded in this worker`);
      const outputs: Record<string, TensorData> = await s.run(m.feeds);
      return { reply: { id: m.id, ok: true, outputs }, transfer: Object.values(outputs).map((t) => t.data.buffer as ArrayBuffer) };
    }
    case 'draw': {
      const s = sessions.get(m.model);
      if (!s) throw new Error(`model ${m.model} is not loaded in this worker`);
      const rendered = await renderSamples(imagesOf(m, await s.run(m.feeds)), m, encoder);
      if (!('png' in rendered)) return { reply: { id: m.id, ok: true, rendered }, transfer: [] };
      // A copy that owns its buffer, so that it can be transferred (sharp's may be pooled).
      const png = rendered.png.byteOffset === 0 && rendered.png.byteLength === rendered.png.buffer.byteLength ? rendered.png : rendered.png.slice();
      return { reply: { id: m.id, ok: true, rendered: { png } }, transfer: [png.buffer as ArrayBuffer] };
    }
    case 'release': {
      await Promise.all([...sessions.values()].map((s) => s.release()));
      sessions.clear();
      return { reply: { id: m.id, ok: true }, transfer: [] };
    }
  }
}

port.on('message', (m: WorkerRequest) => {
  handle(m).then(
    ({ reply, transfer }) => port.postMessage(reply, transfer),
    (err: Error) => port.postMessage({ id: m.id, ok: false, error: err.message } satisfies WorkerReply),
  );
});
