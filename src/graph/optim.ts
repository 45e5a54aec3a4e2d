// Optimizers as graph fragments: given gradients, they return the next parameters and the next
// optimizer state as graph values, so a whole training step is one plain ONNX graph.
// The learning rate of each parameter group and the step counter are graph inputs, so a
// schedule needs no re-emit.

import { type Graph, type Value } from './ir.js';
import * as o from './ops.js';

export type OptimizerSpec =
  | { kind: 'adam'; beta1?: number; beta2?: number; eps?: number }
  | { kind: 'adamw'; beta1?: number; beta2?: number; eps?: number; weightDecay: number }
  | { kind: 'sgd'; momentum?: number; weightDecay?: number };

export interface ParamGroup {
  /** The group's learning-rate input is named `lr` for the default group, `lr.<name>` otherwise. */
  name?: string;
  params: readonly Value[];
}

export interface OptimizerResult {
  /** Next value of each parameter and each state tensor, keyed by leaf name. */
  next: Map<string, Value>;
  /** Scalar metrics (e.g. the global gradient norm). */
  metrics: Record<string, Value>;
}

const leafName = (v: Value) => String(v.attrs.name);

/** Global-norm clipping: scales every gradient by min(1, maxNorm / ||g||). */
export function clipByGlobalNorm(grads: readonly Value[], maxNorm: number | null): { grads: Value[]; norm: Value } {
  const g = grads[0]!.graph;
  const sq = grads.map((d) => o.sumAll(o.mul(d, d)));
  const norm = o.sqrt(sq.reduce((a, b) => o.add(a, b)));
  if (maxNorm === null) return { grads: [...grads], norm };
  const scale = o.where(o.greater(norm, maxNorm), o.div(maxNorm, o.add(norm, 1e-6)), g.scalar(1));
  return { grads: grads.map((d) => o.mul(d, scale)), norm };
}

export function applyOptimizer(
  g: Graph,
  spec: OptimizerSpec,
  groups: readonly ParamGroup[],
  gradOf: ReadonlyMap<Value, Value>,
  step: Value,
): OptimizerResult {
  const next = new Map<string, Value>();
  for (const group of groups) {
    const lr = g.input(group.name ? `lr.${group.name}` : 'lr', []);
    for (const p of group.params) {
      const d = gradOf.get(p);
      if (!d) throw new Error(`optimizer: no gradient for parameter '${leafName(p)}'`);
      const name = leafName(p);
      if (spec.kind === 'sgd') {
        const gd = spec.weightDecay ? o.add(d, o.mul(p, spec.weightDecay)) : d;
        if (spec.momentum) {
          const buf = g.state(`${name}.momentum`, p.shape);
          const b = o.add(o.mul(buf, spec.momentum), gd);
          next.set(leafName(buf), b);
          next.set(name, o.sub(p, o.mul(b, lr)));
        } else {
          next.set(name, o.sub(p, o.mul(gd, lr)));
        }
        continue;
      }
      const b1 = spec.beta1 ?? 0.9;
      const b2 = spec.beta2 ?? 0.999;
      const eps = spec.eps ?? 1e-8;
      const m = g.state(`${name}.adam_m`, p.shape);
      const v = g.state(`${name}.adam_v`, p.shape);
      const m1 = o.add(o.mul(m, b1), o.mul(d, 1 - b1));
      const v1 = o.add(o.mul(v, b2), o.mul(o.mul(d, d), 1 - b2));
      // PyTorch's formulation: p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
      const bc1 = o.sub(1, o.pow(g.scalar(b1), step));
      const bc2 = o.sub(1, o.pow(g.scalar(b2), step));
      const stepSize = o.div(lr, bc1);
      const denom = o.add(o.div(o.sqrt(v1), o.sqrt(bc2)), eps);
      const base = spec.kind === 'adamw' ? o.mul(p, o.sub(1, o.mul(lr, spec.weightDecay))) : p;
      next.set(leafName(m), m1);
      next.set(leafName(v), v1);
      next.set(name, o.sub(base, o.mul(o.div(m1, denom), stepSize)));
    }
  }
  return { next, metrics: {} };
}
