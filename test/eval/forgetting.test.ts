import { describe, expect, it } from 'vitest';
import { forgetting } from '../../src/eval/forgetting.js';

describe('forgetting and backward transfer', () => {
  it('accuracy-like metric (higher is better): initial minus final, averaged over all but the last task', () => {
    // R[stage][task]; task j learned at stage j; null = not learned yet.
    const R = [
      [0.9, null, null],
      [0.7, 0.8, null],
      [0.6, 0.85, 0.95],
    ];
    const f = forgetting(R, 'higher');
    expect(f.forgetting[0]).toBeCloseTo(0.3, 12);
    expect(f.forgetting[1]).toBeCloseTo(-0.05, 12);
    expect(f.forgetting[2]).toBeNull();
    expect(f.averageForgetting).toBeCloseTo(0.125, 12);
    // GEM's BWT = mean_j<T (R[T][j] - R[j][j]) = -0.125
    expect(f.bwt).toBeCloseTo(-0.125, 12);
  });

  it('FID-like metric (lower is better): final minus initial, so positive means worse', () => {
    const R = [
      [20, null],
      [35, 18],
    ];
    const f = forgetting(R, 'lower');
    expect(f.forgetting).toEqual([15, null]);
    expect(f.averageForgetting).toBe(15);
    expect(f.bwt).toBe(-15);
  });

  it('uses learnedAt, skips unmeasured cells and is undefined for a single stage', () => {
    const R = [
      [10, 12, null],
      [11, null, 30],
      [13, 20, 31],
    ];
    // Tasks 0 and 1 both learned at stage 0, task 2 at stage 1.
    const f = forgetting(R, 'lower', [0, 0, 1]);
    expect(f.forgetting).toEqual([3, 8, 1]);
    expect(f.averageForgetting).toBe(4);
    const single = forgetting([[5, null]], 'lower');
    expect(single.forgetting).toEqual([null, null]);
    expect(single.averageForgetting).toBeNull();
    expect(single.bwt).toBeNull();
    expect(() => forgetting([[1, 2], [3]], 'lower')).toThrow(/2 task entries/);
  });
});
