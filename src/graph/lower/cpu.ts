// The cpu target: the forms that onnxruntime's CPU provider runs fastest, each chosen by a
// selector that a test can call (selectConvForm, selectConvTransposeForm, selectMaxPoolForm,
// selectMaxPoolGradForm, selectConvFilterForm). CPU_LOWERINGS replace the rules' standard
// lowerings; CPU_EXPANSIONS rewrite gradient primitives into other primitives (im2col GEMMs) on
// the emitter's copy of the graph. The selectors may look at the graph; nothing here changes it.
// Why each form is faster, with measurements: docs/engine.md.

import { type Graph, sameShape, type Value } from '../ir.js';
import { type ConvAttrs, type Ints, type LowerCtx, type LowerEnv, type Lowering, type Prim, type PrimAttrs, type Target, type Tile } from '../prims/types.js';
import { onnxType } from '../prims/helpers.js';
import { convRules } from '../prims/conv.js';
import { lowerMaxPoolGradUpsampled, poolRules, tiles } from '../prims/pool.js';
import { clip, concat, gather, gemm, matmul, mul, pad, reduceSum, reshape, slice, transpose } from '../ops.js';

/**
 * The weight gradient [M, C, kh, kw] of Y = Conv(X, W) for X [N, C, H, W] and dY [N, M, Ho, Wo]:
 * one GEMM over the whole batch, cols(X)^T @ dY, on the im2col matrix of X (about twice as fast
 * in onnxruntime as a convolution over batch-transposed tensors, whose per-image GEMMs are tiny).
 * The forward convolution of the same X then reuses that matrix (see the Conv lowering), and its
 * output stays channels-last for what follows (a MaxPool too). The feature net's conv1 (1 -> 32
 * channels at 28x28) used to take the batch-transposed convolution, faster while its MaxPool
 * needed NCHW (features_step 24.8-26.6 vs 29.2-32.5 ms then); with the pooling channels-last the
 * GEMM is faster (22.8-24.3 -> 21.2-23.5 ms, four alternating runs).
 */
function convWeightGrad(
  x: Value, dy: Value, a: ConvAttrs, k: readonly [number, number], tile?: Tile, bias = false,
): { dw: Value; dyc: Value; db?: Value } {
  const [n, c] = x.shape as [number, number, number, number];
  const [, m, ho, wo] = dy.shape as [number, number, number, number];
  const [kh, kw] = k;
  const dyc = tile ? phaseRows(dy, tile) : reshape(transpose(dy, [0, 2, 3, 1]), [n * ho * wo, m]); // [N*L, M]
  // The matrix may carry a column of ones for the bias (see `biasColumn`), whose row of the
  // product is the bias gradient.
  const withOnes = biasColumn(c, bias);
  const cols = im2col(x, a, k, [ho, wo], tile, withOnes);
  let g = colsTimes(cols, dyc); // [KK*C (+ ones), M]
  let db: Value | undefined;
  if (withOnes) {
    db = reshape(slice(g, [kh * kw * c, 0], [kh * kw * c + 1, m]), [m]);
    g = slice(g, [0, 0], [kh * kw * c, m]);
  }
  // [KK*C, M] -> [M, C, kh, kw] as a 2-D transpose and a move of one axis: onnxruntime has fast
  // kernels for both, and its general 4-D permutation was ~10x slower on these sizes. The 2-D
  // transpose is written in 3-D: onnxruntime would fuse a plain Gemm -> Transpose([1, 0]) into one
  // Gemm computing dY^T cols, the slower orientation (10.7 vs 8.5 ms for the critic's conv2).
  const byChannel = reshape(transpose(reshape(g, [kh * kw, c, m]), [1, 0, 2]), [1, c * kh * kw, m]); // moves rows of M floats
  return { dw: reshape(transpose(byChannel, [0, 2, 1]), [m, c, kh, kw]), dyc, db };
}

/**
 * Whether a convolution's im2col matrix carries a column of ones for its bias (see `im2col`): with
 * one input channel and a bias, where the column costs a little GEMM width and saves an Add over
 * the output and a sum over its gradient. Every matrix of a weight follows the same rule, so that
 * its convolutions share one weight-matrix form.
 */
const biasColumn = (channels: number, bias: boolean) => bias && channels === 1;

/**
 * cols^T @ dY ([rows, K] and [rows, M] -> [K, M]), the orientation onnxruntime runs faster. With a
 * small product (K*M <= 32768 floats), as a batch of 4 products over slices of the rows and their
 * sum: onnxruntime's Gemm spreads its threads over the product, which leaves one of them idle
 * when the product is small, where a MatMul spreads them over its batch. Isolated, 2 threads: [50176, 12]^T [50176, 32]
 * 0.62-0.64 -> 0.36-0.37 ms; [12544, 288]^T [12544, 64] 2.40-2.45 -> 2.10-2.16; [9408, 512]^T
 * [9408, 64] 3.09-3.17 -> 2.71-2.79; [6272, 1024]^T [6272, 128] 7.10 -> 7.27-7.29, which stays one
 * Gemm (batches of 2 and 8 ran as fast as 4 on the small ones).
 */
function colsTimes(cols: Value, dyc: Value): Value {
  const [rows, k] = cols.shape as [number, number];
  const m = dyc.shape[1]!;
  const split = [4, 2].find((s) => rows % s === 0);
  if (k * m > 32768 || !split) return gemm(cols, dyc, 1, 0);
  const parts = matmul(transpose(reshape(cols, [split, rows / split, k]), [0, 2, 1]), reshape(dyc, [split, rows / split, m]));
  return reduceSum(parts, [0], 0);
}

export type ConvFilterForm = { form: 'cols'; tile?: Tile; ones: boolean } | { form: 'standard' };

/**
 * How to compute a ConvBackwardFilter (weight gradient) node `v` = (X, dY): 'standard' on the
 * plain target (a Conv over the batch-transposed tensors, lowerConvBackwardFilterStandard); on the
 * cpu target 'cols', one GEMM over the whole batch on the im2col matrix of X (`convWeightGrad`),
 * whose forward convolution then reuses that matrix. Its rows are in phase order for `tile` when
 * dY is the gradient of a MaxPool of that forward convolution (MaxPoolGrad of Conv(X, ...) with
 * the same attributes), and it carries a bias column (`ones`, see `biasColumn`) when that
 * convolution has one input channel and a bias whose gradient (ConvBackwardBias of dY) is in the
 * graph. Looks at the graph; builds nothing.
 */
export function selectConvFilterForm(v: Value, target: Target): ConvFilterForm {
  if (target !== 'cpu') return { form: 'standard' };
  const [x, dy] = v.inputs as [Value, Value];
  const a = v.attrs as unknown as PrimAttrs['ConvBackwardFilter'];
  const forward = (u: Value | undefined) =>
    u?.op === 'Conv' && u.inputs[0] === x && colsKey(u.attrs as unknown as ConvAttrs, u.inputs[1]!.shape.slice(2)) === colsKey(a, a.kernel);
  let tile: Tile | undefined;
  if (dy.op === 'MaxPoolGrad' && forward(dy.inputs[0])) {
    const [kh, kw] = (dy.attrs as unknown as PrimAttrs['MaxPoolGrad']).kernel as [number, number];
    if (kh * kw > 1) tile = [kh, kw];
  }
  const biased = !!x.graph.lookup('ConvBackwardBias', [dy], {}) && x.graph.nodes.some((u) => forward(u) && u.inputs.length > 2);
  return { form: 'cols', tile, ones: biasColumn(x.shape[1]!, biased) };
}

/** On the cpu target: a ConvBackwardFilter node's weight gradient and its bias gradient in the 'cols' form. */
function convGradsOnCols(v: Value): { dw: Value; db: Value } {
  const [x, dy] = v.inputs as [Value, Value];
  const a = v.attrs as unknown as PrimAttrs['ConvBackwardFilter'];
  const form = selectConvFilterForm(v, 'cpu') as { tile?: Tile; ones: boolean };
  const { dw, dyc, db } = convWeightGrad(x, dy, a, a.kernel as [number, number], form.tile, form.ones);
  return { dw, db: db ?? (form.tile ? rowSum(dyc, x.shape[0]!) : reduceSum(dy, [0, 2, 3], 0)) };
}

/**
 * The cpu target's expansions: primitives that it lowers by rewriting them into other primitives
 * (the weight and bias gradients of a Conv, on an im2col matrix). The emitter builds them on a
 * copy of the graph, never on the graph it emits.
 */
export const CPU_EXPANSIONS: Partial<Record<Prim, (v: Value) => Value | undefined>> = {
  ConvBackwardFilter: (v) => convGradsOnCols(v).dw,
  Where: (v) => stepSlope(v),
  // From the same GEMM as the weight gradient (its bias column) or the same rows (phase order).
  ConvBackwardBias: (v) => {
    const dy = v.inputs[0]!;
    const filter = dy.graph.nodes.find((u) => u.op === 'ConvBackwardFilter' && u.inputs[1] === dy);
    return filter ? convGradsOnCols(filter).db : reduceSum(dy, [0, 2, 3], 0);
  },
};

/**
 * On the cpu target: Where(x > 0, 1, alpha) for 0 <= alpha <= 1 (the LeakyRelu gradient's slope)
 * as Clip(x * 2^254, alpha, 1), two scalar Muls and a Clip, which onnxruntime runs faster than
 * Greater and Where; undefined for any other Where. 2^254 (applied as 2^127 twice, each exact)
 * takes every positive float, the smallest denormal 2^-149 included, to at least 2^105 or to
 * +inf, and leaves 0 and negatives at or below 0, so the values are the same.
 */
export function stepSlope(v: Value): Value | undefined {
  const [c, a, b] = v.inputs as [Value, Value, Value];
  const scalar = (u: Value | undefined) => (u?.op === 'Constant' && u.size === 1 && u.dtype === 'float32' ? (u.graph.constants.get(u.id) as Float32Array)[0]! : undefined);
  const [x, zero] = c.op === 'Greater' ? (c.inputs as [Value, Value]) : [];
  const [one, alpha] = [scalar(a), scalar(b)];
  if (!x || x.dtype !== 'float32' || scalar(zero) !== 0 || one !== 1 || alpha === undefined || !(alpha >= 0 && alpha <= 1)) return undefined;
  if (a.rank || b.rank || zero!.rank || !sameShape(v.shape, x.shape)) return undefined;
  return clip(mul(mul(x, 2 ** 127), 2 ** 127), alpha, 1);
}

/** The permutation from [N, kh, kw, H/kh, W/kw, C] (phase order) to [N, C, H/kh, kh, W/kw, kw] (NCHW). */
const FROM_PHASES = [0, 5, 3, 1, 4, 2];

/** Its inverse: NCHW viewed as [N, C, H/kh, kh, W/kw, kw] to phase order. */
const TO_PHASES = [0, 3, 5, 2, 4, 1];

/** X [N, C, H, W] as channels-last rows [N*H*W, C] in phase order for the window `tile` (see `im2col`). */
function phaseRows(x: Value, [kh, kw]: Tile): Value {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  return reshape(transpose(reshape(x, [n, c, h / kh, kh, w / kw, kw]), TO_PHASES), [n * h * w, c]);
}

/**
 * The column sums of rows [N*L, C] (a bias gradient), summed over N first and then over L, the
 * order that onnxruntime runs fastest (see passes/sink-transposes.ts, `splitsNarrowSum`).
 */
function rowSum(rows: Value, n: number): Value {
  const [r, c] = rows.shape as [number, number];
  return reduceSum(reshape(reduceSum(reshape(rows, [n, (r / n) * c]), [0], 0), [r / n, c]), [0], 0);
}

/** The im2col matrices built from each tensor of a graph, by attributes and form. */
const colsIndex = (x: Value) => x.graph.sideTable('im2col.index', () => new Map<Value, Map<string, Value>>());

const colsKey = (a: ConvAttrs, k: readonly number[]) => `${a.strides}|${a.pads}|${a.dilations}|${k}`;

/**
 * How an im2col matrix's rows and columns are laid out beyond the plain form (see `im2col`): the
 * window of its phase order, and the width of the source rows behind its bias column.
 */
interface ColsForm { tile?: Tile; ones?: number }

const formOfCols = (cols: Value) => cols.graph.sideTable('im2col.form', () => new Map<Value, ColsForm>());

/** The window of an im2col matrix whose rows are in phase order (see `im2col`), else undefined. */
export const colsPhase = (cols: Value): Tile | undefined => formOfCols(cols).get(cols)?.tile;

/**
 * The row of padded position (py, px) (padding `pt` on top, `pl` on the left) among an image's
 * [H*W + 1, C] rows (in phase order for `tile`, see `im2col`): H*W, a zero row appended to the
 * image, for positions in the padding. Reading
 * the padding from that row needs one Concat of whole images, which onnxruntime 1.30 runs 2-3x
 * faster than a Pad of the rows (0.2-0.25 against 0.6-0.75 ms for [128-192, 14, 14, 32-64]).
 */
function paddedRow(h: number, w: number, pt: number, pl: number, tile?: Tile): (py: number, px: number) => number {
  const [th, tw] = tile ?? [1, 1];
  const [hp, wp] = [h / th, w / tw]; // one phase's rows
  return (py, px) => {
    const [y, x] = [py - pt, px - pl];
    if (y < 0 || y >= h || x < 0 || x >= w) return h * w;
    return ((y % th) * tw + (x % tw)) * hp * wp + Math.floor(y / th) * wp + Math.floor(x / tw);
  };
}

/**
 * In a lowering: input 0 (NCHW [N, C, H, W]) as channels-last rows [N, H*W + 1, C] (in phase
 * order for `tile`), the last row of each image zero (the rows `paddedRow` indexes); `t` names
 * the temporaries. Returns its name.
 */
function zeroRowRows(ctx: LowerCtx, [n, c, h, w]: readonly number[], t: (hint: string) => string, tile?: Tile): string {
  const [xt, zr, xf] = [t('nhwc'), t('zero_rows'), t('flat')];
  let rows = t('rows');
  if (tile) {
    rows = toPhases(ctx, ctx.inputs[0]!, [n!, c!, h!, w!], tile, [n!, h! * w!, c!]);
  } else {
    ctx.node('Transpose', [ctx.inputs[0]!], [xt], { perm: [0, 2, 3, 1] });
    ctx.node('Reshape', [xt, ctx.ints([n!, h! * w!, c!])], [rows]);
  }
  ctx.node('Reshape', [ctx.floats(new Array(n! * c!).fill(0)), ctx.ints([n!, 1, c!])], [zr]);
  ctx.node('Concat', [rows, zr], [xf], { axis: 1 });
  return xf;
}

/**
 * The im2col matrix of X [N, C, H, W] for a convolution with kernel `k` and output size `out`:
 * [N*Ho*Wo, kh*kw*C], each row one receptive field in (ky, kx, c) order. Built from a
 * channels-last copy of X (with a zero row for the padding, `paddedRow`; or, for one channel, the
 * padded image as pixel pairs) and one Gather. One matrix per (X, attributes, row order), so every
 * user (weight gradients, the forward convolution's lowering) shares it.
 *
 * Rows are in (n, y, x) order, or with `tile` [kh, kw] (a pooling window that tiles the output)
 * in phase order (n, y mod kh, x mod kw, y div kh, x div kw): the convolution's output viewed as
 * [N, kh*kw, Ho/kh * Wo/kw * M] then holds each window's kh*kw values one phase block apart, so
 * the MaxPool after it is one ReduceMax over axis 1 and its gradient's masks broadcast over whole
 * images (onnxruntime: the feature net's first pooling, forward and gradient, 2.3-2.5 against
 * 3.0-3.5 ms in the interleaved channels-last form).
 */
export function im2col(x: Value, a: ConvAttrs, k: readonly [number, number], out: readonly [number, number], tile?: Tile, ones = false): Value {
  const key = `${colsKey(a, k)}${tile ? `|phases ${tile}` : ''}${ones ? '|ones' : ''}`;
  const hit = colsIndex(x).get(x)?.get(key);
  if (hit) return hit;
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const [kh, kw] = k;
  const [ho, wo] = out;
  const [pt, pl, pb, pr] = a.pads as [number, number, number, number];
  const [s, d] = [a.strides, a.dilations] as [[number, number], [number, number]];
  const wp = w + pl + pr;
  // One channel, even stride and kernel width, no dilation: every window starts at an even column
  // of the padded image, so the Gather moves pairs of neighbouring pixels, half as many rows
  // (onnxruntime: 0.43 against 0.9 ms for the student's [192, 1, 28, 28] conv1). Zero-padded by Pad.
  const pairs = c === 1 && s[1] % 2 === 0 && kw % 2 === 0 && d[1] === 1 && wp % 2 === 0;
  // One channel otherwise (no dilation along the width): a window's row is kw neighbouring pixels
  // of the padded image, flattened, starting anywhere. kw copies of it, shifted by 0..kw-1 pixels
  // and cut into rows of kw, hold every such run as one row, so the Gather moves a window row at
  // a time instead of single pixels (the feature net's conv1, k3 s1 at 28x28: 7056 -> 2352 rows).
  const runs = c === 1 && !pairs && d[1] === 1 && kw > 1;
  const padded = (h + pt + pb) * wp;
  const perCopy = Math.ceil(padded / kw); // rows of kw in each shifted copy
  // Otherwise rows of C channels, the padding read from a zero row (paddedRow).
  const at = pairs
    ? (py: number, px: number) => (py * wp + px) / 2
    : runs
      ? (py: number, px: number) => ((py * wp + px) % kw) * perCopy + Math.floor((py * wp + px) / kw)
      : paddedRow(h, w, pt, pl);
  const step = pairs ? 2 : runs ? kw : 1;
  let index: number[] = [];
  for (const [oy, ox] of outputOrder(ho, wo, tile)) {
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx += step) index.push(at(oy * s[0] + ky * d[0], ox * s[1] + kx * d[1]));
    }
  }
  let source: Value;
  if (pairs) {
    source = reshape(pad(reshape(x, [n, h, w]), [0, pt, pl, 0, pb, pr]), [n, ((h + pt + pb) * wp) / 2, 2]);
  } else if (runs) {
    const flat = reshape(pad(reshape(x, [n, h, w]), [0, pt, pl, 0, pb, pr]), [n, padded]);
    const long = pad(flat, [0, 0, 0, perCopy * kw + kw - 1 - padded]);
    const copies = Array.from({ length: kw }, (_, k) => slice(long, [0, k], [n, k + perCopy * kw]));
    source = reshape(concat(copies, 1), [n, kw * perCopy, kw]);
  } else {
    const nhwc = c === 1 ? reshape(x, [n, h, w, 1]) : transpose(x, [0, 2, 3, 1]); // one channel: same memory order
    const rows = reshape(nhwc, [n, h * w, c]);
    source = pt + pl + pb + pr > 0 ? concat([rows, x.graph.constant(new Float32Array(n * c), [n, 1, c])], 1) : rows; // [N, H*W (+1), C]
  }
  // With `ones`, each receptive field gains one more source row, [1, 0, ...], a row appended to
  // every image: the matrix's last `rowWidth` columns are a column of ones and zeros, so one GEMM
  // adds a bias (forward) and sums the output gradient (the bias gradient). For one input channel
  // the rows are 1-3 floats, so this costs a little GEMM width where a separate Add and a sum over
  // the whole output cost passes over memory.
  const rowWidth = source.shape[2]!;
  if (ones) {
    const r = source.shape[1]!;
    const unit = new Float32Array(n * rowWidth);
    for (let i = 0; i < n; i++) unit[i * rowWidth] = 1;
    source = concat([source, x.graph.constant(unit, [n, 1, rowWidth])], 1);
    const field = index.length / (ho * wo);
    index = index.flatMap((row, i) => ((i + 1) % field === 0 ? [row, r] : [row]));
  }
  const taps = x.graph.constant(index, [index.length], 'int64');
  const cols = reshape(gather(source, taps, 1), [n * ho * wo, kh * kw * c + (ones ? rowWidth : 0)]);
  const built = colsIndex(x);
  if (!built.has(x)) built.set(x, new Map());
  built.get(x)!.set(key, cols);
  formOfCols(cols).set(cols, { tile, ones: ones ? rowWidth : undefined });
  return cols;
}

/** Output positions [y, x] of an Ho x Wo image in row order, or in phase order for `tile` (see `im2col`). */
function outputOrder(ho: number, wo: number, tile?: Tile): [number, number][] {
  const [th, tw] = tile ?? [1, 1];
  if (ho % th || wo % tw) throw new Error(`phase order: window [${th}, ${tw}] does not tile ${ho}x${wo}`);
  const at: [number, number][] = [];
  for (let py = 0; py < th; py++) {
    for (let px = 0; px < tw; px++) {
      for (let y = py; y < ho; y += th) for (let x = px; x < wo; x += tw) at.push([y, x]);
    }
  }
  return at;
}

/** The im2col matrices of X for these convolution attributes that something built (any row order, with or without a bias column). */
export function colsOf(x: Value, a: ConvAttrs, k: readonly number[]): Value[] {
  const key = colsKey(a, k);
  return [...(colsIndex(x).get(x) ?? [])].filter(([k2]) => k2 === key || k2.startsWith(`${key}|`)).map(([, cols]) => cols);
}

/**
 * Tensors a node's lowering may reuse beyond its inputs: for a Conv, the im2col matrix of its
 * input when the graph builds one anyway (for a weight gradient). The emitter orders nodes so
 * these come first.
 */
export function auxInputs(v: Value): Value[] {
  if (v.op !== 'Conv') return [];
  return colsOf(v.inputs[0]!, v.attrs as unknown as ConvAttrs, v.inputs[1]!.shape.slice(2));
}

/**
 * The convolutions in `convs` that have no im2col matrix but share their weight and attributes
 * with one whose matrix `has` (built for its weight gradient): on the cpu target those run as
 * GEMMs too, on matrices of their own (`sharedWeightCols`), so that every use of a weight
 * produces the same channels-last layout and shares the weight's matrix form. In the critic step,
 * x_hat's forward pass (needed for its activation masks) then runs like the real and fake images'
 * instead of as onnxruntime Convs on NCHW tensors, which cost a folded Conv, its Pad and four
 * layout transposes. Builds nothing.
 */
export function sharedWeightConvs(convs: readonly Value[], has: (cols: Value) => boolean): Value[] {
  const attrsOf = (v: Value) => v.attrs as unknown as ConvAttrs;
  const key = (v: Value) => colsKey(attrsOf(v), v.inputs[1]!.shape.slice(2));
  const withCols = new Set<string>(); // `${weight id}|${attributes}`
  for (const v of convs) {
    if (v.op === 'Conv' && colsOf(v.inputs[0]!, attrsOf(v), v.inputs[1]!.shape.slice(2)).some(has)) withCols.add(`${v.inputs[1]!.id}|${key(v)}`);
  }
  return convs.filter((v) => v.op === 'Conv' && withCols.has(`${v.inputs[1]!.id}|${key(v)}`) && !colsOf(v.inputs[0]!, attrsOf(v), v.inputs[1]!.shape.slice(2)).some(has));
}

/**
 * Builds the im2col matrices of `convs` (from `sharedWeightConvs`) in their graph, with the
 * weight gradient's rule for the bias column (x_hat's conv1 then adds its bias in its GEMM
 * instead of an Add over [64*196, 64]). The emitter calls it on a copy of the graph it emits.
 */
export function sharedWeightCols(convs: readonly Value[]): Value[] {
  return convs.map((v) => {
    const [, c, kh, kw] = v.inputs[1]!.shape as [number, number, number, number];
    return im2col(v.inputs[0]!, v.attrs as unknown as ConvAttrs, [kh, kw], [v.shape[2]!, v.shape[3]!], undefined, biasColumn(c, v.inputs.length > 2));
  });
}

/**
 * Conv as one GEMM over the whole batch on an im2col matrix the graph already holds (ctx.aux[0]):
 * onnxruntime's Conv with weights as inputs runs one small GEMM per image, about half the speed
 * of one large GEMM, and the matrix costs nothing more when the weight gradient needs it anyway.
 */
function lowerConvFromCols(ctx: LowerCtx, v: Value): void {
  const [m, c, kh, kw] = v.inputs[1]!.shape as [number, number, number, number];
  const [, , ho, wo] = v.shape as [number, number, number, number];
  const w3 = ctx.temp('conv_w3');
  const wm = ctx.temp('conv_wmat');
  const yb = ctx.temp('conv_gemm');
  const yr = ctx.temp('conv_nhwc');
  const cols = ctx.auxValues[0]!;
  // W [M, C, kh, kw] -> [(kh, kw, C), M] (rows in the im2col column order) as a 2-D transpose and
  // a move of rows of M floats, both fast in onnxruntime, where moving C past kh*kw in
  // [M, C, kh*kw] copied single floats (the critic's conv2: 0.33 ms).
  const [w2, wc, wr] = [ctx.temp('conv_w2'), ctx.temp('conv_wcols'), ctx.temp('conv_wrows')];
  ctx.node('Reshape', [ctx.inputs[1]!, ctx.ints([1, m, c * kh * kw])], [w2]);
  ctx.node('Transpose', [w2], [wc], { perm: [0, 2, 1] });
  ctx.node('Reshape', [wc, ctx.ints([c, kh * kw, m])], [w3]);
  if (c > 1) ctx.node('Transpose', [w3], [wr], { perm: [1, 0, 2] });
  ctx.node('Reshape', [c > 1 ? wr : w3, ctx.ints([kh * kw * c, m])], [wm]);
  const ones = formOfCols(cols).get(cols)?.ones;
  if (ones) {
    // The matrix's bias column: W gains the bias (or zeros) as a row, and ones - 1 zero rows.
    const parts = [wm];
    if (ctx.inputs[2]) {
      parts.push(ctx.temp('conv_bias_row'));
      ctx.node('Reshape', [ctx.inputs[2], ctx.ints([1, m])], [parts[1]!]);
    }
    const zeroRows = ones - (ctx.inputs[2] ? 1 : 0);
    if (zeroRows > 0) {
      parts.push(ctx.temp('conv_zero_rows'));
      ctx.node('Reshape', [ctx.floats(new Array(m * zeroRows).fill(0)), ctx.ints([zeroRows, m])], [parts.at(-1)!]);
    }
    const wa = ctx.temp('conv_waug');
    ctx.node('Concat', parts, [wa], { axis: 0 });
    ctx.node('Gemm', [ctx.aux[0]!, wa], [yb]);
  } else {
    gemmBias(ctx, [ctx.aux[0]!, wm], ctx.inputs[2], yb);
  }
  const tile = colsPhase(cols);
  if (tile) return fromPhases(ctx, yb, v.shape, tile);
  ctx.node('Reshape', [yb, ctx.ints([-1, ho, wo, m])], [yr]);
  ctx.node('Transpose', [yr], [ctx.output], { perm: [0, 3, 1, 2] });
}

/**
 * In a lowering: Gemm(a, b) + bias (a row vector, if any) into `out`, the bias as an Add after the
 * Gemm rather than its C input: onnxruntime 1.30 first copies C into every row of the output, one
 * short copy per row, and that cost more than an Add over the result (conv1 of the feature net,
 * [50176, 9] x [9, 32]: 0.72-0.74 ms with C, 0.21 + 0.36-0.40 as Gemm and Add; its conv2,
 * [12544, 288] x [288, 64]: 2.05-2.07 against 1.66-1.67 + 0.15). onnxruntime does not fuse them back.
 */
function gemmBias(ctx: LowerCtx, ab: readonly string[], bias: string | undefined, out: string, attrs: Record<string, number> = {}): void {
  if (!bias) return ctx.node('Gemm', ab, [out], attrs);
  const y = ctx.temp('gemm_nobias');
  ctx.node('Gemm', ab, [y], attrs);
  ctx.node('Add', [y, bias], [out]);
}

/**
 * In a lowering: the node's NCHW output `shape` from channels-last rows in phase order for `tile`
 * (`rows`, any shape of that memory order). Its consumers that read phase order (MaxPool,
 * MaxPoolGrad, the next gradient's im2col) view it back with `toPhases`, and the emitter's
 * reshape folding (passes/fold-reshapes.ts) cancels the two permutations.
 */
function fromPhases(ctx: LowerCtx, rows: string, [n, c, h, w]: readonly number[], [kh, kw]: Tile): void {
  const [r, t] = [ctx.temp('phases'), ctx.temp('phases_nchw')];
  ctx.node('Reshape', [rows, ctx.ints([n!, kh, kw, h! / kh, w! / kw, c!])], [r]);
  ctx.node('Transpose', [r], [t], { perm: FROM_PHASES });
  ctx.node('Reshape', [t, ctx.ints([n!, c!, h!, w!])], [ctx.output]);
}

/** In a lowering: NCHW tensor `x` of `shape` as phase-order rows `to` (e.g. [N, kh*kw, rest]); returns its name. */
function toPhases(ctx: LowerCtx, x: string, [n, c, h, w]: readonly number[], [kh, kw]: Tile, to: readonly number[]): string {
  const [r, t, out] = [ctx.temp('nchw6'), ctx.temp('to_phases'), ctx.temp('phase_rows')];
  ctx.node('Reshape', [x, ctx.ints([n!, c!, h! / kh, kh, w! / kw, kw])], [r]);
  ctx.node('Transpose', [r], [t], { perm: TO_PHASES });
  ctx.node('Reshape', [t, ctx.ints(to)], [out]);
  return out;
}

export type ConvForm = 'cols' | 'folded' | 'standard';

/**
 * How to run a Conv: 'standard' (the ONNX operator) on the plain target; on the cpu target
 * 'cols', one GEMM on the im2col matrix of its input that the graph holds anyway (`auxInputs`,
 * lowerConvFromCols), else 'folded', the batch folded into the image height (`foldPlan`,
 * lowerConvFolded), for weights that are not constants, else 'standard'.
 */
export function selectConvForm(v: Value, env: LowerEnv): ConvForm {
  if (env.target !== 'cpu') return 'standard';
  if (env.auxValues.length) return 'cols';
  return !env.isConstant(1) && foldPlan(v, v.attrs as unknown as ConvAttrs) ? 'folded' : 'standard';
}

interface FoldPlan { gap: number; per: number; ho: number; bottom: number }

/**
 * How to run a Conv with its batch folded into the image height (lowerConvFolded), or null when
 * that is not faster or not possible. Measured in onnxruntime 1.30 on 2 cores: stride-2 4x4
 * convolutions with 32-128 channels and 7x7 outputs ran 1.36-1.62x faster folded (layout changes
 * included); convolutions with larger outputs or few input channels ran slower.
 * The plan: gap rows between folded images and the folded convolution's bottom pad.
 */
function foldPlan(v: Value, a: ConvAttrs): FoldPlan | null {
  const [n, c, h] = v.inputs[0]!.shape as [number, number, number, number];
  const [, , kh, kw] = v.inputs[1]!.shape as [number, number, number, number];
  const [, , ho, wo] = v.shape as [number, number, number, number];
  if (n < 8 || ho * wo > 64 || c * kh * kw < 128) return null;
  const [s, d, pt, pb] = [a.strides[0]!, a.dilations[0]!, a.pads[0]!, a.pads[2]!];
  const span = (kh - 1) * d + 1;
  let gap = Math.max(pt, pb);
  while ((h + gap) % s || (h + gap) / s < ho) gap++;
  // The folded output must have exactly `per` rows per image: pt + bottom - span in [-s, -1].
  const bottom = Math.max(0, span - s - pt);
  if (bottom > span - 1 - pt) return null;
  return { gap, per: (h + gap) / s, ho, bottom };
}

/**
 * Conv with the batch folded into the height: X [N, C, H, W] becomes one image [1, C, N*(H+g), W]
 * with g zero rows after each image (g >= the pads, so no receptive field reaches a neighbour),
 * which onnxruntime convolves with a few large GEMMs instead of one small GEMM per image; the
 * output [1, M, N*per, Wo] is cut back to [N, M, Ho, Wo].
 */
function lowerConvFolded(ctx: LowerCtx, a: ConvAttrs, v: Value, { gap, per, ho, bottom }: FoldPlan): void {
  const [, c, , w] = v.inputs[0]!.shape as [number, number, number, number];
  const [m] = v.inputs[1]!.shape as [number, number, number, number];
  const [, , , wo] = v.shape as [number, number, number, number];
  const t = ctx.temp('fold_t');
  const p = ctx.temp('fold_pad');
  const f = ctx.temp('fold_in');
  const y = ctx.temp('fold_conv');
  const yr = ctx.temp('fold_out');
  const ys = ctx.temp('fold_cut');
  ctx.node('Transpose', [ctx.inputs[0]!], [t], { perm: [1, 0, 2, 3] }); // [C, N, H, W]
  if (gap) ctx.node('Pad', [t, ctx.ints([0, 0, 0, 0, 0, 0, gap, 0])], [p], { mode: 'constant' });
  ctx.node('Reshape', [gap ? p : t, ctx.ints([1, c, -1, w])], [f]);
  const pads = [a.pads[0]!, a.pads[1]!, bottom, a.pads[3]!];
  ctx.node('Conv', [f, ...ctx.inputs.slice(1)], [y], { strides: a.strides, pads, dilations: a.dilations, kernel_shape: v.inputs[1]!.shape.slice(2) });
  ctx.node('Reshape', [y, ctx.ints([m, -1, per, wo])], [yr]);
  if (per > ho) ctx.node('Slice', [yr, ctx.ints([0]), ctx.ints([ho]), ctx.ints([2])], [ys]);
  ctx.node('Transpose', [per > ho ? ys : yr], [ctx.output], { perm: [1, 0, 2, 3] });
}

export type ConvTransposeForm = 'subpixel' | 'col2im' | 'flipped' | 'standard';

/**
 * How to run a ConvTranspose: 'standard' (the ONNX operator) on the plain target, and on the cpu
 * target where none of the forms below applies. onnxruntime's own runs one small GEMM and a single-threaded col2im
 * per image; with a batch of 8 or more, 16 or more input channels and no dilation, one GEMM over
 * the whole batch is faster:
 * - 'subpixel' (lowerConvTransposeSubpixel): strides >= 2, kernels that are multiples of the
 *   strides, output_padding within the end pads (the result is cropped), 16 or more output
 *   channels. Measured in onnxruntime 1.30 on 2 cores (k4 s2 p1, 7x7 inputs, batch 64-128, 32-128
 *   channels, in isolation): 1.14-1.60x faster with weights as inputs (one noisy run of eight
 *   0.92x), 1.05-1.43x with baked weights; not faster for one image (0.85-1.1x) and slower for one
 *   output channel (a 4-column GEMM: 1.9 vs 0.8 ms for the generator's last layer);
 * - 'col2im' (lowerConvTransposeCol2im): the same strides, kernels and padding with fewer than 16
 *   output channels (the generator's and the decoder's last layer, the input gradient of a
 *   one-channel Conv);
 * - 'flipped' (lowerConvTransposeFlipped): stride 1 (the input gradient of a stride-1 Conv: the
 *   feature net's conv2), 16 or more output channels, pads no larger than the kernel, a fixed
 *   batch. In isolation for [64, 64, 14, 14] * [64, 32, 3, 3]: 2.7 ms (Gather and a GEMM at about
 *   290 GFLOP/s, channels-last in and out) against 5.0.
 */
export function selectConvTransposeForm(v: Value, env: LowerEnv): ConvTransposeForm {
  if (env.target !== 'cpu') return 'standard';
  const a = v.attrs as unknown as PrimAttrs['ConvTranspose'];
  const [n, c] = v.inputs[0]!.shape as [number, number, number, number];
  const [, m, kh, kw] = v.inputs[1]!.shape as [number, number, number, number];
  const [sh, sw] = a.strides as [number, number];
  const [pt, pl, pb, pr] = a.pads as [number, number, number, number];
  if (n < 8 || c < 16 || a.dilations.some((d) => d !== 1)) return 'standard';
  if (sh === 1 && sw === 1) return env.dynamicBatch === undefined && m >= 16 && pt <= kh - 1 && pl <= kw - 1 ? 'flipped' : 'standard';
  if (sh < 2 || sw < 2 || kh % sh || kw % sw || a.outputPadding[0]! > pb || a.outputPadding[1]! > pr) return 'standard';
  return m >= 16 ? 'subpixel' : 'col2im';
}

/**
 * ConvTranspose with stride s and kernel k = s*t as one GEMM over the whole batch. Writing the
 * kernel offset ky = s*a + r, output row s*(i + a) + r - pad gets X[i] W[s*a + r]: so output
 * block I = i + a, phase r, is a stride-1 convolution with t taps of X (zero-padded by t - 1),
 * one output channel per (phase, channel). The im2col matrix of the padded, channels-last X (one
 * Gather) times W rearranged to [t*t*C, s*s*M] gives every phase of every block; a second Gather
 * interleaves the phases and crops by the pads, and a per-image transpose gives NCHW. The GEMM
 * does ((H+t-1)/H)^2 more work than the convolution (1.31x for 7x7 inputs and k4 s2): the
 * price of one large GEMM instead of a small one and a col2im per image.
 */
function lowerConvTransposeSubpixel(ctx: LowerCtx, a: ConvAttrs & { outputPadding: Ints }, v: Value): void {
  const [, c, h, w] = v.inputs[0]!.shape as [number, number, number, number];
  const [, m] = v.inputs[1]!.shape as [number, number, number, number];
  const [, , ho, wo] = v.shape as [number, number, number, number];
  const [sh, sw] = a.strides as [number, number];
  const [th, tw] = [v.inputs[1]!.shape[2]! / sh, v.inputs[1]!.shape[3]! / sw]; // taps per phase
  const [bh, bw] = [h + th - 1, w + tw - 1]; // output blocks
  const [hp, wp] = [h + 2 * (th - 1), w + 2 * (tw - 1)];
  const t = (hint: string) => ctx.temp(`ctsp_${hint}`);
  // Tap (u, v) of block (I, J) reads the padded input at (I + th-1-u, J + tw-1-v), so the taps
  // line up with W's kernel blocks (u = a) without flipping the weights.
  const padded = th > 1 || tw > 1; // one tap per phase (kernel = stride) reads the input as it is
  // With a fixed batch the padding is read from a zero row per image (paddedRow); a symbolic
  // batch, whose size no constant may pin, keeps a Pad.
  const zeroRow = padded && ctx.dynamicBatch === undefined;
  const at = zeroRow ? paddedRow(h, w, th - 1, tw - 1) : (py: number, px: number) => py * wp + px;
  // With a fixed batch, only the phases that the cropped output keeps (exactPhases).
  const plan = zeroRow ? exactPhases(a, v) : null;
  if (plan) return lowerSubpixelExact(ctx, v, plan, zeroRowRows(ctx, v.inputs[0]!.shape, t), subpixelWeights(ctx, v, t), at, t);
  const index: number[] = [];
  for (let i = 0; i < bh; i++) {
    for (let j = 0; j < bw; j++) {
      for (let u = 0; u < th; u++) for (let q = 0; q < tw; q++) index.push(at(i + th - 1 - u, j + tw - 1 - q));
    }
  }
  let xf: string;
  if (zeroRow) {
    xf = zeroRowRows(ctx, v.inputs[0]!.shape, t);
  } else {
    const [xt, xp] = [t('nhwc'), t('pad')];
    xf = t('flat');
    ctx.node('Transpose', [ctx.inputs[0]!], [xt], { perm: [0, 2, 3, 1] });
    if (padded) ctx.node('Pad', [xt, ctx.ints([0, th - 1, tw - 1, 0, 0, th - 1, tw - 1, 0])], [xp], { mode: 'constant' });
    ctx.node('Reshape', [padded ? xp : xt, ctx.ints([-1, hp * wp, c])], [xf]);
  }
  const [g, cols] = [t('gather'), t('cols')];
  ctx.node('Gather', [xf, ctx.ints(index)], [g], { axis: 1 });
  ctx.node('Reshape', [g, ctx.ints([-1, th * tw * c])], [cols]);
  const wm = subpixelWeights(ctx, v, t);
  let bias: string | undefined;
  if (ctx.inputs[2]) {
    bias = t('bias');
    ctx.node('Tile', [ctx.inputs[2], ctx.ints([sh * sw])], [bias]);
  }
  const [y, y3, pix, yt] = [t('gemm'), t('phases'), t('pixels'), t('nchw')];
  gemmBias(ctx, [cols, wm], bias, y);
  // Rows (N, I, J) x columns (r, s, M) hold output pixel (s_h*I + r - pad_top, s_w*J + s - pad_left):
  // the Gather picks the kept pixels in row-major order, M floats at a time.
  const [pt, pl] = [a.pads[0]!, a.pads[1]!];
  const pick: number[] = [];
  for (let oy = 0; oy < ho; oy++) {
    for (let ox = 0; ox < wo; ox++) {
      const [i, r] = [Math.floor((oy + pt) / sh), (oy + pt) % sh];
      const [j, q] = [Math.floor((ox + pl) / sw), (ox + pl) % sw];
      pick.push(((i * bw + j) * sh + r) * sw + q);
    }
  }
  ctx.node('Reshape', [y, ctx.ints([-1, bh * bw * sh * sw, m])], [y3]);
  ctx.node('Gather', [y3, ctx.ints(pick)], [pix], { axis: 1 });
  ctx.node('Reshape', [pix, ctx.ints([-1, ho, wo, m])], [yt]);
  ctx.node('Transpose', [yt], [ctx.output], { perm: [0, 3, 1, 2] });
}

/**
 * In a sub-pixel lowering: W [C, M, th*sh, tw*sw] as the matrix [(a, b, C), (r, s, M)], built as a
 * 2-D transpose to [(a, r, b, s), (C, M)] and a move of rows of M floats, both fast in
 * onnxruntime, where the one 6-D permutation copied single floats (the critic's conv2 input
 * gradient: 0.51 ms). Returns its name.
 */
function subpixelWeights(ctx: LowerCtx, v: Value, t: (hint: string) => string): string {
  const [c, m, kh, kw] = v.inputs[1]!.shape as [number, number, number, number];
  const a = v.attrs as unknown as ConvAttrs;
  const [sh, sw] = a.strides as [number, number];
  const [th, tw] = [kh / sh, kw / sw];
  const [w2, wk, w6, wt, wm] = [t('w2'), t('wk'), t('w6'), t('wt'), t('wmat')];
  ctx.node('Reshape', [ctx.inputs[1]!, ctx.ints([1, c * m, kh * kw])], [w2]);
  ctx.node('Transpose', [w2], [wk], { perm: [0, 2, 1] });
  ctx.node('Reshape', [wk, ctx.ints([th, sh, tw, sw, c, m])], [w6]);
  ctx.node('Transpose', [w6], [wt], { perm: [0, 2, 4, 1, 3, 5] });
  ctx.node('Reshape', [wt, ctx.ints([th * tw * c, sh * sw * m])], [wm]);
  return wm;
}

/** Output blocks that need the same phases: rows `rs` x columns `ss` of each block's sh x sw phases. */
interface PhaseClass { rs: number[]; ss: number[]; blocks: [number, number][] }

/**
 * The sub-pixel form computes every phase of every output block, (h + th - 1) x (w + tw - 1)
 * blocks, where the cropped output needs only some phases of the border blocks: for the reference
 * models' k4 s2 p1 layers on 7x7 inputs, 64 blocks of 4 phases (256 pixels) for 196, 1.31x the
 * arithmetic. The plan groups the blocks by the phases they need, and those classes by their
 * size, for one GEMM per group (a batched MatMul when a group has several classes); null when
 * every block needs every phase.
 */
function exactPhases(a: ConvAttrs, v: Value): PhaseClass[][] | null {
  const [, , h, w] = v.inputs[0]!.shape as [number, number, number, number];
  const [, , kh, kw] = v.inputs[1]!.shape as [number, number, number, number];
  const [, , ho, wo] = v.shape as [number, number, number, number];
  const [sh, sw] = a.strides as [number, number];
  const [bh, bw] = [h + kh / sh - 1, w + kw / sw - 1];
  const [pt, pl] = [a.pads[0]!, a.pads[1]!];
  const needed = (block: number, s: number, pad: number, out: number) =>
    Array.from({ length: s }, (_, r) => r).filter((r) => s * block + r - pad >= 0 && s * block + r - pad < out);
  const classes = new Map<string, PhaseClass>();
  let computed = 0;
  for (let i = 0; i < bh; i++) {
    for (let j = 0; j < bw; j++) {
      const [rs, ss] = [needed(i, sh, pt, ho), needed(j, sw, pl, wo)];
      if (!rs.length || !ss.length) continue;
      const key = `${rs}|${ss}`;
      if (!classes.has(key)) classes.set(key, { rs, ss, blocks: [] });
      classes.get(key)!.blocks.push([i, j]);
      computed += rs.length * ss.length;
    }
  }
  if (computed === bh * bw * sh * sw) return null;
  const groups = new Map<string, PhaseClass[]>();
  for (const k of classes.values()) {
    const key = `${k.blocks.length}|${k.rs.length * k.ss.length}`;
    groups.set(key, [...(groups.get(key) ?? []), k]);
  }
  return [...groups.values()];
}

/**
 * The sub-pixel ConvTranspose computing only the phases the output keeps (see `exactPhases`): per
 * group, a Gather of its blocks' im2col rows from the zero-row rows `xf` ([N, H*W + 1, C], `at`
 * indexing an image's rows) and one GEMM with W's columns for its phases; the groups' results,
 * rows of M floats, are concatenated and one Gather puts them in (image, y, x) order. At batch
 * 128 the critic's conv2 input gradient, [8192, 512] x [512, 256], becomes [4608, 512] x [512,
 * 256], [4, 768, 512] x [4, 512, 128] and [4, 128, 512] x [4, 512, 64] (critic step 59.8-61.9 ->
 * 57.2-58.2 ms). Every output is the same dot product as in the one-GEMM form, but onnxruntime
 * may split K differently for a narrower product, so values can differ in rounding: the critic's
 * and generator's steps (K = 512) came out bit-identical, the student's (K = 256) did not.
 */
function lowerSubpixelExact(
  ctx: LowerCtx, v: Value, groups: PhaseClass[][], xf: string, wm: string, at: (py: number, px: number) => number, t: (hint: string) => string,
): void {
  const [n, c, h, w] = v.inputs[0]!.shape as [number, number, number, number];
  const [, m, kh, kw] = v.inputs[1]!.shape as [number, number, number, number];
  const [, , ho, wo] = v.shape as [number, number, number, number];
  const a = v.attrs as unknown as ConvAttrs;
  const [sh, sw] = a.strides as [number, number];
  const [th, tw] = [kh / sh, kw / sw];
  const [pt, pl] = [a.pads[0]!, a.pads[1]!];
  const k = th * tw * c;
  const [src, w3] = [t('src'), t('w3')];
  ctx.node('Reshape', [xf, ctx.ints([n * (h * w + 1), c])], [src]);
  ctx.node('Reshape', [wm, ctx.ints([k, sh * sw, m])], [w3]);
  const pick = new Array<number>(n * ho * wo);
  const parts: string[] = [];
  let row = 0;
  for (const group of groups) {
    const taps: number[] = [];
    const phases: number[] = [];
    for (const { rs, ss, blocks } of group) {
      for (let img = 0; img < n; img++) {
        for (const [i, j] of blocks) {
          for (let u = 0; u < th; u++) for (let q = 0; q < tw; q++) taps.push(img * (h * w + 1) + at(i + th - 1 - u, j + tw - 1 - q));
          for (const r of rs) for (const s of ss) pick[(img * ho + sh * i + r - pt) * wo + sw * j + s - pl] = row++;
        }
      }
      for (const r of rs) for (const s of ss) phases.push(r * sw + s);
    }
    const [count, p] = [group.length, phases.length / group.length];
    const rows = (taps.length / (th * tw)) / count; // per class
    const [g, cols, wsel, wg, prod, out] = [t('gather'), t('cols'), t('wsel'), t('wgroup'), t('gemm'), t('rows')];
    ctx.node('Gather', [src, ctx.ints(taps)], [g], { axis: 0 });
    ctx.node('Gather', [w3, ctx.ints(phases)], [wsel], { axis: 1 }); // [K, count*P, M]
    if (count === 1) {
      ctx.node('Reshape', [g, ctx.ints([rows, k])], [cols]);
      ctx.node('Reshape', [wsel, ctx.ints([k, p * m])], [wg]);
      ctx.node('Gemm', [cols, wg], [prod]);
    } else {
      const w4 = t('w4');
      ctx.node('Reshape', [g, ctx.ints([count, rows, k])], [cols]);
      ctx.node('Reshape', [wsel, ctx.ints([k, count, p * m])], [w4]);
      ctx.node('Transpose', [w4], [wg], { perm: [1, 0, 2] });
      ctx.node('MatMul', [cols, wg], [prod]);
    }
    ctx.node('Reshape', [prod, ctx.ints([-1, m])], [out]);
    parts.push(out);
  }
  const [all, pix, yt] = [t('all'), t('pixels'), t('nchw')];
  ctx.node('Concat', parts, [all], { axis: 0 });
  let kept = t('kept');
  ctx.node('Gather', [all, ctx.ints(pick)], [kept], { axis: 0 });
  if (ctx.inputs[2]) {
    ctx.node('Add', [kept, ctx.inputs[2]], [pix]);
    kept = pix;
  }
  ctx.node('Reshape', [kept, ctx.ints([n, ho, wo, m])], [yt]);
  ctx.node('Transpose', [yt], [ctx.output], { perm: [0, 3, 1, 2] });
}

/**
 * ConvTranspose as one GEMM over the whole batch and a fold. X channels-last [N*H*W, C] times W
 * rearranged to [C, (a, b, r, s, M)] gives, for input pixel (i, j), its contribution to output
 * block (i + a, j + b), phase (r, s), with kernel offset (s_h*a + r, s_w*b + s). The fold adds
 * the t*t shifted blocks (a Split, one Pad each and one Sum), interleaves the phases, crops by the
 * pads and adds the bias. With few output channels every tensor after the GEMM is small. The
 * training steps' parameters came out bit-identical to onnxruntime's ConvTranspose.
 */
function lowerConvTransposeCol2im(ctx: LowerCtx, a: ConvAttrs & { outputPadding: Ints }, v: Value): void {
  const [, c, h, w] = v.inputs[0]!.shape as [number, number, number, number];
  const [, m, kh, kw] = v.inputs[1]!.shape as [number, number, number, number];
  const [, , ho, wo] = v.shape as [number, number, number, number];
  const [sh, sw] = a.strides as [number, number];
  const [th, tw] = [kh / sh, kw / sw];
  const [bh, bw] = [h + th - 1, w + tw - 1]; // output blocks
  const phase = sh * sw * m;
  const t = (hint: string) => ctx.temp(`ctfold_${hint}`);
  const [xt, xr, w6, wt, wm, y, y5] = [t('nhwc'), t('rows'), t('w6'), t('wt'), t('wmat'), t('gemm'), t('taps')];
  ctx.node('Transpose', [ctx.inputs[0]!], [xt], { perm: [0, 2, 3, 1] });
  ctx.node('Reshape', [xt, ctx.ints([-1, c])], [xr]);
  // W [C, M, th*sh, tw*sw] -> [C, (a, b, r, s, M)]
  ctx.node('Reshape', [ctx.inputs[1]!, ctx.ints([c, m, th, sh, tw, sw])], [w6]);
  ctx.node('Transpose', [w6], [wt], { perm: [0, 2, 4, 3, 5, 1] });
  ctx.node('Reshape', [wt, ctx.ints([c, th * tw * phase])], [wm]);
  ctx.node('Gemm', [xr, wm], [y]);
  ctx.node('Reshape', [y, ctx.ints([-1, h, w, th * tw, phase])], [y5]);
  const taps = Array.from({ length: th * tw }, (_, i) => t(`tap${i}`));
  ctx.node('Split', [y5], taps, { axis: 3 });
  const shifted = taps.map((tap, i) => {
    const [ta, tb] = [Math.floor(i / tw), i % tw];
    const out = t(`shift${i}`);
    ctx.node('Pad', [tap, ctx.ints([0, ta, tb, 0, 0, 0, th - 1 - ta, tw - 1 - tb, 0, 0])], [out], { mode: 'constant' });
    return out;
  });
  const [sum, z6, zt, full, cut, bias] = [t('sum'), t('phases'), t('interleaved'), t('full'), t('cut'), t('bias')];
  ctx.node('Sum', shifted, [sum]); // [N, BH, BW, 1, (r, s, M)]
  ctx.node('Reshape', [sum, ctx.ints([-1, bh, bw, sh, sw, m])], [z6]);
  ctx.node('Transpose', [z6], [zt], { perm: [0, 5, 1, 3, 2, 4] }); // [N, M, BH, r, BW, s]
  ctx.node('Reshape', [zt, ctx.ints([-1, m, bh * sh, bw * sw])], [full]);
  const [pt, pl] = [a.pads[0]!, a.pads[1]!];
  ctx.node('Slice', [full, ctx.ints([pt, pl]), ctx.ints([pt + ho, pl + wo]), ctx.ints([2, 3])], [ctx.inputs[2] ? cut : ctx.output]);
  if (!ctx.inputs[2]) return;
  // The bias last (as onnxruntime's ConvTranspose adds it): broadcast over whole planes, which
  // onnxruntime runs far faster than a Sum input broadcast over the last axis.
  ctx.node('Reshape', [ctx.inputs[2], ctx.ints([1, m, 1, 1])], [bias]);
  ctx.node('Add', [cut, bias], [ctx.output]);
}

/**
 * Stride-1 ConvTranspose as a correlation of X, zero-padded by (k - 1 - pad), with the flipped
 * kernel: out[y, x] = sum_(u, v) Xp[y + u, x + v] W[kh-1-u, kw-1-v]. The im2col matrix of the
 * channels-last X (one Gather, the padding read from a zero row per image) times W as
 * [(u, v, C), M] gives channels-last output rows, as a Conv lowered on an im2col matrix does.
 */
function lowerConvTransposeFlipped(ctx: LowerCtx, a: ConvAttrs & { outputPadding: Ints }, v: Value): void {
  const [n, c, h, w] = v.inputs[0]!.shape as [number, number, number, number];
  const [, m, kh, kw] = v.inputs[1]!.shape as [number, number, number, number];
  const [, , ho, wo] = v.shape as [number, number, number, number];
  // X in phase order (the gradient of a pooled convolution, see `im2col`) is read in place: its
  // rows are gathered by their phase-order positions.
  const tile = ctx.phases(0);
  const at = paddedRow(h, w, kh - 1 - a.pads[0]!, kw - 1 - a.pads[1]!, tile);
  const index: number[] = [];
  for (let oy = 0; oy < ho; oy++) for (let ox = 0; ox < wo; ox++) for (let u = 0; u < kh; u++) for (let q = 0; q < kw; q++) index.push(at(oy + u, ox + q));
  const t = (hint: string) => ctx.temp(`ctflip_${hint}`);
  const xf = zeroRowRows(ctx, v.inputs[0]!.shape, t, tile);
  // W [C, M, kh, kw] -> [(u, v, C), M] with W[c, m, kh-1-u, kw-1-v]: reverse the kernel positions, move them first.
  const [w2, wf, w3, wt, wm] = [t('w2'), t('wflip'), t('w3'), t('wt'), t('wmat')];
  ctx.node('Reshape', [ctx.inputs[1]!, ctx.ints([c * m, kh * kw])], [w2]);
  ctx.node('Gather', [w2, ctx.ints(Array.from({ length: kh * kw }, (_, i) => kh * kw - 1 - i))], [wf], { axis: 1 });
  ctx.node('Reshape', [wf, ctx.ints([c, m, kh * kw])], [w3]);
  ctx.node('Transpose', [w3], [wt], { perm: [2, 0, 1] });
  ctx.node('Reshape', [wt, ctx.ints([kh * kw * c, m])], [wm]);
  const yr = t('out_nhwc');
  const y = gatherGemm(ctx, xf, [n, h * w + 1, c], index, kh * kw * c, wm, ctx.inputs[2], t);
  ctx.node('Reshape', [y, ctx.ints([n, ho, wo, m])], [yr]);
  ctx.node('Transpose', [yr], [ctx.output], { perm: [0, 3, 1, 2] });
}

/**
 * Bytes of im2col matrix that one GEMM of `gatherGemm` reads at most. onnxruntime 1.30, the
 * feature-net step, whose input gradient of conv2 gathers a 29 MB matrix: 4 MB chunks 18.8-20.5
 * ms, 2 MB 19.2-20.4, 1 MB 20.2-21.7, unchunked 20.6-21.7 (four alternating runs).
 */
const CHUNK_BYTES = 4 << 20;

/**
 * In a lowering: cols @ B (+ bias) for the im2col matrix cols = rows of `src` ([N, R, C]: R rows of
 * C floats per image) gathered by `index` (one image's receptive fields, rows of `width` floats),
 * as one Gather and one GEMM per chunk of images and a Concat of the results: a chunk's matrix is
 * still in cache when its GEMM reads it, where a whole one is written out to memory and read back
 * (in the feature-net step, the Gather took 1.8-2.1 ms and the GEMM 2.4-2.6; chunked, 1.25 and
 * 2.15 in all). Returns the name of the [N*L, M] result.
 *
 * Only the stride-1 ConvTranspose (a Conv's input gradient) gathers this way. Chunking a Conv's own
 * matrix as well (forward and weight gradient, 14-26 MB, K = 288-1024) was no faster: feature net
 * 19.5-22.1 against 19.1-20.0 ms with only the input gradient chunked, critic 59.2-61.4 against
 * 59.1-59.8 ms, student 43.8-45.9 against 43.7-45.2 ms unchunked (alternating runs), so those
 * keep one GEMM.
 */
function gatherGemm(
  ctx: LowerCtx, src: string, [n, r, c]: readonly number[], index: readonly number[], width: number,
  b: string, bias: string | undefined, t: (hint: string) => string,
): string {
  const per = Math.max(1, Math.min(n!, Math.floor(CHUNK_BYTES / (index.length * c! * 4))));
  const flat = t('rows');
  ctx.node('Reshape', [src, ctx.ints([n! * r!, c!])], [flat]);
  const parts: string[] = [];
  for (let first = 0; first < n!; first += per) {
    const count = Math.min(per, n! - first);
    const ix: number[] = [];
    for (let i = first; i < first + count; i++) for (const j of index) ix.push(i * r! + j);
    const [g, cols, y] = [t('gather'), t('cols'), t('gemm')];
    ctx.node('Gather', [flat, ctx.ints(ix)], [g], { axis: 0 });
    ctx.node('Reshape', [g, ctx.ints([(ix.length * c!) / width, width])], [cols]);
    gemmBias(ctx, [cols, b], bias, y);
    parts.push(y);
  }
  if (parts.length === 1) return parts[0]!;
  const out = t('out');
  ctx.node('Concat', parts, [out], { axis: 0 });
  return out;
}

export type MaxPoolForm = 'phases' | 'nhwc' | 'standard';

/**
 * How to run a MaxPool: 'standard' (the ONNX operator) on the plain target; on the cpu target,
 * for windows that tile the input, 'phases' (one ReduceMax over the phases, lowerMaxPoolPhases)
 * when the input is computed in phase order for this window, 'nhwc' (two ReduceMax over the
 * channels-last input) when it is computed channels-last, else 'standard'.
 */
export function selectMaxPoolForm(v: Value, env: LowerEnv): MaxPoolForm {
  const a = v.attrs as unknown as PrimAttrs['MaxPool'];
  if (env.target !== 'cpu' || !tiles(v.inputs[0]!, a)) return 'standard';
  const tile = env.phases(0);
  if (tile && sameTile(tile, a.kernel)) return 'phases';
  return env.channelsLast(0) ? 'nhwc' : 'standard';
}

export type MaxPoolGradForm = 'phases' | 'nhwc' | 'upsampled';

/**
 * How to run MaxPoolGrad: on the plain target 'upsampled' (Y and dY upsampled to X's size, an
 * equality mask, lowerMaxPoolGradUpsampled: standard element-wise operators); on the cpu target
 * 'phases' when X is computed in phase order for this window, 'nhwc' when it is computed
 * channels-last, else 'upsampled'.
 */
export function selectMaxPoolGradForm(v: Value, env: LowerEnv): MaxPoolGradForm {
  if (env.target !== 'cpu') return 'upsampled';
  const tile = env.phases(0);
  if (tile && sameTile(tile, (v.attrs as unknown as PrimAttrs['MaxPoolGrad']).kernel)) return 'phases';
  return env.channelsLast(0) ? 'nhwc' : 'upsampled';
}

/**
 * MaxPool's input gradient on channels-last tensors: X viewed as [N*H/kh, kh, W/kw, kw, C]
 * against Y and dY as [N*H/kh, 1, W/kw, 1, C], so Equal and Mul broadcast over runs of C floats
 * and nothing is upsampled. The same values as the NCHW form (every op is exact).
 */
function lowerMaxPoolGradNhwc(ctx: LowerCtx, [kh, kw]: [number, number], v: Value): void {
  const [n, c, h, w] = v.inputs[0]!.shape as [number, number, number, number];
  const t = (hint: string) => ctx.temp(`poolgrad_${hint}`);
  const view = (src: string, hint: string, full: boolean): string => {
    const [nhwc, r] = [t(`${hint}_nhwc`), t(`${hint}_view`)];
    ctx.node('Transpose', [src], [nhwc], { perm: [0, 2, 3, 1] });
    ctx.node('Reshape', [nhwc, ctx.ints([n * (h / kh), full ? kh : 1, w / kw, full ? kw : 1, c])], [r]);
    return r;
  };
  const [eq, mask, g, gt] = [t('eq'), t('mask'), t('g'), t('g_nhwc')];
  ctx.node('Equal', [view(ctx.inputs[0]!, 'x', true), view(ctx.inputs[1]!, 'y', false)], [eq]);
  ctx.node('Cast', [eq], [mask], { to: onnxType.float32 });
  ctx.node('Mul', [view(ctx.inputs[2]!, 'dy', false), mask], [g]);
  ctx.node('Reshape', [g, ctx.ints([n, h, w, c])], [gt]);
  ctx.node('Transpose', [gt], [ctx.output], { perm: [0, 3, 1, 2] });
}

const sameTile = (t: Tile, k: Ints) => t[0] === k[0] && t[1] === k[1];

/**
 * MaxPool of a tensor computed in phase order (see `im2col`): X as [N, kh*kw, H/kh * W/kw * C],
 * one ReduceMax over the phases, the result channels-last.
 */
function lowerMaxPoolPhases(ctx: LowerCtx, tile: Tile, v: Value): void {
  const [n, c, h, w] = v.inputs[0]!.shape as [number, number, number, number];
  const [kh, kw] = tile;
  const [m, yt] = [ctx.temp('pool_max'), ctx.temp('pool_nhwc')];
  const x3 = toPhases(ctx, ctx.inputs[0]!, v.inputs[0]!.shape, tile, [n, kh * kw, (h / kh) * (w / kw) * c]);
  ctx.node('ReduceMax', [x3], [m], { axes: [1], keepdims: 0 });
  ctx.node('Reshape', [m, ctx.ints([n, h / kh, w / kw, c])], [yt]);
  ctx.node('Transpose', [yt], [ctx.output], { perm: [0, 3, 1, 2] });
}

/**
 * MaxPool's input gradient for X in phase order: X [N, kh*kw, S] against Y and dY as
 * channels-last [N, 1, S], so Equal and Mul broadcast over whole images; dX in phase order.
 */
function lowerMaxPoolGradPhases(ctx: LowerCtx, tile: Tile, v: Value): void {
  const [n, c, h, w] = v.inputs[0]!.shape as [number, number, number, number];
  const [kh, kw] = tile;
  const size = (h / kh) * (w / kw) * c;
  const t = (hint: string) => ctx.temp(`poolgrad_${hint}`);
  const pooled = (src: string, hint: string): string => {
    const [nhwc, r] = [t(`${hint}_nhwc`), t(`${hint}_view`)];
    ctx.node('Transpose', [src], [nhwc], { perm: [0, 2, 3, 1] });
    ctx.node('Reshape', [nhwc, ctx.ints([n, 1, size])], [r]);
    return r;
  };
  const [eq, mask, g] = [t('eq'), t('mask'), t('g')];
  ctx.node('Equal', [toPhases(ctx, ctx.inputs[0]!, v.inputs[0]!.shape, tile, [n, kh * kw, size]), pooled(ctx.inputs[1]!, 'y')], [eq]);
  ctx.node('Cast', [eq], [mask], { to: onnxType.float32 });
  ctx.node('Mul', [pooled(ctx.inputs[2]!, 'dy'), mask], [g]);
  fromPhases(ctx, g, v.shape, tile);
}

/**
 * MaxPool of a channels-last tensor (a convolution lowered as a GEMM), as two ReduceMax over the
 * windows' columns and rows of the NHWC tensor, whose layout transposes then cancel.
 */
function lowerMaxPoolNhwc(ctx: LowerCtx, a: PrimAttrs['MaxPool'], v: Value): void {
      const [n, c, h, w] = v.inputs[0]!.shape as [number, number, number, number];
      const [kh, kw] = a.kernel as [number, number];
      const t = (hint: string) => ctx.temp(`pool_${hint}`);
      const [xt, x3, m1, m3, m2, yt] = [t('nhwc'), t('cols'), t('colmax'), t('rows'), t('max'), t('out')];
      ctx.node('Transpose', [ctx.inputs[0]!], [xt], { perm: [0, 2, 3, 1] });
      ctx.node('Reshape', [xt, ctx.ints([n * h * (w / kw), kw, c])], [x3]);
      ctx.node('ReduceMax', [x3], [m1], { axes: [1], keepdims: 0 });
      ctx.node('Reshape', [m1, ctx.ints([n * (h / kh), kh, (w / kw) * c])], [m3]);
      ctx.node('ReduceMax', [m3], [m2], { axes: [1], keepdims: 0 });
      ctx.node('Reshape', [m2, ctx.ints([n, h / kh, w / kw, c])], [yt]);
      ctx.node('Transpose', [yt], [ctx.output], { perm: [0, 3, 1, 2] });
}

/** The cpu target's lowerings, in place of the rules' standard ones; each asks its selector for the form. */
export const CPU_LOWERINGS: { [K in Prim]?: Lowering<K> } = {
  Conv: (ctx, a, v) => {
    const form = selectConvForm(v, ctx);
    if (form === 'cols') return lowerConvFromCols(ctx, v);
    if (form === 'folded') return lowerConvFolded(ctx, a, v, foldPlan(v, a)!);
    convRules.Conv.lower(ctx, a, v);
  },
  ConvTranspose: (ctx, a, v) => {
    const form = selectConvTransposeForm(v, ctx);
    if (form === 'subpixel') return lowerConvTransposeSubpixel(ctx, a, v);
    if (form === 'col2im') return lowerConvTransposeCol2im(ctx, a, v);
    if (form === 'flipped') return lowerConvTransposeFlipped(ctx, a, v);
    convRules.ConvTranspose.lower(ctx, a, v);
  },
  MaxPool: (ctx, a, v) => {
    const form = selectMaxPoolForm(v, ctx);
    if (form === 'phases') return lowerMaxPoolPhases(ctx, ctx.phases(0)!, v);
    if (form === 'nhwc') return lowerMaxPoolNhwc(ctx, a, v);
    poolRules.MaxPool.lower(ctx, a, v);
  },
  MaxPoolGrad: (ctx, a, v) => {
    const form = selectMaxPoolGradForm(v, ctx);
    if (form === 'phases') return lowerMaxPoolGradPhases(ctx, ctx.phases(0)!, v);
    (form === 'nhwc' ? lowerMaxPoolGradNhwc : lowerMaxPoolGradUpsampled)(ctx, a.kernel as [number, number], v);
  },
};

/** What the emitter lowers: prepared by `planCpu` for the cpu target (onnx.ts: `standardPlan` for the plain one). */
export interface LoweringPlan {
  /** The graph to lower: the emitted graph itself, or a copy holding what the plan built. */
  readonly graph: Graph;
  /** The outputs, as values of `graph`. */
  readonly outputs: Record<string, Value>;
  /** The ids of the nodes the outputs need. */
  readonly needed: Set<number>;
  /** An expanded node's id -> its expansion: the node lowers as that value. */
  readonly alias: ReadonlyMap<number, Value>;
  /** Tensors a node's lowering reuses beyond its inputs (a Conv's im2col matrix), by node id. */
  readonly aux: ReadonlyMap<number, readonly Value[]>;
  /** LowerEnv's facts about a node's input u: computed channels-last, or in phase order. */
  channelsLast(u: Value): boolean;
  phases(u: Value): Tile | undefined;
}

/**
 * The cpu target's plan for the nodes `needed` (by id) of `g`'s `outputs`: on a copy of `g` (the
 * same ids, so the same names), the expansions of CPU_EXPANSIONS and the im2col matrices of the
 * convolutions that share a weight with one on an im2col matrix (`sharedWeightConvs`); then the
 * matrix each Conv's lowering reuses. `g` is left as it is.
 */
export function planCpu(g: Graph, outputs: Record<string, Value>, needed: ReadonlySet<number>): LoweringPlan {
  let graph = g;
  let outs = outputs;
  const want = new Set(needed);
  const onCopy = () => {
    if (graph !== g) return;
    const { graph: copy, map } = g.copy();
    graph = copy;
    outs = Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, map.get(v)!]));
  };
  const alias = new Map<number, Value>();
  const expanded = [...want].sort((a, b) => a - b).filter((id) => CPU_EXPANSIONS[g.nodes[id]!.op as Prim]);
  if (expanded.length) onCopy();
  for (const id of expanded) {
    const v = graph.nodes[id]!;
    const e = CPU_EXPANSIONS[v.op as Prim]!(v);
    if (e && e !== v) alias.set(id, e);
  }
  // What the outputs need: an expanded node needs its expansion, not its inputs. One depth-first
  // walk from all outputs: the shared-weight matrices are built, and numbered, in its order.
  const reach = (...from: Value[]) => {
    const more = from.map((v) => v.id);
    while (more.length) {
      const id = more.pop()!;
      if (want.has(id)) continue;
      want.add(id);
      const e = alias.get(id);
      for (const i of e ? [e] : graph.nodes[id]!.inputs) more.push(i.id);
    }
  };
  if (alias.size) {
    want.clear();
    reach(...Object.values(outs));
  }
  const shared = sharedWeightConvs([...want].map((id) => graph.nodes[id]!), (c) => want.has(c.id));
  if (shared.length) onCopy();
  for (const cols of sharedWeightCols(shared.map((v) => graph.nodes[v.id]!))) reach(cols);
  const aux = new Map<number, Value[]>();
  for (const id of want) {
    const extra = auxInputs(graph.nodes[id]!).filter((a) => want.has(a.id));
    if (extra.length) aux.set(id, extra.slice(0, 1)); // one matrix is enough
  }
  return {
    graph, outputs: outs, needed: want, alias, aux,
    channelsLast: (u) => u.op === 'Conv' && aux.has(u.id),
    phases: (u) => {
      const conv = u.op === 'MaxPoolGrad' ? u.inputs[0]! : u;
      const cols = conv.op === 'Conv' ? aux.get(conv.id)?.[0] : undefined;
      const tile = cols && colsPhase(cols);
      const kernel = u.op === 'MaxPoolGrad' ? (u.attrs.kernel as number[]) : undefined;
      return tile && (!kernel || sameTile(tile, kernel)) ? tile : undefined;
    },
  };
}
