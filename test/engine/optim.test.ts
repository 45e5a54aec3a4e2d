// Optimizer fragments against straightforward JavaScript implementations of PyTorch's update
// rules, run for a few steps through onnxruntime.

import { describe, expect, it } from 'vitest';
import { Graph } from '../../src/graph/ir.js';
import * as o from '../../src/graph/ops.js';
import { buildTrainStep } from '../../src/graph/step.js';
import type { OptimizerSpec } from '../../src/graph/optim.js';
import { StepRunner, TensorStore } from '../../src/runtime/index.js';

// loss = sum(a * p^2) + sum(q * c): gradients 2 a p and c.
const A = [0.5, 1.5, -0.7, 2.0];
const C = [0.3, -1.2];

async function runGraph(spec: OptimizerSpec, steps: number, clipNorm: number | null = null, lrs = { lr: 0.1, 'lr.slow': 0.01 }) {
  const g = new Graph();
  const p = g.param('p', [4], { kind: 'constant', value: 1 });
  const q = g.param('q', [2], { kind: 'constant', value: -0.5 });
  const loss = o.add(o.sumAll(o.mul(g.constant(A, [4]), o.mul(p, p))), o.sumAll(o.mul(q, g.constant(C, [2]))));
  const step = buildTrainStep(g, { name: 'step', loss, groups: [{ params: [p] }, { name: 'slow', params: [q] }], optimizer: spec, clipNorm, gradNorm: true });
  const store = new TensorStore();
  store.declare(g, 0);
  const r = await StepRunner.create(step, store, { threads: 1 });
  const norms: number[] = [];
  for (let i = 0; i < steps; i++) norms.push((await r.run(lrs)).grad_norm!);
  return { p: Array.from(store.read('p')), q: Array.from(store.read('q')), norms };
}

function reference(spec: OptimizerSpec, steps: number, clipNorm: number | null = null, lrs = [0.1, 0.01]) {
  const params = [[1, 1, 1, 1], [-0.5, -0.5]];
  const m = params.map((x) => x.map(() => 0));
  const v = params.map((x) => x.map(() => 0));
  const norms: number[] = [];
  for (let t = 1; t <= steps; t++) {
    let grads = [params[0]!.map((x, i) => 2 * A[i]! * x), [...C]];
    const norm = Math.sqrt(grads.flat().reduce((s, x) => s + x * x, 0));
    norms.push(norm);
    if (clipNorm !== null && norm > clipNorm) grads = grads.map((gr) => gr.map((x) => (x * clipNorm) / (norm + 1e-6)));
    params.forEach((pv, k) => {
      const lr = lrs[k]!;
      pv.forEach((x, i) => {
        const d = grads[k]![i]!;
        if (spec.kind === 'sgd') {
          const dd = d + (spec.weightDecay ?? 0) * x;
          m[k]![i] = (spec.momentum ?? 0) * m[k]![i]! + dd;
          pv[i] = x - lr * (spec.momentum ? m[k]![i]! : dd);
          return;
        }
        const b1 = spec.beta1 ?? 0.9;
        const b2 = spec.beta2 ?? 0.999;
        const eps = spec.eps ?? 1e-8;
        m[k]![i] = b1 * m[k]![i]! + (1 - b1) * d;
        v[k]![i] = b2 * v[k]![i]! + (1 - b2) * d * d;
        const base = spec.kind === 'adamw' ? x * (1 - lr * spec.weightDecay) : x;
        pv[i] = base - (lr / (1 - b1 ** t)) * (m[k]![i]! / (Math.sqrt(v[k]![i]!) / Math.sqrt(1 - b2 ** t) + eps));
      });
    });
  }
  return { p: params[0]!, q: params[1]!, norms };
}

// float32 against a float64 reference: 1 - 0.999^t loses about 5 digits in float32 at t = 1.
const close = (a: number[], b: number[], tol = 1e-5) => a.forEach((x, i) => expect(Math.abs(x - b[i]!), `${a} vs ${b}`).toBeLessThan(tol * (1 + Math.abs(b[i]!))));

describe('optimizers as graph fragments', () => {
  const cases: [string, OptimizerSpec][] = [
    ['adam', { kind: 'adam' }],
    ['adam betas (0.5, 0.9)', { kind: 'adam', beta1: 0.5, beta2: 0.9 }],
    ['adamw', { kind: 'adamw', weightDecay: 0.1 }],
    ['sgd', { kind: 'sgd' }],
    ['sgd momentum + weight decay', { kind: 'sgd', momentum: 0.9, weightDecay: 0.01 }],
  ];
  for (const [name, spec] of cases) {
    it(`${name}: 5 steps match the reference, per-group learning rates`, async () => {
      const got = await runGraph(spec, 5);
      const want = reference(spec, 5);
      close(got.p, want.p);
      close(got.q, want.q);
      close(got.norms, want.norms);
    });
  }

  it('global-norm clipping scales the update and reports the unclipped norm', async () => {
    const got = await runGraph({ kind: 'sgd' }, 3, 1.0);
    const want = reference({ kind: 'sgd' }, 3, 1.0);
    close(got.p, want.p);
    close(got.q, want.q);
    close(got.norms, want.norms);
    expect(got.norms[0]).toBeGreaterThan(1);
  });

  it('the gradient norm is an output only when asked for or when clipping', () => {
    const metricsOf = (extra: { clipNorm?: number; gradNorm?: boolean }) => {
      const g = new Graph();
      const p = g.param('p', [4], { kind: 'constant', value: 1 });
      return buildTrainStep(g, { name: 'step', loss: o.sumAll(o.mul(p, p)), groups: [{ params: [p] }], optimizer: { kind: 'sgd' }, ...extra }).metrics;
    };
    expect(metricsOf({})).toEqual(['loss']);
    expect(metricsOf({ gradNorm: true })).toEqual(['loss', 'grad_norm']);
    expect(metricsOf({ clipNorm: 1 })).toEqual(['loss', 'grad_norm']);
  });

  it('the learning rate is an input: a schedule needs no re-emit', async () => {
    const zero = await runGraph({ kind: 'sgd' }, 2, null, { lr: 0, 'lr.slow': 0 });
    expect(zero.p).toEqual([1, 1, 1, 1]);
    expect(zero.q).toEqual([-0.5, -0.5]);
  });
});
