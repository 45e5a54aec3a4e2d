// Reductions over listed axes: ReduceSum, ReduceMean, ReduceMax.

import { type Rules } from './types.js';
import { keptShape, reduceInfer } from './helpers.js';
import { cast, equal, expand, mul, reshape } from '../ops.js';

export const reduceRules: Rules<'ReduceSum' | 'ReduceMean' | 'ReduceMax'> = {
  ReduceSum: {
    infer: reduceInfer('ReduceSum'),
    lower: (ctx, a) => ctx.node('ReduceSum', [ctx.inputs[0]!, ctx.ints(a.axes)], [ctx.output], { keepdims: a.keepdims }),
    grad: (dy, { inputs: [x], attrs }) => [expand(reshape(dy, keptShape(x!, attrs)), x!.shape)],
  },
  ReduceMean: {
    infer: reduceInfer('ReduceMean'),
    lower: (ctx, a) => ctx.node('ReduceMean', ctx.inputs, [ctx.output], { axes: a.axes, keepdims: a.keepdims }),
    grad: (dy, { inputs: [x], output, attrs }) => [expand(reshape(mul(dy, output.size / x!.size), keptShape(x!, attrs)), x!.shape)],
  },
  ReduceMax: {
    infer: reduceInfer('ReduceMax'),
    lower: (ctx, a) => ctx.node('ReduceMax', ctx.inputs, [ctx.output], { axes: a.axes, keepdims: a.keepdims }),
    // Ties share the gradient in full (each tied element gets dy), as a mask formulation does.
    grad: (dy, { inputs: [x], output, attrs }) => {
      const k = keptShape(x!, attrs);
      const mask = cast(equal(x!, reshape(output, k)), 'float32');
      return [mul(expand(reshape(dy, k), x!.shape), mask)];
    },
  },
};
