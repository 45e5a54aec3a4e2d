// Worker threads for the server's compute: each loads every model (its own onnxruntime-node
// sessions) and encodes PNGs (nodePngEncoder); a job goes to the worker with the fewest jobs in
// flight. The HTTP thread only parses, routes and writes. A /sample request is one 'draw' job
// (run the model, then renderSamples(), as in-process serving does), so one message each way.
// Same session options, the same encoder and the same functions as in-process serving, so the
// same bytes.

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { InferenceBackend, InferenceSession, TensorData } from '../backend/types.js';
import type { ModelRegistry } from '../registry.js';
import type { Rendered, Renderer, RenderOptions } from '../render.js';

export type WorkerRequest =
  | { id: number; kind: 'load'; model: number; bytes: Uint8Array }
  | { id: number; kind: 'run'; model: number; feeds: Record<string, TensorData> }
  | ({ id: number; kind: 'draw'; model: number; feeds: Record<string, TensorData>; output: string; file: string } & RenderOptions)
  | { id: number; kind: 'release' };

export type WorkerReply =
  | { id: number; ok: true; inputNames?: string[]; outputNames?: string[]; outputs?: Record<string, TensorData>; rendered?: Rendered }
  | { id: number; ok: false; error: string };

type Job = WorkerRequest extends infer R ? (R extends WorkerRequest ? Omit<R, 'id'> : never) : never;

interface Slot {
  worker: Worker;
  inFlight: number;
  dead: Error | null;
  pending: Map<number, { resolve: (r: WorkerReply & { ok: true }) => void; reject: (e: Error) => void }>;
}

function tsxApi(): string {
  // tsx's ESM entry (require.resolve would give the CommonJS one).
  return pathToFileURL(join(dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist', 'esm', 'api', 'index.mjs')).href;
}

export class WorkerPool {
  private nextId = 1;
  private nextModel = 0;
  /** The worker-side model number of each session this pool's backend loaded. */
  private readonly models = new WeakMap<InferenceSession, number>();
  private constructor(private readonly slots: Slot[]) {}

  static async start(count: number, options: { device?: 'cpu' | 'cuda' | 'webgpu' } = {}): Promise<WorkerPool> {
    if (!(Number.isInteger(count) && count >= 1)) throw new Error(`workers must be a whole number >= 1, got ${count}`);
    // From the sources (tsx) the worker is worker.ts; from dist/ it is serve-worker.js beside serve.js.
    const source = import.meta.url.endsWith('.ts');
    const url = source ? new URL('./worker.ts', import.meta.url) : new URL('./serve-worker.js', import.meta.url);
    const slots: Slot[] = [];
    for (let i = 0; i < count; i++) {
      // From the sources the worker registers tsx itself (a worker does not inherit the loader).
      const worker = source
        ? new Worker(`import(${JSON.stringify(tsxApi())}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); })`, { eval: true, workerData: { device: options.device ?? 'cpu' } })
        : new Worker(url, { workerData: { device: options.device ?? 'cpu' } });
      const slot: Slot = { worker, inFlight: 0, dead: null, pending: new Map() };
      const fail = (err: Error) => {
        slot.dead ??= err;
        for (const p of slot.pending.values()) p.reject(err);
        slot.pending.clear();
      };
      worker.on('message', (m: WorkerReply) => {
        const p = slot.pending.get(m.id);
        if (!p) return;
        slot.pending.delete(m.id);
        slot.inFlight--;
        if (m.ok) p.resolve(m);
        else p.reject(new Error(m.error));
      });
      worker.on('error', (err) => fail(new Error(`serving worker ${i} failed: ${err.message}`)));
      worker.on('exit', (code) => fail(new Error(`serving worker ${i} exited (code ${code})`)));
      slots.push(slot);
    }
    return new WorkerPool(slots);
  }

  get size(): number {
    return this.slots.length;
  }

  private send(slot: Slot, job: Job, transfer: ArrayBuffer[] = []): Promise<WorkerReply & { ok: true }> {
    if (slot.dead) return Promise.reject(slot.dead);
    const id = this.nextId++;
    slot.inFlight++;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ ...job, id }, transfer);
    });
  }

  /** The live worker with the fewest jobs in flight. */
  private pick(): Slot {
    let best: Slot | undefined;
    for (const s of this.slots) if (!s.dead && (!best || s.inFlight < best.inFlight)) best = s;
    if (!best) throw new Error(`every serving worker has stopped (${this.slots[0]?.dead?.message ?? 'none started'}); restart the server`);
    return best;
  }

  /** onnxruntime-node in the workers: a model loads in every worker, a run goes to one. */
  backend(): InferenceBackend {
    return {
      name: 'onnxruntime-node',
      load: async (bytes: Uint8Array): Promise<InferenceSession> => {
        const model = this.nextModel++;
        const replies = await Promise.all(this.slots.map((s) => this.send(s, { kind: 'load', model, bytes })));
        const session: InferenceSession = {
          inputNames: replies[0]!.inputNames!,
          outputNames: replies[0]!.outputNames!,
          run: async (feeds) => (await this.send(this.pick(), { kind: 'run', model, feeds })).outputs!,
          release: async () => undefined, // the pool's close() releases every session
        };
        this.models.set(session, model);
        return session;
      },
    };
  }

  /** /sample's model run and PNG encoding as one job in a worker, for a registry loaded with backend(). */
  renderer(registry: ModelRegistry): Renderer {
    return {
      encoderName: 'sharp', // nodePngEncoder's name: the workers encode with it, so the ETags are the same
      render: async (r) => {
        const run = registry.prepare(r.model, r.task, r.n, r.seed);
        const model = this.models.get(run.session);
        if (model === undefined) throw new Error('WorkerPool.renderer(): the registry was not loaded with this pool\'s backend()');
        const feeds = Object.values(run.feeds);
        const job = { kind: 'draw' as const, model, feeds: run.feeds, output: run.output, file: run.file, n: r.n, format: r.format, scale: r.scale };
        // The inputs are fresh arrays made for this run: move them instead of copying.
        return (await this.send(this.pick(), job, [...new Set(feeds.map((f) => f.data.buffer as ArrayBuffer))])).rendered!;
      },
    };
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.slots.filter((s) => !s.dead).map((s) => this.send(s, { kind: 'release' })));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
