// Running emitted step graphs: each step's `.next` outputs are fed straight back as the next
// step's inputs, so the weights stay onnxruntime tensors with no per-step JavaScript copy.

import * as ort from 'onnxruntime-node';
import { sizeOf } from '../graph/ir.js';
import { NEXT, stepName, type StepGraph, unrollSteps, type UnrolledSteps } from '../graph/step.js';
import { targetForDevice, type Target } from '../graph/onnx.js';
import { createSession, type RuntimeOptions } from './device.js';
import type { TensorStore } from './store.js';

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
   * The step runs as emitted for `opts.target`, by default the device's target.
   *
   * `stepsPerRun` > 1 also loads that many steps unrolled into one graph (`unrollSteps`), which
   * `runSteps` uses for batches of exactly that many steps: the parameters and optimizer state
   * come back once per run instead of once per step.
   */
  static async create(graph: StepGraph, store: TensorStore, opts: RuntimeOptions & { stepsPerRun?: number; target?: Target } = {}): Promise<StepRunner> {
    const { stepsPerRun = 1, target, ...runtime } = opts;
    // The step as lowered for the device (see `targetForDevice`), unless told otherwise; a graph
    // read back from a file runs as it is.
    const want = target ?? targetForDevice(runtime.device ?? 'cpu');
    if (graph.retarget && graph.target !== want) graph = graph.retarget(want);
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
