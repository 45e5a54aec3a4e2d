// The SampleJudge that training uses: the evaluation layer's LeNet feature network (FID
// features and 20-class predictions), with real-image statistics computed once per key.

import { fidFromStats, stats, type FeatureStats } from '../eval/fid.js';
import { argmax, loadFeatureExtractor } from '../eval/featnet.js';
import type { SampleJudge } from './teacher.js';

export async function makeJudge(o: { threads?: number; steps?: number; log?: (l: string) => void } = {}): Promise<SampleJudge> {
  const fx = await loadFeatureExtractor({ threads: o.threads, steps: o.steps, log: o.log });
  const cache = new Map<string, FeatureStats>();
  return {
    async realStats(key, images, n) {
      if (!cache.has(key)) cache.set(key, stats(await fx.features(images, n), fx.dim));
    },
    async fid(images, n, key) {
      const real = cache.get(key);
      if (!real) throw new Error(`no real statistics for '${key}'`);
      return fidFromStats(real, stats(await fx.features(images, n), fx.dim)); // real first: its matrix square root is cached
    },
    async classify(images, n) {
      const logits = await fx.logits(images, n);
      return Int32Array.from({ length: n }, (_, i) => argmax(logits, i * fx.classes, fx.classes));
    },
  };
}
