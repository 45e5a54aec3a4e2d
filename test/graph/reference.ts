// An independent float64 reference for every primitive, written as plain loops over
// row-major Float64Arrays. Nothing here imports the graph code: the point is to have a
// second, obviously-correct implementation to compare the emitted ONNX graphs against.

export interface T {
  readonly shape: readonly number[];
  readonly data: Float64Array;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

export function tensor(shape: readonly number[], data?: ArrayLike<number>): T {
  const n = numel(shape);
  const d = data ? Float64Array.from(data) : new Float64Array(n);
  if (d.length !== n) throw new Error(`reference: ${d.length} values for shape [${shape.join(', ')}]`);
  return { shape: [...shape], data: d };
}

export const zeros = (shape: readonly number[]): T => tensor(shape);

/** Multi-index of flat offset `i` in `shape`. */
function unravel(i: number, shape: readonly number[], out: number[]): void {
  for (let k = shape.length - 1; k >= 0; k--) {
    const d = shape[k]!;
    out[k] = i % d;
    i = Math.floor(i / d);
  }
}

// ------------------------------------------------------------- elementwise

export function map(x: T, f: (v: number) => number): T {
  return { shape: [...x.shape], data: x.data.map(f) };
}

/** Numpy broadcasting of shapes: align right, 1 stretches. */
export function bshape(...shapes: (readonly number[])[]): number[] {
  const n = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let d = 1;
    for (const s of shapes) {
      const e = s[s.length - n + i] ?? 1;
      if (e !== 1) {
        if (d !== 1 && d !== e) throw new Error(`reference: shapes do not broadcast: ${shapes.map((q) => `[${q.join(',')}]`).join(' ')}`);
        d = e;
      }
    }
    out.push(d);
  }
  return out;
}

/** Reads `x` at the multi-index `idx` of a broadcast result of rank idx.length. */
function bget(x: T, idx: readonly number[]): number {
  const lead = idx.length - x.shape.length;
  let off = 0;
  for (let k = 0; k < x.shape.length; k++) {
    const d = x.shape[k]!;
    off = off * d + (d === 1 ? 0 : idx[lead + k]!);
  }
  return x.data[off]!;
}

export function nary(xs: readonly T[], f: (...v: number[]) => number): T {
  const shape = bshape(...xs.map((x) => x.shape));
  const out = zeros(shape);
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < out.data.length; i++) {
    unravel(i, shape, idx);
    out.data[i] = f(...xs.map((x) => bget(x, idx)));
  }
  return out;
}

export const add = (a: T, b: T) => nary([a, b], (p, q) => p + q);
export const sub = (a: T, b: T) => nary([a, b], (p, q) => p - q);
export const mul = (a: T, b: T) => nary([a, b], (p, q) => p * q);
export const div = (a: T, b: T) => nary([a, b], (p, q) => p / q);
export const pow = (a: T, b: T) => nary([a, b], (p, q) => Math.pow(p, q));
export const greater = (a: T, b: T) => nary([a, b], (p, q) => (p > q ? 1 : 0));
export const less = (a: T, b: T) => nary([a, b], (p, q) => (p < q ? 1 : 0));
export const equal = (a: T, b: T) => nary([a, b], (p, q) => (p === q ? 1 : 0));
export const where = (c: T, a: T, b: T) => nary([c, a, b], (k, p, q) => (k ? p : q));
export const scalar = (v: number): T => tensor([], [v]);

export const neg = (x: T) => map(x, (v) => -v);
export const exp = (x: T) => map(x, Math.exp);
export const log = (x: T) => map(x, Math.log);
export const sqrt = (x: T) => map(x, Math.sqrt);
export const abs = (x: T) => map(x, Math.abs);
export const sign = (x: T) => map(x, (v) => (v > 0 ? 1 : v < 0 ? -1 : 0));
export const tanh = (x: T) => map(x, Math.tanh);
export const sigmoid = (x: T) => map(x, (v) => 1 / (1 + Math.exp(-v)));
export const relu = (x: T) => map(x, (v) => (v > 0 ? v : 0));
export const leakyRelu = (x: T, alpha: number) => map(x, (v) => (v >= 0 ? v : alpha * v));
export const clip = (x: T, lo: number, hi: number) => map(x, (v) => Math.min(hi, Math.max(lo, v)));
/** ONNX Cast float -> int truncates toward zero. */
export const castToInt = (x: T) => map(x, Math.trunc);
export const castToBool = (x: T) => map(x, (v) => (v !== 0 ? 1 : 0));

// ------------------------------------------------------------- linear algebra

/** numpy.matmul for rank >= 2 operands with broadcast batch dimensions. */
export function matmul(a: T, b: T): T {
  const [m, k] = a.shape.slice(-2) as [number, number];
  const [k2, n] = b.shape.slice(-2) as [number, number];
  if (k !== k2) throw new Error('reference matmul: inner dimensions differ');
  const batch = bshape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const out = zeros([...batch, m, n]);
  const nb = numel(batch);
  const bidx = new Array<number>(batch.length).fill(0);
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  const batchOffset = (shape: readonly number[]): number => {
    const lead = batch.length - shape.length;
    let off = 0;
    for (let q = 0; q < shape.length; q++) off = off * shape[q]! + (shape[q] === 1 ? 0 : bidx[lead + q]!);
    return off;
  };
  for (let p = 0; p < nb; p++) {
    unravel(p, batch, bidx);
    const ao = batchOffset(aBatch) * m * k;
    const bo = batchOffset(bBatch) * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0; q < k; q++) s += a.data[ao + i * k + q]! * b.data[bo + q * n + j]!;
        out.data[p * m * n + i * n + j] = s;
      }
    }
  }
  return out;
}

/** Y = op(A) op(B) + C, with C broadcast to [M, N]. */
export function gemm(a: T, b: T, transA: number, transB: number, c?: T): T {
  const at = (i: number, q: number) => (transA ? a.data[q * a.shape[1]! + i]! : a.data[i * a.shape[1]! + q]!);
  const bt = (q: number, j: number) => (transB ? b.data[j * b.shape[1]! + q]! : b.data[q * b.shape[1]! + j]!);
  const m = transA ? a.shape[1]! : a.shape[0]!;
  const k = transA ? a.shape[0]! : a.shape[1]!;
  const n = transB ? b.shape[0]! : b.shape[1]!;
  const out = zeros([m, n]);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let q = 0; q < k; q++) s += at(i, q) * bt(q, j);
      out.data[i * n + j] = s + (c ? bget(c, [i, j]) : 0);
    }
  }
  return out;
}

// ------------------------------------------------------------- layout

export function reshape(x: T, shape: readonly number[]): T {
  if (numel(shape) !== x.data.length) throw new Error('reference reshape: size mismatch');
  return { shape: [...shape], data: Float64Array.from(x.data) };
}

export function transpose(x: T, perm: readonly number[]): T {
  const shape = perm.map((p) => x.shape[p]!);
  const xs = strides(x.shape);
  const out = zeros(shape);
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < out.data.length; i++) {
    unravel(i, shape, idx);
    let off = 0;
    for (let k = 0; k < perm.length; k++) off += idx[k]! * xs[perm[k]!]!;
    out.data[i] = x.data[off]!;
  }
  return out;
}

export function concat(xs: readonly T[], axis: number): T {
  const rank = xs[0]!.shape.length;
  const ax = axis < 0 ? axis + rank : axis;
  const shape = xs[0]!.shape.map((d, i) => (i === ax ? xs.reduce((s, x) => s + x.shape[ax]!, 0) : d));
  const out = zeros(shape);
  const os = strides(shape);
  const idx = new Array<number>(rank).fill(0);
  let base = 0;
  for (const x of xs) {
    for (let i = 0; i < x.data.length; i++) {
      unravel(i, x.shape, idx);
      let off = 0;
      for (let k = 0; k < rank; k++) off += (k === ax ? idx[k]! + base : idx[k]!) * os[k]!;
      out.data[off] = x.data[i]!;
    }
    base += x.shape[ax]!;
  }
  return out;
}

export function slice(x: T, starts: readonly number[], ends: readonly number[]): T {
  const shape = x.shape.map((_, i) => ends[i]! - starts[i]!);
  const xs = strides(x.shape);
  const out = zeros(shape);
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < out.data.length; i++) {
    unravel(i, shape, idx);
    let off = 0;
    for (let k = 0; k < shape.length; k++) off += (idx[k]! + starts[k]!) * xs[k]!;
    out.data[i] = x.data[off]!;
  }
  return out;
}

/** Constant zero padding; pads = [begin_0, ..., begin_{r-1}, end_0, ..., end_{r-1}]. */
export function pad(x: T, pads: readonly number[]): T {
  const r = x.shape.length;
  const shape = x.shape.map((d, i) => d + pads[i]! + pads[i + r]!);
  const os = strides(shape);
  const out = zeros(shape);
  const idx = new Array<number>(r).fill(0);
  for (let i = 0; i < x.data.length; i++) {
    unravel(i, x.shape, idx);
    let off = 0;
    for (let k = 0; k < r; k++) off += (idx[k]! + pads[k]!) * os[k]!;
    out.data[off] = x.data[i]!;
  }
  return out;
}

export function expand(x: T, shape: readonly number[]): T {
  return nary([x, zeros(shape)], (p) => p);
}

export function reduce(x: T, axes: readonly number[], keepdims: number, kind: 'sum' | 'mean' | 'max'): T {
  const r = x.shape.length;
  const ax = new Set(axes.map((a) => (a < 0 ? a + r : a)));
  const kept = x.shape.map((d, i) => (ax.has(i) ? 1 : d));
  const acc = new Float64Array(numel(kept)).fill(kind === 'max' ? -Infinity : 0);
  const ks = strides(kept);
  const idx = new Array<number>(r).fill(0);
  for (let i = 0; i < x.data.length; i++) {
    unravel(i, x.shape, idx);
    let off = 0;
    for (let k = 0; k < r; k++) off += (ax.has(k) ? 0 : idx[k]!) * ks[k]!;
    acc[off] = kind === 'max' ? Math.max(acc[off]!, x.data[i]!) : acc[off]! + x.data[i]!;
  }
  if (kind === 'mean') {
    const cnt = x.data.length / acc.length;
    for (let i = 0; i < acc.length; i++) acc[i]! /= cnt;
  }
  const shape = keepdims ? kept : x.shape.filter((_, i) => !ax.has(i));
  return { shape, data: acc };
}

export const sumAll = (x: T): number => x.data.reduce((s, v) => s + v, 0);

export function dot(a: T, b: T): number {
  if (a.data.length !== b.data.length) throw new Error('reference dot: size mismatch');
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += a.data[i]! * b.data[i]!;
  return s;
}

// ------------------------------------------------------------- convolution (NCHW, OIHW)

export interface ConvSpec {
  strides?: readonly number[];
  pads?: readonly number[]; // [top, left, bottom, right]
  dilations?: readonly number[];
}

function convParams(o: ConvSpec) {
  const [sh, sw] = (o.strides ?? [1, 1]) as [number, number];
  const [pt, pl, pb, pr] = (o.pads ?? [0, 0, 0, 0]) as [number, number, number, number];
  const [dh, dw] = (o.dilations ?? [1, 1]) as [number, number];
  return { sh, sw, pt, pl, pb, pr, dh, dw };
}

/** y[n,m,oh,ow] = b[m] + sum_{c,i,j} x[n,c,oh*sh+i*dh-pt, ow*sw+j*dw-pl] * w[m,c,i,j]. */
export function conv2d(x: T, w: T, b: T | undefined, o: ConvSpec = {}): T {
  const { sh, sw, pt, pl, pb, pr, dh, dw } = convParams(o);
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [M, C2, KH, KW] = w.shape as [number, number, number, number];
  if (C !== C2) throw new Error('reference conv: channels differ');
  const HO = Math.floor((H + pt + pb - (KH - 1) * dh - 1) / sh) + 1;
  const WO = Math.floor((W + pl + pr - (KW - 1) * dw - 1) / sw) + 1;
  const y = zeros([N, M, HO, WO]);
  for (let n = 0; n < N; n++)
    for (let m = 0; m < M; m++)
      for (let oh = 0; oh < HO; oh++)
        for (let ow = 0; ow < WO; ow++) {
          let s = b ? b.data[m]! : 0;
          for (let c = 0; c < C; c++)
            for (let i = 0; i < KH; i++)
              for (let j = 0; j < KW; j++) {
                const ih = oh * sh + i * dh - pt;
                const iw = ow * sw + j * dw - pl;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                s += x.data[((n * C + c) * H + ih) * W + iw]! * w.data[((m * C + c) * KH + i) * KW + j]!;
              }
          y.data[((n * M + m) * HO + oh) * WO + ow] = s;
        }
  return y;
}

/**
 * ONNX ConvTranspose (group 1): every input pixel scatters its kernel-weighted copy:
 * y[n,m,ih*sh+i*dh-pt, iw*sw+j*dw-pl] += x[n,c,ih,iw] * w[c,m,i,j], positions outside the
 * output cropped; output size s*(in-1) + output_padding + (k-1)*d + 1 - pad_begin - pad_end.
 */
export function convTranspose2d(x: T, w: T, b: T | undefined, o: ConvSpec & { outputPadding?: readonly number[] } = {}): T {
  const { sh, sw, pt, pl, pb, pr, dh, dw } = convParams(o);
  const [oph, opw] = (o.outputPadding ?? [0, 0]) as [number, number];
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [C2, M, KH, KW] = w.shape as [number, number, number, number];
  if (C !== C2) throw new Error('reference convTranspose: channels differ');
  const HO = sh * (H - 1) + oph + (KH - 1) * dh + 1 - pt - pb;
  const WO = sw * (W - 1) + opw + (KW - 1) * dw + 1 - pl - pr;
  const y = zeros([N, M, HO, WO]);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let ih = 0; ih < H; ih++)
        for (let iw = 0; iw < W; iw++) {
          const xv = x.data[((n * C + c) * H + ih) * W + iw]!;
          for (let m = 0; m < M; m++)
            for (let i = 0; i < KH; i++)
              for (let j = 0; j < KW; j++) {
                const oh = ih * sh + i * dh - pt;
                const ow = iw * sw + j * dw - pl;
                if (oh < 0 || oh >= HO || ow < 0 || ow >= WO) continue;
                y.data[((n * M + m) * HO + oh) * WO + ow]! += xv * w.data[((c * M + m) * KH + i) * KW + j]!;
              }
        }
  if (b) for (let i = 0; i < y.data.length; i++) y.data[i]! += b.data[Math.floor(i / (HO * WO)) % M]!;
  return y;
}

/**
 * Every (input, weight, output) index triple that a convolution multiplies together, in one loop
 * order: both backward references visit them through it, so they cannot drift apart.
 */
function convTaps([N, C, H, W]: readonly number[], [M, KH, KW]: readonly number[], [HO, WO]: readonly number[], o: ConvSpec, visit: (xi: number, wi: number, yi: number) => void): void {
  const { sh, sw, pt, pl, dh, dw } = convParams(o);
  for (let n = 0; n < N!; n++)
    for (let m = 0; m < M!; m++)
      for (let oh = 0; oh < HO!; oh++)
        for (let ow = 0; ow < WO!; ow++) {
          const yi = ((n * M! + m) * HO! + oh) * WO! + ow;
          for (let c = 0; c < C!; c++)
            for (let i = 0; i < KH!; i++)
              for (let j = 0; j < KW!; j++) {
                const ih = oh * sh + i * dh - pt;
                const iw = ow * sw + j * dw - pl;
                if (ih < 0 || ih >= H! || iw < 0 || iw >= W!) continue;
                visit(((n * C! + c) * H! + ih) * W! + iw, ((m * C! + c) * KH! + i) * KW! + j, yi);
              }
        }
}

/** d<dy, conv2d(x, w)>/dx by scattering dy back through the same index map as conv2d. */
export function conv2dBackwardInput(dy: T, w: T, xShape: readonly number[], o: ConvSpec = {}): T {
  const dx = zeros(xShape);
  convTaps(xShape, [w.shape[0]!, w.shape[2]!, w.shape[3]!], dy.shape.slice(2), o, (xi, wi, yi) => {
    dx.data[xi]! += dy.data[yi]! * w.data[wi]!;
  });
  return dx;
}

/** d<dy, conv2d(x, w)>/dw: dw[m,c,i,j] = sum_{n,oh,ow} dy[n,m,oh,ow] * x[n,c,oh*sh+i*dh-pt, ow*sw+j*dw-pl]. */
export function conv2dBackwardFilter(x: T, dy: T, kernel: readonly number[], o: ConvSpec = {}): T {
  const M = dy.shape[1]!;
  const g = zeros([M, x.shape[1]!, kernel[0]!, kernel[1]!]);
  convTaps(x.shape, [M, kernel[0]!, kernel[1]!], dy.shape.slice(2), o, (xi, wi, yi) => {
    g.data[wi]! += dy.data[yi]! * x.data[xi]!;
  });
  return g;
}

/** MaxPool's input gradient for windows that tile x: dy at every maximum of its window. */
export function maxPool2dBackward(x: T, dy: T, kernel: readonly number[]): T {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [KH, KW] = kernel as [number, number];
  const y = maxPool2d(x, kernel, kernel);
  const dx = zeros(x.shape);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++) {
          const o = ((n * C + c) * (H / KH) + Math.floor(h / KH)) * (W / KW) + Math.floor(w / KW);
          const i = ((n * C + c) * H + h) * W + w;
          if (x.data[i] === y.data[o]) dx.data[i] = dy.data[o]!;
        }
  return dx;
}

/** MaxPool without padding, floor mode. */
export function maxPool2d(x: T, kernel: readonly number[], st: readonly number[]): T {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [KH, KW] = kernel as [number, number];
  const [SH, SW] = st as [number, number];
  const HO = Math.floor((H - KH) / SH) + 1;
  const WO = Math.floor((W - KW) / SW) + 1;
  const y = zeros([N, C, HO, WO]);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let oh = 0; oh < HO; oh++)
        for (let ow = 0; ow < WO; ow++) {
          let best = -Infinity;
          for (let i = 0; i < KH; i++)
            for (let j = 0; j < KW; j++) best = Math.max(best, x.data[((n * C + c) * H + oh * SH + i) * W + ow * SW + j]!);
          y.data[((n * C + c) * HO + oh) * WO + ow] = best;
        }
  return y;
}

// ------------------------------------------------------------- indexing

/** Gather along axis 0: out[idx..., rest...] = table[indices[idx...], rest...]. */
export function gather(table: T, indices: T): T {
  const rows = table.shape[0]!;
  const rest = table.data.length / rows;
  const out = zeros([...indices.shape, ...table.shape.slice(1)]);
  for (let i = 0; i < indices.data.length; i++) {
    let r = indices.data[i]!;
    if (r < 0) r += rows;
    for (let k = 0; k < rest; k++) out.data[i * rest + k] = table.data[r * rest + k]!;
  }
  return out;
}

/** Gather along `axis` with 1-D indices: out[pre, q, post] = data[pre, indices[q], post]. */
export function gatherAxis(data: T, indices: T, axis: number): T {
  const rows = data.shape[axis]!;
  const pre = data.shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const post = data.data.length / (pre * rows);
  const q = indices.data.length;
  const out = zeros([...data.shape.slice(0, axis), q, ...data.shape.slice(axis + 1)]);
  for (let a = 0; a < pre; a++) {
    for (let i = 0; i < q; i++) {
      let r = indices.data[i]!;
      if (r < 0) r += rows;
      for (let b = 0; b < post; b++) out.data[(a * q + i) * post + b] = data.data[(a * rows + r) * post + b]!;
    }
  }
  return out;
}

/** OneHot along a new last axis with off/on values 0/1; out-of-range indices give all zeros. */
export function oneHot(indices: T, depth: number): T {
  const out = zeros([...indices.shape, depth]);
  for (let i = 0; i < indices.data.length; i++) {
    let r = indices.data[i]!;
    if (r < 0) r += depth;
    if (r >= 0 && r < depth) out.data[i * depth + r] = 1;
  }
  return out;
}
