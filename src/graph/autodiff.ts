// Reverse-mode autodiff over the IR. The result is ordinary graph values built with the
// same ops, so it can be differentiated again (WGAN-GP's gradient penalty does).

import { type Value, fmtShape, sameShape } from './ir.js';
import { add, reduceSum, reshape, rules, type OpRule, type Prim } from './ops.js';

/** Reduces a gradient computed at a broadcast shape back to the shape of the input it belongs to. */
export function unbroadcast(g: Value, shape: readonly number[]): Value {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  if (lead < 0) throw new Error(`gradient ${g} has lower rank than its input ${fmtShape(shape)}`);
  const axes: number[] = [];
  g.shape.forEach((d, i) => {
    if (i < lead || (shape[i - lead] === 1 && d !== 1)) axes.push(i);
  });
  return reshape(axes.length ? reduceSum(g, axes, 1) : g, shape);
}

/**
 * Gradients of the scalar `y` (or of <seed, y> for a non-scalar y) with respect to each of `xs`.
 * An x that `y` does not depend on gets null.
 */
export function gradients(y: Value, xs: readonly Value[], seed?: Value): (Value | null)[] {
  const g = y.graph;
  if (!seed && y.size !== 1) throw new Error(`gradients: y ${y} is not a scalar; pass a seed cotangent of the same shape`);
  // Nodes that both depend on some x and lead to y; ids are a topological order.
  const dependsOnX = new Set<number>(xs.map((x) => x.id));
  for (const v of g.nodes) {
    if (v.id > y.id) break;
    if (v.inputs.some((i) => dependsOnX.has(i.id))) dependsOnX.add(v.id);
  }
  const cot = new Map<number, Value>();
  cot.set(y.id, seed ?? (y.shape.length ? reshape(g.scalar(1), y.shape) : g.scalar(1)));
  for (let id = y.id; id >= 0; id--) {
    const v = g.nodes[id]!;
    const dy = cot.get(id);
    if (!dy || v.inputs.length === 0) continue;
    const rule = (rules as Record<string, OpRule<Prim>>)[v.op];
    const wanted = v.inputs.some((i) => dependsOnX.has(i.id) && i.dtype === 'float32');
    if (!wanted) continue;
    if (!rule?.grad) throw new Error(`gradients: ${v.op} has no gradient rule, but ${v} lies between y and an input being differentiated`);
    const grads = rule.grad(dy, { inputs: v.inputs, output: v, attrs: v.attrs as never });
    v.inputs.forEach((inp, k) => {
      const gi = grads[k];
      if (!gi || !dependsOnX.has(inp.id)) return;
      const r = unbroadcast(gi, inp.shape);
      const prev = cot.get(inp.id);
      cot.set(inp.id, prev ? add(prev, r) : r);
    });
  }
  return xs.map((x) => cot.get(x.id) ?? null);
}

/** Like gradients, but inputs that y does not depend on get zeros of their shape. */
export function grad(y: Value, xs: readonly Value[], seed?: Value): Value[] {
  return gradients(y, xs, seed).map((d, i) => d ?? zerosLike(xs[i]!));
}

function zerosLike(x: Value): Value {
  const g = x.graph;
  return g.constant(new Float32Array(x.size), x.shape);
}
