// The runtime: onnxruntime-node sessions over emitted step graphs, with parameters, optimizer
// state and buffers kept as onnxruntime tensors. Each step's `.next` outputs are fed straight
// back as the next step's inputs: no per-step JavaScript copy of the weights.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import * as ort from 'onnxruntime-node';
import { type Graph, type InputRole, sizeOf } from '../graph/ir.js';
import { initialize } from '../graph/init.js';
import { NEXT, stepName, type StepGraph, unrollSteps, type UnrolledSteps } from '../graph/step.js';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from '../graph/safetensors.js';
import { writeFileAtomic } from '../util/fs.js';

export type Device = 'cpu' | 'cuda';

export interface RuntimeOptions {
  device?: Device;
  /** Intra-op threads; default: all cores. */
  threads?: number;
  /** Write onnxruntime's per-op profile (a JSON trace) with this file prefix. */
  profilePrefix?: string;
  /**
   * Whether the session's worker threads keep spinning after a run ('always', onnxruntime's
   * default: fastest when one session runs back to back) or stop when the run ends ('run':
   * fastest when several sessions take turns, as in training, where one session's spinning
   * threads would otherwise take the cores from the next). Default 'always'.
   */
  spin?: 'always' | 'run';
  /** onnxruntime's graph optimisation level; default 'all' (StepRunner: 'extended', see there). */
  optimization?: 'extended' | 'all';
}

const CUDA_INSTALL = 'npm run install:cuda';

/** Throws a clear error when the CUDA execution provider's libraries are not installed. */
export function checkDevice(device: Device): void {
  if (device === 'cpu') return;
  if (device !== 'cuda') throw new Error(`unknown device '${String(device)}': use 'cpu' or 'cuda'`);
  const req = createRequire(import.meta.url);
  const binding = req.resolve('onnxruntime-node/package.json');
  const dir = join(dirname(binding), 'bin', 'napi-v6', process.platform, process.arch);
  if (!existsSync(join(dir, 'libonnxruntime_providers_cuda.so'))) {
    throw new Error(
      `device 'cuda' was asked for, but onnxruntime-node's CUDA provider libraries are not installed (no libonnxruntime_providers_cuda.so in ${dir}). ` +
        `Install them with \`${CUDA_INSTALL}\` on a machine with CUDA 12 and cuDNN 9, or run with --device cpu.`,
    );
  }
}

export async function createSession(bytes: Uint8Array, opts: RuntimeOptions = {}): Promise<ort.InferenceSession> {
  const device = opts.device ?? 'cpu';
  checkDevice(device);
  return ort.InferenceSession.create(bytes, {
    executionProviders: [device],
    intraOpNumThreads: opts.threads ?? 0,
    interOpNumThreads: 1,
    graphOptimizationLevel: opts.optimization ?? 'all',
    enableProfiling: !!opts.profilePrefix,
    profileFilePrefix: opts.profilePrefix,
    ...(opts.spin === 'run' ? { extra: { session: { force_spinning_stop: '1' } } } : {}),
  });
}

export interface LeafSpec {
  name: string;
  role: InputRole;
  shape: number[];
  dtype: 'float32' | 'int64';
}

/**
 * Parameters, optimizer state and buffers of one model (shared by its step graphs, e.g. the
 * critic and generator steps), plus a step counter per step graph.
 */
export class TensorStore {
  readonly specs = new Map<string, LeafSpec>();
  readonly tensors = new Map<string, ort.Tensor>();
  readonly counters = new Map<string, number>();

  /** Declares the stored leaves of a graph (params, buffers, state), initialising new ones from the seed. */
  declare(g: Graph, seed: number): void {
    for (const leaf of g.leaves.values()) {
      if (leaf.role === 'input') continue;
      const spec: LeafSpec = { name: leaf.name, role: leaf.role, shape: [...leaf.value.shape], dtype: leaf.value.dtype === 'int64' ? 'int64' : 'float32' };
      const prev = this.specs.get(leaf.name);
      if (prev) {
        if (prev.shape.join() !== spec.shape.join()) {
          throw new Error(`'${leaf.name}' is declared with shape [${spec.shape}] but was stored with [${prev.shape}]`);
        }
        continue;
      }
      this.specs.set(leaf.name, spec);
      const data = initialize(leaf.init ?? { kind: 'zeros' }, spec.shape, seed, leaf.name);
      this.tensors.set(leaf.name, new ort.Tensor('float32', data, spec.shape));
    }
  }

  /**
   * Stores a tensor that belongs to no step graph (a weight average, a frozen copy) but is saved
   * and loaded with the checkpoint like the rest; `data` seeds it when it is new.
   */
  keep(name: string, data: Float32Array, shape: number[] = [data.length]): void {
    if (!this.specs.has(name)) this.specs.set(name, { name, role: 'buffer', shape: [...shape], dtype: 'float32' });
    this.tensors.set(name, new ort.Tensor('float32', data, shape));
  }

  get(name: string): ort.Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`no stored tensor named '${name}'`);
    return t;
  }

  /** A copy of a stored tensor's values as a Float32Array. */
  read(name: string): Float32Array {
    return Float32Array.from(this.get(name).data as Float32Array);
  }

  toSafetensors(metadata: Record<string, string> = {}): Uint8Array {
    const out = new Map<string, NamedTensor>();
    for (const [name, t] of this.tensors) out.set(name, { dtype: 'float32', shape: [...t.dims], data: t.data as Float32Array });
    const counters = JSON.stringify(Object.fromEntries(this.counters));
    return encodeSafetensors(out, { ...metadata, counters, format: CHECKPOINT_FORMAT });
  }

  /** Saves atomically (temp file + rename): a crash leaves the previous checkpoint whole. */
  save(path: string, metadata: Record<string, string> = {}): void {
    writeFileAtomic(path, this.toSafetensors(metadata));
  }

  /** Loads a checkpoint; names and shapes must match what was declared. Returns its metadata. */
  load(path: string): Record<string, string> {
    if (!existsSync(path)) throw new Error(`checkpoint ${path} does not exist`);
    const { tensors, metadata } = decodeSafetensors(readFileSync(path), path);
    if (metadata.format !== CHECKPOINT_FORMAT) {
      throw new Error(`checkpoint ${path} has format '${metadata.format ?? 'none'}', but this version reads '${CHECKPOINT_FORMAT}' (version 1 flattened convolution outputs channels-first). Start the run over (\`npm run train -- --fresh\` with the same settings), or use the version that wrote it.`);
    }
    const missing = [...this.specs.keys()].filter((n) => !tensors.has(n));
    const extra = [...tensors.keys()].filter((n) => !this.specs.has(n));
    if (missing.length || extra.length) {
      throw new Error(
        `checkpoint ${path} does not match this model: ` +
          (missing.length ? `missing ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}` : '') +
          (missing.length && extra.length ? '; ' : '') +
          (extra.length ? `unexpected ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ` and ${extra.length - 5} more` : ''}` : '') +
          '. Was it written by a different model configuration?',
      );
    }
    for (const [name, spec] of this.specs) {
      const t = tensors.get(name)!;
      if (t.shape.join() !== spec.shape.join()) {
        throw new Error(`checkpoint ${path}: '${name}' has shape [${t.shape}] but the model expects [${spec.shape}]. Was it written by a different model configuration?`);
      }
    }
    for (const [name, t] of tensors) this.tensors.set(name, new ort.Tensor('float32', t.data as Float32Array, t.shape));
    this.counters.clear();
    for (const [k, v] of Object.entries(JSON.parse(metadata.counters ?? '{}') as Record<string, number>)) this.counters.set(k, v);
    return metadata;
  }
}

/**
 * Version 2: linear layers after a convolution read its output flattened channels-last
 * (nn.flatten), so version-1 weights load with the right shapes but the wrong meaning.
 */
export const CHECKPOINT_FORMAT = 'lifelong-gen-checkpoint/2';

export type Feed = ort.Tensor | Float32Array | number;

/** One emitted step graph bound to a session and a store. */
export class StepRunner {
  private constructor(
    readonly graph: StepGraph,
    readonly session: ort.InferenceSession,
    readonly store: TensorStore,
    /** With `stepsPerRun` > 1: that many steps unrolled into one graph, and its session. */
    private readonly multi: { graph: UnrolledSteps; session: ort.InferenceSession } | null,
  ) {}

  /**
   * Step graphs take their weights as inputs, so the 'all' level's only addition over 'extended',
   * the NCHWc layout, gives their convolutions nothing and wraps each MaxPool in layout reorders
   * (1.3 ms of kernels per feature-net step; features_step 24.2 -> 23.6 ms, median of four A/B
   * runs; the other steps unchanged and every step's results bit-identical).
   *
   * `stepsPerRun` > 1 also loads that many steps unrolled into one graph (`unrollSteps`), which
   * `runSteps` uses for batches of exactly that many steps: the parameters and optimizer state
   * come back once per run instead of once per step.
   */
  static async create(graph: StepGraph, store: TensorStore, opts: RuntimeOptions & { stepsPerRun?: number } = {}): Promise<StepRunner> {
    const { stepsPerRun = 1, ...runtime } = opts;
    const session = await createSession(graph.bytes, { optimization: 'extended', ...runtime });
    let multi = null;
    if (stepsPerRun > 1) {
      const unrolled = unrollSteps(graph, stepsPerRun, new Set(store.specs.keys()));
      const prefix = runtime.profilePrefix ? `${runtime.profilePrefix}_x${stepsPerRun}` : undefined;
      multi = { graph: unrolled, session: await createSession(unrolled.bytes, { optimization: 'extended', ...runtime, profilePrefix: prefix }) };
    }
    return new StepRunner(graph, session, store, multi);
  }

  get steps(): number {
    return this.store.counters.get(this.graph.name) ?? 0;
  }

  /** Steps per run of `runSteps`' unrolled graph (1 when there is none). */
  get stepsPerRun(): number {
    return this.multi?.graph.steps ?? 1;
  }

  /** Runs one step: stored leaves are fed from the store, `step` from the counter, the rest from `feeds`. */
  async run(feeds: Record<string, Feed>): Promise<Record<string, number>> {
    const t = this.steps + 1;
    const inputs: Record<string, ort.Tensor> = {};
    for (const inp of this.graph.inputs) {
      if (this.store.specs.has(inp.name)) inputs[inp.name] = this.store.get(inp.name);
      else if (inp.name === 'step') inputs.step = new ort.Tensor('float32', Float32Array.of(t), []);
      else inputs[inp.name] = this.feed(feeds, inp.name, inp.shape);
    }
    const out = await this.session.run(inputs);
    for (const name of this.graph.updates) this.store.tensors.set(name, out[name + NEXT]!);
    this.store.counters.set(this.graph.name, t);
    const metrics: Record<string, number> = {};
    for (const m of this.graph.metrics) metrics[m] = (out[m]!.data as Float32Array)[0]!;
    return metrics;
  }

  /**
   * Runs one step per entry of `feeds`, in order, and returns each step's metrics. A batch of
   * exactly `stepsPerRun` steps takes one run of the unrolled graph; any other count, one run
   * per step. The results are the same either way.
   */
  async runSteps(feeds: readonly Record<string, Feed>[]): Promise<Record<string, number>[]> {
    const m = this.multi;
    if (!m || feeds.length !== m.graph.steps) {
      const out: Record<string, number>[] = [];
      for (const f of feeds) out.push(await this.run(f));
      return out;
    }
    const t = this.steps;
    const inputs: Record<string, ort.Tensor> = {};
    for (const inp of this.graph.inputs) if (this.store.specs.has(inp.name)) inputs[inp.name] = this.store.get(inp.name);
    const perStep = this.graph.inputs.filter((x) => m.graph.perStep.includes(x.name));
    feeds.forEach((f, i) => {
      for (const { name, shape } of perStep) {
        inputs[stepName(name, i)] = name === 'step' ? new ort.Tensor('float32', Float32Array.of(t + i + 1), []) : this.feed(f, name, shape);
      }
    });
    const out = await m.session.run(inputs);
    for (const name of this.graph.updates) this.store.tensors.set(name, out[name + NEXT]!);
    this.store.counters.set(this.graph.name, t + feeds.length);
    return feeds.map((_, i) => Object.fromEntries(this.graph.metrics.map((name) => [name, (out[stepName(name, i)]!.data as Float32Array)[0]!])));
  }

  /** Releases the sessions (this runner cannot run afterwards). */
  async release(): Promise<void> {
    await this.session.release();
    await this.multi?.session.release();
  }

  /** Ends onnxruntime profiling (writes the profile files) for every session. */
  endProfiling(): void {
    this.session.endProfiling();
    this.multi?.session.endProfiling();
  }

  private feed(feeds: Record<string, Feed>, name: string, shape: number[]): ort.Tensor {
    const f = feeds[name];
    if (f === undefined) throw new Error(`${this.graph.name}: missing input '${name}' [${shape}]`);
    return toTensor(f, shape, name, this.graph.name);
  }
}

function toTensor(f: Feed, shape: number[], name: string, step: string): ort.Tensor {
  if (typeof f !== 'number' && !(f instanceof Float32Array)) return f;
  const data = typeof f === 'number' ? Float32Array.of(f) : f;
  if (data.length !== sizeOf(shape)) throw new Error(`${step}: input '${name}' has ${data.length} values, expected shape [${shape}] (${sizeOf(shape)})`);
  return new ort.Tensor('float32', data, shape);
}
