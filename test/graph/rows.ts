// The table: one row per primitive application, with sample shapes, an input domain and
// an order (0: forward only, 1: + VJP, 2: + grad-of-grad). Every `ref` is the float64
// reference from reference.ts, never the graph code.

import * as o from '../../src/graph/ops.ts';
import { gradients } from '../../src/graph/autodiff.ts';
import { type Domain, type InputSpec, type Row } from './harness.ts';
import * as R from './reference.ts';

const f = (shape: number[], domain: Domain = 'any', extra: Partial<InputSpec> = {}): InputSpec => ({ shape, domain, ...extra });
const int = (shape: number[], lo: number, hi: number): InputSpec => ({ shape, domain: 'int', lo, hi });
const bool = (shape: number[]): InputSpec => ({ shape, domain: 'bool' });
const S = R.scalar;

const unary = (
  op: 'Neg' | 'Exp' | 'Log' | 'Sqrt' | 'Abs' | 'Sign' | 'Tanh' | 'Sigmoid' | 'Relu',
  build: (x: import('../../src/graph/ir.ts').Value) => import('../../src/graph/ir.ts').Value,
  ref: (x: R.T) => R.T,
  domain: Domain,
  order: 0 | 1 | 2,
  shape = [2, 3, 4],
): Row => ({ name: `${op} ${domain} [${shape.join(',')}]`, op, inputs: [f(shape, domain)], build: ([x]) => build(x!), ref: ([x]) => ref(x!), order });

export const rows: Row[] = [
  // ----------------------------------------------------------- broadcasting binary ops
  { name: 'Add [2,3]+[2,3]', op: 'Add', inputs: [f([2, 3]), f([2, 3])], build: ([a, b]) => o.add(a!, b!), ref: ([a, b]) => R.add(a!, b!), order: 2 },
  { name: 'Add [2,3]+[3]', op: 'Add', inputs: [f([2, 3]), f([3])], build: ([a, b]) => o.add(a!, b!), ref: ([a, b]) => R.add(a!, b!), order: 1 },
  { name: 'Add [2,1,4]+[3,1]', op: 'Add', inputs: [f([2, 1, 4]), f([3, 1])], build: ([a, b]) => o.add(a!, b!), ref: ([a, b]) => R.add(a!, b!), order: 1 },
  { name: 'Add [2,3]+0.5', op: 'Add', inputs: [f([2, 3])], build: ([a]) => o.add(a!, 0.5), ref: ([a]) => R.add(a!, S(0.5)), order: 1 },
  {
    // On the gradient-penalty path: the backward of a broadcast Add (unbroadcast = ReduceSum)
    // must itself be differentiable; squaring makes the second derivative non-zero.
    name: 'Add (a+b)^2 [2,3]+[3]', op: 'Add', inputs: [f([2, 3]), f([3])],
    build: ([a, b]) => { const s = o.add(a!, b!); return o.mul(s, s); },
    ref: ([a, b]) => { const s = R.add(a!, b!); return R.mul(s, s); }, order: 2,
  },
  { name: 'Sub [2,3]-[3]', op: 'Sub', inputs: [f([2, 3]), f([3])], build: ([a, b]) => o.sub(a!, b!), ref: ([a, b]) => R.sub(a!, b!), order: 1 },
  { name: 'Sub [3,1]-[2,1,4]', op: 'Sub', inputs: [f([3, 1]), f([2, 1, 4])], build: ([a, b]) => o.sub(a!, b!), ref: ([a, b]) => R.sub(a!, b!), order: 2 },
  { name: 'Sub 1-x', op: 'Sub', inputs: [f([4])], build: ([a]) => o.sub(1, a!), ref: ([a]) => R.sub(S(1), a!), order: 1 },
  { name: 'Mul [2,3]*[2,3]', op: 'Mul', inputs: [f([2, 3]), f([2, 3])], build: ([a, b]) => o.mul(a!, b!), ref: ([a, b]) => R.mul(a!, b!), order: 2 },
  { name: 'Mul [2,1,4]*[3,1]', op: 'Mul', inputs: [f([2, 1, 4]), f([3, 1])], build: ([a, b]) => o.mul(a!, b!), ref: ([a, b]) => R.mul(a!, b!), order: 2 },
  { name: 'Mul x*x', op: 'Mul', inputs: [f([3, 4])], build: ([a]) => o.mul(a!, a!), ref: ([a]) => R.mul(a!, a!), order: 2 },
  { name: 'Mul x*x*x [5]', op: 'Mul', inputs: [f([5])], build: ([a]) => o.mul(o.mul(a!, a!), a!), ref: ([a]) => R.mul(R.mul(a!, a!), a!), order: 2 },
  { name: 'Mul [2,3]*-1.5', op: 'Mul', inputs: [f([2, 3])], build: ([a]) => o.mul(a!, -1.5), ref: ([a]) => R.mul(a!, S(-1.5)), order: 1 },
  { name: 'Div [2,3]/[3]', op: 'Div', inputs: [f([2, 3]), f([3], 'notSmall')], build: ([a, b]) => o.div(a!, b!), ref: ([a, b]) => R.div(a!, b!), order: 2 },
  { name: 'Div [2,1,4]/[3,1]', op: 'Div', inputs: [f([2, 1, 4]), f([3, 1], 'notSmall')], build: ([a, b]) => o.div(a!, b!), ref: ([a, b]) => R.div(a!, b!), order: 1 },
  { name: 'Div 1/x', op: 'Div', inputs: [f([2, 3], 'notSmall')], build: ([a]) => o.div(1, a!), ref: ([a]) => R.div(S(1), a!), order: 2 },
  { name: 'Pow x^3 (scalar constant exponent)', op: 'Pow', inputs: [f([2, 3], 'positive')], build: ([a]) => o.pow(a!, 3), ref: ([a]) => R.pow(a!, S(3)), order: 2 },
  { name: 'Pow x^0.5', op: 'Pow', inputs: [f([2, 3], 'positive')], build: ([a]) => o.pow(a!, 0.5), ref: ([a]) => R.pow(a!, S(0.5)), order: 2 },
  { name: 'Pow x^2 (negative bases)', op: 'Pow', inputs: [f([2, 3], 'notSmall')], build: ([a]) => o.pow(a!, 2), ref: ([a]) => R.pow(a!, S(2)), order: 2 },
  { name: 'Pow [2,3]^[3] (tensor exponent)', op: 'Pow', inputs: [f([2, 3], 'positive'), f([3])], build: ([a, p]) => o.pow(a!, p!), ref: ([a, p]) => R.pow(a!, p!), order: 2 },
  { name: 'Pow 2^x (constant base)', op: 'Pow', inputs: [f([4])], build: ([p]) => o.pow(2, p!), ref: ([p]) => R.pow(S(2), p!), order: 2 },

  // ----------------------------------------------------------- unary
  unary('Neg', o.neg, R.neg, 'any', 1),
  unary('Exp', o.exp, R.exp, 'any', 2),
  unary('Log', o.log, R.log, 'positive', 2),
  unary('Sqrt', o.sqrt, R.sqrt, 'positive', 2),
  unary('Abs', o.abs, R.abs, 'awayFromZero', 2),
  unary('Sign', o.sign, R.sign, 'awayFromZero', 1),
  unary('Sign', o.sign, R.sign, 'ties', 0),
  unary('Tanh', o.tanh, R.tanh, 'any', 2, [2, 3]),
  {
    // Into saturation (|3x| up to 3). The gradient 1 - y^2 is formed in float32, whose relative error
    // grows like 6e-8 / (1 - y^2) (up to ~6e-6 here): a conditioning property of the formula every
    // float32 framework shares, hence the looser VJP tolerances for this row only.
    name: 'Tanh saturating tanh(3x) [7]', op: 'Tanh', inputs: [f([7])], build: ([x]) => o.tanh(o.mul(x!, 3)),
    ref: ([x]) => R.tanh(R.mul(x!, S(3))), order: 2, tol: { vjp: 1e-4, vjp2: 1e-3 },
  },
  unary('Sigmoid', o.sigmoid, R.sigmoid, 'any', 2),
  unary('Relu', o.relu, R.relu, 'awayFromZero', 2),
  unary('Relu', o.relu, R.relu, 'ties', 0),
  { name: 'LeakyRelu alpha=0.2', op: 'LeakyRelu', inputs: [f([2, 3, 4], 'awayFromZero')], build: ([x]) => o.leakyRelu(x!, 0.2), ref: ([x]) => R.leakyRelu(x!, 0.2), order: 2 },
  { name: 'LeakyRelu default alpha', op: 'LeakyRelu', inputs: [f([2, 5], 'awayFromZero')], build: ([x]) => o.leakyRelu(x!), ref: ([x]) => R.leakyRelu(x!, 0.01), order: 1 },
  { name: 'LeakyRelu alpha=1 (integral alpha)', op: 'LeakyRelu', inputs: [f([6], 'awayFromZero')], build: ([x]) => o.leakyRelu(x!, 1), ref: ([x]) => R.leakyRelu(x!, 1), order: 1 },
  // Bounds 0.05 from the nearest input: negatives clipped (gradient 0), positives passed (1).
  { name: 'Clip [-0.05, 10]', op: 'Clip', inputs: [f([3, 4], 'awayFromZero')], build: ([x]) => o.clip(x!, -0.05, 10), ref: ([x]) => R.clip(x!, -0.05, 10), order: 2 },
  { name: 'Clip upper bound [-10, 0.05]', op: 'Clip', inputs: [f([4, 5], 'awayFromZero')], build: ([x]) => o.clip(x!, -10, 0.05), ref: ([x]) => R.clip(x!, -10, 0.05), order: 1 },
  {
    // x * leakyRelu(x): the first derivative depends on the slope, so the second is 2*slope.
    name: 'LeakyRelu x*lrelu(x)', op: 'LeakyRelu', inputs: [f([3, 4], 'awayFromZero')],
    build: ([x]) => o.mul(x!, o.leakyRelu(x!, 0.2)), ref: ([x]) => R.mul(x!, R.leakyRelu(x!, 0.2)), order: 2,
  },

  // ----------------------------------------------------------- comparisons, where, cast
  { name: 'Greater ties [2,3]>[3]', op: 'Greater', inputs: [f([2, 3], 'ties'), f([3], 'ties')], build: ([a, b]) => o.greater(a!, b!), ref: ([a, b]) => R.greater(a!, b!), order: 0 },
  { name: 'Less ties [2,3]<[3]', op: 'Less', inputs: [f([2, 3], 'ties'), f([3], 'ties')], build: ([a, b]) => o.less(a!, b!), ref: ([a, b]) => R.less(a!, b!), order: 0 },
  { name: 'Equal ties [3,4]==[4]', op: 'Equal', inputs: [f([3, 4], 'ties'), f([4], 'ties')], build: ([a, b]) => o.equal(a!, b!), ref: ([a, b]) => R.equal(a!, b!), order: 0 },
  { name: 'Equal int64', op: 'Equal', inputs: [int([2, 3], 0, 3), int([2, 3], 0, 3)], build: ([a, b]) => o.equal(a!, b!), ref: ([a, b]) => R.equal(a!, b!), order: 0 },
  {
    name: 'Where bool [2,3] ? [2,3] : [3]', op: 'Where', inputs: [bool([2, 3]), f([2, 3]), f([3])],
    build: ([c, a, b]) => o.where(c!, a!, b!), ref: ([c, a, b]) => R.where(c!, a!, b!), order: 1,
  },
  {
    name: 'Where bool [3] ? [2,3] : 0', op: 'Where', inputs: [bool([3]), f([2, 3])],
    build: ([c, a]) => o.where(c!, a!, 0), ref: ([c, a]) => R.where(c!, a!, S(0)), order: 1,
  },
  {
    name: 'Where greater(x,0) ? x : 0.1x', op: 'Where', inputs: [f([2, 3, 4], 'awayFromZero')],
    build: ([x]) => o.where(o.greater(x!, 0), x!, o.mul(x!, 0.1)),
    ref: ([x]) => R.where(R.greater(x!, S(0)), x!, R.mul(x!, S(0.1))), order: 2,
  },
  {
    name: 'Where less(c,0) ? a : a*b', op: 'Where', inputs: [f([2, 3], 'any', { grad: false }), f([2, 3]), f([2, 3])],
    build: ([c, a, b]) => o.where(o.less(c!, 0), a!, o.mul(a!, b!)),
    ref: ([c, a, b]) => R.where(R.less(c!, S(0)), a!, R.mul(a!, b!)), order: 2,
  },
  {
    name: 'Where equal(c,0.5) ? a : b', op: 'Where', inputs: [f([3, 4], 'grid', { grad: false }), f([3, 4]), f([3, 4])],
    build: ([c, a, b]) => o.where(o.equal(c!, 0.5), a!, b!),
    ref: ([c, a, b]) => R.where(R.equal(c!, S(0.5)), a!, b!), order: 1,
  },
  {
    // float -> int64 truncates toward zero; piecewise constant, so the gradient is zero.
    name: 'Cast float->int64->float', op: 'Cast', inputs: [f([2, 5], 'awayFromZero', { scale: 3.7 })],
    build: ([x]) => o.cast(o.cast(x!, 'int64'), 'float32'), ref: ([x]) => R.castToInt(x!), order: 1,
  },
  { name: 'Cast bool->float', op: 'Cast', inputs: [bool([2, 3])], build: ([c]) => o.cast(c!, 'float32'), ref: ([c]) => c!, order: 0 },
  { name: 'Cast int64->float', op: 'Cast', inputs: [int([5], -3, 3)], build: ([k]) => o.cast(k!, 'float32'), ref: ([k]) => k!, order: 0 },
  { name: 'Cast float->bool', op: 'Cast', inputs: [f([2, 3], 'ties')], build: ([x]) => o.cast(x!, 'bool'), ref: ([x]) => R.castToBool(x!), order: 0 },
  {
    name: 'Cast mask: cast(greater(a,0))*b', op: 'Cast', inputs: [f([2, 3], 'awayFromZero'), f([2, 3])],
    build: ([a, b]) => o.mul(o.cast(o.greater(a!, 0), 'float32'), b!),
    ref: ([a, b]) => R.mul(R.greater(a!, S(0)), b!), order: 2,
  },

  // ----------------------------------------------------------- matmul / gemm
  { name: 'MatMul [3,4]x[4,5]', op: 'MatMul', inputs: [f([3, 4]), f([4, 5])], build: ([a, b]) => o.matmul(a!, b!), ref: ([a, b]) => R.matmul(a!, b!), order: 2 },
  { name: 'MatMul [2,3,4]x[4,5]', op: 'MatMul', inputs: [f([2, 3, 4]), f([4, 5])], build: ([a, b]) => o.matmul(a!, b!), ref: ([a, b]) => R.matmul(a!, b!), order: 2 },
  { name: 'MatMul [2,3,4]x[2,4,2]', op: 'MatMul', inputs: [f([2, 3, 4]), f([2, 4, 2])], build: ([a, b]) => o.matmul(a!, b!), ref: ([a, b]) => R.matmul(a!, b!), order: 2 },
  { name: 'MatMul [2,1,3,4]x[3,4,2]', op: 'MatMul', inputs: [f([2, 1, 3, 4]), f([3, 4, 2])], build: ([a, b]) => o.matmul(a!, b!), ref: ([a, b]) => R.matmul(a!, b!), order: 1 },
  { name: 'MatMul [3,4]x[2,4,5]', op: 'MatMul', inputs: [f([3, 4]), f([2, 4, 5])], build: ([a, b]) => o.matmul(a!, b!), ref: ([a, b]) => R.matmul(a!, b!), order: 2 },
  ...([0, 1] as const).flatMap((ta) => ([0, 1] as const).map((tb): Row => {
    const aShape = ta ? [4, 3] : [3, 4];
    const bShape = tb ? [5, 4] : [4, 5];
    return {
      name: `Gemm transA=${ta} transB=${tb}`, op: 'Gemm', inputs: [f(aShape), f(bShape)],
      build: ([a, b]) => o.gemm(a!, b!, ta, tb), ref: ([a, b]) => R.gemm(a!, b!, ta, tb), order: 2,
    };
  })),
  ...([0, 1] as const).flatMap((ta) => ([0, 1] as const).map((tb): Row => {
    const aShape = ta ? [4, 3] : [3, 4];
    const bShape = tb ? [5, 4] : [4, 5];
    return {
      name: `Gemm transA=${ta} transB=${tb} + C[5]`, op: 'Gemm', inputs: [f(aShape), f(bShape), f([5])],
      build: ([a, b, c]) => o.gemm(a!, b!, ta, tb, c!), ref: ([a, b, c]) => R.gemm(a!, b!, ta, tb, c!), order: 2,
    };
  })),
  { name: 'Gemm + C[3,5]', op: 'Gemm', inputs: [f([3, 4]), f([4, 5]), f([3, 5])], build: ([a, b, c]) => o.gemm(a!, b!, 0, 0, c!), ref: ([a, b, c]) => R.gemm(a!, b!, 0, 0, c!), order: 1 },
  { name: 'Gemm + C[3,1]', op: 'Gemm', inputs: [f([3, 4]), f([5, 4]), f([3, 1])], build: ([a, b, c]) => o.gemm(a!, b!, 0, 1, c!), ref: ([a, b, c]) => R.gemm(a!, b!, 0, 1, c!), order: 1 },
  { name: 'Gemm + C[1]', op: 'Gemm', inputs: [f([4, 3]), f([4, 5]), f([1])], build: ([a, b, c]) => o.gemm(a!, b!, 1, 0, c!), ref: ([a, b, c]) => R.gemm(a!, b!, 1, 0, c!), order: 1 },

  // ----------------------------------------------------------- layout
  { name: 'Reshape [2,3,4]->[4,6]', op: 'Reshape', inputs: [f([2, 3, 4])], build: ([x]) => o.reshape(x!, [4, 6]), ref: ([x]) => R.reshape(x!, [4, 6]), order: 1 },
  { name: 'Reshape [6]->[1,2,1,3] squared', op: 'Reshape', inputs: [f([6])], build: ([x]) => { const r = o.reshape(x!, [1, 2, 1, 3]); return o.mul(r, r); }, ref: ([x]) => { const r = R.reshape(x!, [1, 2, 1, 3]); return R.mul(r, r); }, order: 2 },
  { name: 'Reshape int64', op: 'Reshape', inputs: [int([2, 3], -5, 5)], build: ([x]) => o.reshape(x!, [3, 2]), ref: ([x]) => R.reshape(x!, [3, 2]), order: 0 },
  { name: 'Transpose [2,3,4] perm [2,0,1]', op: 'Transpose', inputs: [f([2, 3, 4])], build: ([x]) => o.transpose(x!, [2, 0, 1]), ref: ([x]) => R.transpose(x!, [2, 0, 1]), order: 1 },
  { name: 'Transpose [2,3,4,5] perm [1,0,3,2]', op: 'Transpose', inputs: [f([2, 3, 4, 5])], build: ([x]) => o.transpose(x!, [1, 0, 3, 2]), ref: ([x]) => R.transpose(x!, [1, 0, 3, 2]), order: 1 },
  {
    name: 'Concat axis 1 of three', op: 'Concat', inputs: [f([2, 1, 3]), f([2, 2, 3]), f([2, 3, 3])],
    build: (xs) => o.concat(xs, 1), ref: (xs) => R.concat(xs, 1), order: 1,
  },
  {
    name: 'Concat axis -1 (a, a*b)', op: 'Concat', inputs: [f([3, 2]), f([3, 4])],
    build: ([a, b]) => o.concat([a!, o.mul(b!, b!)], -1), ref: ([a, b]) => R.concat([a!, R.mul(b!, b!)], -1), order: 2,
  },
  { name: 'Concat axis 0 int64', op: 'Concat', inputs: [int([1, 3], 0, 9), int([2, 3], 0, 9)], build: (xs) => o.concat(xs, 0), ref: (xs) => R.concat(xs, 0), order: 0 },
  { name: 'Slice [4,5] [1,0]:[3,4]', op: 'Slice', inputs: [f([4, 5])], build: ([x]) => o.slice(x!, [1, 0], [3, 4]), ref: ([x]) => R.slice(x!, [1, 0], [3, 4]), order: 1 },
  {
    name: 'Slice [2,3,6] [0,1,2]:[1,3,5] squared', op: 'Slice', inputs: [f([2, 3, 6])],
    build: ([x]) => { const s = o.slice(x!, [0, 1, 2], [1, 3, 5]); return o.mul(s, s); },
    ref: ([x]) => { const s = R.slice(x!, [0, 1, 2], [1, 3, 5]); return R.mul(s, s); }, order: 2,
  },
  { name: 'Pad [2,3] [1,0,2,1]', op: 'Pad', inputs: [f([2, 3])], build: ([x]) => o.pad(x!, [1, 0, 2, 1]), ref: ([x]) => R.pad(x!, [1, 0, 2, 1]), order: 1 },
  { name: 'Pad NCHW spatial [0,0,1,2,0,0,2,1]', op: 'Pad', inputs: [f([1, 2, 3, 3])], build: ([x]) => o.pad(x!, [0, 0, 1, 2, 0, 0, 2, 1]), ref: ([x]) => R.pad(x!, [0, 0, 1, 2, 0, 0, 2, 1]), order: 2 },
  { name: 'Expand [3,1]->[2,3,4]', op: 'Expand', inputs: [f([3, 1])], build: ([x]) => o.expand(x!, [2, 3, 4]), ref: ([x]) => R.expand(x!, [2, 3, 4]), order: 1 },
  {
    name: 'Expand [1,4]->[3,4] times b', op: 'Expand', inputs: [f([1, 4]), f([3, 4])],
    build: ([x, b]) => o.mul(o.expand(x!, [3, 4]), b!), ref: ([x, b]) => R.mul(R.expand(x!, [3, 4]), b!), order: 2,
  },

  // ----------------------------------------------------------- reductions
  { name: 'ReduceSum [2,3,4] axes [1] keepdims 1', op: 'ReduceSum', inputs: [f([2, 3, 4])], build: ([x]) => o.reduceSum(x!, [1], 1), ref: ([x]) => R.reduce(x!, [1], 1, 'sum'), order: 2 },
  { name: 'ReduceSum [2,3,4] axes [0,2] keepdims 0', op: 'ReduceSum', inputs: [f([2, 3, 4])], build: ([x]) => o.reduceSum(x!, [0, 2], 0), ref: ([x]) => R.reduce(x!, [0, 2], 0, 'sum'), order: 1 },
  { name: 'ReduceSum axes [-1] keepdims 0', op: 'ReduceSum', inputs: [f([3, 5])], build: ([x]) => o.reduceSum(x!, [-1], 0), ref: ([x]) => R.reduce(x!, [-1], 0, 'sum'), order: 1 },
  { name: 'ReduceSum all (sumAll)', op: 'ReduceSum', inputs: [f([2, 3, 2])], build: ([x]) => o.sumAll(x!), ref: ([x]) => R.reduce(x!, [0, 1, 2], 0, 'sum'), order: 1 },
  {
    name: 'ReduceSum squared per-row norms', op: 'ReduceSum', inputs: [f([3, 4])],
    build: ([x]) => { const s = o.reduceSum(o.mul(x!, x!), [1], 0); return o.mul(s, s); },
    ref: ([x]) => { const s = R.reduce(R.mul(x!, x!), [1], 0, 'sum'); return R.mul(s, s); }, order: 2,
  },
  { name: 'ReduceMean [2,3,4] axes [0] keepdims 1', op: 'ReduceMean', inputs: [f([2, 3, 4])], build: ([x]) => o.reduceMean(x!, [0], 1), ref: ([x]) => R.reduce(x!, [0], 1, 'mean'), order: 1 },
  { name: 'ReduceMean [2,3,4] axes [1,2] keepdims 0', op: 'ReduceMean', inputs: [f([2, 3, 4])], build: ([x]) => o.reduceMean(x!, [1, 2], 0), ref: ([x]) => R.reduce(x!, [1, 2], 0, 'mean'), order: 1 },
  { name: 'ReduceMean all (meanAll)', op: 'ReduceMean', inputs: [f([3, 4])], build: ([x]) => o.meanAll(x!), ref: ([x]) => R.reduce(x!, [0, 1], 0, 'mean'), order: 1 },
  {
    name: 'ReduceMean axes [-2] squared', op: 'ReduceMean', inputs: [f([2, 3, 4])],
    build: ([x]) => { const m = o.reduceMean(x!, [-2], 1); return o.mul(m, m); },
    ref: ([x]) => { const m = R.reduce(x!, [-2], 1, 'mean'); return R.mul(m, m); }, order: 2,
  },
  { name: 'ReduceMax distinct axes [1] keepdims 0', op: 'ReduceMax', inputs: [f([2, 3, 4], 'distinct')], build: ([x]) => o.reduceMax(x!, [1], 0), ref: ([x]) => R.reduce(x!, [1], 0, 'max'), order: 2 },
  { name: 'ReduceMax distinct axes [2] keepdims 1', op: 'ReduceMax', inputs: [f([2, 3, 4], 'distinct')], build: ([x]) => o.reduceMax(x!, [2], 1), ref: ([x]) => R.reduce(x!, [2], 1, 'max'), order: 1 },
  { name: 'ReduceMax distinct axes [0,2] keepdims 0', op: 'ReduceMax', inputs: [f([2, 3, 4], 'distinct')], build: ([x]) => o.reduceMax(x!, [0, 2], 0), ref: ([x]) => R.reduce(x!, [0, 2], 0, 'max'), order: 1 },
  {
    // With ties the function has no derivative; the documented rule is that every tied
    // maximum receives the full cotangent (the mask formulation).
    name: 'ReduceMax ties axes [1] keepdims 0', op: 'ReduceMax', inputs: [f([3, 5], 'ties')],
    build: ([x]) => o.reduceMax(x!, [1], 0), ref: ([x]) => R.reduce(x!, [1], 0, 'max'), order: 1,
    vjpRef: ([x], u) => {
      const m = R.reduce(x!, [1], 1, 'max');
      return [R.mul(R.equal(x!, m), R.reshape(u, [3, 1]))];
    },
  },

  // ----------------------------------------------------------- convolution
  {
    name: 'Conv s1 p1 [2,3,7,7]*[4,3,3,3]', op: 'Conv', inputs: [f([2, 3, 7, 7]), f([4, 3, 3, 3])],
    build: ([x, w]) => o.conv(x!, w!, { pads: [1, 1, 1, 1] }), ref: ([x, w]) => R.conv2d(x!, w!, undefined, { pads: [1, 1, 1, 1] }), order: 2,
  },
  {
    // 16 or more input channels: the weight gradient takes the Gather-im2col + GEMM route.
    name: 'Conv k4 s2 p1 16 channels [2,16,6,6]*[3,16,4,4] + bias', op: 'Conv', inputs: [f([2, 16, 6, 6]), f([3, 16, 4, 4]), f([3])],
    build: ([x, w, b]) => o.conv(x!, w!, { strides: [2, 2], pads: [1, 1, 1, 1], bias: b! }),
    ref: ([x, w, b]) => R.conv2d(x!, w!, b!, { strides: [2, 2], pads: [1, 1, 1, 1] }), order: 2,
  },
  {
    name: 'Conv k3 p[1,0,2,1] d2 16 channels [1,16,7,6]*[2,16,3,3]', op: 'Conv', inputs: [f([1, 16, 7, 6]), f([2, 16, 3, 3])],
    build: ([x, w]) => o.conv(x!, w!, { pads: [1, 0, 2, 1], dilations: [2, 2] }),
    ref: ([x, w]) => R.conv2d(x!, w!, undefined, { pads: [1, 0, 2, 1], dilations: [2, 2] }), order: 2,
  },
  {
    name: 'ConvTranspose k4 s2 p1 16 output channels [2,3,3,3]*[3,16,4,4]', op: 'ConvTranspose', inputs: [f([2, 3, 3, 3]), f([3, 16, 4, 4])],
    build: ([x, w]) => o.convTranspose(x!, w!, { strides: [2, 2], pads: [1, 1, 1, 1] }),
    ref: ([x, w]) => R.convTranspose2d(x!, w!, undefined, { strides: [2, 2], pads: [1, 1, 1, 1] }), order: 2,
  },
  {
    // Batch >= 8 and >= 16 channels in and out: one GEMM on the sub-pixel phases (im2col of the
    // padded input, then a Gather that interleaves and crops). Order 2 runs it inside the grad-of-grad.
    name: 'ConvTranspose sub-pixel k4 s2 p1 [8,16,3,3]*[16,16,4,4] + bias', op: 'ConvTranspose', inputs: [f([8, 16, 3, 3]), f([16, 16, 4, 4]), f([16])],
    build: ([x, w, b]) => o.convTranspose(x!, w!, { strides: [2, 2], pads: [1, 1, 1, 1], bias: b! }),
    ref: ([x, w, b]) => R.convTranspose2d(x!, w!, b!, { strides: [2, 2], pads: [1, 1, 1, 1] }), order: 2,
  },
  {
    // Unequal strides and taps (2x2 and 3x2 phases), asymmetric pads, output_padding up to the end pads.
    name: 'ConvTranspose sub-pixel k[4,6] s[2,3] p[1,2,2,3] output_padding [1,2] [8,16,3,4]*[16,16,4,6]', op: 'ConvTranspose', inputs: [f([8, 16, 3, 4]), f([16, 16, 4, 6])],
    build: ([x, w]) => o.convTranspose(x!, w!, { strides: [2, 3], pads: [1, 2, 2, 3], outputPadding: [1, 2] }),
    ref: ([x, w]) => R.convTranspose2d(x!, w!, undefined, { strides: [2, 3], pads: [1, 2, 2, 3], outputPadding: [1, 2] }), order: 1,
  },
  {
    // Kernel equal to the stride: one tap per phase, no padding of the input.
    name: 'ConvTranspose sub-pixel k3 s3 p[0,0,1,0] output_padding [1,0] [9,16,2,3]*[16,17,3,3] + bias', op: 'ConvTranspose', inputs: [f([9, 16, 2, 3]), f([16, 17, 3, 3]), f([17])],
    build: ([x, w, b]) => o.convTranspose(x!, w!, { strides: [3, 3], pads: [0, 0, 1, 0], outputPadding: [1, 0], bias: b! }),
    ref: ([x, w, b]) => R.convTranspose2d(x!, w!, b!, { strides: [3, 3], pads: [0, 0, 1, 0], outputPadding: [1, 0] }), order: 1,
  },
  {
    // One channel, stride 1 (the feature net's conv1): the im2col gathers whole window rows from
    // shifted copies of the flattened padded image.
    name: 'Conv one channel k3 s1 p1 [2,1,7,7]*[4,1,3,3] + bias (window rows)', op: 'Conv', inputs: [f([2, 1, 7, 7]), f([4, 1, 3, 3]), f([4])],
    build: ([x, w, b]) => o.conv(x!, w!, { pads: [1, 1, 1, 1], bias: b! }),
    ref: ([x, w, b]) => R.conv2d(x!, w!, b!, { pads: [1, 1, 1, 1] }), order: 2,
  },
  {
    name: 'Conv one channel k[2,3] s[1,3] p[0,1,1,2] [2,1,5,8]*[3,1,2,3] (window rows)', op: 'Conv', inputs: [f([2, 1, 5, 8]), f([3, 1, 2, 3])],
    build: ([x, w]) => o.conv(x!, w!, { strides: [1, 3], pads: [0, 1, 1, 2] }),
    ref: ([x, w]) => R.conv2d(x!, w!, undefined, { strides: [1, 3], pads: [0, 1, 1, 2] }), order: 1,
  },
  {
    // Stride 1, batch >= 8, >= 16 channels in and out (the feature net's conv2 input gradient):
    // a correlation with the flipped kernel, as one im2col GEMM.
    name: 'ConvTranspose flipped k3 s1 p1 [8,16,5,5]*[16,16,3,3] + bias', op: 'ConvTranspose', inputs: [f([8, 16, 5, 5]), f([16, 16, 3, 3]), f([16])],
    build: ([x, w, b]) => o.convTranspose(x!, w!, { pads: [1, 1, 1, 1], bias: b! }),
    ref: ([x, w, b]) => R.convTranspose2d(x!, w!, b!, { pads: [1, 1, 1, 1] }), order: 2,
  },
  {
    // Unequal kernel sides, asymmetric pads, 17 channels out.
    name: 'ConvTranspose flipped k[3,2] s1 p[2,0,0,1] [8,16,4,5]*[16,17,3,2]', op: 'ConvTranspose', inputs: [f([8, 16, 4, 5]), f([16, 17, 3, 2])],
    build: ([x, w]) => o.convTranspose(x!, w!, { pads: [2, 0, 0, 1] }),
    ref: ([x, w]) => R.convTranspose2d(x!, w!, undefined, { pads: [2, 0, 0, 1] }), order: 1,
  },
  {
    // Batch >= 8, >= 16 channels in and fewer out (the generator's last layer, a one-channel
    // Conv's input gradient): one GEMM and a fold of the shifted taps (Split, Pad, Sum; the bias last).
    name: 'ConvTranspose col2im k4 s2 p1 [8,16,3,3]*[16,1,4,4] + bias', op: 'ConvTranspose', inputs: [f([8, 16, 3, 3]), f([16, 1, 4, 4]), f([1])],
    build: ([x, w, b]) => o.convTranspose(x!, w!, { strides: [2, 2], pads: [1, 1, 1, 1], bias: b! }),
    ref: ([x, w, b]) => R.convTranspose2d(x!, w!, b!, { strides: [2, 2], pads: [1, 1, 1, 1] }), order: 2,
  },
  {
    // Unequal strides and taps, asymmetric pads, output_padding up to the end pads, 3 channels out.
    name: 'ConvTranspose col2im k[4,6] s[2,3] p[1,2,2,3] output_padding [1,2] [8,16,3,4]*[16,3,4,6] + bias', op: 'ConvTranspose', inputs: [f([8, 16, 3, 4]), f([16, 3, 4, 6]), f([3])],
    build: ([x, w, b]) => o.convTranspose(x!, w!, { strides: [2, 3], pads: [1, 2, 2, 3], outputPadding: [1, 2], bias: b! }),
    ref: ([x, w, b]) => R.convTranspose2d(x!, w!, b!, { strides: [2, 3], pads: [1, 2, 2, 3], outputPadding: [1, 2] }), order: 1,
  },
  {
    // Batch >= 8, small output, C*kh*kw >= 128 and fewer than 16 channels (so no im2col matrix):
    // lowered with the batch folded into the height. Order 2 runs the fold inside the grad-of-grad.
    name: 'Conv folded k4 s2 p1 [8,8,8,8]*[4,8,4,4] + bias', op: 'Conv', inputs: [f([8, 8, 8, 8]), f([4, 8, 4, 4]), f([4])],
    build: ([x, w, b]) => o.conv(x!, w!, { strides: [2, 2], pads: [1, 1, 1, 1], bias: b! }),
    ref: ([x, w, b]) => R.conv2d(x!, w!, b!, { strides: [2, 2], pads: [1, 1, 1, 1] }), order: 2,
  },
  {
    // Forward only, so no weight gradient builds an im2col matrix: folded, with a cut of the
    // extra output row per image ((8 + 0) / 2 = 4 rows, 3 valid) and asymmetric pads.
    name: 'Conv folded k3 s2 p[0,1,0,0] [8,16,8,8]*[3,16,3,3]', op: 'Conv', inputs: [f([8, 16, 8, 8]), f([3, 16, 3, 3])],
    build: ([x, w]) => o.conv(x!, w!, { strides: [2, 2], pads: [0, 1, 0, 0] }),
    ref: ([x, w]) => R.conv2d(x!, w!, undefined, { strides: [2, 2], pads: [0, 1, 0, 0] }), order: 0,
  },
  {
    name: 'Conv folded k3 d2 p[2,1,1,2] [8,16,6,7]*[2,16,3,3]', op: 'Conv', inputs: [f([8, 16, 6, 7]), f([2, 16, 3, 3])],
    build: ([x, w]) => o.conv(x!, w!, { pads: [2, 1, 1, 2], dilations: [2, 2] }),
    ref: ([x, w]) => R.conv2d(x!, w!, undefined, { pads: [2, 1, 1, 2], dilations: [2, 2] }), order: 0,
  },
  {
    // 16 channels and a weight gradient in the same graph: the forward pass is one GEMM on
    // the im2col matrix the weight gradient builds.
    name: 'Conv on shared im2col k4 s2 p1 [8,16,8,8]*[4,16,4,4] + bias', op: 'Conv', inputs: [f([8, 16, 8, 8]), f([4, 16, 4, 4]), f([4])],
    build: ([x, w, b]) => o.conv(x!, w!, { strides: [2, 2], pads: [1, 1, 1, 1], bias: b! }),
    ref: ([x, w, b]) => R.conv2d(x!, w!, b!, { strides: [2, 2], pads: [1, 1, 1, 1] }), order: 2,
  },
  {
    name: 'Conv k4 s2 p1 [2,2,8,8]*[3,2,4,4]', op: 'Conv', inputs: [f([2, 2, 8, 8]), f([3, 2, 4, 4])],
    build: ([x, w]) => o.conv(x!, w!, { strides: [2, 2], pads: [1, 1, 1, 1] }),
    ref: ([x, w]) => R.conv2d(x!, w!, undefined, { strides: [2, 2], pads: [1, 1, 1, 1] }), order: 2,
  },
  {
    // One input channel, even stride and kernel: the weight gradient's im2col gathers pixel pairs
    // from the padded image (here with asymmetric pads); an odd padded width falls back to rows.
    name: 'Conv one channel k4 s2 p[1,2,1,0] [2,1,8,8]*[3,1,4,4] + bias', op: 'Conv', inputs: [f([2, 1, 8, 8]), f([3, 1, 4, 4]), f([3])],
    build: ([x, w, b]) => o.conv(x!, w!, { strides: [2, 2], pads: [1, 2, 1, 0], bias: b! }),
    ref: ([x, w, b]) => R.conv2d(x!, w!, b!, { strides: [2, 2], pads: [1, 2, 1, 0] }), order: 2,
  },
  {
    name: 'Conv one channel k4 s2 p1, odd padded width [2,1,7,7]*[3,1,4,4]', op: 'Conv', inputs: [f([2, 1, 7, 7]), f([3, 1, 4, 4])],
    build: ([x, w]) => o.conv(x!, w!, { strides: [2, 2], pads: [1, 1, 1, 1] }),
    ref: ([x, w]) => R.conv2d(x!, w!, undefined, { strides: [2, 2], pads: [1, 1, 1, 1] }), order: 2,
  },
  {
    name: 'Conv dilation 2 p2 [1,2,9,9]*[2,2,3,3]', op: 'Conv', inputs: [f([1, 2, 9, 9]), f([2, 2, 3, 3])],
    build: ([x, w]) => o.conv(x!, w!, { pads: [2, 2, 2, 2], dilations: [2, 2] }),
    ref: ([x, w]) => R.conv2d(x!, w!, undefined, { pads: [2, 2, 2, 2], dilations: [2, 2] }), order: 2,
  },
  {
    name: 'Conv + bias [2,3,6,6]*[4,3,3,3]', op: 'Conv', inputs: [f([2, 3, 6, 6]), f([4, 3, 3, 3]), f([4])],
    build: ([x, w, b]) => o.conv(x!, w!, { bias: b! }), ref: ([x, w, b]) => R.conv2d(x!, w!, b!), order: 2,
  },
  {
    // (8 - 3) mod 2 = 1: the last input row/column is never read.
    name: 'Conv k3 s2 p0 odd [1,2,8,8]', op: 'Conv', inputs: [f([1, 2, 8, 8]), f([3, 2, 3, 3])],
    build: ([x, w]) => o.conv(x!, w!, { strides: [2, 2] }), ref: ([x, w]) => R.conv2d(x!, w!, undefined, { strides: [2, 2] }), order: 2,
  },
  {
    name: 'Conv k[3,2] s[2,3] asymmetric pads [2,2,7,9]', op: 'Conv', inputs: [f([2, 2, 7, 9]), f([2, 2, 3, 2]), f([2])],
    build: ([x, w, b]) => o.conv(x!, w!, { strides: [2, 3], pads: [1, 0, 0, 1], bias: b! }),
    ref: ([x, w, b]) => R.conv2d(x!, w!, b!, { strides: [2, 3], pads: [1, 0, 0, 1] }), order: 2,
  },
  {
    name: 'Conv s2 d2 p1 [1,2,10,10]', op: 'Conv', inputs: [f([1, 2, 10, 10]), f([3, 2, 3, 3])],
    build: ([x, w]) => o.conv(x!, w!, { strides: [2, 2], pads: [1, 1, 1, 1], dilations: [2, 2] }),
    ref: ([x, w]) => R.conv2d(x!, w!, undefined, { strides: [2, 2], pads: [1, 1, 1, 1], dilations: [2, 2] }), order: 2,
  },
  {
    name: 'Conv k1 s2 [1,3,7,7] (most input unread)', op: 'Conv', inputs: [f([1, 3, 7, 7]), f([2, 3, 1, 1])],
    build: ([x, w]) => o.conv(x!, w!, { strides: [2, 2] }), ref: ([x, w]) => R.conv2d(x!, w!, undefined, { strides: [2, 2] }), order: 2,
  },
  {
    name: 'Conv kernel larger than input, p2 [1,1,3,3]*[2,1,5,5]', op: 'Conv', inputs: [f([1, 1, 3, 3]), f([2, 1, 5, 5])],
    build: ([x, w]) => o.conv(x!, w!, { pads: [2, 2, 2, 2], strides: [2, 2] }), ref: ([x, w]) => R.conv2d(x!, w!, undefined, { pads: [2, 2, 2, 2], strides: [2, 2] }), order: 2,
  },
  {
    name: 'Conv s[1,2] d[2,1] pads [0,2,1,0] [2,2,8,7]', op: 'Conv', inputs: [f([2, 2, 8, 7]), f([3, 2, 3, 3]), f([3])],
    build: ([x, w, b]) => o.conv(x!, w!, { strides: [1, 2], dilations: [2, 1], pads: [0, 2, 1, 0], bias: b! }),
    ref: ([x, w, b]) => R.conv2d(x!, w!, b!, { strides: [1, 2], dilations: [2, 1], pads: [0, 2, 1, 0] }), order: 2,
  },
  {
    name: 'ConvTranspose k4 s2 p1 [2,3,4,4]', op: 'ConvTranspose', inputs: [f([2, 3, 4, 4]), f([3, 2, 4, 4])],
    build: ([x, w]) => o.convTranspose(x!, w!, { strides: [2, 2], pads: [1, 1, 1, 1] }),
    ref: ([x, w]) => R.convTranspose2d(x!, w!, undefined, { strides: [2, 2], pads: [1, 1, 1, 1] }), order: 2,
  },
  {
    name: 'ConvTranspose k3 s2 p1 output_padding 1', op: 'ConvTranspose', inputs: [f([1, 2, 3, 3]), f([2, 3, 3, 3])],
    build: ([x, w]) => o.convTranspose(x!, w!, { strides: [2, 2], pads: [1, 1, 1, 1], outputPadding: [1, 1] }),
    ref: ([x, w]) => R.convTranspose2d(x!, w!, undefined, { strides: [2, 2], pads: [1, 1, 1, 1], outputPadding: [1, 1] }), order: 2,
  },
  {
    name: 'ConvTranspose + bias s1 p0', op: 'ConvTranspose', inputs: [f([2, 2, 3, 3]), f([2, 4, 3, 3]), f([4])],
    build: ([x, w, b]) => o.convTranspose(x!, w!, { bias: b! }), ref: ([x, w, b]) => R.convTranspose2d(x!, w!, b!), order: 2,
  },
  {
    name: 'ConvTranspose k4 s2 p1 + bias (generator)', op: 'ConvTranspose', inputs: [f([2, 3, 3, 3]), f([3, 2, 4, 4]), f([2])],
    build: ([x, w, b]) => o.convTranspose(x!, w!, { strides: [2, 2], pads: [1, 1, 1, 1], bias: b! }),
    ref: ([x, w, b]) => R.convTranspose2d(x!, w!, b!, { strides: [2, 2], pads: [1, 1, 1, 1] }), order: 2,
  },
  {
    name: 'ConvTranspose d2 p1', op: 'ConvTranspose', inputs: [f([1, 2, 4, 4]), f([2, 2, 3, 3])],
    build: ([x, w]) => o.convTranspose(x!, w!, { pads: [1, 1, 1, 1], dilations: [2, 2] }),
    ref: ([x, w]) => R.convTranspose2d(x!, w!, undefined, { pads: [1, 1, 1, 1], dilations: [2, 2] }), order: 2,
  },
  {
    name: 'ConvTranspose s[2,3] asymmetric pads output_padding [1,2]', op: 'ConvTranspose', inputs: [f([1, 2, 3, 4]), f([2, 2, 3, 3])],
    build: ([x, w]) => o.convTranspose(x!, w!, { strides: [2, 3], pads: [0, 1, 1, 0], outputPadding: [1, 2] }),
    ref: ([x, w]) => R.convTranspose2d(x!, w!, undefined, { strides: [2, 3], pads: [0, 1, 1, 0], outputPadding: [1, 2] }), order: 2,
  },
  {
    name: 'ConvTranspose s2 d2 p[1,0,0,1] output_padding 1', op: 'ConvTranspose', inputs: [f([1, 2, 3, 3]), f([2, 2, 3, 3]), f([2])],
    build: ([x, w, b]) => o.convTranspose(x!, w!, { strides: [2, 2], dilations: [2, 2], pads: [1, 0, 0, 1], outputPadding: [1, 1], bias: b! }),
    ref: ([x, w, b]) => R.convTranspose2d(x!, w!, b!, { strides: [2, 2], dilations: [2, 2], pads: [1, 0, 0, 1], outputPadding: [1, 1] }), order: 2,
  },
  {
    name: 'ConvTranspose pads crop most of the output [1,2,4,4] k3 p2', op: 'ConvTranspose', inputs: [f([1, 2, 4, 4]), f([2, 2, 3, 3])],
    build: ([x, w]) => o.convTranspose(x!, w!, { pads: [2, 2, 2, 2] }),
    ref: ([x, w]) => R.convTranspose2d(x!, w!, undefined, { pads: [2, 2, 2, 2] }), order: 2,
  },
  {
    name: 'MaxPool 2x2 s2 distinct [2,3,4,6]', op: 'MaxPool', inputs: [f([2, 3, 4, 6], 'distinct')],
    build: ([x]) => o.maxPool(x!, [2, 2]), ref: ([x]) => R.maxPool2d(x!, [2, 2], [2, 2]), order: 2,
  },
  {
    name: 'MaxPool 2x2 s2 ties [1,2,4,4]', op: 'MaxPool', inputs: [f([1, 2, 4, 4], 'ties')],
    build: ([x]) => o.maxPool(x!, [2, 2]), ref: ([x]) => R.maxPool2d(x!, [2, 2], [2, 2]), order: 0,
  },
  {
    // After a Conv that runs as a GEMM (its weight gradient is in the graph from order 1 on): the
    // convolution in phase order, one ReduceMax over the phases, masks broadcast over images.
    name: 'MaxPool 2x2 s2 after a GEMM Conv [2,16,4,6]*[3,16,3,3] p1', op: 'MaxPool', inputs: [f([2, 16, 4, 6]), f([3, 16, 3, 3])],
    build: ([x, w]) => o.maxPool(o.conv(x!, w!, { pads: [1, 1, 1, 1] }), [2, 2]),
    ref: ([x, w]) => R.maxPool2d(R.conv2d(x!, w!, undefined, { pads: [1, 1, 1, 1] }), [2, 2], [2, 2]), order: 2,
  },
  {
    // The same with a bias, and a batch and channels for which the input gradient is a
    // flipped-kernel GEMM that gathers the phase-ordered gradient in place.
    name: 'MaxPool 2x2 s2 after a GEMM Conv, flipped input gradient [8,16,4,6]*[16,16,3,3]+b p1', op: 'MaxPool',
    inputs: [f([8, 16, 4, 6]), f([16, 16, 3, 3]), f([16])],
    build: ([x, w, b]) => o.maxPool(o.conv(x!, w!, { pads: [1, 1, 1, 1], bias: b! }), [2, 2]),
    ref: ([x, w, b]) => R.maxPool2d(R.conv2d(x!, w!, b!, { pads: [1, 1, 1, 1] }), [2, 2], [2, 2]), order: 1,
  },
  {
    // One input channel, dilated: single-pixel rows, and a bias column of one float (see im2col).
    name: 'Conv one channel dilation 2 +b [8,1,7,7]*[4,1,3,3] p2', op: 'Conv', inputs: [f([8, 1, 7, 7]), f([4, 1, 3, 3]), f([4])],
    build: ([x, w, b]) => o.conv(x!, w!, { pads: [2, 2, 2, 2], dilations: [2, 2], bias: b! }),
    ref: ([x, w, b]) => R.conv2d(x!, w!, b!, { pads: [2, 2, 2, 2], dilations: [2, 2] }), order: 2,
  },
  {
    // One input channel (window rows gathered from shifted copies), rows in phase order.
    name: 'MaxPool 2x2 s2 after a one-channel GEMM Conv [3,1,6,4]*[4,1,3,3]+b p1', op: 'MaxPool', inputs: [f([3, 1, 6, 4]), f([4, 1, 3, 3]), f([4])],
    build: ([x, w, b]) => o.maxPool(o.conv(x!, w!, { pads: [1, 1, 1, 1], bias: b! }), [2, 2]),
    ref: ([x, w, b]) => R.maxPool2d(R.conv2d(x!, w!, b!, { pads: [1, 1, 1, 1] }), [2, 2], [2, 2]), order: 2,
  },
  {
    // The gradient primitives of a Conv, applied directly (the cpu target expands them on an
    // im2col matrix; the plain one runs a Conv over the batch-transposed tensors and a ReduceSum).
    name: 'ConvBackwardFilter k4 s2 p1 [2,16,6,6], dY [2,3,3,3]', op: 'ConvBackwardFilter', inputs: [f([2, 16, 6, 6]), f([2, 3, 3, 3])],
    build: ([x, dy]) => o.convBackwardFilter(x!, dy!, { strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1] }, [4, 4]),
    ref: ([x, dy]) => R.conv2dBackwardFilter(x!, dy!, [4, 4], { strides: [2, 2], pads: [1, 1, 1, 1] }), order: 2,
  },
  {
    // The padding leaves the transposed Conv a larger result than the kernel: it is cut.
    name: 'ConvBackwardFilter one channel k3 s2 p[2,1,1,2] [3,1,9,7], dY [3,2,5,4]', op: 'ConvBackwardFilter', inputs: [f([3, 1, 9, 7]), f([3, 2, 5, 4])],
    build: ([x, dy]) => o.convBackwardFilter(x!, dy!, { strides: [2, 2], pads: [2, 1, 1, 2], dilations: [1, 1] }, [3, 3]),
    ref: ([x, dy]) => R.conv2dBackwardFilter(x!, dy!, [3, 3], { strides: [2, 2], pads: [2, 1, 1, 2] }), order: 2,
  },
  {
    name: 'ConvBackwardFilter k3 s[1,2] d[2,1] p[0,2,1,0] [2,2,8,7], dY [2,3,5,4]', op: 'ConvBackwardFilter', inputs: [f([2, 2, 8, 7]), f([2, 3, 5, 4])],
    build: ([x, dy]) => o.convBackwardFilter(x!, dy!, { strides: [1, 2], pads: [0, 2, 1, 0], dilations: [2, 1] }, [3, 3]),
    ref: ([x, dy]) => R.conv2dBackwardFilter(x!, dy!, [3, 3], { strides: [1, 2], pads: [0, 2, 1, 0], dilations: [2, 1] }), order: 1,
  },
  {
    name: 'ConvBackwardBias [2,3,4,5]', op: 'ConvBackwardBias', inputs: [f([2, 3, 4, 5])],
    build: ([dy]) => o.convBackwardBias(dy!), ref: ([dy]) => R.reduce(dy!, [0, 2, 3], 0, 'sum'), order: 1,
  },
  {
    name: 'MaxPoolGrad 2x2 [2,3,4,6] (MaxPool input gradient)', op: 'MaxPoolGrad', inputs: [f([2, 3, 4, 6], 'distinct'), f([2, 3, 2, 3])],
    build: ([x, dy]) => gradients(o.sumAll(o.mul(o.maxPool(x!, [2, 2]), dy!)), [x!])[0]!,
    ref: ([x, dy]) => R.maxPool2dBackward(x!, dy!, [2, 2]), order: 1,
  },
  {
    name: 'MaxPool 3x3 s1 overlapping (forward only)', op: 'MaxPool', inputs: [f([1, 2, 5, 6], 'distinct')],
    build: ([x]) => o.maxPool(x!, [3, 3], [1, 1]), ref: ([x]) => R.maxPool2d(x!, [3, 3], [1, 1]), order: 0,
  },
  {
    name: 'MaxPool 2x2 s2 odd input floor mode (forward only)', op: 'MaxPool', inputs: [f([1, 1, 5, 5], 'distinct')],
    build: ([x]) => o.maxPool(x!, [2, 2]), ref: ([x]) => R.maxPool2d(x!, [2, 2], [2, 2]), order: 0,
  },

  // ----------------------------------------------------------- indexing
  {
    name: 'Gather embedding [5,3] by int64 [2,3] (repeats)', op: 'Gather', inputs: [f([5, 3]), int([2, 3], 0, 5)],
    build: ([t, i]) => o.gather(t!, i!), ref: ([t, i]) => R.gather(t!, i!), order: 2,
  },
  {
    name: 'Gather [6] by [4] squared', op: 'Gather', inputs: [f([6]), int([4], 0, 6)],
    build: ([t, i]) => { const e = o.gather(t!, i!); return o.mul(e, e); },
    ref: ([t, i]) => { const e = R.gather(t!, i!); return R.mul(e, e); }, order: 2,
  },
  {
    name: 'Gather axis 1 [2,6,3] by [7] (repeats)', op: 'Gather', inputs: [f([2, 6, 3]), int([7], 0, 6)],
    build: ([t, i]) => o.gather(t!, i!, 1), ref: ([t, i]) => R.gatherAxis(t!, i!, 1), order: 2,
  },
  {
    name: 'Gather axis 2 [2,3,5] by [4] squared', op: 'Gather', inputs: [f([2, 3, 5]), int([4], 0, 5)],
    build: ([t, i]) => { const e = o.gather(t!, i!, 2); return o.mul(e, e); },
    ref: ([t, i]) => { const e = R.gatherAxis(t!, i!, 2); return R.mul(e, e); }, order: 2,
  },
  {
    name: 'Gather negative indices [4,2,2] by [5]', op: 'Gather', inputs: [f([4, 2, 2]), int([5], -4, 4)],
    build: ([t, i]) => o.gather(t!, i!), ref: ([t, i]) => R.gather(t!, i!), order: 1,
  },
  { name: 'OneHot [2,3] depth 5', op: 'OneHot', inputs: [int([2, 3], 0, 5)], build: ([i]) => o.oneHot(i!, 5), ref: ([i]) => R.oneHot(i!, 5), order: 0 },
  { name: 'OneHot negative indices [6] depth 4', op: 'OneHot', inputs: [int([6], -4, 4)], build: ([i]) => o.oneHot(i!, 4), ref: ([i]) => R.oneHot(i!, 4), order: 0 },

  // ----------------------------------------------------------- identity / stop-gradient
  { name: 'Identity', op: 'Identity', inputs: [f([2, 3])], build: ([x]) => o.identity(x!), ref: ([x]) => x!, order: 1 },
  { name: 'Identity squared', op: 'Identity', inputs: [f([4])], build: ([x]) => { const i = o.identity(x!); return o.mul(i, i); }, ref: ([x]) => R.mul(x!, x!), order: 2 },
  { name: 'Identity int64', op: 'Identity', inputs: [int([3], -9, 9)], build: ([x]) => o.identity(x!), ref: ([x]) => x!, order: 0 },
  {
    name: 'StopGradient: gradient is zero', op: 'StopGradient', inputs: [f([2, 3])],
    build: ([x]) => o.stopGradient(x!), ref: ([x]) => x!, order: 1, vjpRef: ([x]) => [R.zeros(x!.shape)],
  },
  {
    // d/dx [sg(x) * x] = sg(x): only the unstopped factor is differentiated.
    name: 'StopGradient sg(x)*x', op: 'StopGradient', inputs: [f([2, 3])],
    build: ([x]) => o.mul(o.stopGradient(x!), x!), ref: ([x]) => R.mul(x!, x!), order: 1, vjpRef: ([x], u) => [R.mul(u, x!)],
  },

  // ----------------------------------------------------------- the gradient-penalty path
  {
    // A WGAN critic: conv(k4,s2,p1) -> leakyRelu(0.2) -> conv(k4,s2,p1) -> leakyRelu -> reshape -> gemm.
    // Order 2 over (x, weights) includes the mixed x/weight terms the penalty differentiates.
    name: 'critic-like conv-lrelu-conv-lrelu-gemm', op: 'Conv',
    inputs: [f([2, 1, 8, 8]), f([4, 1, 4, 4], 'any', { scale: 0.5 }), f([4], 'any', { scale: 0.1 }), f([8, 4, 4, 4], 'any', { scale: 0.25 }), f([8], 'any', { scale: 0.1 }), f([1, 32], 'any', { scale: 0.3 }), f([1])],
    build: ([x, w1, b1, w2, b2, wf, bf]) => critic(x!, w1!, b1!, w2!, b2!, wf!, bf!),
    ref: (p) => criticRef(p).out, order: 2,
    // The pre-activations cannot be kept away from the LeakyRelu kinks by an input domain, and the
    // order-2 finite difference steps ~1e-3 in 7 tensors at once: difference the local piece instead.
    local: (base) => { const { pattern } = criticRef(base); return (p) => criticRef(p, pattern).out; },
  },
];

type V = import('../../src/graph/ir.ts').Value;
const K4S2P1 = { strides: [2, 2], pads: [1, 1, 1, 1] };

export function critic(x: V, w1: V, b1: V, w2: V, b2: V, wf: V, bf: V): V {
  const h1 = o.leakyRelu(o.conv(x, w1, { ...K4S2P1, bias: b1 }), 0.2);
  const h2 = o.leakyRelu(o.conv(h1, w2, { ...K4S2P1, bias: b2 }), 0.2);
  return o.gemm(o.reshape(h2, [x.shape[0]!, h2.size / x.shape[0]!]), wf, 0, 1, bf);
}

/** [x, w1, b1, w2, b2, wf, bf] */
export type CriticParams = readonly R.T[];
/** LeakyRelu slopes (1 or 0.2) of both layers: the critic's activation pattern. */
export interface Pattern { s1: R.T; s2: R.T }

const slope = (z: R.T) => R.map(z, (v) => (v >= 0 ? 1 : 0.2));

/**
 * The critic in float64. With `frozen`, each LeakyRelu multiplies by the given slopes instead of
 * its own: that is the same function in the neighbourhood of the point the pattern was taken at
 * (the polynomial piece autodiff differentiates), so finite differences may step across kinks.
 */
export function criticRef(p: CriticParams, frozen?: Pattern) {
  const [x, w1, b1, w2, b2, wf, bf] = p as [R.T, R.T, R.T, R.T, R.T, R.T, R.T];
  const z1 = R.conv2d(x, w1, b1, K4S2P1);
  const s1 = frozen?.s1 ?? slope(z1);
  const h1 = R.mul(z1, s1);
  const z2 = R.conv2d(h1, w2, b2, K4S2P1);
  const s2 = frozen?.s2 ?? slope(z2);
  const h2 = R.mul(z2, s2);
  const n = x.shape[0]!;
  const out = R.gemm(R.reshape(h2, [n, h2.data.length / n]), wf, 0, 1, bf);
  return { z1, z2, pattern: { s1, s2 }, out };
}

/** d sum(critic(x)) / dx in float64, by hand: the chain rule through the reference loops. */
export function criticInputGradRef(p: CriticParams, frozen?: Pattern): R.T {
  const [x, w1, , w2, , wf] = p as [R.T, R.T, R.T, R.T, R.T, R.T, R.T];
  const { z1, z2, pattern } = criticRef(p, frozen);
  const n = x.shape[0]!;
  // out[i] = sum_k h2flat[i, k] * wf[0, k] + bf  =>  d/dh2flat[i, k] = wf[0, k].
  const dh2 = R.reshape(R.expand(wf, [n, wf.data.length]), z2.shape);
  const dz2 = R.mul(dh2, pattern.s2);
  const dh1 = R.conv2dBackwardInput(dz2, w2, z1.shape, K4S2P1);
  const dz1 = R.mul(dh1, pattern.s1);
  return R.conv2dBackwardInput(dz1, w1, x.shape, K4S2P1);
}
