// Fréchet Inception Distance (Heusel et al. 2017) and Kernel Inception Distance (Bińkowski et
// al. 2018) on feature vectors, all in float64.
//   FID = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr sqrt(sqrt(S_a) S_b sqrt(S_a))
//   KID = unbiased MMD^2 with the kernel k(x, y) = (x.y / d + 1)^3, mean and std over subsets.

import { Rng } from '../util/rng.js';
import { sqrtPsd, trace, traceSqrtProduct } from './linalg.js';

export type Features = Float64Array | Float32Array;

export interface FeatureStats {
  /** Number of samples the statistics come from. */
  n: number;
  dim: number;
  mu: Float64Array;
  /** Unbiased covariance (divided by n - 1), dim x dim row-major. */
  cov: Float64Array;
}

/** The number of feature vectors, after checking the shape and that every value is finite. */
export function checkFeatures(feats: Features, dim: number, what: string): number {
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`${what}: feature dimension must be a positive integer, got ${dim}`);
  if (feats.length % dim !== 0) throw new Error(`${what}: ${feats.length} values are not a whole number of ${dim}-dimensional feature vectors`);
  const n = feats.length / dim;
  for (let i = 0; i < feats.length; i++) {
    if (!Number.isFinite(feats[i]!)) throw new Error(`${what}: feature ${i % dim} of sample ${Math.floor(i / dim)} is ${feats[i]}`);
  }
  return n;
}

/** Mean and unbiased covariance of n feature vectors (row-major n x dim). */
export function stats(feats: Features, dim: number): FeatureStats {
  const n = checkFeatures(feats, dim, 'stats');
  if (n < 2) throw new Error(`stats: need at least 2 samples for a covariance, got ${n}`);
  const mu = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mu[j] += feats[i * dim + j]!;
  for (let j = 0; j < dim; j++) mu[j] /= n;
  const cov = new Float64Array(dim * dim);
  const c = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) c[j] = feats[i * dim + j]! - mu[j]!;
    for (let j = 0; j < dim; j++) {
      const cj = c[j]!;
      if (cj === 0) continue;
      const row = j * dim;
      for (let k = j; k < dim; k++) cov[row + k] += cj * c[k]!;
    }
  }
  for (let j = 0; j < dim; j++) {
    for (let k = j; k < dim; k++) {
      const v = cov[j * dim + k]! / (n - 1);
      cov[j * dim + k] = v;
      cov[k * dim + j] = v;
    }
  }
  return { n, dim, mu, cov };
}

const sqrtCache = new WeakMap<FeatureStats, Float64Array>();

/** sqrt of the covariance, computed once per stats object (a task's real statistics are reused). */
function sqrtCov(s: FeatureStats): Float64Array {
  let r = sqrtCache.get(s);
  if (!r) {
    r = sqrtPsd(s.cov, s.dim);
    sqrtCache.set(s, r);
  }
  return r;
}

/**
 * FID between two sets of statistics. Uses the sqrt(S_a) S_b sqrt(S_a) route (symmetric, so an
 * eigen-decomposition gives the trace of its square root); sqrt(S_a) is cached on `a`, so pass
 * the statistics that are reused (e.g. the real test set) as `a`.
 */
export function fidFromStats(a: FeatureStats, b: FeatureStats): number {
  if (a.dim !== b.dim) throw new Error(`fidFromStats: feature dimensions differ (${a.dim} vs ${b.dim})`);
  const d = a.dim;
  let diff = 0;
  for (let j = 0; j < d; j++) diff += (a.mu[j]! - b.mu[j]!) ** 2;
  const tr = trace(a.cov, d) + trace(b.cov, d) - 2 * traceSqrtProduct(a.cov, b.cov, d, sqrtCov(a));
  const v = diff + tr;
  // The distance is non-negative; round-off can leave a tiny negative value for equal statistics.
  return v < 0 ? 0 : v;
}

/** FID between two sets of feature vectors (row-major, `dim` per sample). */
export function fid(featsA: Features, featsB: Features, dim: number): number {
  return fidFromStats(stats(featsA, dim), stats(featsB, dim));
}

export interface KidOptions {
  /** Number of random subsets (default 10; the literature often uses 100). */
  subsets?: number;
  /** Samples per subset from each side (default min(1000, nA, nB)). */
  subsetSize?: number;
  seed?: number;
}

export interface KidResult {
  /** Mean of the unbiased MMD^2 estimates over subsets. */
  mean: number;
  /** Standard deviation of the estimates over subsets. */
  std: number;
  subsets: number;
  subsetSize: number;
}

/** The subset size and count of a KID computation, checked. */
export function kidSubsetSize(nA: number, nB: number, opts: KidOptions): { m: number; subsets: number } {
  const m = opts.subsetSize ?? Math.min(1000, nA, nB);
  if (!Number.isInteger(m) || m < 2 || m > nA || m > nB) throw new Error(`kid: subset size ${m} must be an integer from 2 to min(nA, nB) = ${Math.min(nA, nB)}`);
  const subsets = opts.subsets ?? 10;
  if (!Number.isInteger(subsets) || subsets < 1) throw new Error(`kid: subsets must be a positive integer, got ${subsets}`);
  return { m, subsets };
}

export function kidSummary(values: readonly number[], subsets: number, subsetSize: number): KidResult {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
  return { mean, std, subsets, subsetSize };
}

/**
 * The random subset pairs KID averages over (the same for the same seed), as m x dim float64
 * matrices, shared by kid() and kidAsync().
 */
export function* kidSubsets(featsA: Features, featsB: Features, dim: number, opts: KidOptions = {}): Generator<{ x: Float64Array; y: Float64Array; m: number }> {
  const nA = checkFeatures(featsA, dim, 'kid');
  const nB = checkFeatures(featsB, dim, 'kid');
  const { m, subsets } = kidSubsetSize(nA, nB, opts);
  const rng = new Rng(opts.seed ?? 0);
  const pick = (src: Features, n: number) => {
    const out = new Float64Array(m * dim);
    const perm = rng.permutation(n);
    for (let i = 0; i < m; i++) for (let t = 0; t < dim; t++) out[i * dim + t] = src[perm[i]! * dim + t]!;
    return out;
  };
  for (let s = 0; s < subsets; s++) yield { x: pick(featsA, nA), y: pick(featsB, nB), m };
}

/** The unbiased MMD^2 of one subset pair from its kernel sums (kxx, kyy over i < j; kxy over all pairs). */
export function mmdUnbiased(kxx: number, kyy: number, kxy: number, m: number): number {
  return (2 * kxx) / (m * (m - 1)) + (2 * kyy) / (m * (m - 1)) - (2 * kxy) / (m * m);
}

/** Kernel Inception Distance: unbiased MMD^2, cubic polynomial kernel, mean and std over subsets. */
export function kid(featsA: Features, featsB: Features, dim: number, opts: KidOptions = {}): KidResult {
  const values: number[] = [];
  let size = 0;
  for (const { x, y, m } of kidSubsets(featsA, featsB, dim, opts)) {
    values.push(mmdUnbiased(kernelSum(x, x, m, dim, true), kernelSum(y, y, m, dim, true), kernelSum(x, y, m, dim, false), m));
    size = m;
  }
  return kidSummary(values, values.length, size);
}

/**
 * Sum of (p_i . q_j / d + 1)^3 over all pairs (i, j), or over i < j when `upper` (p = q).
 * The hot loop of KID: dot products with four accumulators.
 */
function kernelSum(p: Float64Array, q: Float64Array, m: number, d: number, upper: boolean): number {
  let total = 0;
  const d4 = d - (d % 4);
  for (let i = 0; i < m; i++) {
    const pi = i * d;
    let row = 0;
    for (let j = upper ? i + 1 : 0; j < m; j++) {
      const qj = j * d;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let t = 0;
      for (; t < d4; t += 4) {
        s0 += p[pi + t]! * q[qj + t]!;
        s1 += p[pi + t + 1]! * q[qj + t + 1]!;
        s2 += p[pi + t + 2]! * q[qj + t + 2]!;
        s3 += p[pi + t + 3]! * q[qj + t + 3]!;
      }
      for (; t < d; t++) s0 += p[pi + t]! * q[qj + t]!;
      const v = (s0 + s1 + s2 + s3) / d + 1;
      row += v * v * v;
    }
    total += row;
  }
  return total;
}
