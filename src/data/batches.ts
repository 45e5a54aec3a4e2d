/**
 * Seeded, deterministic batching. Data stays uint8; each batch is converted
 * to float32 when it is made.
 *
 * The order of epoch e is a permutation drawn from Rng.derive(seed, 'epoch', e):
 * it depends only on (seed, e), so a run resumed at epoch e sees the same batches.
 */
import { Rng, type Seed } from './rng.ts';
import type { Split } from './taskdata.ts';
import { randomShifts, shiftImages } from './augment.ts';

/** '0,1' maps pixel v to v/255; '-1,1' to v/127.5 − 1. */
export type PixelRange = '0,1' | '-1,1';

export interface Batch {
  /** size × rows·cols floats, scaled to the requested range. */
  x: Float32Array;
  /** Dataset labels (0-9). */
  y: Uint8Array;
  /** Indices into the split. */
  indices: Uint32Array;
  size: number;
  rows: number;
  cols: number;
}

export interface BatchOptions {
  batchSize: number;
  seed: Seed;
  /** Which epoch's order to use. Default 0. */
  epoch?: number;
  range?: PixelRange;
  /** Drop the last, smaller batch. Default false. */
  dropLast?: boolean;
  /** Random shift of up to this many pixels in x and y (0 = off). Default 0. */
  maxShift?: number;
}

/** Scales uint8 pixels to float32 in `range`. */
export function scalePixels(src: Uint8Array, range: PixelRange = '0,1', out = new Float32Array(src.length)): Float32Array {
  if (out.length !== src.length) throw new Error(`scalePixels: output has ${out.length} elements, input ${src.length}`);
  if (range === '0,1') {
    for (let i = 0; i < src.length; i++) out[i] = src[i] / 255;
  } else if (range === '-1,1') {
    for (let i = 0; i < src.length; i++) out[i] = src[i] / 127.5 - 1;
  } else {
    throw new Error(`Unknown pixel range '${range as string}'; use '0,1' or '-1,1'`);
  }
  return out;
}

/** The example order of one epoch. */
export function epochOrder(n: number, seed: Seed, epoch = 0): Uint32Array {
  return new Rng(Rng.derive(seed, 'epoch', epoch)).permutation(n);
}

export function countBatches(n: number, batchSize: number, dropLast = false): number {
  return dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
}

/** Copies the images and labels at `indices` out of `split` (uint8). */
export function gatherExamples(split: Split, indices: ArrayLike<number>): { images: Uint8Array; labels: Uint8Array } {
  const pixels = split.rows * split.cols;
  const images = new Uint8Array(indices.length * pixels);
  const labels = new Uint8Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!(i >= 0 && i < split.n)) throw new Error(`gatherExamples: index ${i} out of range 0..${split.n - 1}`);
    images.set(split.images.subarray(i * pixels, (i + 1) * pixels), k * pixels);
    labels[k] = split.labels[i];
  }
  return { images, labels };
}

/** A float32 batch of the examples at `indices`, optionally shifted (shifts: dx,dy per example). */
export function makeBatch(split: Split, indices: Uint32Array, range: PixelRange = '0,1', shifts?: Int8Array): Batch {
  let { images, labels } = gatherExamples(split, indices);
  if (shifts) images = shiftImages(images, split.rows, split.cols, shifts, 0);
  return { x: scalePixels(images, range), y: labels, indices, size: indices.length, rows: split.rows, cols: split.cols };
}

function checkOptions(split: Split, o: BatchOptions): void {
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new Error(`batchSize must be a positive integer, got ${o.batchSize}`);
  if (split.n === 0) throw new Error('Cannot make batches of an empty split');
  const s = o.maxShift ?? 0;
  if (!Number.isInteger(s) || s < 0 || s > 127) throw new Error(`maxShift must be an integer 0..127, got ${s}`);
}

/** The batches of one epoch, in a seeded order. Deterministic in (split, options). */
export function* epochBatches(split: Split, o: BatchOptions): Generator<Batch> {
  checkOptions(split, o);
  const epoch = o.epoch ?? 0;
  const order = epochOrder(split.n, o.seed, epoch);
  const count = countBatches(split.n, o.batchSize, o.dropLast);
  const maxShift = o.maxShift ?? 0;
  for (let b = 0; b < count; b++) {
    const idx = order.subarray(b * o.batchSize, Math.min(split.n, (b + 1) * o.batchSize));
    const shifts = maxShift > 0 ? randomShifts(idx.length, maxShift, new Rng(Rng.derive(o.seed, 'shift', epoch, b))) : undefined;
    yield makeBatch(split, idx, o.range, shifts);
  }
}

/** Endless batches over epochs epoch, epoch+1, ... (each epoch reshuffled from the seed). */
export function* endlessBatches(split: Split, o: BatchOptions): Generator<Batch & { epoch: number }> {
  for (let epoch = o.epoch ?? 0; ; epoch++) {
    for (const b of epochBatches(split, { ...o, epoch })) yield { ...b, epoch };
  }
}

/**
 * A held-out validation split, stratified by class: from each class, a seeded
 * `fraction` (rounded, at least one when the class has two or more examples)
 * goes to `val`. Both keep the original relative order.
 */
export function splitValidation(split: Split, fraction: number, seed: Seed): { train: Split; val: Split } {
  if (!(fraction > 0 && fraction < 1)) throw new Error(`Validation fraction must be between 0 and 1, got ${fraction}`);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < split.n; i++) {
    const l = split.labels[i];
    let list = byClass.get(l);
    if (!list) byClass.set(l, (list = []));
    list.push(i);
  }
  const isVal = new Uint8Array(split.n);
  for (const label of [...byClass.keys()].sort((a, b) => a - b)) {
    const idx = byClass.get(label)!;
    const rng = new Rng(Rng.derive(seed, 'validation', label));
    const nVal = idx.length < 2 ? 0 : Math.min(idx.length - 1, Math.max(1, Math.round(idx.length * fraction)));
    const perm = rng.permutation(idx.length);
    for (let k = 0; k < nVal; k++) isVal[idx[perm[k]]] = 1;
  }
  const pick = (want: number): Split => {
    const indices: number[] = [];
    for (let i = 0; i < split.n; i++) if (isVal[i] === want) indices.push(i);
    const { images, labels } = gatherExamples(split, indices);
    return { images, labels, n: indices.length, rows: split.rows, cols: split.cols };
  };
  return { train: pick(0), val: pick(1) };
}
