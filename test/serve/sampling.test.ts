import { describe, expect, test } from 'vitest';
import { Rng } from '../../src/util/rng.js';
import { composeGrid, GRID_GAP, GRID_GAP_VALUE, gridLayout, normalNoise, parseSeed, PIXELS, randomSeed, studentFeeds, teacherFeeds, tileOrigin, toGray8, upscale } from '../../src/serve/sampling.js';

describe('noise', () => {
  test('is Rng(seed).normal() row by row, so sample i does not depend on n', () => {
    const rng = new Rng(7);
    const expected = Float32Array.from({ length: 3 * 4 }, () => rng.normal());
    expect(normalNoise(7, 3, 4)).toEqual(expected);
    expect(normalNoise(7, 5, 4).subarray(0, 12)).toEqual(expected);
    expect(normalNoise(8, 3, 4)).not.toEqual(expected);
  });

  test('student z = mu[t] + exp(logvar[t] / 2) * eps, with the task one-hot', () => {
    const prior = { mu: [[0, 0], [1, -2]], logvar: [[0, 0], [Math.log(4), 0]] };
    const { z, task } = studentFeeds(prior, 1, 2, 3, 11);
    const eps = normalNoise(11, 3, 2);
    expect(z.dims).toEqual([3, 2]);
    for (let i = 0; i < 3; i++) {
      expect(z.data[2 * i]).toBeCloseTo(1 + 2 * eps[2 * i]!, 5);
      expect(z.data[2 * i + 1]).toBeCloseTo(-2 + eps[2 * i + 1]!, 5);
    }
    expect(task).toEqual({ data: Float32Array.from([0, 1, 0, 1, 0, 1]), dims: [3, 2] });
    expect(() => studentFeeds(prior, 2, 3, 1, 0)).toThrow(/no row for task index 2/);
  });

  test('teacher z ~ N(0, I)', () => {
    expect(teacherFeeds(4, 2, 3)).toEqual({ z: { data: normalNoise(3, 2, 4), dims: [2, 4] } });
  });
});

test('toGray8 rounds, clamps to [0, 1] and maps NaN to 0', () => {
  expect([...toGray8(Float32Array.from([0, 1, 0.5, 0.2, -3, 7, Number.NaN, 1 / 255, 0.5 / 255 - 1e-6]))]).toEqual([0, 255, 128, 51, 0, 255, 0, 1, 0]);
});

describe('grid', () => {
  test.each([
    [1, 1, 1],
    [2, 2, 1],
    [3, 2, 2],
    [16, 4, 4],
    [17, 5, 4],
    [256, 16, 16],
  ])('n=%i: %i columns, %i rows', (n, cols, rows) => {
    const layout = gridLayout(n);
    expect([layout.cols, layout.rows]).toEqual([cols, rows]);
    expect(layout.width).toBe(cols * 28 + (cols - 1) * GRID_GAP);
    expect(layout.height).toBe(rows * 28 + (rows - 1) * GRID_GAP);
  });

  test('composeGrid puts image i at tileOrigin(i) and fills the gaps', () => {
    const n = 5;
    const gray = Uint8Array.from({ length: n * PIXELS }, (_, k) => (Math.floor(k / PIXELS) * 40 + (k % 7)) % 250);
    const grid = composeGrid(gray, n);
    const layout = gridLayout(n);
    for (let i = 0; i < n; i++) {
      const { x, y } = tileOrigin(layout, i);
      for (let r = 0; r < 28; r++) for (let c = 0; c < 28; c++) expect(grid.pixels[(y + r) * grid.width + x + c]).toBe(gray[i * PIXELS + r * 28 + c]);
    }
    expect(grid.pixels[28]).toBe(GRID_GAP_VALUE); // the gap right of tile 0
    expect(grid.pixels[grid.pixels.length - 1]).toBe(GRID_GAP_VALUE); // the empty sixth tile
  });
});

test('upscale repeats each pixel scale x scale times', () => {
  expect([...upscale(Uint8Array.from([1, 2, 3, 4, 5, 6]), 3, 2, 2)]).toEqual([1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 4, 4, 5, 5, 6, 6]);
  const same = Uint8Array.from([9]);
  expect(upscale(same, 1, 1, 1)).toBe(same);
});

test('parseSeed takes whole numbers of up to 15 digits only', () => {
  expect(parseSeed('7')).toBe(7);
  expect(parseSeed('-12')).toBe(-12);
  expect(parseSeed('999999999999999')).toBe(999999999999999);
  for (const bad of ['', '1.5', '1e3', ' 7', '0x10', 'abc', '9999999999999999']) expect(parseSeed(bad)).toBeUndefined();
});

test('randomSeed gives 31-bit whole numbers that parse back, fresh ones past each batch of random words', () => {
  const seeds = Array.from({ length: 1000 }, () => randomSeed());
  for (const s of seeds) {
    expect(Number.isInteger(s) && s >= 0 && s < 2 ** 31).toBe(true);
    expect(parseSeed(String(s))).toBe(s);
  }
  // 1000 draws of 31 bits collide with probability about 2e-4; a batch served twice would repeat hundreds.
  expect(new Set(seeds).size).toBeGreaterThanOrEqual(999);
});
