// The teacher: a mixture of WGAN-GP experts. An expert owns a generator and a critic (one
// TensorStore, two step graphs); the manager adds an expert when no existing one fits a new
// task (FID above the threshold) and otherwise keeps training the closest one with replay.

import * as ort from 'onnxruntime-node';
import { Graph } from '../graph/ir.js';
import { type EmittedModel, targetForDevice } from '../graph/onnx.js';
import * as teacher from '../../graphs/teacher.js';
import { Rng } from '../util/rng.js';
import { lrDecayFactor, type TeacherConfig } from './config.js';
import { createSession, StepRunner, TensorStore, type RuntimeOptions } from '../runtime/index.js';

export const IMAGE = 784;
/** Store names of the generator's moving average: this prefix and the weight's name. */
export const EMA_PREFIX = 'ema.';

/** What the training loops need from evaluation: FID against cached real statistics, and a classifier. */
export interface SampleJudge {
  /** Statistics of real images (pixels in [0, 1]), cached under `key`. */
  realStats(key: string, images: Float32Array, n: number): Promise<void>;
  fid(images: Float32Array, n: number, key: string): Promise<number>;
  /** Predicted class per image: MNIST digits 0-9, Fashion classes 10-19. */
  classify(images: Float32Array, n: number): Promise<Int32Array>;
}

export function teacherArch(c: TeacherConfig): teacher.TeacherArch {
  return { zDim: c.arch.zDim, genWidth: c.arch.genWidth, criticWidth: c.arch.criticWidth, spectralNorm: c.arch.spectralNorm, attention: c.arch.attention, batchNorm: c.arch.batchNorm };
}

function training(c: TeacherConfig): teacher.TeacherTraining {
  return { batch: c.train.batch, gpLambda: c.train.gpLambda, optimizer: { kind: 'adam', beta1: c.train.beta1, beta2: c.train.beta2 } };
}

/** A session over a graph with weights baked in, rebuilt when the weights have changed. */
class Frozen {
  private session: ort.InferenceSession | null = null;
  private version = -1;
  constructor(private readonly build: () => EmittedModel, private readonly runtime: RuntimeOptions) {}
  async get(version: number): Promise<ort.InferenceSession> {
    if (!this.session || this.version !== version) {
      await this.session?.release();
      this.session = await createSession(this.build().bytes, this.runtime);
      this.version = version;
    }
    return this.session;
  }
}

export class Expert {
  /** Tasks this expert has learned, in order. */
  readonly tasks: string[] = [];
  /** FID on each of its tasks when it last finished training, by task name. */
  readonly fid = new Map<string, number>();
  /** Mean and spread of the critic's score on the expert's own samples (to compare critics). */
  scoreStats = { mean: 0, std: 1 };
  private readonly sampler: Frozen;
  private readonly criticInfer: Frozen;
  private readonly samplerBatch = 64;

  private constructor(
    readonly id: number,
    readonly arch: teacher.TeacherArch,
    readonly store: TensorStore,
    readonly criticStep: StepRunner,
    readonly generatorStep: StepRunner,
    runtime: RuntimeOptions,
  ) {
    const target = targetForDevice(runtime.device ?? 'cpu');
    this.sampler = new Frozen(() => teacher.emitGeneratorInference(this.arch, this.samplerBatch, this.generatorWeights(), true, target), runtime);
    this.criticInfer = new Frozen(() => teacher.emitCriticInference(this.arch, this.samplerBatch, this.criticWeights(), target), runtime);
  }

  static async create(id: number, c: TeacherConfig, seed: number, runtime: RuntimeOptions): Promise<Expert> {
    const arch = teacherArch(c);
    const t = training(c);
    const store = new TensorStore();
    const gc = new Graph();
    const critic = teacher.buildCriticStep(gc, arch, t, 'generator');
    const gg = new Graph();
    const gen = teacher.buildGeneratorStep(gg, arch, t);
    store.declare(gc, seed + 1000 * id);
    store.declare(gg, seed + 1000 * id);
    const e = new Expert(id, arch, store, await StepRunner.create(critic, store, runtime), await StepRunner.create(gen, store, runtime), runtime);
    if (c.train.emaKimg > 0) {
      for (const [name, w] of e.rawGeneratorWeights()) store.keep(EMA_PREFIX + name, w, store.specs.get(name)!.shape);
    }
    return e;
  }

  /** Whether the expert keeps a moving average of its generator (what it samples and exports then). */
  get hasEma(): boolean {
    return this.store.specs.has(EMA_PREFIX + 'G.fc.weight');
  }

  /**
   * One update of the generator's weight average after a generator step, as StyleGAN2-ADA's
   * training loop does it: half-life min(kimg * 1000, rampup * images seen) images. A new tensor
   * each time: a replay snapshot may hold the previous one.
   */
  updateEma(imagesSeen: number, batch: number, kimg: number, rampup: number): void {
    let nimg = kimg * 1000;
    if (rampup > 0) nimg = Math.min(nimg, imagesSeen * rampup);
    const beta = 0.5 ** (batch / Math.max(nimg, 1e-8));
    for (const [name, w] of this.rawGeneratorWeights()) {
      const key = EMA_PREFIX + name;
      const old = this.store.get(key).data as Float32Array;
      const next = new Float32Array(w.length);
      for (let i = 0; i < w.length; i++) next[i] = w[i]! + beta * (old[i]! - w[i]!);
      this.store.keep(key, next, this.store.specs.get(key)!.shape);
    }
  }

  get name(): string {
    return `expert${this.id}`;
  }

  /** Changes whenever a step has run, so frozen sessions know to rebuild. */
  private get version(): number {
    return this.criticStep.steps * 1_000_003 + this.generatorStep.steps;
  }

  /** The weights the expert samples and exports with: the moving average where it keeps one. */
  generatorWeights(): Map<string, Float32Array> {
    if (!this.hasEma) return this.rawGeneratorWeights();
    const out = new Map<string, Float32Array>();
    for (const name of this.store.specs.keys()) if (name.startsWith(EMA_PREFIX)) out.set(name.slice(EMA_PREFIX.length), this.store.read(name));
    return out;
  }

  /** The trained generator's weights (spectral norm applied). */
  rawGeneratorWeights(): Map<string, Float32Array> {
    return teacher.normalizedGeneratorWeights(this.arch, (k) => this.store.read(k));
  }


  criticWeights(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const name of this.store.specs.keys()) if (name.startsWith('D.') && !name.includes('.adam_')) out.set(name, this.store.read(name));
    return out;
  }

  /** The servable generator (z [N, zDim] -> images in [0, 1], batch symbolic). */
  exportGenerator(): EmittedModel {
    return teacher.emitGeneratorInference(this.arch, this.samplerBatch, this.generatorWeights(), true);
  }

  /** n samples with pixels in [0, 1], z drawn from `rng`. */
  async sample(n: number, rng: Rng): Promise<Float32Array> {
    const session = await this.sampler.get(this.version);
    const out = new Float32Array(n * IMAGE);
    for (let at = 0; at < n; at += this.samplerBatch) {
      const k = Math.min(this.samplerBatch, n - at);
      const z = rng.fillNormal(new Float32Array(k * this.arch.zDim));
      const r = await session.run({ z: new ort.Tensor('float32', z, [k, this.arch.zDim]) });
      out.set((r.images!.data as Float32Array).subarray(0, k * IMAGE), at * IMAGE);
    }
    return out;
  }

  /** Critic scores [n] and pooled critic features [n, F] of images in [0, 1] (n <= 64 per call is batched). */
  async judge(images: Float32Array, n: number): Promise<{ scores: Float32Array; features: Float32Array; featureDim: number }> {
    const session = await this.criticInfer.get(this.version);
    const b = this.samplerBatch;
    const f = 2 * this.arch.criticWidth;
    const scores = new Float32Array(n);
    const features = new Float32Array(n * f);
    for (let at = 0; at < n; at += b) {
      const k = Math.min(b, n - at);
      const x = new Float32Array(b * IMAGE);
      x.set(images.subarray(at * IMAGE, (at + k) * IMAGE));
      const r = await session.run({ images: new ort.Tensor('float32', x, [b, 1, 28, 28]) });
      scores.set((r.score!.data as Float32Array).subarray(0, k), at);
      features.set((r.features!.data as Float32Array).subarray(0, k * f), at * f);
    }
    return { scores, features, featureDim: f };
  }
}

export interface TeacherStepLog {
  iteration: number;
  critic_loss: number;
  generator_loss: number;
  wasserstein: number;
  gp: number;
  fid?: number;
}

/**
 * Trains an expert on a task for `iterations` generator iterations. `realBatch(k)` gives k real
 * images in [-1, 1]; `replay` (when the expert already holds tasks) gives k of its own earlier samples.
 */
export async function trainExpert(
  e: Expert,
  c: TeacherConfig,
  o: {
    iterations: number;
    realBatch: (k: number) => Float32Array;
    replay?: { fraction: number; batch: (k: number) => Promise<Float32Array> };
    rng: Rng;
    fidProbe?: () => Promise<number>;
    onStep: (log: TeacherStepLog) => void;
    shouldStop: () => boolean;
    /** The iteration to resume from (0 for a fresh phase). */
    start: number;
    onCheckpoint?: (iteration: number) => Promise<void>;
    checkpointEvery?: number;
  },
): Promise<number> {
  const b = c.train.batch;
  const kReplay = o.replay ? Math.round(b * o.replay.fraction) : 0;
  let it = o.start;
  while (it < o.iterations) {
    if (o.shouldStop()) break;
    const { generator: lrG, critic: lrD } = teacherLearningRates(c, it, o.iterations);
    let m: Record<string, number> = {};
    for (let k = 0; k < c.train.nCritic; k++) {
      const real = new Float32Array(b * IMAGE);
      real.set(o.realBatch(b - kReplay));
      if (kReplay) real.set(await o.replay!.batch(kReplay), (b - kReplay) * IMAGE);
      m = await e.criticStep.run({
        real,
        z: o.rng.fillNormal(new Float32Array(b * e.arch.zDim)),
        eps: o.rng.fillUniform(new Float32Array(b)),
        lr: lrD,
      });
    }
    const g = await e.generatorStep.run({ z: o.rng.fillNormal(new Float32Array(b * e.arch.zDim)), lr: lrG });
    it++;
    if (e.hasEma) e.updateEma(it * b, b, c.train.emaKimg, c.train.emaRampup);
    const log: TeacherStepLog = { iteration: it, critic_loss: m.loss!, generator_loss: g.loss!, wasserstein: m.wasserstein!, gp: m.gp! };
    if (o.fidProbe && (it % c.train.fidEvery === 0 || it === o.iterations)) log.fid = await o.fidProbe();
    o.onStep(log);
    if (o.onCheckpoint && o.checkpointEvery && it % o.checkpointEvery === 0 && it < o.iterations) await o.onCheckpoint(it);
  }
  return it;
}

/** The generator's and critic's learning rates for iteration `it` (0-based) of `total`. */
export function teacherLearningRates(c: TeacherConfig, it: number, total: number): { generator: number; critic: number } {
  const f = lrDecayFactor(c.train.lrDecay, it, total);
  return { generator: c.train.lr * f, critic: (c.train.criticLr ?? c.train.lr) * f };
}

/** Calibrates the critic's scores on the expert's own samples, so critics of different experts compare. */
export async function calibrateCritic(e: Expert, rng: Rng, n = 256): Promise<void> {
  const { scores } = await e.judge(await e.sample(n, rng), n);
  let mean = 0;
  for (const s of scores) mean += s / n;
  let v = 0;
  for (const s of scores) v += (s - mean) ** 2 / n;
  e.scoreStats = { mean, std: Math.sqrt(v) + 1e-6 };
}

export interface ExpertDecision {
  task: string;
  fids: Record<string, number>;
  samples: number;
  /** The threshold the chosen expert was held to (relative: the factor times its own-task FID). */
  threshold: number;
  /** Each expert's FID on its own tasks (the relative rule's reference). */
  ownFids?: Record<string, number>;
  action: 'new' | 'reuse' | 'first' | 'cap';
  expert: number;
}

/**
 * Picks the expert for a new task: the FID of every expert's samples against the task's data;
 * a new expert when the smallest exceeds the threshold (and the cap allows), else the closest.
 */
export async function chooseExpert(experts: readonly Expert[], task: string, c: TeacherConfig, judge: SampleJudge, statsKey: string, rng: Rng): Promise<ExpertDecision> {
  const samples = c.experts.fidSamples;
  if (experts.length === 0) return { task, fids: {}, samples, threshold: c.experts.fidThreshold, action: 'first', expert: 0 };
  const fids: Record<string, number> = {};
  for (const e of experts) fids[e.name] = await judge.fid(await e.sample(samples, rng), samples, statsKey);
  // The relative rule compares each expert with what it reaches on its own tasks, so an expert
  // that fits its own data at FID 100 is reused for a task it fits at 180 (factor 2).
  const own: Record<string, number> = {};
  for (const e of experts) {
    const v = e.tasks.map((t) => e.fid.get(t)).filter((x): x is number => x !== undefined);
    own[e.name] = v.length ? v.reduce((a, x) => a + x, 0) / v.length : c.experts.fidThreshold / c.experts.relativeFactor;
  }
  const relative = c.experts.threshold === 'relative';
  const thresholdOf = (e: Expert) => (relative ? c.experts.relativeFactor * own[e.name]! : c.experts.fidThreshold);
  const best = experts.reduce((a, e) => (fids[e.name]! / thresholdOf(e) < fids[a.name]! / thresholdOf(a) ? e : a));
  const threshold = thresholdOf(best);
  const base = { task, fids, samples, threshold, ...(relative ? { ownFids: own } : {}) };
  if (fids[best.name]! <= threshold) return { ...base, action: 'reuse', expert: best.id };
  if (experts.length >= c.experts.maxExperts) return { ...base, action: 'cap', expert: best.id };
  return { ...base, action: 'new', expert: experts.length };
}
