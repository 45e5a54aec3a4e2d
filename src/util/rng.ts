/**
 * Seeded pseudo-random numbers: xoshiro128** (Blackman & Vigna, 2018), seeded
 * through splitmix32. Same seed, same sequence, on every platform.
 *
 * Seeds are integers (any safe integer, negative allowed) or strings; equal
 * seeds give equal streams. Use `Rng.derive(seed, ...parts)` or `rng.fork(tag)`
 * for independent sub-streams (per epoch, per task, ...).
 */

export type Seed = number | string;

/** splitmix32 step: returns [nextState, output]. */
function splitmix32(state: number): [number, number] {
  const s = (state + 0x9e3779b9) | 0;
  let z = s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return [s, z >>> 0];
}

/** Hashes a seed (number or string) to 32 bits. */
export function hashSeed(seed: Seed): number {
  if (typeof seed === 'number') {
    if (!Number.isSafeInteger(seed)) {
      throw new Error(`RNG seed must be a safe integer or a string, got ${seed}`);
    }
    const lo = seed % 0x100000000;
    const hi = Math.floor(seed / 0x100000000);
    let [s, a] = splitmix32(lo | 0);
    [s, a] = splitmix32((s ^ a ^ Math.imul(hi | 0, 0x27d4eb2d)) | 0);
    return a >>> 0;
  }
  // FNV-1a over UTF-16 code units, then a splitmix finalizer.
  let h = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) {
    h ^= seed.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return splitmix32(h ^ 0x5bd1e995)[1];
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spareNormal: number | null = null;

  constructor(seed: Seed = 0) {
    let state = hashSeed(seed) | 0;
    const out: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [s, v] = splitmix32(state);
      state = s;
      out.push(v | 0);
    }
    [this.s0, this.s1, this.s2, this.s3] = out as [number, number, number, number];
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // all-zero state is invalid
  }

  /** A generator with the given xoshiro128** state (four 32-bit words, not all zero). */
  static fromState(state: readonly [number, number, number, number]): Rng {
    if (state.every((w) => (w | 0) === 0)) throw new Error('Rng.fromState: the all-zero state is invalid');
    const r = new Rng(0);
    [r.s0, r.s1, r.s2, r.s3] = state.map((w) => w | 0) as [number, number, number, number];
    return r;
  }

  /** The current state, for checkpoints (a cached second normal deviate is not included). */
  state(): [number, number, number, number] {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0];
  }

  /** A seed derived from a base seed and any number of parts, e.g. `derive(seed, 'epoch', 3)`. */
  static derive(seed: Seed, ...parts: Seed[]): number {
    let h = hashSeed(seed);
    for (const p of parts) {
      h = splitmix32((h ^ hashSeed(p)) | 0)[1];
      h = splitmix32((h + 0x632be5ab) | 0)[1];
    }
    return h;
  }

  /** An independent generator for a sub-stream, determined by this generator's next output and `tag`. */
  fork(tag: Seed = 0): Rng {
    return new Rng(Rng.derive(this.next(), tag));
  }

  /** Next 32-bit unsigned integer. */
  next(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9);
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result >>> 0;
  }

  /** Uniform float in [0, 1) with 32 bits of randomness; or in [lo, hi) when bounds are given. */
  uniform(lo = 0, hi = 1): number {
    return lo + (hi - lo) * (this.next() / 0x100000000);
  }

  /** Normal deviate (basic Box–Muller: two uniforms give two normals; the second is kept for the next call). */
  normal(mean = 0, std = 1): number {
    if (this.spareNormal !== null) {
      const z = this.spareNormal;
      this.spareNormal = null;
      return mean + std * z;
    }
    const u1 = 1 - this.uniform(); // (0, 1]
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spareNormal = r * Math.sin(2 * Math.PI * u2);
    return mean + std * r * Math.cos(2 * Math.PI * u2);
  }

  fillNormal(out: Float32Array, std = 1, mean = 0): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.normal(mean, std);
    return out;
  }

  fillUniform(out: Float32Array, lo = 0, hi = 1): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.uniform(lo, hi);
    return out;
  }

  /** The full state including a cached normal deviate, so a resumed run continues the same stream exactly. */
  getState(): number[] {
    return [...this.state(), this.spareNormal ?? Number.NaN];
  }

  setState(state: readonly number[]): void {
    [this.s0, this.s1, this.s2, this.s3] = state.slice(0, 4).map((w) => w | 0) as [number, number, number, number];
    const spare = state[4];
    this.spareNormal = spare === undefined || spare === null || Number.isNaN(spare) ? null : spare;
  }

  /** Uniform integer in [0, n), unbiased (rejection sampling). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 0x100000000) {
      throw new Error(`Rng.int(n) needs an integer 1 <= n <= 2^32, got ${n}`);
    }
    const limit = 0x100000000 - (0x100000000 % n);
    let x = this.next();
    while (x >= limit) x = this.next();
    return x % n;
  }

  /** Gamma(shape, 1) deviate (Marsaglia–Tsang). */
  gamma(shape: number): number {
    if (!(shape > 0)) throw new Error(`Rng.gamma(shape) needs shape > 0, got ${shape}`);
    if (shape < 1) return this.gamma(shape + 1) * Math.pow(1 - this.uniform(), 1 / shape);
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = 1 - this.uniform();
      if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
    }
  }

  /** Beta(a, b) deviate. */
  beta(a: number, b: number): number {
    const x = this.gamma(a);
    const y = this.gamma(b);
    return x / (x + y);
  }

  /** Shuffles `array` in place (Fisher–Yates) and returns it. */
  shuffle<T extends { length: number; [i: number]: unknown }>(array: T): T {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): Uint32Array {
    const p = new Uint32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
