// The primitives and the builder API. Each primitive is declared once, in its family's file under
// prims/ (elementwise, matmul, shape, reduce, conv, pool): its shape rule, its standard ONNX
// lowering and its gradient rule side by side. Gradient rules build graph values with the
// builders below, so the set is closed under differentiation (gradients of gradients need
// nothing extra); they make no lowering decisions. What a target lowers differently is in
// lower/ (the cpu target: lower/cpu.ts). Broadcasting gradients are reduced back to each
// input's shape in one place: autodiff.ts.

import { type Attrs, type DType, setInferHook, type Shape, type Value } from './ir.js';
import { type ConvAttrs, type Ints, type NoAttrs, type OpRule, type Prim, type PrimAttrs } from './prims/types.js';
import { elementwiseRules } from './prims/elementwise.js';
import { matmulRules } from './prims/matmul.js';
import { shapeRules } from './prims/shape.js';
import { reduceRules } from './prims/reduce.js';
import { convRules } from './prims/conv.js';
import { poolRules } from './prims/pool.js';

export * from './prims/types.js';
export {
  auxInputs, colsOf, colsPhase, CPU_EXPANSIONS, CPU_LOWERINGS, im2col, selectConvFilterForm, selectConvForm, selectConvTransposeForm,
  selectMaxPoolForm, selectMaxPoolGradForm, sharedWeightCols, sharedWeightConvs, stepSlope,
  type ConvFilterForm, type ConvForm, type ConvTransposeForm, type MaxPoolForm, type MaxPoolGradForm,
} from './lower/cpu.js';

export const rules: { [K in Prim]: OpRule<K> } = { ...elementwiseRules, ...matmulRules, ...shapeRules, ...reduceRules, ...convRules, ...poolRules };

setInferHook((op, inputs, attrs) => {
  const rule = (rules as Record<string, OpRule<Prim>>)[op];
  if (!rule) throw new Error(`unknown primitive '${op}'`);
  return rule.infer(inputs, attrs as never);
});

// ---------------------------------------------------------------- the builder API

export type Operand = Value | number;

function prim<K extends Prim>(op: K, inputs: readonly Value[], attrs: PrimAttrs[K]): Value {
  return inputs[0]!.graph.apply(op, inputs, attrs as Attrs);
}

/** Lifts a JS number to a scalar constant of the other operand's graph. */
function pair(a: Operand, b: Operand): [Value, Value] {
  if (typeof a === 'number' && typeof b === 'number') throw new Error('at least one operand must be a graph value');
  const g = (typeof a === 'number' ? (b as Value) : a).graph;
  return [typeof a === 'number' ? g.scalar(a) : a, typeof b === 'number' ? g.scalar(b) : b];
}

const none = {} as NoAttrs;
export const add = (a: Operand, b: Operand) => prim('Add', pair(a, b), none);
export const sub = (a: Operand, b: Operand) => prim('Sub', pair(a, b), none);
export const mul = (a: Operand, b: Operand) => prim('Mul', pair(a, b), none);
export const div = (a: Operand, b: Operand) => prim('Div', pair(a, b), none);
export const pow = (a: Operand, b: Operand) => prim('Pow', pair(a, b), none);
export const greater = (a: Operand, b: Operand) => prim('Greater', pair(a, b), none);
export const less = (a: Operand, b: Operand) => prim('Less', pair(a, b), none);
export const equal = (a: Operand, b: Operand) => prim('Equal', pair(a, b), none);
export const neg = (x: Value) => prim('Neg', [x], none);
export const exp = (x: Value) => prim('Exp', [x], none);
export const log = (x: Value) => prim('Log', [x], none);
export const sqrt = (x: Value) => prim('Sqrt', [x], none);
export const abs = (x: Value) => prim('Abs', [x], none);
export const sign = (x: Value) => prim('Sign', [x], none);
export const tanh = (x: Value) => prim('Tanh', [x], none);
export const sigmoid = (x: Value) => prim('Sigmoid', [x], none);
export const relu = (x: Value) => prim('Relu', [x], none);
export const leakyRelu = (x: Value, alpha = 0.01) => prim('LeakyRelu', [x], { alpha });
export const identity = (x: Value) => prim('Identity', [x], none);
export const stopGradient = (x: Value) => prim('StopGradient', [x], none);
/** Clip(x, min, max): x limited to [min, max]. */
export const clip = (x: Value, min: number, max: number) => prim('Clip', [x, x.graph.scalar(min), x.graph.scalar(max)], none);
export const cast = (x: Value, to: DType) => (x.dtype === to ? x : prim('Cast', [x], { to }));
export function where(c: Value, a: Operand, b: Operand): Value {
  const [x, y] = pair(a, b);
  return prim('Where', [c, x, y], none);
}
export const matmul = (a: Value, b: Value) => prim('MatMul', [a, b], none);
export function gemm(a: Value, b: Value, transA: 0 | 1 = 0, transB: 0 | 1 = 0, c?: Value): Value {
  return prim('Gemm', c ? [a, b, c] : [a, b], { transA, transB });
}
export function reshape(x: Value, shape: Shape): Value {
  return x.shape.length === shape.length && x.shape.every((d, i) => d === shape[i]) ? x : prim('Reshape', [x], { shape });
}
export const transpose = (x: Value, perm: Ints) => (perm.every((p, i) => p === i) ? x : prim('Transpose', [x], { perm }));
export function swapLast(x: Value): Value {
  const perm = x.shape.map((_, i) => i);
  perm[x.rank - 2] = x.rank - 1;
  perm[x.rank - 1] = x.rank - 2;
  return transpose(x, perm);
}
export const concat = (xs: readonly Value[], axis: number) => (xs.length === 1 ? xs[0]! : prim('Concat', xs, { axis }));
export const slice = (x: Value, starts: Ints, ends: Ints) => prim('Slice', [x], { starts, ends });
export const pad = (x: Value, pads: Ints) => (pads.every((p) => p === 0) ? x : prim('Pad', [x], { pads }));
export const expand = (x: Value, shape: Shape) => (x.shape.length === shape.length && x.shape.every((d, i) => d === shape[i]) ? x : prim('Expand', [x], { shape }));
// Reducing over no axes is the identity (ONNX would reduce over all axes: never emit that).
export const reduceSum = (x: Value, axes: Ints, keepdims: 0 | 1 = 1) => (axes.length ? prim('ReduceSum', [x], { axes, keepdims }) : x);
export const reduceMean = (x: Value, axes: Ints, keepdims: 0 | 1 = 1) => (axes.length ? prim('ReduceMean', [x], { axes, keepdims }) : x);
export const reduceMax = (x: Value, axes: Ints, keepdims: 0 | 1 = 1) => (axes.length ? prim('ReduceMax', [x], { axes, keepdims }) : x);
/** Sum of every element, as a scalar. */
export const sumAll = (x: Value) => reduceSum(x, x.shape.map((_, i) => i), 0);
export const meanAll = (x: Value) => reduceMean(x, x.shape.map((_, i) => i), 0);

export interface ConvOptions {
  strides?: Ints;
  pads?: Ints;
  dilations?: Ints;
  bias?: Value;
}
export function conv(x: Value, w: Value, o: ConvOptions = {}): Value {
  const attrs = { strides: o.strides ?? [1, 1], pads: o.pads ?? [0, 0, 0, 0], dilations: o.dilations ?? [1, 1] };
  return prim('Conv', o.bias ? [x, w, o.bias] : [x, w], attrs);
}
export function convTranspose(x: Value, w: Value, o: ConvOptions & { outputPadding?: Ints } = {}): Value {
  const attrs = {
    strides: o.strides ?? [1, 1], pads: o.pads ?? [0, 0, 0, 0], dilations: o.dilations ?? [1, 1], outputPadding: o.outputPadding ?? [0, 0],
  };
  return prim('ConvTranspose', o.bias ? [x, w, o.bias] : [x, w], attrs);
}
export const maxPool = (x: Value, kernel: Ints, strides: Ints = kernel) => prim('MaxPool', [x], { kernel, strides });
/** MaxPool's input gradient: (X, Y = MaxPool(X), dY) for windows `kernel` that tile X. */
export const maxPoolGrad = (x: Value, y: Value, dy: Value, kernel: Ints) => prim('MaxPoolGrad', [x, y, dy], { kernel });
/** The weight gradient [M, C, kh, kw] of Conv(X, W) with these attributes for X and output gradient dY. */
export function convBackwardFilter(x: Value, dy: Value, a: ConvAttrs, kernel: Ints): Value {
  return prim('ConvBackwardFilter', [x, dy], { strides: a.strides, pads: a.pads, dilations: a.dilations, kernel });
}
/** The bias gradient [M] of a Conv for output gradient dY [N, M, Ho, Wo]. */
export const convBackwardBias = (dy: Value) => prim('ConvBackwardBias', [dy], none);
export const gather = (data: Value, indices: Value, axis = 0) => prim('Gather', [data, indices], { axis });
export const oneHot = (indices: Value, depth: number) => prim('OneHot', [indices], { depth });
