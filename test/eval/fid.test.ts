import { describe, expect, it } from 'vitest';
import { fid, fidFromStats, kid, stats, type FeatureStats } from '../../src/eval/fid.js';
import { kidAsync, statsAsync } from '../../src/eval/gram.js';
import { jacobiEigen, matmul, reconstruct, sqrtPsd, symmetricEigen, symmetricEigenvalues } from '../../src/eval/linalg.js';
import { Rng } from '../../src/util/rng.js';

function randomSpd(n: number, rng: Rng, rank = n): Float64Array {
  const g = new Float64Array(n * rank);
  for (let i = 0; i < g.length; i++) g[i] = rng.normal();
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < rank; k++) a[i * n + j] += g[i * rank + k]! * g[j * rank + k]!;
  return a;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const statsOf = (mu: number[], cov: number[][]): FeatureStats => ({ n: 1000, dim: mu.length, mu: Float64Array.from(mu), cov: Float64Array.from(cov.flat()) });
const diag = (d: number[]) => d.map((x, i) => d.map((_, j) => (i === j ? x : 0)));

/** The deterministic fixture that the numpy/scipy reference values below were computed on. */
function fixture(): { a: Float64Array; b: Float64Array; n: number; d: number } {
  const n = 200;
  const d = 16;
  const a = new Float64Array(n * d);
  const b = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      a[i * d + j] = Math.sin(i * 0.37 + j * 1.3) + 0.3 * Math.cos(i * (j + 1) * 0.011) + 0.05 * j;
      b[i * d + j] = Math.cos(i * 0.21 + j * 0.7) ** 2 + 0.2 * Math.sin(i * (j + 2) * 0.017);
    }
  }
  return { a, b, n, d };
}

describe('symmetric eigen-decomposition', () => {
  it('reconstructs random symmetric matrices and agrees with Jacobi', () => {
    const rng = new Rng(1);
    for (const n of [1, 2, 5, 40]) {
      const a = randomSpd(n, rng);
      for (let i = 0; i < n; i++) a[i * n + i] -= 3; // indefinite too
      const e = symmetricEigen(a, n);
      expect(maxAbsDiff(reconstruct(e, n), a)).toBeLessThan(1e-10 * n);
      const vtv = matmul(transpose(e.vectors, n), e.vectors, n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) expect(vtv[i * n + j]!).toBeCloseTo(i === j ? 1 : 0, 10);
      expect(maxAbsDiff(jacobiEigen(a, n).values, e.values)).toBeLessThan(1e-9 * n);
      expect(maxAbsDiff(symmetricEigenvalues(a, n), e.values)).toBeLessThan(1e-10 * n);
      for (let i = 1; i < n; i++) expect(e.values[i]!).toBeGreaterThanOrEqual(e.values[i - 1]!);
    }
  });

  it('handles a diagonal matrix, repeated eigenvalues and rank deficiency', () => {
    const d = symmetricEigen(Float64Array.from([3, 0, 0, 0, 1, 0, 0, 0, 2]), 3);
    expect([...d.values]).toEqual([1, 2, 3]);
    const rank2 = randomSpd(6, new Rng(2), 2);
    const s = sqrtPsd(rank2, 6);
    expect(maxAbsDiff(matmul(s, s, 6), rank2)).toBeLessThan(1e-9);
    expect(maxAbsDiff(sqrtPsd(Float64Array.from([4, 0, 0, 4]), 2), [2, 0, 0, 2])).toBeLessThan(1e-14);
  });

  it('is fast enough for 128x128 covariances', () => {
    const a = randomSpd(128, new Rng(3), 128);
    const t = performance.now();
    const s = sqrtPsd(a, 128);
    expect(performance.now() - t).toBeLessThan(2000);
    expect(maxAbsDiff(matmul(s, s, 128), a) / 128).toBeLessThan(1e-9);
  });
});

function transpose(a: Float64Array, n: number): Float64Array {
  const t = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) t[j * n + i] = a[i * n + j]!;
  return t;
}

describe('FID', () => {
  it('matches the closed form for diagonal covariances', () => {
    const a = statsOf([0, 1, 2], diag([1, 4, 9]));
    const b = statsOf([1, 1, 0], diag([4, 1, 16]));
    // |mu_a - mu_b|^2 + sum (sqrt(a_i) - sqrt(b_i))^2
    const expected = 1 + 0 + 4 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 4) ** 2;
    expect(fidFromStats(a, b)).toBeCloseTo(expected, 12);
  });

  it('matches the closed form for non-commuting 2x2 covariances', () => {
    // For 2x2 PSD M, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)); here M = sqrt(A) B sqrt(A) ~ A B.
    const A = [[2, 0.5], [0.5, 1]];
    const B = [[1, -0.3], [-0.3, 3]];
    const trAB = A[0]![0]! * B[0]![0]! + A[0]![1]! * B[1]![0]! + A[1]![0]! * B[0]![1]! + A[1]![1]! * B[1]![1]!;
    const det = (m: number[][]) => m[0]![0]! * m[1]![1]! - m[0]![1]! * m[1]![0]!;
    const expected = 0.25 + 3 + 4 - 2 * Math.sqrt(trAB + 2 * Math.sqrt(det(A) * det(B)));
    expect(fidFromStats(statsOf([0.5, 0], A), statsOf([0, 0], B))).toBeCloseTo(expected, 12);
  });

  it('matches numpy + scipy.linalg.sqrtm (pytorch-fid route) on a fixture', () => {
    const { a, b, d } = fixture();
    expect(fid(a, b, d)).toBeCloseTo(4.1815897514501845, 9);
  });

  it('FID(x, x) = 0, is symmetric, and a mean shift c adds |c|^2', () => {
    const rng = new Rng(4);
    const n = 300;
    const d = 8;
    const x = new Float64Array(n * d).map(() => rng.normal());
    const y = new Float64Array(n * d).map(() => rng.normal() * 1.5 + 0.2);
    expect(fid(x, x, d)).toBeLessThan(1e-10);
    expect(fid(x, y, d)).toBeCloseTo(fid(y, x, d), 9);
    const c = [1, -2, 0.5, 0, 0, 3, 0, 0];
    const shifted = x.map((v, i) => v + c[i % d]!);
    expect(fid(x, shifted, d)).toBeCloseTo(c.reduce((s, v) => s + v * v, 0), 9);
    // Translating both sets by the same vector changes nothing.
    const yShifted = y.map((v, i) => v + c[i % d]!);
    expect(fid(shifted, yShifted, d)).toBeCloseTo(fid(x, y, d), 9);
  });

  it('stats computes the mean and unbiased covariance', () => {
    const s = stats(Float64Array.from([1, 2, 3, 6, 5, 10]), 2);
    expect([...s.mu]).toEqual([3, 6]);
    expect([...s.cov]).toEqual([4, 8, 8, 16]);
    expect(s.n).toBe(3);
  });

  it('rejects malformed inputs with clear errors', () => {
    expect(() => stats(new Float64Array(5), 2)).toThrow(/not a whole number of 2-dimensional/);
    expect(() => stats(new Float64Array(2), 2)).toThrow(/at least 2 samples/);
    expect(() => stats(Float64Array.from([1, NaN, 0, 0]), 2)).toThrow(/feature 1 of sample 0 is NaN/);
    expect(() => fidFromStats(statsOf([0], [[1]]), statsOf([0, 0], diag([1, 1])))).toThrow(/dimensions differ/);
  });
});

describe('KID', () => {
  it('one subset of all samples equals the full unbiased MMD^2 (numpy reference)', () => {
    const { a, b, n, d } = fixture();
    const r = kid(a, b, d, { subsets: 1, subsetSize: n });
    expect(r.mean).toBeCloseTo(0.6096145374825492, 10);
    expect(r.std).toBe(0);
  });

  it('is about zero for two samples of one distribution and positive for different ones, with a std over subsets', () => {
    const rng = new Rng(5);
    const d = 4;
    const draw = (n: number, shift: number) => new Float64Array(n * d).map(() => rng.normal() + shift);
    const same = kid(draw(400, 0), draw(400, 0), d, { subsets: 10, subsetSize: 200 });
    const diff = kid(draw(400, 0), draw(400, 1), d, { subsets: 10, subsetSize: 200 });
    expect(Math.abs(same.mean)).toBeLessThan(3 * same.std + 0.01);
    expect(diff.mean).toBeGreaterThan(10 * Math.abs(same.mean));
    expect(diff.std).toBeGreaterThan(0);
    expect(diff).toMatchObject({ subsets: 10, subsetSize: 200 });
    expect(() => kid(draw(10, 0), draw(5, 0), d, { subsetSize: 6 })).toThrow(/subset size 6/);
  });
});

describe('onnxruntime float64 products', () => {
  it('statsAsync and kidAsync give the same numbers as stats and kid', async () => {
    const { a, b, d } = fixture();
    const s1 = stats(a, d);
    const s2 = await statsAsync(a, d);
    expect(maxAbsDiff(s1.mu, s2.mu)).toBe(0);
    expect(maxAbsDiff(s1.cov, s2.cov)).toBeLessThan(1e-12);
    const k1 = kid(a, b, d, { subsets: 4, subsetSize: 150, seed: 3 });
    const k2 = await kidAsync(a, b, d, { subsets: 4, subsetSize: 150, seed: 3 });
    expect(k2.mean).toBeCloseTo(k1.mean, 10);
    expect(k2.std).toBeCloseTo(k1.std, 10);
    expect(fidFromStats(await statsAsync(a, d), await statsAsync(b, d))).toBeCloseTo(4.1815897514501845, 9);
  });
});
