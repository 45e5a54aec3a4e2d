// Shape and indexing primitives: Reshape, Transpose, Concat, Slice, Pad, Expand, Gather, OneHot.

import { broadcastShapes, fmtShape, sizeOf, type Value } from '../ir.js';
import { type Rules } from './types.js';
import { arity, broadcast, fail, normAxes } from './helpers.js';
import { gemm, matmul, oneHot, pad, reshape, slice, swapLast, transpose } from '../ops.js';

export const shapeRules: Rules<'Reshape' | 'Transpose' | 'Concat' | 'Slice' | 'Pad' | 'Expand' | 'Gather' | 'OneHot'> = {
  Reshape: {
    infer: (inputs, a) => {
      arity('Reshape', inputs, 1);
      const x = inputs[0]!;
      if (sizeOf(a.shape) !== x.size) fail('Reshape', `cannot reshape input ${fmtShape(x.shape)} (${x.size} elements) to ${fmtShape(a.shape)}`);
      return { shape: a.shape, dtype: x.dtype };
    },
    lower: (ctx, a) => ctx.node('Reshape', [ctx.inputs[0]!, ctx.ints(ctx.dynamicBatch === undefined ? a.shape : [-1, ...a.shape.slice(1)])], [ctx.output]),
    grad: (dy, { inputs: [x] }) => [reshape(dy, x!.shape)],
  },
  Transpose: {
    infer: (inputs, a) => {
      arity('Transpose', inputs, 1);
      const x = inputs[0]!;
      const sorted = [...a.perm].sort((p, q) => p - q);
      if (a.perm.length !== x.rank || sorted.some((p, i) => p !== i)) fail('Transpose', `perm [${a.perm.join(', ')}] is not a permutation for input ${fmtShape(x.shape)}`);
      return { shape: a.perm.map((p) => x.shape[p]!), dtype: x.dtype };
    },
    lower: (ctx, a) => ctx.node('Transpose', ctx.inputs, [ctx.output], { perm: a.perm }),
    grad: (dy, { attrs: { perm } }) => {
      const inv: number[] = [];
      perm.forEach((p, i) => (inv[p] = i));
      return [transpose(dy, inv)];
    },
  },
  Concat: {
    infer: (inputs, a) => {
      if (inputs.length < 1) fail('Concat', 'expects at least one input');
      const x0 = inputs[0]!;
      const axis = normAxes('Concat', [a.axis], x0.rank)[0]!;
      let total = 0;
      inputs.forEach((x, i) => {
        const ok = x.rank === x0.rank && x.dtype === x0.dtype && x.shape.every((d, j) => j === axis || d === x0.shape[j]);
        if (!ok) fail('Concat', `input ${i} ${fmtShape(x.shape)} ${x.dtype} does not match input 0 ${fmtShape(x0.shape)} ${x0.dtype} outside axis ${axis}`);
        total += x.shape[axis]!;
      });
      return { shape: x0.shape.map((d, j) => (j === axis ? total : d)), dtype: x0.dtype };
    },
    lower: (ctx, a) => ctx.node('Concat', ctx.inputs, [ctx.output], { axis: a.axis }),
    grad: (dy, { inputs, attrs }) => {
      const axis = attrs.axis < 0 ? attrs.axis + dy.rank : attrs.axis;
      let at = 0;
      return inputs.map((x) => {
        const starts = dy.shape.map((_, j) => (j === axis ? at : 0));
        const ends = dy.shape.map((d, j) => (j === axis ? at + x.shape[axis]! : d));
        at += x.shape[axis]!;
        return slice(dy, starts, ends);
      });
    },
  },
  Slice: {
    infer: (inputs, a) => {
      arity('Slice', inputs, 1);
      const x = inputs[0]!;
      if (a.starts.length !== x.rank || a.ends.length !== x.rank) fail('Slice', `starts/ends need one entry per axis of input ${fmtShape(x.shape)}`);
      const shape = x.shape.map((d, i) => {
        const s = a.starts[i]!;
        const e = a.ends[i]!;
        if (s < 0 || e > d || s >= e) fail('Slice', `range [${s}, ${e}) on axis ${i} is empty or outside input ${fmtShape(x.shape)}`);
        return e - s;
      });
      return { shape, dtype: x.dtype };
    },
    lower: (ctx, a) => {
      // With a symbolic batch, leave axis 0 alone (a batch slice cannot be emitted that way).
      const from = ctx.dynamicBatch === undefined ? 0 : 1;
      if (from && (a.starts[0] !== 0 || a.ends[0] !== ctx.dynamicBatch)) throw new Error('Slice: cannot slice the batch axis of a graph emitted with a symbolic batch');
      const axes = a.starts.map((_, i) => i).slice(from);
      ctx.node('Slice', [ctx.inputs[0]!, ctx.ints(a.starts.slice(from)), ctx.ints(a.ends.slice(from)), ctx.ints(axes)], [ctx.output]);
    },
    grad: (dy, { inputs: [x], attrs }) => [pad(dy, [...attrs.starts, ...attrs.ends.map((e, i) => x!.shape[i]! - e)])],
  },
  Pad: {
    infer: (inputs, a) => {
      arity('Pad', inputs, 1);
      const x = inputs[0]!;
      if (a.pads.length !== 2 * x.rank || a.pads.some((p) => p < 0)) fail('Pad', `pads [${a.pads.join(', ')}] must be 2*rank non-negative values for input ${fmtShape(x.shape)}`);
      return { shape: x.shape.map((d, i) => d + a.pads[i]! + a.pads[i + x.rank]!), dtype: x.dtype };
    },
    lower: (ctx, a) => ctx.node('Pad', [ctx.inputs[0]!, ctx.ints(a.pads)], [ctx.output], { mode: 'constant' }),
    grad: (dy, { inputs: [x], attrs: { pads } }) => {
      return [slice(dy, x!.shape.map((_, i) => pads[i]!), x!.shape.map((d, i) => pads[i]! + d))];
    },
  },
  Expand: {
    infer: (inputs, a) => {
      arity('Expand', inputs, 1);
      const x = inputs[0]!;
      const shape = broadcastShapes(x.shape, a.shape);
      if (!shape || shape.length !== a.shape.length || shape.some((d, i) => d !== a.shape[i])) {
        fail('Expand', `input ${fmtShape(x.shape)} does not broadcast to ${fmtShape(a.shape)}`);
      }
      return { shape, dtype: x.dtype };
    },
    lower: (ctx, a) => ctx.node('Expand', [ctx.inputs[0]!, ctx.ints(a.shape)], [ctx.output]),
    grad: (dy) => [dy], // reduced to the input's shape by the backward driver
  },
  Gather: {
    infer: (inputs, a) => {
      arity('Gather', inputs, 2);
      const [t, i] = inputs as [Value, Value];
      if (i.dtype !== 'int64') fail('Gather', `indices ${i} must be int64`);
      if (a.axis < 0 || a.axis >= t.rank) fail('Gather', `axis ${a.axis} is out of range for data ${fmtShape(t.shape)}`);
      if (a.axis !== 0 && i.rank !== 1) fail('Gather', `indices ${fmtShape(i.shape)} must be 1-D when gathering along axis ${a.axis}`);
      return { shape: [...t.shape.slice(0, a.axis), ...i.shape, ...t.shape.slice(a.axis + 1)], dtype: t.dtype };
    },
    lower: (ctx, a) => ctx.node('Gather', ctx.inputs, [ctx.output], { axis: a.axis }),
    // The data's gradient is onehot(indices)^T @ dy along the gathered axis (a scatter-add).
    grad: (dy, { inputs: [t, i], attrs: { axis } }) => {
      const rows = t!.shape[axis]!;
      const pre = t!.shape.slice(0, axis).reduce((x, y) => x * y, 1);
      const post = t!.size / (pre * rows);
      const oh = oneHot(reshape(i!, [i!.size]), rows); // [K, rows]
      if (axis === 0) return [reshape(gemm(oh, reshape(dy, [i!.size, post]), 1, 0), t!.shape), null]; // [rows, post]
      const g = matmul(swapLast(oh), reshape(dy, [pre, i!.size, post])); // [pre, rows, post]
      return [reshape(g, t!.shape), null];
    },
  },
  OneHot: {
    infer: (inputs, a) => {
      arity('OneHot', inputs, 1);
      if (inputs[0]!.dtype !== 'int64') fail('OneHot', `indices ${inputs[0]} must be int64`);
      return { shape: [...inputs[0]!.shape, a.depth], dtype: 'float32' };
    },
    lower: (ctx, a) => ctx.node('OneHot', [ctx.inputs[0]!, ctx.ints([a.depth]), ctx.floats([0, 1])], [ctx.output], { axis: -1 }),
  },
};
