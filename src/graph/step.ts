// A training step as one graph: loss, gradients, optional clipping and the optimizer update.
// The step's outputs are named `<leaf>.next` for every parameter, state and buffer it updates,
// plus its metrics; the runtime feeds the `.next` tensors back as the next step's inputs.

import { type Graph, type Value } from './ir.js';
import { gradients } from './autodiff.js';
import { applyOptimizer, clipByGlobalNorm, type OptimizerSpec, type ParamGroup } from './optim.js';
import onnxProto from 'onnx-proto';
import { decodeModel, emitModel, type EmittedModel, type Target } from './onnx.js';

export const NEXT = '.next';

export interface StepSpec {
  name: string;
  loss: Value;
  groups: readonly ParamGroup[];
  optimizer: OptimizerSpec;
  /** Clip gradients to this global norm; null or absent: no clipping. */
  clipNorm?: number | null;
  /**
   * Output the global gradient norm as the metric `grad_norm` (always done when clipping). Off by
   * default: it reads every gradient once more (about 1.5 ms of a 55 ms student step).
   */
  gradNorm?: boolean;
  /** New values of buffers (e.g. spectral-norm vectors), keyed by buffer value. */
  bufferUpdates?: ReadonlyMap<Value, Value>;
  /** Extra scalar outputs to log. */
  metrics?: Record<string, Value>;
  /** The lowering target (see `Target`); default 'cpu'. */
  target?: Target;
}

export interface StepGraph extends EmittedModel {
  name: string;
  /** Leaf names updated by this step (each has an output `<name>.next`). */
  updates: string[];
  metrics: string[];
  /** The lowering target the bytes were emitted for; absent for a graph read back from a file. */
  target?: Target;
  /** The same step emitted for another target, from the same graph (absent for a graph read back from a file). */
  retarget?: (target: Target) => StepGraph;
}

export function buildTrainStep(g: Graph, spec: StepSpec): StepGraph {
  const params = spec.groups.flatMap((gr) => gr.params);
  const raw = gradients(spec.loss, params);
  raw.forEach((d, i) => {
    if (!d) throw new Error(`${spec.name}: the loss does not depend on parameter '${String(params[i]!.attrs.name)}'; leave it out of the step's parameter groups`);
  });
  const { grads, norm } = clipByGlobalNorm(raw as Value[], spec.clipNorm ?? null);
  const gradOf = new Map(params.map((p, i) => [p, grads[i]!]));
  const step = g.leaves.get('step')?.value ?? g.input('step', []);
  const { next } = applyOptimizer(g, spec.optimizer, spec.groups, gradOf, step);
  for (const [buf, v] of spec.bufferUpdates ?? []) next.set(String(buf.attrs.name), v);
  const report = spec.gradNorm || (spec.clipNorm ?? null) !== null;
  const outputs: Record<string, Value> = { loss: spec.loss, ...(report ? { grad_norm: norm } : {}), ...spec.metrics };
  const metrics = Object.keys(outputs);
  for (const [name, v] of next) outputs[name + NEXT] = v;
  const updates = [...next.keys()];
  const emit = (target: Target): StepGraph => ({ ...emitModel(g, { outputs, name: spec.name, target }), name: spec.name, updates, metrics, target, retarget: emit });
  return emit(spec.target ?? 'cpu');
}

/** The per-step copy of input or metric `name` in an unrolled graph (see `unrollSteps`). */
export const stepName = (name: string, i: number) => `${name}@${i}`;

export interface UnrolledSteps extends EmittedModel {
  /** Steps per run. */
  steps: number;
  /** Inputs fed once per run, unchanged by it (stored leaves the step does not update). */
  shared: string[];
  /** Inputs that each step takes anew, as `stepName(name, i)`: data, noise, learning rate, step counter. */
  perStep: string[];
}

/**
 * `k` consecutive training steps as one ONNX graph: step i's updated leaves (`<leaf>.next`) are
 * step i+1's inputs inside the graph, so a run returns the parameters and optimizer state once
 * instead of k times (onnxruntime-node copies every output into a fresh JavaScript buffer). The
 * nodes are copies of the step graph's, so k steps here compute exactly what k runs of it do.
 * Inputs named in `stored` but not updated by the step are fed once; the rest (batches, noise,
 * `lr`, `step`) per step as `stepName(name, i)`, and each metric is output per step the same way.
 */
export function unrollSteps(step: StepGraph, k: number, stored: ReadonlySet<string>): UnrolledSteps {
  if (!Number.isInteger(k) || k < 1) throw new Error(`unrollSteps: steps per run must be a positive integer, got ${k}`);
  const model = decodeModel(step.bytes);
  const g = model.graph!;
  const updated = new Set(step.updates);
  const inits = new Set((g.initializer ?? []).map((t) => t.name!));
  const produced = new Set((g.node ?? []).flatMap((n) => n.output ?? []));
  const next = new Set(step.updates.map((u) => u + NEXT));
  const metrics = new Set(step.metrics);
  const shared = step.inputs.filter((i) => stored.has(i.name) && !updated.has(i.name)).map((i) => i.name);
  const perStep = step.inputs.filter((i) => !stored.has(i.name) && !updated.has(i.name)).map((i) => i.name);
  const sharedSet = new Set(shared);
  const once = new Set([...updated, ...shared]);

  const nodes: onnxProto.onnx.INodeProto[] = [];
  for (let i = 0; i < k; i++) {
    const rename = (t: string): string => {
      if (!t || inits.has(t) || sharedSet.has(t)) return t;
      if (next.has(t)) return i === k - 1 ? t : `${i}/${t}`; // the last step's updates are the graph's
      if (metrics.has(t)) return stepName(t, i);
      if (produced.has(t)) return `${i}/${t}`;
      if (updated.has(t)) return i === 0 ? t : `${i - 1}/${t}${NEXT}`; // the previous step's update
      return stepName(t, i); // a per-step input
    };
    for (const n of g.node ?? []) nodes.push({ ...n, name: `${i}/${n.name}`, input: (n.input ?? []).map(rename), output: (n.output ?? []).map(rename) });
  }
  const origin = new Map<string, string>(); // per-step copy -> the step graph's name
  const copies = <T extends { name: string }>(x: T): T[] =>
    Array.from({ length: k }, (_, i) => (origin.set(stepName(x.name, i), x.name), { ...x, name: stepName(x.name, i) }));
  const inputs = [...step.inputs.filter((x) => once.has(x.name)), ...step.inputs.filter((x) => !once.has(x.name)).flatMap(copies)];
  const outputs = step.outputs.flatMap((x) => (metrics.has(x.name) ? copies(x) : [x]));
  const info = new Map([...(g.input ?? []), ...(g.output ?? [])].map((v) => [v.name!, v]));
  const infoOf = (name: string) => ({ ...info.get(origin.get(name) ?? name)!, name });
  const graph = { ...g, name: `${g.name}_x${k}`, node: nodes, input: inputs.map((x) => infoOf(x.name)), output: outputs.map((x) => infoOf(x.name)) };
  return {
    bytes: onnxProto.onnx.ModelProto.encode(onnxProto.onnx.ModelProto.create({ ...model, graph })).finish(),
    inputs,
    outputs,
    nodeCount: nodes.length,
    steps: k,
    shared,
    perStep,
  };
}
