// The primitive test harness: one row per primitive application. For each row it
//   1. builds the graph, emits ONNX and runs it in onnxruntime (float32),
//   2. compares the forward value with the float64 reference (reference.ts),
//   3. checks the vector-Jacobian product <grad <u, y>, v> against a central finite
//      difference of the float64 reference in random directions v,
//   4. for order-2 rows, differentiates t = <grad <u, y>, w> again and checks <grad t, v>
//      against a nested central finite difference (the mixed second directional
//      derivative D^2 <u, ref>[v, w]), again entirely in float64.
// Every output of a row (y, first- and second-order gradients) comes from one ONNX model
// and one InferenceSession run.

import * as ort from 'onnxruntime-node';
import { type DType, Graph, type Value } from '../../src/graph/ir.ts';
import { add, mul, sumAll, type Prim } from '../../src/graph/ops.ts';
import { gradients } from '../../src/graph/autodiff.ts';
import { emitModel, type Target } from '../../src/graph/onnx.ts';
import * as R from './reference.ts';

/**
 * Where a row's inputs are drawn from (before `scale`):
 *   any           uniform(-1, 1)
 *   awayFromZero  +-uniform(0.1, 1): keeps kinks (relu, abs, sign, where) out of finite-difference reach
 *   positive      uniform(0.5, 2) (log, sqrt, pow bases)
 *   notSmall      +-uniform(0.5, 2) (divisors)
 *   ties          values from {-1, -0.5, 0, 0.5, 1}: forces ties and exact zeros (max, comparisons, sign)
 *   distinct      a shuffled evenly spaced grid in [-1, 1]: no two entries closer than 2/size (max, maxPool)
 *   grid          values from {0, 0.5, 1} (conditions built with equal)
 *   int           integers in [lo, hi) (int64)
 *   bool          0 / 1 (bool)
 */
export type Domain = 'any' | 'awayFromZero' | 'positive' | 'notSmall' | 'ties' | 'distinct' | 'grid' | 'int' | 'bool';

export interface InputSpec {
  shape: number[];
  domain?: Domain;
  /** For int: the half-open range [lo, hi). */
  lo?: number;
  hi?: number;
  scale?: number;
  /** false: a float input the row does not differentiate (e.g. a condition source). */
  grad?: boolean;
}

export interface Tol {
  /** Forward: |ort - ref| <= fwd * (|ref| + max|ref|), elementwise. */
  fwd: number;
  /** First order: |<g, v> - fd| <= vjp * sum|g||v| + atol. */
  vjp: number;
  /** Second order: |<h, v> - fd2| <= vjp2 * sum|h||v| + atol. */
  vjp2: number;
}

export const defaultTol: Tol = { fwd: 1e-5, vjp: 1e-5, vjp2: 1e-4 };

export interface Row {
  /** Unique label; also seeds the row's random numbers. */
  name: string;
  /** The primitive the row is about (must occur in the built graph). */
  op: Prim;
  inputs: InputSpec[];
  build: (xs: Value[]) => Value;
  /** Independent float64 reference of build. */
  ref: (xs: R.T[]) => R.T;
  /** 0: forward only; 1: + VJP; 2: + grad-of-grad. */
  order: 0 | 1 | 2;
  tol?: Partial<Tol>;
  /**
   * The gradient autodiff must produce, where finite differences do not define it
   * (ReduceMax ties, StopGradient): one tensor per differentiated input. Replaces the FD check.
   */
  vjpRef?: (xs: R.T[], u: R.T) => R.T[];
  /**
   * For piecewise-smooth rows whose kinks no input domain can avoid (composites with LeakyRelu):
   * the reference with its piece frozen at `base` (identical to ref near base). Finite differences
   * use it, so a step across a kink cannot fake a failure; it must agree with ref at base.
   */
  local?: (base: R.T[]) => (xs: R.T[]) => R.T;
  /**
   * Session options for this row only. Used solely to work around a known defect (see `bug`),
   * so that the row's numerical checks still run; the defect itself is pinned by its own test.
   */
  ortOptions?: ort.InferenceSession.SessionOptions;
  /** Why the row needs ortOptions: the defect, where it lives, and how to reproduce it. */
  bug?: string;
}

/** onnxruntime's Pad_Fusion rule corrupts graphs where a Pad feeds a Conv's weight input. */
export const withoutPadFusion: ort.InferenceSession.SessionOptions = {
  extra: { optimization: { disable_specified_optimizers: 'Pad_Fusion' } },
};

// ------------------------------------------------------------- random numbers

export function rng(seedText: string): () => number {
  let h = 2166136261;
  for (let i = 0; i < seedText.length; i++) h = Math.imul(h ^ seedText.charCodeAt(i), 16777619);
  let a = h >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function dtypeOf(s: InputSpec): DType {
  return s.domain === 'int' ? 'int64' : s.domain === 'bool' ? 'bool' : 'float32';
}

/** Values for one input, already rounded to float32 so ORT and the reference see the same numbers. */
export function sample(s: InputSpec, r: () => number): R.T {
  const n = R.numel(s.shape);
  const u = (lo: number, hi: number) => lo + (hi - lo) * r();
  const sgn = () => (r() < 0.5 ? -1 : 1);
  const pick = <X>(xs: readonly X[]) => xs[Math.floor(r() * xs.length)]!;
  let data: number[];
  switch (s.domain ?? 'any') {
    case 'any': data = Array.from({ length: n }, () => u(-1, 1)); break;
    case 'awayFromZero': data = Array.from({ length: n }, () => sgn() * u(0.1, 1)); break;
    case 'positive': data = Array.from({ length: n }, () => u(0.5, 2)); break;
    case 'notSmall': data = Array.from({ length: n }, () => sgn() * u(0.5, 2)); break;
    case 'ties': data = Array.from({ length: n }, () => pick([-1, -0.5, 0, 0.5, 1])); break;
    case 'grid': data = Array.from({ length: n }, () => pick([0, 0.5, 1])); break;
    case 'distinct': {
      data = Array.from({ length: n }, (_, i) => (n === 1 ? 0.5 : -1 + (2 * i) / (n - 1)));
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(r() * (i + 1));
        [data[i], data[j]] = [data[j]!, data[i]!];
      }
      break;
    }
    case 'int': {
      const lo = s.lo ?? 0;
      const hi = s.hi ?? 4;
      data = Array.from({ length: n }, () => lo + Math.floor(r() * (hi - lo)));
      return R.tensor(s.shape, data);
    }
    case 'bool': return R.tensor(s.shape, Array.from({ length: n }, () => (r() < 0.5 ? 1 : 0)));
  }
  const k = s.scale ?? 1;
  return R.tensor(s.shape, data.map((v) => Math.fround(v * k)));
}

const randomLike = (shape: readonly number[], r: () => number) =>
  R.tensor(shape, Array.from({ length: R.numel(shape) }, () => Math.fround(2 * r() - 1)));

// ------------------------------------------------------------- onnxruntime glue

export function toOrt(t: R.T, dtype: DType): ort.Tensor {
  const dims = [...t.shape];
  if (dtype === 'int64') return new ort.Tensor('int64', BigInt64Array.from(t.data, (v) => BigInt(v)), dims);
  if (dtype === 'bool') return new ort.Tensor('bool', Uint8Array.from(t.data, (v) => (v ? 1 : 0)), dims);
  return new ort.Tensor('float32', Float32Array.from(t.data), dims);
}

export function fromOrt(t: ort.Tensor): R.T {
  const d = t.data as Float32Array | BigInt64Array | Uint8Array;
  const data = d instanceof BigInt64Array ? Float64Array.from(d, (v) => Number(v)) : Float64Array.from(d as ArrayLike<number>);
  return { shape: [...t.dims], data };
}

const ortType: Record<DType, string> = { float32: 'float32', int64: 'int64', bool: 'bool' };

/** Emits the graph with the given outputs, runs it once in onnxruntime and returns every output. */
export async function runOrt(
  g: Graph,
  outputs: Record<string, Value>,
  feeds: Record<string, { t: R.T; dtype: DType }>,
  options?: ort.InferenceSession.SessionOptions,
  target: Target = 'cpu',
): Promise<Record<string, R.T>> {
  const model = emitModel(g, { outputs, target });
  const session = await ort.InferenceSession.create(model.bytes, options ?? {});
  try {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const inp of model.inputs) {
      const f = feeds[inp.name];
      if (!f) throw new Error(`no feed for graph input '${inp.name}'`);
      ortFeeds[inp.name] = toOrt(f.t, f.dtype);
    }
    const res = await session.run(ortFeeds);
    const out: Record<string, R.T> = {};
    for (const [name, v] of Object.entries(outputs)) {
      const t = res[name];
      if (!t) throw new Error(`onnxruntime returned no output '${name}'`);
      if (t.type !== ortType[v.dtype]) throw new Error(`output '${name}': onnxruntime type ${t.type}, graph says ${v.dtype}`);
      if (t.dims.length !== v.shape.length || t.dims.some((d, i) => d !== v.shape[i])) {
        throw new Error(`output '${name}': onnxruntime shape [${t.dims.join(', ')}], graph says [${v.shape.join(', ')}]`);
      }
      out[name] = fromOrt(t);
    }
    return out;
  } finally {
    await session.release();
  }
}

// ------------------------------------------------------------- comparisons

export function maxAbs(t: R.T): number {
  let m = 0;
  for (const v of t.data) m = Math.max(m, Math.abs(v));
  return m;
}

/** Largest elementwise |a - b| / (|b| + max|b|); Infinity on shape mismatch or NaN. */
export function fwdError(a: R.T, b: R.T): number {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) return Infinity;
  const m = maxAbs(b);
  let e = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i]! - b.data[i]!);
    if (Number.isNaN(d)) return Infinity;
    if (d === 0) continue;
    e = Math.max(e, d / (Math.abs(b.data[i]!) + m));
  }
  return e;
}

export interface Contraction {
  /** From the graph (onnxruntime). */
  lhs: number;
  /** From finite differences of the float64 reference. */
  rhs: number;
  /** sum |g| |v|: the magnitude of the terms in lhs. */
  scale: number;
  /** Estimated round-off of the float64 finite difference itself. */
  noise: number;
}

/** Passes when |lhs - rhs| <= tol * scale + noise. */
export function contractionOk(c: Contraction, tol: number): boolean {
  return Math.abs(c.lhs - c.rhs) <= tol * c.scale + c.noise;
}

export interface RowResult {
  fwdErr: number;
  vjp: Contraction[];
  vjp2: Contraction[];
  /** Elementwise errors against vjpRef (instead of vjp) where the row has one. */
  vjpRefErr?: number;
  /** Gradients per differentiated input (null: autodiff said no gradient flows). */
  grads: (R.T | null)[];
  tol: Tol;
}

function contract(gs: (R.T | null)[], vs: R.T[]): { lhs: number; scale: number } {
  let lhs = 0;
  let scale = 0;
  gs.forEach((g, i) => {
    if (!g) return;
    const v = vs[i]!;
    for (let k = 0; k < g.data.length; k++) {
      lhs += g.data[k]! * v.data[k]!;
      scale += Math.abs(g.data[k]! * v.data[k]!);
    }
  });
  return { lhs, scale };
}

function shifted(xs: R.T[], diff: number[], dirs: [R.T[], number][]): R.T[] {
  const out = [...xs];
  diff.forEach((idx, k) => {
    const d = Float64Array.from(xs[idx]!.data);
    for (const [v, c] of dirs) for (let i = 0; i < d.length; i++) d[i]! += c * v[k]!.data[i]!;
    out[idx] = { shape: xs[idx]!.shape, data: d };
  });
  return out;
}

/** GRAPH_TEST_SEED=<anything> re-draws every row's inputs and directions (for fuzzing the table). */
export const SEED_SALT = process.env.GRAPH_TEST_SEED ?? '';

const FD_EPS1 = 1e-6;
const FD_EPS2 = 3e-4;
/** Relative round-off of one float64 reference evaluation (a few hundred ulps, generously). */
const REF_ROUNDOFF = 1e-13;

/** Checks one row, its graph emitted for `target` (default 'cpu'). */
export async function checkRow(row: Row, target: Target = 'cpu'): Promise<RowResult> {
  const tol: Tol = { ...defaultTol, ...row.tol };
  const r = rng(row.name + SEED_SALT);
  const g = new Graph();
  const xs = row.inputs.map((s, i) => g.input(`x${i}`, s.shape, dtypeOf(s)));
  const x64 = row.inputs.map((s) => sample(s, r));
  const feeds: Record<string, { t: R.T; dtype: DType }> = {};
  row.inputs.forEach((s, i) => (feeds[`x${i}`] = { t: x64[i]!, dtype: dtypeOf(s) }));

  const y = row.build(xs);
  if (y.graph !== g) throw new Error(`${row.name}: build returned a value of another graph`);
  if (!g.nodes.some((n) => n.op === row.op)) throw new Error(`${row.name}: built graph has no ${row.op} node`);
  const outputs: Record<string, Value> = { y };

  const diff = row.order > 0 && y.dtype === 'float32'
    ? row.inputs.flatMap((s, i) => (dtypeOf(s) === 'float32' && s.grad !== false ? [i] : []))
    : [];
  const dxs = diff.map((i) => xs[i]!);
  let gs: (Value | null)[] = [];
  let hs: (Value | null)[] = [];
  const u64 = randomLike(y.shape, r);
  const w64 = diff.map((i) => randomLike(row.inputs[i]!.shape, r));
  if (diff.length) {
    const u = g.input('u', y.shape);
    feeds.u = { t: u64, dtype: 'float32' };
    gs = gradients(sumAll(mul(y, u)), dxs);
    gs.forEach((gv, k) => gv && (outputs[`g${k}`] = gv));
    if (row.order === 2) {
      const terms: Value[] = [];
      gs.forEach((gv, k) => {
        if (!gv) return;
        const w = g.input(`w${k}`, gv.shape);
        feeds[`w${k}`] = { t: w64[k]!, dtype: 'float32' };
        terms.push(sumAll(mul(gv, w)));
      });
      if (terms.length) {
        hs = gradients(terms.reduce((a, b) => add(a, b)), dxs);
        hs.forEach((hv, k) => hv && (outputs[`h${k}`] = hv));
      }
    }
  }

  const res = await runOrt(g, outputs, feeds, row.ortOptions, target);
  const yRef = row.ref(x64);
  const result: RowResult = { fwdErr: fwdError(res.y!, yRef), vjp: [], vjp2: [], grads: [], tol };
  if (!diff.length) return result;

  const grads = gs.map((gv, k) => (gv ? res[`g${k}`]! : null));
  result.grads = grads;
  const fdRef = row.local ? row.local(x64) : row.ref;
  if (row.local && fwdError(fdRef(x64), yRef) > 1e-12) throw new Error(`${row.name}: local reference disagrees with ref at the base point`);
  const f = (xx: R.T[]) => R.dot(u64, fdRef(xx));
  const fAbs = R.dot(R.abs(u64), R.abs(yRef)) + 1e-30;

  if (row.vjpRef) {
    const want = row.vjpRef(x64, u64);
    result.vjpRefErr = Math.max(...want.map((wt, k) => fwdError(grads[k] ?? R.zeros(wt.shape), wt)));
  } else {
    for (let rep = 0; rep < 3; rep++) {
      const vs = diff.map((i) => randomLike(row.inputs[i]!.shape, r));
      const { lhs, scale } = contract(grads, vs);
      const rhs = (f(shifted(x64, diff, [[vs, FD_EPS1]])) - f(shifted(x64, diff, [[vs, -FD_EPS1]]))) / (2 * FD_EPS1);
      result.vjp.push({ lhs, rhs, scale, noise: (REF_ROUNDOFF * fAbs) / FD_EPS1 });
    }
  }

  if (row.order === 2 && !row.vjpRef) {
    const hess = hs.map((hv, k) => (hv ? res[`h${k}`]! : null));
    const a = FD_EPS2;
    for (let rep = 0; rep < 2; rep++) {
      const vs = diff.map((i) => randomLike(row.inputs[i]!.shape, r));
      const { lhs, scale } = contract(hess, vs);
      const at = (p: number, q: number) => f(shifted(x64, diff, [[vs, p * a], [w64, q * a]]));
      const rhs = (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / (4 * a * a);
      result.vjp2.push({ lhs, rhs, scale, noise: (REF_ROUNDOFF * fAbs) / (a * a) });
    }
  }
  return result;
}
