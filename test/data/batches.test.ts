import { describe, expect, it } from 'vitest';
import { countBatches, epochBatches, endlessBatches, scalePixels, splitValidation } from '../../src/data/batches.ts';
import { mixTargets, mixup, oneHot, randomShifts, sampleMixLambdas, shiftImages } from '../../src/data/augment.ts';
import { localLabels, selectClasses, type Split } from '../../src/data/taskdata.ts';
import { progressLine } from '../../src/util/progress.js';
import { Rng } from '../../src/data/rng.ts';

/** n 2×2 images; image i has all pixels = i, label i % 3. */
function toySplit(n = 10): Split {
  const images = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) images.fill(i, i * 4, i * 4 + 4);
  return { images, labels: Uint8Array.from({ length: n }, (_, i) => i % 3), n, rows: 2, cols: 2 };
}

const batchesOf = (split: Split, seed: number, epoch: number, batchSize = 4) =>
  [...epochBatches(split, { batchSize, seed, epoch })].map((b) => [...b.indices]);

describe('batching', () => {
  it('is deterministic in (seed, epoch) and reshuffles per epoch', () => {
    const s = toySplit(50);
    expect(batchesOf(s, 1, 0)).toEqual(batchesOf(s, 1, 0));
    expect(batchesOf(s, 1, 0)).not.toEqual(batchesOf(s, 1, 1));
    expect(batchesOf(s, 1, 0)).not.toEqual(batchesOf(s, 2, 0));
  });

  it('visits every example once per epoch; dropLast drops the short batch', () => {
    const s = toySplit(10);
    const b = batchesOf(s, 5, 3);
    expect(b.map((x) => x.length)).toEqual([4, 4, 2]);
    expect(b.flat().sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect([...epochBatches(s, { batchSize: 4, seed: 5, dropLast: true })]).toHaveLength(2);
    expect(countBatches(10, 4)).toBe(3);
  });

  it('continues epochs endlessly, epoch e equal to epochBatches(e)', () => {
    const s = toySplit(6);
    const it = endlessBatches(s, { batchSize: 3, seed: 9 });
    const first4 = Array.from({ length: 4 }, () => it.next().value!);
    expect(first4.map((b) => b.epoch)).toEqual([0, 0, 1, 1]);
    expect([...first4[2].indices]).toEqual(batchesOf(s, 9, 1, 3)[0]);
  });

  it('converts to float32 per batch with the chosen range, labels aligned', () => {
    const s = toySplit(10);
    for (const b of epochBatches(s, { batchSize: 4, seed: 1, range: '-1,1' })) {
      expect(b.x).toBeInstanceOf(Float32Array);
      for (let k = 0; k < b.size; k++) {
        const i = b.indices[k];
        expect(b.y[k]).toBe(i % 3);
        expect(b.x[k * 4]).toBeCloseTo(i / 127.5 - 1, 6);
      }
    }
    expect([...scalePixels(Uint8Array.from([0, 255, 51]))]).toEqual([0, 1, 0.2].map(Math.fround));
    expect([...scalePixels(Uint8Array.from([0, 255]), '-1,1')]).toEqual([-1, 1]);
  });

  it('applies seeded shifts deterministically', () => {
    const s = toySplit(8);
    const a = [...epochBatches(s, { batchSize: 8, seed: 2, maxShift: 1 })][0];
    const b = [...epochBatches(s, { batchSize: 8, seed: 2, maxShift: 1 })][0];
    expect(a.x).toEqual(b.x);
  });

  it('splits off a stratified, disjoint, deterministic validation set', () => {
    const s = toySplit(30);
    const { train, val } = splitValidation(s, 0.2, 11);
    expect(train.n + val.n).toBe(30);
    expect(val.n).toBe(6);
    for (const c of [0, 1, 2]) expect([...val.labels].filter((l) => l === c)).toHaveLength(2);
    const ids = (x: Split) => Array.from({ length: x.n }, (_, i) => x.images[i * 4]);
    expect(new Set([...ids(train), ...ids(val)]).size).toBe(30);
    expect(ids(splitValidation(s, 0.2, 11).val)).toEqual(ids(val));
    expect(ids(splitValidation(s, 0.2, 12).val)).not.toEqual(ids(val));
    expect(() => splitValidation(s, 1.5, 1)).toThrow(/between 0 and 1/);
  });

  it('selects classes and maps labels', () => {
    const s = toySplit(9);
    const sub = selectClasses(s, [0, 2]);
    expect(sub.n).toBe(6);
    expect([...sub.labels]).toEqual([0, 2, 0, 2, 0, 2]);
    expect(sub.images[4]).toBe(2);
    expect(selectClasses(s, [0, 1, 2])).toBe(s);
    expect([...localLabels(sub.labels, [0, 2])]).toEqual([0, 1, 0, 1, 0, 1]);
  });
});

describe('augmentations', () => {
  it('shifts images with background fill', () => {
    // one 3×3 image 1..9
    const img = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect([...shiftImages(img, 3, 3, [1, 0])]).toEqual([0, 1, 2, 0, 4, 5, 0, 7, 8]);
    expect([...shiftImages(img, 3, 3, [0, -1])]).toEqual([4, 5, 6, 7, 8, 9, 0, 0, 0]);
    expect([...shiftImages(img, 3, 3, [-2, 2])]).toEqual([0, 0, 0, 0, 0, 0, 3, 0, 0]);
    expect([...shiftImages(Float32Array.from(img), 3, 3, [0, 0])]).toEqual([...img]);
    expect([...shiftImages(Float32Array.from(img), 3, 3, [3, 0], -1)]).toEqual(new Array(9).fill(-1));
    expect([...img]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]); // input untouched
    const shifts = randomShifts(500, 2, new Rng(1));
    expect(Math.max(...shifts)).toBe(2);
    expect(Math.min(...shifts)).toBe(-2);
  });

  it('mixes two batches and their targets', () => {
    const a = Float32Array.from([1, 1, 0, 0]);
    const b = Float32Array.from([0, 0, 1, 1]);
    expect([...mixup(a, b, Float32Array.from([0.25, 1]), 2)]).toEqual([0.25, 0.25, 0, 0]);
    expect([...mixup(a, b, 0.5, 2)]).toEqual([0.5, 0.5, 0.5, 0.5]);
    expect([...mixTargets([0], [2], 0.75, 3)]).toEqual([0.75, 0, 0.25]);
    expect([...oneHot([1], 3)]).toEqual([0, 1, 0]);
    const l = sampleMixLambdas(100, 0.4, new Rng(5));
    expect(l.every((x) => x >= 0 && x <= 1)).toBe(true);
    expect(sampleMixLambdas(100, 0.4, new Rng(5))).toEqual(l);
    expect(() => mixup(a, Float32Array.from([1]), 0.5, 2)).toThrow(/differ in size/);
  });
});

describe('progress line', () => {
  it('shows bytes, percent and rate', () => {
    expect(progressLine('f', 5 * 1024 * 1024, 10 * 1024 * 1024, 2, 10)).toBe('f [#####.....]  50% 5.0 MiB/10.0 MiB 2.5 MiB/s');
  });
});
