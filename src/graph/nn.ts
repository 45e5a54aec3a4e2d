// Layers and losses as compositions of the primitives: their first and second derivatives
// come from the primitives' rules. Parameters are explicit objects returned by constructors.

import { type Graph, type Value } from './ir.js';
import { torchDefault } from './init.js';
import * as o from './ops.js';

export interface Linear { w: Value; b?: Value }
export interface Conv2d { w: Value; b?: Value; stride: number; pad: number }

/** A dense layer with PyTorch's [out, in] weight layout. */
export function linearParams(g: Graph, name: string, inF: number, outF: number, bias = true): Linear {
  return {
    w: g.param(`${name}.weight`, [outF, inF], torchDefault(inF)),
    b: bias ? g.param(`${name}.bias`, [outF], torchDefault(inF)) : undefined,
  };
}

export function linear(x: Value, p: Linear, w: Value = p.w): Value {
  return o.gemm(x, w, 0, 1, p.b);
}

export function conv2dParams(g: Graph, name: string, inC: number, outC: number, k: number, stride = 1, pad = 0, bias = true): Conv2d {
  const fanIn = inC * k * k;
  return {
    w: g.param(`${name}.weight`, [outC, inC, k, k], torchDefault(fanIn)),
    b: bias ? g.param(`${name}.bias`, [outC], torchDefault(fanIn)) : undefined,
    stride,
    pad,
  };
}

export function conv2d(x: Value, p: Conv2d, w: Value = p.w): Value {
  return o.conv(x, w, { strides: [p.stride, p.stride], pads: [p.pad, p.pad, p.pad, p.pad], bias: p.b });
}

/** ConvTranspose weights are [in, out, k, k]; PyTorch computes fan-in from dim 1 * k * k. */
export function convTranspose2dParams(g: Graph, name: string, inC: number, outC: number, k: number, stride = 1, pad = 0, bias = true): Conv2d {
  const fanIn = outC * k * k;
  return {
    w: g.param(`${name}.weight`, [inC, outC, k, k], torchDefault(fanIn)),
    b: bias ? g.param(`${name}.bias`, [outC], torchDefault(fanIn)) : undefined,
    stride,
    pad,
  };
}

export function convTranspose2d(x: Value, p: Conv2d, w: Value = p.w): Value {
  return o.convTranspose(x, w, { strides: [p.stride, p.stride], pads: [p.pad, p.pad, p.pad, p.pad], bias: p.b });
}

/**
 * [N, C, H, W] -> [N, H*W*C]: flattened channels-last, the order in which convolutions (GEMMs over
 * channels-last matrices) produce their outputs, so the flatten costs no transpose once the
 * emitter has cancelled the convolution's own (see passes/sink-transposes.ts).
 */
export function flatten(x: Value): Value {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  return o.reshape(o.transpose(x, [0, 2, 3, 1]), [n, h * w * c]);
}

/** The inverse of flatten: [N, H*W*C] -> [N, C, H, W]. */
export function unflatten(x: Value, [c, h, w]: readonly [number, number, number]): Value {
  return o.transpose(o.reshape(x, [x.shape[0]!, h, w, c]), [0, 3, 1, 2]);
}

/** log(1 + e^x), stable for large |x|: relu(x) + log(1 + e^-|x|). */
export function softplus(x: Value): Value {
  return o.add(o.relu(x), o.log(o.add(o.exp(o.neg(o.abs(x))), 1)));
}

export function logSoftmax(x: Value, axis = -1): Value {
  const ax = axis < 0 ? axis + x.rank : axis;
  const shifted = o.sub(x, o.stopGradient(o.reduceMax(x, [ax], 1)));
  return o.sub(shifted, o.log(o.reduceSum(o.exp(shifted), [ax], 1)));
}

export function softmax(x: Value, axis = -1): Value {
  const ax = axis < 0 ? axis + x.rank : axis;
  const e = o.exp(o.sub(x, o.stopGradient(o.reduceMax(x, [ax], 1))));
  return o.div(e, o.reduceSum(e, [ax], 1));
}

/** Mean over the batch of the cross-entropy between logits [B, K] and one-hot targets [B, K]. */
export function crossEntropy(logits: Value, targets: Value): Value {
  return o.neg(o.div(o.sumAll(o.mul(logSoftmax(logits), targets)), logits.shape[0]!));
}

/** Sum of element-wise binary cross-entropy with logits: softplus(l) - t * l. */
export function bceWithLogitsSum(logits: Value, targets: Value): Value {
  return o.sumAll(o.sub(softplus(logits), o.mul(targets, logits)));
}

/** Euclidean norm over the given axes (kept). */
export function l2Norm(x: Value, axes: readonly number[], eps = 0): Value {
  const ss = o.reduceSum(o.mul(x, x), axes, 1);
  return o.sqrt(eps ? o.add(ss, eps) : ss);
}

/**
 * Spectral normalisation (Miyato et al.) with one power iteration per call. `u` is a buffer of
 * length rows(W); the iteration runs without gradient, sigma = u^T W v is differentiated in W.
 * W is viewed as a matrix [dim0, rest] (as PyTorch does for Linear and Conv; pass dim=1 for ConvTranspose).
 */
export function spectralNorm(w: Value, u: Value, dim = 0, eps = 1e-12): { w: Value; u: Value; sigma: Value } {
  const perm = w.shape.map((_, i) => i);
  perm.splice(dim, 1);
  perm.unshift(dim);
  const rows = w.shape[dim]!;
  const mat = o.reshape(o.transpose(w, perm), [rows, w.size / rows]); // [rows, cols]
  const wc = o.stopGradient(mat);
  const uc = o.reshape(u, [1, rows]);
  const normalize = (t: Value) => o.div(t, o.add(l2Norm(t, [1]), eps));
  const v = normalize(o.gemm(uc, wc)); // [1, cols]
  const uNext = o.stopGradient(normalize(o.gemm(v, wc, 0, 1))); // [1, rows]
  const vc = o.stopGradient(v);
  const sigma = o.reshape(o.gemm(o.gemm(uNext, mat), vc, 0, 1), []); // u^T W v
  return { w: o.div(w, sigma), u: o.reshape(uNext, [rows]), sigma };
}
