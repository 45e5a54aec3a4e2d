import { describe, expect, it } from 'vitest';
import { Rng, hashSeed } from '../../src/data/rng.ts';

const take = (r: Rng, n: number, f: (r: Rng) => number) => Array.from({ length: n }, () => f(r));

describe('Rng', () => {
  it('is deterministic per seed and differs across seeds', () => {
    expect(take(new Rng(42), 5, (r) => r.next())).toEqual(take(new Rng(42), 5, (r) => r.next()));
    expect(take(new Rng(42), 5, (r) => r.next())).not.toEqual(take(new Rng(43), 5, (r) => r.next()));
    expect(take(new Rng('abc'), 3, (r) => r.next())).toEqual(take(new Rng('abc'), 3, (r) => r.next()));
    expect(hashSeed(2 ** 40)).not.toBe(hashSeed(0));
  });

  it('matches the xoshiro128** reference output for state {1,2,3,4}', () => {
    // Values from Vigna's reference C implementation (xoshiro128starstar.c).
    expect(take(Rng.fromState([1, 2, 3, 4]), 6, (r) => r.next())).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
    const r = new Rng(5);
    r.next();
    const copy = Rng.fromState(r.state());
    expect(copy.next()).toBe(r.next());
  });

  it('keeps its stream stable across versions (pinned values)', () => {
    // If this fails, the generator changed: every seeded result in the project changes with it.
    expect(take(new Rng(1), 4, (r) => r.next())).toMatchInlineSnapshot(`
      [
        2122877737,
        261523597,
        1694719977,
        656318119,
      ]
    `);
  });

  it('draws in range with plausible moments', () => {
    const r = new Rng(7);
    const u = take(r, 20000, (x) => x.uniform());
    expect(Math.min(...u)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...u)).toBeLessThan(1);
    expect(Math.abs(u.reduce((a, b) => a + b) / u.length - 0.5)).toBeLessThan(0.01);
    const z = take(r, 20000, (x) => x.normal());
    const mean = z.reduce((a, b) => a + b) / z.length;
    const sd = Math.sqrt(z.reduce((a, b) => a + (b - mean) ** 2, 0) / z.length);
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(sd - 1)).toBeLessThan(0.03);
    const ints = take(r, 5000, (x) => x.int(5));
    expect(new Set(ints)).toEqual(new Set([0, 1, 2, 3, 4]));
    const b = take(r, 5000, (x) => x.beta(2, 2));
    expect(Math.abs(b.reduce((a, c) => a + c) / b.length - 0.5)).toBeLessThan(0.02);
    expect(() => r.int(0)).toThrow(/Rng.int/);
  });

  it('makes permutations', () => {
    const p = new Rng(3).permutation(100);
    expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect([...p]).not.toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('derives independent seeds', () => {
    expect(Rng.derive(1, 'epoch', 0)).toBe(Rng.derive(1, 'epoch', 0));
    expect(Rng.derive(1, 'epoch', 0)).not.toBe(Rng.derive(1, 'epoch', 1));
    expect(Rng.derive(1, 'epoch', 0)).not.toBe(Rng.derive(2, 'epoch', 0));
  });
});
