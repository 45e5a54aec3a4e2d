// Matrix products: MatMul (batched, broadcasting) and Gemm.

import { broadcastShapes, fmtShape, type Value } from '../ir.js';
import { type Rules } from './types.js';
import { arity, broadcast, fail, float, simple } from './helpers.js';
import { gemm, matmul, swapLast } from '../ops.js';

export const matmulRules: Rules<'MatMul' | 'Gemm'> = {
  MatMul: {
    infer: (inputs) => {
      arity('MatMul', inputs, 2);
      const [a, b] = inputs as [Value, Value];
      float('MatMul', a, 'input A');
      float('MatMul', b, 'input B');
      if (a.rank < 2 || b.rank < 2) fail('MatMul', `inputs must have rank >= 2, got A ${fmtShape(a.shape)} and B ${fmtShape(b.shape)}`);
      const [m, k] = a.shape.slice(-2) as [number, number];
      const [k2, n] = b.shape.slice(-2) as [number, number];
      if (k !== k2) fail('MatMul', `inner dimensions differ: A ${fmtShape(a.shape)} and B ${fmtShape(b.shape)}`);
      const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
      if (!batch) fail('MatMul', `batch dimensions of A ${fmtShape(a.shape)} and B ${fmtShape(b.shape)} do not broadcast`);
      return { shape: [...batch, m, n], dtype: 'float32' };
    },
    lower: simple('MatMul'),
    grad: (dy, { inputs: [a, b] }) => [matmul(dy, swapLast(b!)), matmul(swapLast(a!), dy)],
  },
  Gemm: {
    infer: (inputs, at) => {
      arity('Gemm', inputs, 2, 3);
      const [a, b, c] = inputs as [Value, Value, Value | undefined];
      if (a.rank !== 2 || b.rank !== 2) fail('Gemm', `A ${fmtShape(a.shape)} and B ${fmtShape(b.shape)} must be 2-D`);
      const [m, k] = at.transA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
      const [k2, n] = at.transB ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
      if (k !== k2) fail('Gemm', `inner dimensions differ: A ${fmtShape(a.shape)} (transA=${at.transA}) and B ${fmtShape(b.shape)} (transB=${at.transB})`);
      if (c && !broadcastShapes(c.shape, [m, n])?.every((d, i) => d === [m, n][i])) {
        fail('Gemm', `C ${fmtShape(c.shape)} does not broadcast to [${m}, ${n}]`);
      }
      return { shape: [m, n], dtype: 'float32' };
    },
    lower: (ctx, a) => ctx.node('Gemm', ctx.inputs, [ctx.output], { transA: a.transA, transB: a.transB }),
    grad: (dy, { inputs: [a, b, c], attrs: { transA, transB } }) => {
      // Y = A'B' + C with A' = transA ? A^T : A and B' likewise.
      const da = transA ? (transB ? gemm(b!, dy, 1, 1) : gemm(b!, dy, 0, 1)) : transB ? gemm(dy, b!, 0, 0) : gemm(dy, b!, 0, 1);
      const db = transB ? (transA ? gemm(dy, a!, 1, 1) : gemm(dy, a!, 1, 0)) : transA ? gemm(a!, dy, 0, 0) : gemm(a!, dy, 1, 0);
      return c ? [da, db, dy] : [da, db];
    },
  },
};
