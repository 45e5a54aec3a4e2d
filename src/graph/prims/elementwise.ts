// Element-wise primitives: arithmetic, activations, comparisons, Where, Cast, Clip, Identity and
// StopGradient. Shape rules, standard lowerings (one ONNX node each) and gradients.

import { broadcastShapes, fmtShape, type Value } from '../ir.js';
import { type Rules } from './types.js';
import { arity, broadcast, elementwise, fail, float, onnxType, simple } from './helpers.js';
import { cast, div, greater, less, log, mul, neg, pow, sign, stopGradient, sub, where } from '../ops.js';

export const elementwiseRules: Rules<'Add' | 'Sub' | 'Mul' | 'Div' | 'Pow' | 'Neg' | 'Exp' | 'Log' | 'Sqrt' | 'Abs' | 'Sign' | 'Tanh' | 'Sigmoid' | 'Relu' | 'LeakyRelu' | 'Clip' | 'Greater' | 'Less' | 'Equal' | 'Where' | 'Cast' | 'Identity' | 'StopGradient'> = {
  Add: { infer: (i) => broadcast('Add', i), lower: simple('Add'), grad: (dy) => [dy, dy] },
  Sub: { infer: (i) => broadcast('Sub', i), lower: simple('Sub'), grad: (dy) => [dy, neg(dy)] },
  Mul: {
    infer: (i) => broadcast('Mul', i),
    lower: simple('Mul'),
    grad: (dy, { inputs: [a, b] }) => [mul(dy, b!), mul(dy, a!)],
  },
  Div: {
    infer: (i) => broadcast('Div', i),
    lower: simple('Div'),
    grad: (dy, { inputs: [, b], output }) => [div(dy, b!), neg(div(mul(dy, output), b!))],
  },
  Pow: {
    infer: (i) => broadcast('Pow', i),
    lower: simple('Pow'),
    grad: (dy, { inputs: [x, p], output }) => [
      mul(dy, mul(p!, pow(x!, sub(p!, 1)))),
      p!.op === 'Constant' ? null : mul(dy, mul(output, log(x!))),
    ],
  },
  Neg: { infer: (i) => elementwise('Neg', i), lower: simple('Neg'), grad: (dy) => [neg(dy)] },
  Exp: { infer: (i) => elementwise('Exp', i), lower: simple('Exp'), grad: (dy, { output }) => [mul(dy, output)] },
  Log: { infer: (i) => elementwise('Log', i), lower: simple('Log'), grad: (dy, { inputs: [x] }) => [div(dy, x!)] },
  Sqrt: {
    infer: (i) => elementwise('Sqrt', i),
    lower: simple('Sqrt'),
    grad: (dy, { output }) => [div(mul(dy, 0.5), output)],
  },
  Abs: { infer: (i) => elementwise('Abs', i), lower: simple('Abs'), grad: (dy, { inputs: [x] }) => [mul(dy, sign(x!))] },
  // Zero derivative almost everywhere: no gradient flows, which keeps relu'' = 0 exact.
  Sign: { infer: (i) => elementwise('Sign', i), lower: simple('Sign'), grad: () => [null] },
  Tanh: {
    infer: (i) => elementwise('Tanh', i),
    lower: simple('Tanh'),
    grad: (dy, { output }) => [mul(dy, sub(1, mul(output, output)))],
  },
  Sigmoid: {
    infer: (i) => elementwise('Sigmoid', i),
    lower: simple('Sigmoid'),
    grad: (dy, { output }) => [mul(dy, mul(output, sub(1, output)))],
  },
  // The gradient's mask: Cast(Greater(y, 0)).
  Relu: { infer: (i) => elementwise('Relu', i), lower: simple('Relu'), grad: (dy, { output }) => [mul(dy, positive(output))] },
  LeakyRelu: {
    infer: (i) => elementwise('LeakyRelu', i),
    lower: (ctx, a) => ctx.node('LeakyRelu', ctx.inputs, [ctx.output], { alpha: a.alpha }),
    // The slope: 1 where x > 0, alpha elsewhere (the cpu target computes it as a Clip, `stepSlope`).
    grad: (dy, { inputs: [x], attrs }) => [mul(dy, stopGradient(where(greater(x!, 0), x!.graph.scalar(1), x!.graph.scalar(attrs.alpha))))],
  },
  // Clip(x, min, max) with scalar bounds; the bounds get no gradient (constants in every use).
  Clip: {
    infer: (inputs) => {
      arity('Clip', inputs, 3);
      const [x, lo, hi] = inputs as [Value, Value, Value];
      float('Clip', x, 'input');
      for (const [b, what] of [[lo, 'min'], [hi, 'max']] as const) if (b.rank !== 0) fail('Clip', `${what} ${b} must be a scalar`);
      return { shape: x.shape, dtype: x.dtype };
    },
    lower: simple('Clip'),
    grad: (dy, { inputs: [x, lo, hi] }) => [mul(dy, mul(cast(greater(x!, lo!), 'float32'), cast(less(x!, hi!), 'float32'))), null, null],
  },
  Greater: { infer: (i) => broadcast('Greater', i, 'bool'), lower: simple('Greater') },
  Less: { infer: (i) => broadcast('Less', i, 'bool'), lower: simple('Less') },
  Equal: { infer: (i) => broadcast('Equal', i, 'bool'), lower: simple('Equal') },
  Where: {
    infer: (inputs) => {
      arity('Where', inputs, 3);
      const [c, a, b] = inputs as [Value, Value, Value];
      if (c.dtype !== 'bool') fail('Where', `condition ${c} must be bool`);
      const ab = broadcast('Where', [a, b]);
      const shape = broadcastShapes(c.shape, ab.shape);
      if (!shape) fail('Where', `condition ${fmtShape(c.shape)} does not broadcast with ${fmtShape(ab.shape)}`);
      return { shape, dtype: ab.dtype };
    },
    lower: simple('Where'),
    // The condition as a float mask.
    grad: (dy, { inputs: [c] }) => {
      const m = cast(c!, 'float32');
      return [null, mul(dy, m), mul(dy, sub(1, m))];
    },
  },
  Cast: {
    infer: (inputs, a) => (arity('Cast', inputs, 1), { shape: inputs[0]!.shape, dtype: a.to }),
    lower: (ctx, a) => ctx.node('Cast', ctx.inputs, [ctx.output], { to: onnxType[a.to] }),
    grad: (dy, { inputs: [x] }) => [x!.dtype === 'float32' ? dy : null],
  },
  Identity: { infer: (i) => (arity('Identity', i, 1), { shape: i[0]!.shape, dtype: i[0]!.dtype }), lower: simple('Identity'), grad: (dy) => [dy] },
  StopGradient: {
    infer: (i) => (arity('StopGradient', i, 1), { shape: i[0]!.shape, dtype: i[0]!.dtype }),
    lower: simple('Identity'),
    grad: () => [null],
  },
};

/** 1 where x > 0, else 0 (float). Not differentiable, as a mask should be. */
function positive(x: Value): Value {
  return cast(greater(x, 0), 'float32');
}
