// Float64 matrix products on onnxruntime (a one-node Gemm graph on doubles), for the
// O(n^2 d) and O(n d^2) parts of KID and covariance: several times faster than the JavaScript
// loops in fid.ts, with the same float64 arithmetic. fid.ts keeps the plain synchronous versions
// (the reference, and the API for small sets); kidAsync / statsAsync give the same numbers.

import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { checkFeatures, kidSubsets, kidSummary, mmdUnbiased, type FeatureStats, type Features, type KidOptions, type KidResult } from './fid.js';

const { onnx } = onnxProto;

type Kind = 'ABt' | 'AtB';
const sessions = new Map<Kind, Promise<ort.InferenceSession>>();

function gemmModel(kind: Kind): Uint8Array {
  const D = onnx.TensorProto.DataType.DOUBLE;
  const vi = (name: string, dims: string[]) => ({ name, type: { tensorType: { elemType: D, shape: { dim: dims.map((dimParam) => ({ dimParam })) } } } });
  const attr = (name: string) => ({ name, type: onnx.AttributeProto.AttributeType.INT, i: 1 });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'lifelong-gen',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: `gram_${kind}`,
      node: [{ opType: 'Gemm', input: ['a', 'b'], output: ['c'], name: 'gemm', attribute: [attr(kind === 'ABt' ? 'transB' : 'transA')] }],
      input: kind === 'ABt' ? [vi('a', ['M', 'D']), vi('b', ['K', 'D'])] : [vi('a', ['N', 'M']), vi('b', ['N', 'K'])],
      output: [vi('c', ['M', 'K'])],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

function session(kind: Kind): Promise<ort.InferenceSession> {
  let s = sessions.get(kind);
  if (!s) {
    s = ort.InferenceSession.create(gemmModel(kind), { executionProviders: ['cpu'], interOpNumThreads: 1 });
    sessions.set(kind, s);
  }
  return s;
}

/** A [m, d] times B [k, d] transposed: the [m, k] matrix of dot products, in float64. */
export async function dotProducts(a: Float64Array, m: number, b: Float64Array, k: number, d: number): Promise<Float64Array> {
  const out = await (await session('ABt')).run({ a: new ort.Tensor('float64', a, [m, d]), b: new ort.Tensor('float64', b, [k, d]) });
  return out.c!.data as Float64Array;
}

/** A [n, m] transposed times B [n, k]: [m, k], in float64. */
export async function crossProducts(a: Float64Array, b: Float64Array, n: number, m: number, k: number): Promise<Float64Array> {
  const out = await (await session('AtB')).run({ a: new ort.Tensor('float64', a, [n, m]), b: new ort.Tensor('float64', b, [n, k]) });
  return out.c!.data as Float64Array;
}

/** stats() with the covariance product on onnxruntime. */
export async function statsAsync(feats: Features, dim: number): Promise<FeatureStats> {
  const n = checkFeatures(feats, dim, 'stats');
  if (n < 2) throw new Error(`stats: need at least 2 samples for a covariance, got ${n}`);
  const mu = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mu[j] += feats[i * dim + j]!;
  for (let j = 0; j < dim; j++) mu[j] /= n;
  const c = new Float64Array(n * dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) c[i * dim + j] = feats[i * dim + j]! - mu[j]!;
  const cov = await crossProducts(c, c, n, dim, dim);
  for (let j = 0; j < dim; j++) {
    for (let k = j; k < dim; k++) {
      // Exactly symmetric, as the JavaScript version.
      const v = (cov[j * dim + k]! + cov[k * dim + j]!) / 2 / (n - 1);
      cov[j * dim + k] = v;
      cov[k * dim + j] = v;
    }
  }
  return { n, dim, mu, cov };
}

/** kid() with the dot products on onnxruntime; the same subsets (same seed), the same estimator. */
export async function kidAsync(featsA: Features, featsB: Features, dim: number, opts: KidOptions = {}): Promise<KidResult> {
  const values: number[] = [];
  let size = 0;
  for (const { x, y, m } of kidSubsets(featsA, featsB, dim, opts)) {
    const sum = (g: Float64Array, upper: boolean) => {
      let total = 0;
      for (let i = 0; i < m; i++) {
        let row = 0;
        for (let j = upper ? i + 1 : 0; j < m; j++) {
          const v = g[i * m + j]! / dim + 1;
          row += v * v * v;
        }
        total += row;
      }
      return total;
    };
    values.push(mmdUnbiased(sum(await dotProducts(x, m, x, m, dim), true), sum(await dotProducts(y, m, y, m, dim), true), sum(await dotProducts(x, m, y, m, dim), false), m));
    size = m;
  }
  return kidSummary(values, values.length, size);
}
