/**
 * Augmentations as pure functions: the randomness is drawn separately
 * (randomShifts, sampleMixLambdas) and passed in, so every function here
 * gives the same output for the same input.
 */
import type { Rng } from './rng.ts';

/** Random integer shifts in [-maxShift, maxShift]: (dx, dy) per image, interleaved. */
export function randomShifts(count: number, maxShift: number, rng: Rng): Int8Array {
  const out = new Int8Array(2 * count);
  for (let i = 0; i < out.length; i++) out[i] = rng.int(2 * maxShift + 1) - maxShift;
  return out;
}

/**
 * Shifts each image by its (dx, dy): positive dx moves content right, positive
 * dy down; uncovered pixels get `fill` (0 = background for uint8 and for '0,1';
 * use -1 for '-1,1' floats). Returns a new array of the same type.
 */
export function shiftImages<T extends Uint8Array | Float32Array>(
  images: T,
  rows: number,
  cols: number,
  shifts: ArrayLike<number>,
  fill = 0,
): T {
  const pixels = rows * cols;
  const count = images.length / pixels;
  if (!Number.isInteger(count)) throw new Error(`shiftImages: ${images.length} values is not a whole number of ${rows}×${cols} images`);
  if (shifts.length !== 2 * count) throw new Error(`shiftImages: need ${2 * count} shift values (dx, dy per image), got ${shifts.length}`);
  const out = new (images.constructor as { new (n: number): T })(images.length);
  out.fill(fill);
  for (let n = 0; n < count; n++) {
    const dx = shifts[2 * n];
    const dy = shifts[2 * n + 1];
    const base = n * pixels;
    for (let r = 0; r < rows; r++) {
      const sr = r - dy;
      if (sr < 0 || sr >= rows) continue;
      const c0 = Math.max(0, dx);
      const c1 = Math.min(cols, cols + dx);
      if (c1 <= c0) continue;
      out.set(images.subarray(base + sr * cols + c0 - dx, base + sr * cols + c1 - dx), base + r * cols + c0);
    }
  }
  return out;
}

/** Mixup coefficients λ ~ Beta(alpha, alpha), one per example. */
export function sampleMixLambdas(count: number, alpha: number, rng: Rng): Float32Array {
  if (!(alpha > 0)) throw new Error(`mixup alpha must be > 0, got ${alpha}`);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = rng.beta(alpha, alpha);
  return out;
}

/** Mixup of two batches: λ·a + (1−λ)·b per example (λ per example, or one λ for all). */
export function mixup(a: Float32Array, b: Float32Array, lambdas: Float32Array | number, valuesPerExample: number): Float32Array {
  if (a.length !== b.length) throw new Error(`mixup: batches differ in size (${a.length} vs ${b.length} values)`);
  const count = a.length / valuesPerExample;
  if (!Number.isInteger(count)) throw new Error(`mixup: ${a.length} values is not a whole number of examples of ${valuesPerExample}`);
  if (typeof lambdas !== 'number' && lambdas.length !== count) {
    throw new Error(`mixup: ${lambdas.length} lambdas for ${count} examples`);
  }
  const out = new Float32Array(a.length);
  for (let n = 0; n < count; n++) {
    const l = typeof lambdas === 'number' ? lambdas : lambdas[n];
    for (let i = n * valuesPerExample, end = i + valuesPerExample; i < end; i++) out[i] = l * a[i] + (1 - l) * b[i];
  }
  return out;
}

/** One-hot rows (count × numClasses). */
export function oneHot(labels: ArrayLike<number>, numClasses: number): Float32Array {
  const out = new Float32Array(labels.length * numClasses);
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (!(l >= 0 && l < numClasses)) throw new Error(`oneHot: label ${l} at index ${i} is outside 0..${numClasses - 1}`);
    out[i * numClasses + l] = 1;
  }
  return out;
}

/** Soft targets for mixup: λ·onehot(ya) + (1−λ)·onehot(yb). */
export function mixTargets(ya: ArrayLike<number>, yb: ArrayLike<number>, lambdas: Float32Array | number, numClasses: number): Float32Array {
  return mixup(oneHot(ya, numClasses), oneHot(yb, numClasses), lambdas, numClasses);
}

/**
 * The student's contrastive views: each 28x28 image of the first `n` in `x` shifted by up to
 * `max` pixels in x and y (zero fill), each image's dy drawn before its dx; the rest stay zero.
 */
export function shiftViews(x: Float32Array, n: number, max: number, rng: Rng): Float32Array {
  const drawn = randomShifts(n, max, rng);
  const shifts = new Int8Array(2 * n);
  for (let i = 0; i < n; i++) {
    shifts[2 * i] = drawn[2 * i + 1]!;
    shifts[2 * i + 1] = drawn[2 * i]!;
  }
  const out = new Float32Array(x.length);
  out.set(shiftImages(x.subarray(0, n * 784), 28, 28, shifts));
  return out;
}
