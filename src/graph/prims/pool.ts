// Max pooling: MaxPool and its input gradient MaxPoolGrad (for windows that tile the input).
// The rules' lowerings are the standard forms; the cpu target's are in lower/cpu.ts.

import { fmtShape, type Value } from '../ir.js';
import { type Ints, type LowerCtx, type Rules } from './types.js';
import { arity, convOut, fail, onnxType } from './helpers.js';
import { cast, equal, expand, maxPoolGrad, mul, reduceSum, reshape, stopGradient } from '../ops.js';

export const poolRules: Rules<'MaxPool' | 'MaxPoolGrad'> = {
  MaxPool: {
    infer: (inputs, a) => {
      arity('MaxPool', inputs, 1);
      const x = inputs[0]!;
      if (x.rank !== 4) fail('MaxPool', `input must be [N, C, H, W], got ${fmtShape(x.shape)}`);
      const ho = convOut(x.shape[2]!, a.kernel[0]!, a.strides[0]!, 1, 0, 0);
      const wo = convOut(x.shape[3]!, a.kernel[1]!, a.strides[1]!, 1, 0, 0);
      return { shape: [x.shape[0]!, x.shape[1]!, ho, wo], dtype: 'float32' };
    },
    lower: (ctx, a) => ctx.node('MaxPool', ctx.inputs, [ctx.output], { kernel_shape: a.kernel, strides: a.strides }),
    // Non-overlapping windows only: dy goes to every maximum of its window (ties share in full).
    grad: (dy, { inputs: [x], output, attrs }) => {
      const [kh, kw] = attrs.kernel as [number, number];
      if (!tiles(x!, attrs)) {
        throw new Error(`MaxPool gradient: only non-overlapping windows that tile the input are supported (kernel [${kh}, ${kw}], strides [${attrs.strides.join(', ')}], input ${fmtShape(x!.shape)})`);
      }
      return [maxPoolGrad(x!, output, dy, attrs.kernel)];
    },
  },
  // MaxPool's input gradient for windows that tile X: (X, Y = MaxPool(X), dY) -> dY at the maxima
  // of each window, 0 elsewhere. Its own gradient is linear in dY (the window sums of the masked
  // cotangent) and zero in X and Y almost everywhere.
  MaxPoolGrad: {
    infer: (inputs, a) => {
      arity('MaxPoolGrad', inputs, 3);
      const [x, y, dy] = inputs as [Value, Value, Value];
      const [kh, kw] = a.kernel as [number, number];
      if (x.rank !== 4 || x.shape[2]! % kh || x.shape[3]! % kw) fail('MaxPoolGrad', `input ${fmtShape(x.shape)} is not tiled by kernel [${kh}, ${kw}]`);
      const pooled = [x.shape[0]!, x.shape[1]!, x.shape[2]! / kh, x.shape[3]! / kw];
      for (const [t, what] of [[y, 'pooled output'], [dy, 'output gradient']] as const) {
        if (t.rank !== 4 || t.shape.some((d, i) => d !== pooled[i])) fail('MaxPoolGrad', `${what} ${fmtShape(t.shape)} must be ${fmtShape(pooled)}`);
      }
      return { shape: x.shape, dtype: 'float32' };
    },
    // The equality mask of X against Y upsampled to X's size.
    lower: (ctx, a, v) => lowerMaxPoolGradUpsampled(ctx, a.kernel as [number, number], v),
    grad: (g, { inputs: [x, y], attrs }) => {
      const [n, c, h, w] = x!.shape as [number, number, number, number];
      const [kh, kw] = attrs.kernel as [number, number];
      const mask = stopGradient(cast(equal(x!, reshape(expand(reshape(y!, [n, c, h / kh, 1, w / kw, 1]), [n, c, h / kh, kh, w / kw, kw]), x!.shape)), 'float32'));
      return [null, null, reduceSum(reshape(mul(g, mask), [n, c, h / kh, kh, w / kw, kw]), [3, 5], 0)];
    },
  },
};

/** Whether MaxPool's windows are disjoint and tile x (stride = kernel, sides divisible). */
export function tiles(x: Value, a: { kernel: Ints; strides: Ints }): boolean {
  const [kh, kw] = a.kernel as [number, number];
  return a.strides[0] === kh && a.strides[1] === kw && x.shape[2]! % kh === 0 && x.shape[3]! % kw === 0;
}

/**
 * MaxPool's input gradient on NCHW tensors: Y and dY upsampled to X's size by repeated Concat
 * (far cheaper in onnxruntime than a 6-D Expand), mask = (X == up(Y)), dX = up(dY) * mask.
 */
export function lowerMaxPoolGradUpsampled(ctx: LowerCtx, [kh, kw]: [number, number], v: Value): void {
  const [n, c, h, w] = v.inputs[0]!.shape as [number, number, number, number];
  const t = (hint: string) => ctx.temp(`poolgrad_${hint}`);
  const up = (src: string, hint: string): string => {
    const [r, cc, rc, full, out] = [t(`${hint}_r`), t(`${hint}_cols`), t(`${hint}_rows`), t(`${hint}_full`), t(`${hint}_up`)];
    ctx.node('Reshape', [src, ctx.ints([n * c * (h / kh), w / kw, 1])], [r]);
    ctx.node('Concat', Array(kw).fill(r), [cc], { axis: 2 });
    ctx.node('Reshape', [cc, ctx.ints([n * c * (h / kh), 1, w])], [rc]);
    ctx.node('Concat', Array(kh).fill(rc), [full], { axis: 1 });
    ctx.node('Reshape', [full, ctx.ints([n, c, h, w])], [out]);
    return out;
  };
  const dyUp = up(ctx.inputs[2]!, 'dy');
  const [eq, mask] = [t('eq'), t('mask')];
  ctx.node('Equal', [ctx.inputs[0]!, up(ctx.inputs[1]!, 'y')], [eq]);
  ctx.node('Cast', [eq], [mask], { to: onnxType.float32 });
  ctx.node('Mul', [dyUp, mask], [ctx.output]);
}
