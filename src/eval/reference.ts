// Real data of a task as the evaluation needs it: test images with labels within the task, the
// test set's features and statistics (computed once per task and extractor), and the
// real-vs-real floor: the FID and KID of a training subsample of the same size as the generated
// set against the same test set, the best value a generator can expect at that sample count, and
// the fitting capacity of that subsample with its true labels (the ceiling of a generated set's).

import { loadTask, localLabels, type EnsureOptions, type Split } from '../data/index.js';
import { Rng } from '../util/rng.js';
import { fidFromStats, type FeatureStats, type KidResult } from './fid.js';
import { kidAsync, statsAsync } from './gram.js';
import { PIXELS, type ClassifyingExtractor, type FeatureExtractor } from './features.js';
import { fittingCapacity, pseudoLabels, type FittingOptions, type FittingResult, type LabelledImages } from './fitting.js';

export interface TaskReference {
  task: string;
  classes: number;
  test: LabelledImages;
  train: Split;
  /** The training labels within the task (0..classes-1). */
  trainLabels: Uint8Array;
  testFeatures: Float64Array;
  testStats: FeatureStats;
}

export interface Floor {
  fid: number;
  kid: KidResult;
  /** Training images drawn (the generated sample count, capped at the training set). */
  nTrain: number;
  nTest: number;
  /** Fitting capacity of the same training images with their true labels, when asked for. */
  fitting?: FittingResult;
  /**
   * The same images labelled by the feature net's classifier, as generated sets are: the ceiling
   * of a generated set's fitting capacity under that labelling (the labeller's errors included).
   */
  fittingPseudo?: FittingResult;
}

export function toFloat(images: Uint8Array): Float32Array {
  const out = new Float32Array(images.length);
  for (let i = 0; i < images.length; i++) out[i] = images[i]! / 255;
  return out;
}

/** Loads a task's data and the features and statistics of its test set. */
export async function taskReference(fx: FeatureExtractor, task: string, data: EnsureOptions = {}): Promise<TaskReference> {
  const t = await loadTask(task, data);
  const images = toFloat(t.test.images);
  const testFeatures = await fx.features(images, t.test.n);
  return {
    task,
    classes: t.spec.classes.length,
    test: { images, labels: localLabels(t.test.labels, t.spec.classes), n: t.test.n },
    train: t.train,
    trainLabels: localLabels(t.train.labels, t.spec.classes),
    testFeatures,
    testStats: await statsAsync(testFeatures, fx.dim),
  };
}

/** Real-data statistics of a task for repeated FID checks (e.g. the teacher's expert decisions). */
export async function realTaskStats(fx: FeatureExtractor, task: string, opts: { split?: 'train' | 'test'; limit?: number; seed?: number; data?: EnsureOptions } = {}): Promise<FeatureStats> {
  const t = await loadTask(task, opts.data ?? {});
  const split = opts.split === 'train' ? t.train : t.test;
  const images = subsample(split, opts.limit ?? split.n, opts.seed ?? 0);
  return statsAsync(await fx.features(images.images, images.n), fx.dim);
}

/** n images of a split drawn without replacement (seeded), as floats in [0, 1]. */
export function subsample(split: Split, n: number, seed: number): { images: Float32Array; n: number; index: Uint32Array } {
  const m = Math.min(n, split.n);
  const perm = new Rng(Rng.derive(seed, 'subsample')).permutation(split.n);
  const out = new Float32Array(m * PIXELS);
  for (let i = 0; i < m; i++) {
    const k = perm[i]!;
    for (let p = 0; p < PIXELS; p++) out[i * PIXELS + p] = split.images[k * PIXELS + p]! / 255;
  }
  return { images: out, n: m, index: Uint32Array.from(perm.slice(0, m)) };
}

/** FID and KID of n training images against the test set: the floor at that sample count. */
export async function realFloor(
  fx: FeatureExtractor,
  ref: TaskReference,
  n: number,
  kidOpts: { subsets?: number; subsetSize?: number; seed?: number } = {},
  fitting?: FittingOptions,
  labeler?: ClassifyingExtractor,
): Promise<Floor> {
  const s = subsample(ref.train, n, kidOpts.seed ?? 0);
  const feats = await fx.features(s.images, s.n);
  const size = Math.min(kidOpts.subsetSize ?? 1000, s.n, ref.test.n);
  const floor: Floor = {
    fid: fidFromStats(ref.testStats, await statsAsync(feats, fx.dim)),
    kid: await kidAsync(ref.testFeatures, feats, fx.dim, { ...kidOpts, subsetSize: size }),
    nTrain: s.n,
    nTest: ref.test.n,
  };
  if (fitting && (fitting.steps ?? 1) > 0) {
    const labels = Uint8Array.from(s.index, (k) => ref.trainLabels[k]!);
    floor.fitting = await fittingCapacity({ images: s.images, labels, n: s.n }, ref.test, ref.classes, fitting);
    if (labeler) floor.fittingPseudo = await fittingCapacity({ images: s.images, labels: await pseudoLabels(labeler, ref.task, s.images, s.n), n: s.n }, ref.test, ref.classes, fitting);
  }
  return floor;
}

/** FID of n images (n x 784 in [0, 1]) against precomputed real statistics (e.g. from realTaskStats). */
export async function fidAgainst(fx: FeatureExtractor, real: FeatureStats, images: Float32Array, n: number): Promise<number> {
  return fidFromStats(real, await statsAsync(await fx.features(images, n), fx.dim));
}
