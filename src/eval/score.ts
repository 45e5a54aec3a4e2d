// Scoring a set of images of one task: FID and KID against the task's real test set (with the
// real-vs-real floor beside them) and the fitting capacity. Used by run evaluation and by
// `npm run eval -- --samples`.

import { fidFromStats, type KidResult } from './fid.js';
import { kidAsync, statsAsync } from './gram.js';
import type { ClassifyingExtractor, FeatureExtractor } from './features.js';
import { DEFAULT_FIT_STEPS, fittingCapacity, pseudoLabels, type FittingResult } from './fitting.js';
import { realFloor, taskReference, type Floor, type TaskReference } from './reference.js';
import type { EnsureOptions } from '../data/index.js';
import type { Device } from '../runtime/index.js';

export interface ScoreOptions {
  /** KID subsets (default 10) and subset size (default min(1000, n, nTest)). */
  kidSubsets?: number;
  kidSubsetSize?: number;
  /** Classifier steps for the fitting capacity; 0 skips it (default DEFAULT_FIT_STEPS). */
  fitSteps?: number;
  seed?: number;
  threads?: number;
  device?: Device;
}

export interface Score {
  task: string;
  /** Images scored. */
  n: number;
  /** Real test images they were compared with. */
  nReal: number;
  fid: number | null;
  kid: KidResult | null;
  fitting: FittingResult | null;
  floor: Floor | null;
  note?: string;
}

const sharedRefs = new WeakMap<FeatureExtractor, Map<string, Promise<TaskReference>>>();

/** Shared state of one evaluation: the extractors, and the real data of each task, loaded once. */
export class Scorer {
  private readonly refs = new Map<string, Promise<TaskReference>>();
  private readonly floors = new Map<string, Promise<Floor>>();

  constructor(
    /** Features for FID / KID (the LeNet or an external model). */
    readonly fx: FeatureExtractor,
    /** The LeNet, whose classifier labels generated samples for the fitting capacity. */
    readonly labeler: ClassifyingExtractor,
    readonly opts: ScoreOptions = {},
    readonly data: EnsureOptions = {},
  ) {}

  reference(task: string): Promise<TaskReference> {
    let r = this.refs.get(task);
    if (!r) {
      // Shared across scorers of the same extractor, so repeated evaluations load each task once.
      let shared = sharedRefs.get(this.fx);
      if (!shared) sharedRefs.set(this.fx, (shared = new Map()));
      const key = `${task}|${this.data.root ?? ''}`;
      r = shared.get(key);
      if (!r) {
        r = taskReference(this.fx, task, this.data);
        shared.set(key, r);
        r.catch(() => shared.delete(key));
      }
      this.refs.set(task, r);
    }
    return r;
  }

  private kidSize(n: number, nReal: number): number {
    return Math.min(this.opts.kidSubsetSize ?? 1000, n, nReal);
  }

  /** The real-vs-real floor of a task at sample count n (cached per task and n). */
  async floor(task: string, n: number): Promise<Floor> {
    const key = `${task}|${n}`;
    let f = this.floors.get(key);
    if (!f) {
      const ref = await this.reference(task);
      f = realFloor(this.fx, ref, n, { subsets: this.opts.kidSubsets, subsetSize: this.kidSize(n, ref.test.n), seed: this.opts.seed }, { steps: this.opts.fitSteps ?? DEFAULT_FIT_STEPS, seed: this.opts.seed, threads: this.opts.threads, device: this.opts.device }, this.labeler);
      this.floors.set(key, f);
    }
    return f;
  }

  async score(task: string, images: Float32Array, n: number, note?: string): Promise<Score> {
    const ref = await this.reference(task);
    if (n < 2) return { task, n, nReal: ref.test.n, fid: null, kid: null, fitting: null, floor: null, note: [note, `too few samples (${n}) to score`].filter(Boolean).join('; ') };
    const feats = await this.fx.features(images, n);
    const fid = fidFromStats(ref.testStats, await statsAsync(feats, this.fx.dim));
    const k = await kidAsync(ref.testFeatures, feats, this.fx.dim, { subsets: this.opts.kidSubsets, subsetSize: this.kidSize(n, ref.test.n), seed: this.opts.seed });
    let fitting: FittingResult | null = null;
    const steps = this.opts.fitSteps ?? DEFAULT_FIT_STEPS;
    if (steps > 0) {
      const labels = await pseudoLabels(this.labeler, task, images, n);
      fitting = await fittingCapacity({ images, labels, n }, ref.test, ref.classes, { steps, seed: this.opts.seed, threads: this.opts.threads, device: this.opts.device });
    }
    return { task, n, nReal: ref.test.n, fid, kid: k, fitting, floor: await this.floor(task, n), ...(note ? { note } : {}) };
  }
}

const f1 = (x: number) => x.toFixed(x < 10 ? 2 : 1);

/** Digits for KID values: its scale depends on the features' (about 0.01 for Inception, far more for the LeNet). */
export function kidDigits(...xs: number[]): number {
  const m = Math.max(...xs.map(Math.abs));
  return m >= 100 ? 1 : m >= 1 ? 3 : 4;
}

/** 'mean ± std' of a KID result. */
export function formatKid(k: KidResult): string {
  const d = kidDigits(k.mean, k.std);
  return `${k.mean.toFixed(d)} ± ${k.std.toFixed(d)}`;
}

/** One line: FID with sample counts and the floor, KID with its std, fitting capacity. */
export function formatScore(s: Score): string {
  if (s.fid === null) return `not scored${s.note ? ` (${s.note})` : ''}`;
  const parts = [`FID ${f1(s.fid)} (n=${s.n} samples vs ${s.nReal} test; real-vs-real floor ${s.floor ? `${f1(s.floor.fid)}: ${s.floor.nTrain} train vs ${s.floor.nTest} test` : 'n/a'})`];
  if (s.kid) parts.push(`KID ${formatKid(s.kid)} (${s.kid.subsets} subsets of ${s.kid.subsetSize}; floor ${s.floor ? formatKid(s.floor.kid) : 'n/a'})`);
  if (s.fitting) parts.push(`fitting capacity ${(100 * s.fitting.accuracy).toFixed(1)}% (classifier trained on ${s.fitting.nTrain} generated, tested on ${s.fitting.nTest} real, ${s.fitting.steps} steps)`);
  return parts.join('; ') + (s.note ? ` [${s.note}]` : '');
}
