// Convolutions: Conv, ConvTranspose (also Conv's input gradient, backward-data) and Conv's
// gradient primitives ConvBackwardFilter and ConvBackwardBias. The rules' lowerings are the
// standard ONNX forms (the plain target); the cpu target's forms are in lower/cpu.ts.

import { fmtShape, type Value } from '../ir.js';
import { type LowerCtx, type PrimAttrs, type Rules } from './types.js';
import { arity, checkConv, convOut, convTOut, fail, float } from './helpers.js';
import { conv, convBackwardBias, convBackwardFilter, convTranspose, expand, reduceSum, reshape } from '../ops.js';

export const convRules: Rules<'Conv' | 'ConvTranspose' | 'ConvBackwardFilter' | 'ConvBackwardBias'> = {
  Conv: {
    infer: (inputs, a) => {
      checkConv('Conv', inputs, (x, w) => [w[1]!, x[1]!]);
      const [x, w] = inputs as [Value, Value];
      const [n, , h, wd] = x.shape as [number, number, number, number];
      const [m, , kh, kw] = w.shape as [number, number, number, number];
      const ho = convOut(h, kh, a.strides[0]!, a.dilations[0]!, a.pads[0]!, a.pads[2]!);
      const wo = convOut(wd, kw, a.strides[1]!, a.dilations[1]!, a.pads[1]!, a.pads[3]!);
      if (ho < 1 || wo < 1) fail('Conv', `kernel ${fmtShape(w.shape)} does not fit input ${fmtShape(x.shape)}`);
      return { shape: [n, m, ho, wo], dtype: 'float32' };
    },
    lower: (ctx, a, v) => ctx.node('Conv', ctx.inputs, [ctx.output], { strides: a.strides, pads: a.pads, dilations: a.dilations, kernel_shape: v.inputs[1]!.shape.slice(2) }),
    grad: (dy, { inputs: [x, w, b], attrs }) => {
      const [, , h, wd] = x!.shape as [number, number, number, number];
      const [, , kh, kw] = w!.shape as [number, number, number, number];
      const { strides: s, pads: p, dilations: d } = attrs;
      // dX: the transposed convolution of dY with the same weights; output_padding recovers H, W.
      const full = (size: number, k: number, i: number) => convTOut(dy.shape[2 + i]!, k, s[i]!, d[i]!, p[i]!, p[i + 2]!, 0);
      const op = [h - full(h, kh, 0), wd - full(wd, kw, 1)];
      const dx = convTranspose(dy, w!, { strides: s, pads: p, dilations: d, outputPadding: op });
      const dw = convBackwardFilter(x!, dy, attrs, [kh, kw]);
      return b ? [dx, dw, convBackwardBias(dy)] : [dx, dw];
    },
  },
  ConvTranspose: {
    infer: (inputs, a) => {
      checkConv('ConvTranspose', inputs, (x, w) => [w[0]!, x[1]!]);
      const [x, w] = inputs as [Value, Value];
      const [n, , h, wd] = x.shape as [number, number, number, number];
      const [, m, kh, kw] = w.shape as [number, number, number, number];
      const ho = convTOut(h, kh, a.strides[0]!, a.dilations[0]!, a.pads[0]!, a.pads[2]!, a.outputPadding[0]!);
      const wo = convTOut(wd, kw, a.strides[1]!, a.dilations[1]!, a.pads[1]!, a.pads[3]!, a.outputPadding[1]!);
      if (ho < 1 || wo < 1) fail('ConvTranspose', `pads too large for input ${fmtShape(x.shape)} and kernel ${fmtShape(w.shape)}`);
      // As PyTorch requires: otherwise the gradient's convolution cannot come back to X's size.
      for (let i = 0; i < 2; i++) {
        if (a.outputPadding[i]! >= Math.max(a.strides[i]!, a.dilations[i]!)) {
          fail('ConvTranspose', `output_padding [${a.outputPadding.join(', ')}] must be smaller than the stride or the dilation along each axis (strides [${a.strides.join(', ')}], dilations [${a.dilations.join(', ')}])`);
        }
      }
      return { shape: [n, m, ho, wo], dtype: 'float32' };
    },
    lower: (ctx, a, v) =>
      ctx.node('ConvTranspose', ctx.inputs, [ctx.output], {
        strides: a.strides, pads: a.pads, dilations: a.dilations, output_padding: a.outputPadding, kernel_shape: v.inputs[1]!.shape.slice(2),
      }),
    grad: (dy, { inputs: [x, w, b], attrs }) => {
      const [, , kh, kw] = w!.shape as [number, number, number, number];
      const { strides: s, pads: p, dilations: d } = attrs;
      const dx = conv(dy, w!, { strides: s, pads: p, dilations: d });
      // ConvTranspose is the adjoint of Conv(., W): its weight gradient is Conv's, with dY as the input and X as the output gradient.
      const dw = convBackwardFilter(dy, x!, attrs, [kh, kw]); // [Cin, Cout, kh, kw]
      return b ? [dx, dw, reduceSum(dy, [0, 2, 3], 0)] : [dx, dw];
    },
  },
  // Conv's weight gradient: (X [N, C, H, W], dY [N, M, Ho, Wo]) -> dW [M, C, kh, kw], the
  // correlation of X with dY (cuDNN's backward-filter). Bilinear: its gradient is a Conv of X
  // (for dY) and a ConvTranspose of dY (for X), both with the cotangent as the weights.
  ConvBackwardFilter: {
    infer: (inputs, a) => {
      arity('ConvBackwardFilter', inputs, 2);
      const [x, dy] = inputs as [Value, Value];
      float('ConvBackwardFilter', x, 'input X');
      float('ConvBackwardFilter', dy, 'output gradient dY');
      if (x.rank !== 4 || dy.rank !== 4 || x.shape[0] !== dy.shape[0]) fail('ConvBackwardFilter', `input X ${fmtShape(x.shape)} and output gradient dY ${fmtShape(dy.shape)} must be [N, C, H, W] and [N, M, Ho, Wo]`);
      const [kh, kw] = a.kernel as [number, number];
      const ho = convOut(x.shape[2]!, kh, a.strides[0]!, a.dilations[0]!, a.pads[0]!, a.pads[2]!);
      const wo = convOut(x.shape[3]!, kw, a.strides[1]!, a.dilations[1]!, a.pads[1]!, a.pads[3]!);
      if (dy.shape[2] !== ho || dy.shape[3] !== wo) fail('ConvBackwardFilter', `output gradient dY ${fmtShape(dy.shape)} does not match the ${ho}x${wo} output of kernel [${kh}, ${kw}] on input X ${fmtShape(x.shape)}`);
      return { shape: [dy.shape[1]!, x.shape[1]!, kh, kw], dtype: 'float32' };
    },
    lower: (ctx, a, v) => lowerConvBackwardFilterStandard(ctx, a, v),
    grad: (g, { inputs: [x, dy], attrs }) => {
      const { strides: s, pads: p, dilations: d } = attrs;
      const [, , h, wd] = x!.shape as [number, number, number, number];
      const [kh, kw] = attrs.kernel as [number, number];
      const full = (k: number, i: number) => convTOut(dy!.shape[2 + i]!, k, s[i]!, d[i]!, p[i]!, p[i + 2]!, 0);
      const dx = convTranspose(dy!, g, { strides: s, pads: p, dilations: d, outputPadding: [h - full(kh, 0), wd - full(kw, 1)] });
      return [dx, conv(x!, g, { strides: s, pads: p, dilations: d })];
    },
  },
  // Conv's bias gradient: dY [N, M, Ho, Wo] -> [M], its sum over images and positions.
  ConvBackwardBias: {
    infer: (inputs) => {
      arity('ConvBackwardBias', inputs, 1);
      const dy = inputs[0]!;
      float('ConvBackwardBias', dy, 'output gradient dY');
      if (dy.rank !== 4) fail('ConvBackwardBias', `output gradient dY must be [N, M, Ho, Wo], got ${fmtShape(dy.shape)}`);
      return { shape: [dy.shape[1]!], dtype: 'float32' };
    },
    lower: (ctx) => ctx.node('ReduceSum', [ctx.inputs[0]!, ctx.ints([0, 2, 3])], [ctx.output], { keepdims: 0 }),
    grad: (g, { inputs: [dy] }) => [expand(reshape(g, [1, g.shape[0]!, 1, 1]), dy!.shape)],
  },
};

/**
 * ConvBackwardFilter as a standard Conv: with the images as channels, X^T [C, N, H, W] convolved
 * with dY^T [M, N, Ho, Wo] (the stride as the dilation, the dilation as the stride) is dW^T
 * [C, M, kh', kw'], cut to the kernel [kh, kw] where the padding leaves more.
 */
function lowerConvBackwardFilterStandard(ctx: LowerCtx, a: PrimAttrs['ConvBackwardFilter'], v: Value): void {
  const [x, dy] = v.inputs as [Value, Value];
  const [kh, kw] = a.kernel as [number, number];
  const full = [0, 1].map((i) => convOut(x.shape[2 + i]!, dy.shape[2 + i]!, a.dilations[i]!, a.strides[i]!, a.pads[i]!, a.pads[i + 2]!));
  const [xt, dyt, r, cut] = [ctx.temp('bwf_x'), ctx.temp('bwf_dy'), ctx.temp('bwf_conv'), ctx.temp('bwf_cut')];
  ctx.node('Transpose', [ctx.inputs[0]!], [xt], { perm: [1, 0, 2, 3] });
  ctx.node('Transpose', [ctx.inputs[1]!], [dyt], { perm: [1, 0, 2, 3] });
  ctx.node('Conv', [xt, dyt], [r], { strides: a.dilations, pads: a.pads, dilations: a.strides, kernel_shape: dy.shape.slice(2) });
  const sliced = full[0]! > kh || full[1]! > kw;
  if (sliced) ctx.node('Slice', [r, ctx.ints([0, 0]), ctx.ints([kh, kw]), ctx.ints([2, 3])], [cut]);
  ctx.node('Transpose', [sliced ? cut : r], [ctx.output], { perm: [1, 0, 2, 3] });
}
