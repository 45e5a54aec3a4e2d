// Scoring any set of 28x28 grayscale images against a task (npm run eval -- --samples).

import { parseTask, type EnsureOptions } from '../data/index.js';
import type { FeatureExtractor } from './features.js';
import { loadFeatureExtractor, type FeatureNetOptions, type LeNetExtractor } from './featnet.js';
import { readSamples, type ImageSet, type ReadOptions } from './images.js';
import { Scorer, type Score, type ScoreOptions } from './score.js';

export interface SamplesEvalOptions extends ScoreOptions {
  features?: FeatureExtractor;
  featureNet?: FeatureNetOptions;
  labeler?: LeNetExtractor;
  read?: ReadOptions;
  data?: EnsureOptions;
  log?: (line: string) => void;
}

export interface SamplesEvaluation extends Score {
  source: string;
  featureExtractor: { name: string; dim: number; description: string };
}

/** FID, KID (with the real-vs-real floor) and fitting capacity of a set of images for one task. */
export async function evaluateSamples(samples: string | ImageSet, task: string, opts: SamplesEvalOptions = {}): Promise<SamplesEvaluation> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const spec = parseTask(task);
  const set = typeof samples === 'string' ? await readSamples(samples, opts.read) : samples;
  log(`eval: ${set.n} images from ${set.source}, scored against ${spec.name}`);
  const labeler = opts.labeler ?? (await loadFeatureExtractor({ log, threads: opts.threads, device: opts.device, dataRoot: opts.data?.root, offline: opts.data?.offline, ...opts.featureNet }));
  const fx = opts.features ?? labeler;
  try {
    const scorer = new Scorer(fx, labeler, opts, opts.data ?? {});
    const score = await scorer.score(spec.name, set.images, set.n);
    return { ...score, source: set.source, featureExtractor: { name: fx.name, dim: fx.dim, description: fx.description } };
  } finally {
    if (!opts.labeler) await labeler.close();
  }
}
