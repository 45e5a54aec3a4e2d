// Dense float64 linear algebra for FID: symmetric eigen-decomposition (Householder
// tridiagonalisation + implicit QL, as in EISPACK tred2/tql2 via JAMA; cyclic Jacobi as a
// cross-check), the square root of a positive semi-definite matrix, and products.
// Matrices are row-major Float64Array of n*n.

export interface Eigen {
  /** Eigenvalues, ascending. */
  values: Float64Array;
  /** Eigenvectors as columns: vectors[i * n + j] is component i of eigenvector j. */
  vectors: Float64Array;
}

function checkSquare(a: Float64Array, n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1 || a.length !== n * n) throw new Error(`${what}: expected an ${n}x${n} matrix (${n * n} values), got ${a.length} values`);
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) throw new Error(`${what}: the matrix has a non-finite entry at (${Math.floor(i / n)}, ${i % n})`);
}

/** Largest |a_ij - a_ji| relative to the largest |a_ij|. */
export function asymmetry(a: Float64Array, n: number): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      scale = Math.max(scale, Math.abs(a[i * n + j]!));
      if (j > i) diff = Math.max(diff, Math.abs(a[i * n + j]! - a[j * n + i]!));
    }
  }
  return scale === 0 ? 0 : diff / scale;
}

/**
 * Eigen-decomposition of a symmetric matrix: Householder reduction to tridiagonal form, then
 * the implicit QL algorithm with shifts. Only the lower triangle's symmetric part matters;
 * the input is symmetrised first.
 */
export function symmetricEigen(a: Float64Array, n: number): Eigen {
  return eigen(a, n, true);
}

/** Eigenvalues only (ascending) of a symmetric matrix: the same algorithm without accumulating vectors, about half the work. */
export function symmetricEigenvalues(a: Float64Array, n: number): Float64Array {
  return eigen(a, n, false).values;
}

function eigen(a: Float64Array, n: number, wantVectors: boolean): Eigen {
  checkSquare(a, n, 'symmetricEigen');
  // V as rows for tred2 (V[i][j]).
  const V: Float64Array[] = [];
  for (let i = 0; i < n; i++) {
    const row = new Float64Array(n);
    for (let j = 0; j < n; j++) row[j] = 0.5 * (a[i * n + j]! + a[j * n + i]!);
    V.push(row);
  }
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  tred2(V, d, e, n, wantVectors);
  if (!wantVectors) {
    tql2(null, d, e, n);
    return { values: Float64Array.from(d).sort(), vectors: new Float64Array(0) };
  }
  // tql2 rotates columns of V; work on W = V^T so each rotation touches two contiguous rows.
  const W: Float64Array[] = [];
  for (let j = 0; j < n; j++) {
    const row = new Float64Array(n);
    for (let k = 0; k < n; k++) row[k] = V[k]![j]!;
    W.push(row);
  }
  tql2(W, d, e, n);
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => d[x]! - d[y]!);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, j) => {
    values[j] = d[src]!;
    const w = W[src]!;
    for (let i = 0; i < n; i++) vectors[i * n + j] = w[i]!;
  });
  return { values, vectors };
}

function tred2(V: Float64Array[], d: Float64Array, e: Float64Array, n: number, accumulate = true): void {
  for (let j = 0; j < n; j++) d[j] = V[n - 1]![j]!;
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]!);
    if (scale === 0) {
      e[i] = d[i - 1]!;
      for (let j = 0; j < i; j++) {
        d[j] = V[i - 1]![j]!;
        V[i]![j] = 0;
        V[j]![i] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        d[k] = d[k]! / scale;
        h += d[k]! * d[k]!;
      }
      let f = d[i - 1]!;
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        V[j]![i] = f;
        g = e[j]! + V[j]![j]! * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += V[k]![j]! * d[k]!;
          e[k] = e[k]! + V[k]![j]! * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j] = e[j]! / h;
        f += e[j]! * d[j]!;
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j] = e[j]! - hh * d[j]!;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        g = e[j]!;
        for (let k = j; k <= i - 1; k++) V[k]![j] = V[k]![j]! - (f * e[k]! + g * d[k]!);
        d[j] = V[i - 1]![j]!;
        V[i]![j] = 0;
      }
    }
    d[i] = h;
  }
  if (!accumulate) {
    // The tridiagonal's diagonal is left on V's diagonal; the transformations are not needed.
    for (let j = 0; j < n; j++) d[j] = V[j]![j]!;
    e[0] = 0;
    return;
  }
  for (let i = 0; i < n - 1; i++) {
    V[n - 1]![i] = V[i]![i]!;
    V[i]![i] = 1;
    const h = d[i + 1]!;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = V[k]![i + 1]! / h;
      for (let j = 0; j <= i; j++) {
        let g = 0;
        for (let k = 0; k <= i; k++) g += V[k]![i + 1]! * V[k]![j]!;
        for (let k = 0; k <= i; k++) V[k]![j] = V[k]![j]! - g * d[k]!;
      }
    }
    for (let k = 0; k <= i; k++) V[k]![i + 1] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = V[n - 1]![j]!;
    V[n - 1]![j] = 0;
  }
  V[n - 1]![n - 1] = 1;
  e[0] = 0;
}

/** Implicit QL on the tridiagonal (d, e); W holds the eigenvectors as rows. */
function tql2(W: Float64Array[] | null, d: Float64Array, e: Float64Array, n: number): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]!) + Math.abs(e[l]!));
    let m = l;
    while (m < n) {
      if (Math.abs(e[m]!) <= eps * tst1) break;
      m++;
    }
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > 100) throw new Error(`symmetricEigen: the QL iteration did not converge for eigenvalue ${l} of ${n}`);
        let g = d[l]!;
        let p = (d[l + 1]! - g) / (2 * e[l]!);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l]! / (p + r);
        d[l + 1] = e[l]! * (p + r);
        const dl1 = d[l + 1]!;
        let h = g - d[l]!;
        for (let i = l + 2; i < n; i++) d[i] = d[i]! - h;
        f += h;
        p = d[m]!;
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1]!;
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i]!;
          h = c * p;
          r = Math.hypot(p, e[i]!);
          e[i + 1] = s * r;
          s = e[i]! / r;
          c = p / r;
          p = c * d[i]! - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]!);
          if (!W) continue;
          const wi = W[i]!;
          const wi1 = W[i + 1]!;
          for (let k = 0; k < n; k++) {
            const t = wi1[k]!;
            wi1[k] = s * wi[k]! + c * t;
            wi[k] = c * wi[k]! - s * t;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]!) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]!) > eps * tst1);
    }
    d[l] = d[l]! + f;
    e[l] = 0;
  }
}

/** Cyclic Jacobi eigen-decomposition (slower, very accurate; used to cross-check symmetricEigen). */
export function jacobiEigen(a: Float64Array, n: number, maxSweeps = 100): Eigen {
  checkSquare(a, n, 'jacobiEigen');
  const A = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) A[i * n + j] = 0.5 * (a[i * n + j]! + a[j * n + i]!);
  const V = identity(n);
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    let total = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const x = A[i * n + j]! * A[i * n + j]!;
        total += x;
        if (i !== j) off += x;
      }
    }
    if (off <= 1e-30 * total || off === 0) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = A[p * n + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (A[q * n + q]! - A[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = A[k * n + p]!;
          const akq = A[k * n + q]!;
          A[k * n + p] = c * akp - s * akq;
          A[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = A[p * n + k]!;
          const aqk = A[q * n + k]!;
          A[p * n + k] = c * apk - s * aqk;
          A[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = V[k * n + p]!;
          const vkq = V[k * n + q]!;
          V[k * n + p] = c * vkp - s * vkq;
          V[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => A[x * n + x]! - A[y * n + y]!);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, j) => {
    values[j] = A[src * n + src]!;
    for (let i = 0; i < n; i++) vectors[i * n + j] = V[i * n + src]!;
  });
  return { values, vectors };
}

export function identity(n: number): Float64Array {
  const m = new Float64Array(n * n);
  for (let i = 0; i < n; i++) m[i * n + i] = 1;
  return m;
}

/** C = A B for n x n matrices. */
export function matmul(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ci = i * n;
    for (let k = 0; k < n; k++) {
      const aik = a[ci + k]!;
      if (aik === 0) continue;
      const bk = k * n;
      for (let j = 0; j < n; j++) c[ci + j] += aik * b[bk + j]!;
    }
  }
  return c;
}

/** V f(diag(values)) V^T, symmetric by construction. */
export function reconstruct(e: Eigen, n: number, f: (lambda: number) => number = (x) => x): Float64Array {
  const fv = Float64Array.from(e.values, f);
  const out = new Float64Array(n * n);
  const V = e.vectors;
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += V[i * n + k]! * fv[k]! * V[j * n + k]!;
      out[i * n + j] = s;
      out[j * n + i] = s;
    }
  }
  return out;
}

/**
 * The principal square root of a symmetric positive semi-definite matrix. Eigenvalues below
 * zero (round-off in a rank-deficient covariance) are clipped to zero.
 */
export function sqrtPsd(a: Float64Array, n: number): Float64Array {
  return reconstruct(symmetricEigen(a, n), n, (x) => Math.sqrt(Math.max(x, 0)));
}

/**
 * tr sqrt(sqrt(A) B sqrt(A)) for symmetric PSD A and B, which equals tr sqrt(A B) (the
 * eigenvalues of A B are those of the symmetric sqrt(A) B sqrt(A)). Pass sqrtA when known.
 */
export function traceSqrtProduct(a: Float64Array, b: Float64Array, n: number, sqrtA: Float64Array = sqrtPsd(a, n)): number {
  const m = matmul(matmul(sqrtA, b, n), sqrtA, n);
  const values = symmetricEigenvalues(m, n);
  let t = 0;
  for (const v of values) t += Math.sqrt(Math.max(v, 0));
  return t;
}

export function trace(a: Float64Array, n: number): number {
  let t = 0;
  for (let i = 0; i < n; i++) t += a[i * n + i]!;
  return t;
}
