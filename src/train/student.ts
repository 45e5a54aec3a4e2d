// The student: a beta-VAE with a task-conditional prior, trained on each task's real data mixed
// with the teacher's samples of earlier tasks, and distilled from the teacher (its task
// posterior and its critic features), each part switchable in the config.

import * as ort from 'onnxruntime-node';
import { Graph } from '../graph/ir.js';
import { type EmittedModel, targetForDevice } from '../graph/onnx.js';
import * as student from '../../graphs/student.js';
import { Rng } from '../util/rng.js';
import { sampleMixLambdas, shiftViews } from '../data/augment.js';

export { shiftViews };
import { lrDecayFactor, type StudentConfig } from './config.js';
import { createSession, StepRunner, TensorStore, type RuntimeOptions } from '../runtime/index.js';
import { IMAGE, type Expert } from './teacher.js';

export function studentArch(c: StudentConfig, tasks: number): student.StudentArch {
  return { zDim: c.arch.zDim, hidden: c.arch.hidden, tasks, uDim: c.arch.uDim };
}

export function distillOptions(c: StudentConfig, featureDim: number): student.DistillOptions {
  return {
    posterior: c.distill.posterior,
    posteriorWeight: c.distill.posteriorWeight,
    featureDim: c.distill.features ? featureDim : 0,
    featureWeight: c.distill.featureWeight,
    weighted: c.distill.adaptiveWeights,
  };
}

/**
 * Student steps per onnxruntime run (StepRunner.runSteps): the step returns the student's 1.9M
 * parameters and both Adam moments (23 MB), which onnxruntime-node copies into fresh JavaScript
 * buffers on every run, so five steps to a run return them a fifth as often (student_step
 * 45.7 / 46.0 -> 42.7 / 41.8 ms per step in alternating benchmark runs; two to four steps gained
 * little, and the teacher's and feature net's smaller steps ran slower unrolled, so they take one
 * step per run).
 */
export const STUDENT_STEPS_PER_RUN = 5;

export function anchorOptions(c: StudentConfig): student.AnchorOptions {
  return { betaInput: c.loss.klWarmup > 0, decoderRows: c.anchor.decoder ? c.anchor.decoderBatch : 0, encoder: c.anchor.encoder, freezePrior: c.anchor.freezePrior };
}

/** Store names of the frozen copy: this prefix and the weight's name. */
export const ANCHOR_PREFIX = 'anchor.';

export class Student {
  private frozenSessions: { decoder: ort.InferenceSession; encoder: ort.InferenceSession } | null = null;

  private constructor(
    readonly arch: student.StudentArch,
    readonly distill: student.DistillOptions,
    readonly anchor: student.AnchorOptions,
    readonly store: TensorStore,
    readonly step: StepRunner,
    private readonly runtime: RuntimeOptions,
  ) {}

  static async create(c: StudentConfig, tasks: number, featureDim: number, seed: number, runtime: RuntimeOptions): Promise<Student> {
    const arch = studentArch(c, tasks);
    const d = distillOptions(c, featureDim);
    const an = anchorOptions(c);
    const g = new Graph();
    const step = student.buildStudentStep(g, arch, c.loss, c.train.batch, { kind: 'adam' }, d, an);
    const store = new TensorStore();
    store.declare(g, seed + 7);
    const s = new Student(arch, d, an, store, await StepRunner.create(step, store, { ...runtime, stepsPerRun: STUDENT_STEPS_PER_RUN }), runtime);
    if (s.anchored) s.freeze();
    return s;
  }

  /** Whether the student keeps a frozen copy of itself (for any anchor term). */
  get anchored(): boolean {
    return this.anchor.decoderRows > 0 || this.anchor.encoder || this.anchor.freezePrior;
  }

  /** The encoder, decoder and prior as they are now become the frozen copy (saved with the checkpoint). */
  freeze(): void {
    for (const name of [...this.store.specs.keys()]) {
      if (/^(enc|dec|prior)\./.test(name) && !name.includes('.adam_')) this.store.keep(ANCHOR_PREFIX + name, this.store.read(name), this.store.specs.get(name)!.shape);
    }
    void this.releaseFrozen();
  }

  private async releaseFrozen(): Promise<void> {
    const f = this.frozenSessions;
    this.frozenSessions = null;
    await f?.decoder.release();
    await f?.encoder.release();
  }

  private frozenWeights(prefix: string): Map<string, Float32Array> {
    return new Map([...this.weights(ANCHOR_PREFIX + prefix)].map(([name, w]) => [name.slice(ANCHOR_PREFIX.length), w]));
  }

  /** The frozen copy's prior rows. */
  frozenPrior(): { mu: Float32Array; logvar: Float32Array } {
    return { mu: this.store.read(ANCHOR_PREFIX + 'prior.mu'), logvar: this.store.read(ANCHOR_PREFIX + 'prior.logvar') };
  }

  /** Sessions over the frozen decoder (batch decoderRows) and encoder (the training batch). */
  async frozen(batch: number): Promise<{ decoder: ort.InferenceSession; encoder: ort.InferenceSession }> {
    if (!this.frozenSessions) {
      const target = targetForDevice(this.runtime.device ?? 'cpu');
      const dec = student.emitDecoderInference(this.arch, Math.max(1, this.anchor.decoderRows), this.frozenWeights('dec.'), false, target);
      const enc = student.emitEncoderInference(this.arch, batch, this.frozenWeights('enc.'), false, target);
      this.frozenSessions = { decoder: await createSession(dec.bytes, this.runtime), encoder: await createSession(enc.bytes, this.runtime) };
    }
    return this.frozenSessions;
  }

  /** Puts the frozen copy's values back into the frozen prior rows (tasks before `current`). */
  restoreFrozenPrior(current: number): void {
    if (!this.anchor.freezePrior || current === 0) return;
    const f = this.frozenPrior();
    const zd = this.arch.zDim;
    for (const [name, frozen] of [['prior.mu', f.mu], ['prior.logvar', f.logvar]] as const) {
      const v = this.store.read(name);
      v.set(frozen.subarray(0, current * zd));
      this.store.keep(name, v, this.store.specs.get(name)!.shape);
    }
  }

  weights(prefix: string): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const name of this.store.specs.keys()) if (name.startsWith(prefix) && !name.includes('.adam_')) out.set(name, this.store.read(name));
    return out;
  }

  exportDecoder(n = 64): EmittedModel {
    return student.emitDecoderInference(this.arch, n, this.weights('dec.'), true);
  }

  exportEncoder(n = 64): EmittedModel {
    return student.emitEncoderInference(this.arch, n, this.weights('enc.'), true);
  }

  prior(): { mu: number[][]; logvar: number[][] } {
    const mu = this.store.read('prior.mu');
    const lv = this.store.read('prior.logvar');
    const rows = (x: Float32Array) => Array.from({ length: this.arch.tasks }, (_, t) => Array.from(x.subarray(t * this.arch.zDim, (t + 1) * this.arch.zDim)));
    return { mu: rows(mu), logvar: rows(lv) };
  }

  /** n samples of task `t` from the prior p(z|u=t), pixels in [0, 1]. */
  async sample(t: number, n: number, rng: Rng): Promise<Float32Array> {
    const session = await createSession(this.exportDecoder(Math.min(n, 64)).bytes, this.runtime);
    const { mu, logvar } = this.prior();
    const out = new Float32Array(n * IMAGE);
    const zd = this.arch.zDim;
    for (let at = 0; at < n; at += 64) {
      const k = Math.min(64, n - at);
      const z = new Float32Array(k * zd);
      for (let i = 0; i < k; i++) for (let j = 0; j < zd; j++) z[i * zd + j] = mu[t]![j]! + Math.exp(0.5 * logvar[t]![j]!) * rng.normal();
      const task = new Float32Array(k * this.arch.tasks);
      for (let i = 0; i < k; i++) task[i * this.arch.tasks + t] = 1;
      const r = await session.run({ z: new ort.Tensor('float32', z, [k, zd]), task: new ort.Tensor('float32', task, [k, this.arch.tasks]) });
      out.set(r.images!.data as Float32Array, at * IMAGE);
    }
    await session.release();
    return out;
  }
}

/** The distillation temperature over a phase: a linear schedule, or adaptive to the student's KL to the teacher. */
export class Temperature {
  private t: number;
  private reference: number | null = null;
  constructor(private readonly c: StudentConfig['distill']['temperature']) {
    this.t = c.start;
  }
  value(progress: number): number {
    return this.c.kind === 'linear' ? this.c.start + (this.c.end - this.c.start) * progress : this.t;
  }
  /** What a checkpoint keeps of the adaptive rule, so that a resumed phase goes on from it. */
  getState(): { t: number; reference: number | null } {
    return { t: this.t, reference: this.reference };
  }
  setState(s: { t: number; reference: number | null }): void {
    this.t = s.t;
    this.reference = s.reference;
  }
  /** Adaptive rule: soften (raise T) while the KL is above its value at the start of the phase, sharpen below it. */
  observe(kl: number | undefined): void {
    if (this.c.kind !== 'adaptive' || kl === undefined || !Number.isFinite(kl)) return;
    this.reference ??= kl;
    this.t = Math.min(this.c.max, Math.max(this.c.min, this.t * (kl > this.reference ? 1.01 : 0.99)));
  }
}

export interface ReplaySource {
  task: number;
  expert: Expert;
  /** Weight of its samples in the loss (adaptive weighting by expert quality). */
  weight: number;
}

export interface StudentBatchParts {
  /** Real images of the current task in [0, 1]. */
  real: Float32Array;
  realCount: number;
  /** The task of each real row (joint mode); absent: all currentTask. */
  realTasks?: Int32Array;
  /** The task of the real rows; the replayed ones are earlier tasks. */
  currentTask: number;
  replay: ReplaySource[];
  /** Experts by the tasks they hold (for the teacher posterior), index = task. */
  experts: (Expert | null)[];
  /** Step within the task (for the KL warm-up). */
  step: number;
  /** The stage's student steps (for the learning-rate decay). */
  total: number;
}

/** The learning rate of step `step` (0-based) of a stage of `total` student steps. */
export function studentLr(c: StudentConfig, step: number, total: number): number {
  return c.train.lr * lrDecayFactor(c.train.lrDecay, step, total);
}

/**
 * One student batch: current real data plus teacher samples of earlier tasks, views for
 * InfoNCE, noise, and the distillation targets.
 */
export async function studentFeeds(s: Student, c: StudentConfig, p: StudentBatchParts, kdT: number, rng: Rng): Promise<Record<string, Float32Array | number>> {
  const b = c.train.batch;
  const T = s.arch.tasks;
  const x = new Float32Array(b * IMAGE);
  const task = new Float32Array(b * T);
  const weight = new Float32Array(b).fill(1);
  x.set(p.real.subarray(0, p.realCount * IMAGE));
  for (let i = 0; i < p.realCount; i++) task[i * T + (p.realTasks?.[i] ?? p.currentTask)] = 1;
  // Replay: the remaining rows, split evenly over earlier tasks.
  let at = p.realCount;
  const per = p.replay.length ? Math.ceil((b - p.realCount) / p.replay.length) : 0;
  for (const r of p.replay) {
    const k = Math.min(per, b - at);
    if (k <= 0) break;
    x.set(await r.expert.sample(k, rng), at * IMAGE);
    for (let i = at; i < at + k; i++) {
      task[i * T + r.task] = 1;
      weight[i] = r.weight;
    }
    at += k;
  }
  if (c.replay.mixup && p.replay.length && p.realCount) {
    // Mix each replayed row with a random real row; the task input becomes the same mixture.
    for (let i = p.realCount; i < b; i++) {
      const j = rng.int(p.realCount);
      const lam = sampleMixLambdas(1, c.replay.mixupAlpha, rng)[0]!;
      for (let q = 0; q < IMAGE; q++) x[i * IMAGE + q] = lam * x[i * IMAGE + q]! + (1 - lam) * x[j * IMAGE + q]!;
      for (let t = 0; t < T; t++) task[i * T + t] = lam * task[i * T + t]! + (1 - lam) * task[j * T + t]!;
    }
  }
  const feeds: Record<string, Float32Array | number> = {
    x,
    task,
    view1: shiftViews(x, b, c.train.maxShift, rng),
    view2: shiftViews(x, b, c.train.maxShift, rng),
    noise: rng.fillNormal(new Float32Array(b * s.arch.zDim)),
    lr: studentLr(c, p.step, p.total),
  };
  if (s.anchor.betaInput) feeds.beta = c.loss.beta * Math.min(1, (p.step + 1) / c.loss.klWarmup);
  Object.assign(feeds, await anchorFeeds(s, c, p, x, b, rng));
  if (s.distill.weighted) feeds.weight = weight;
  if (s.distill.posterior || s.distill.featureDim) {
    const { posterior, features } = await teacherTargets(p.experts, x, b, task, T, kdT, s.distill.featureDim);
    if (s.distill.posterior) {
      feeds.teacher_posterior = posterior;
      feeds.kd_temperature = kdT;
    }
    if (s.distill.featureDim) feeds.teacher_features = features;
  }
  return feeds;
}

/**
 * The anchor terms' inputs: z from earlier tasks' frozen priors with the frozen decoder's
 * probabilities, the frozen encoder's posterior on the batch with the replayed rows marked, and
 * the frozen prior rows. Before any earlier task they are zeros with weight 0.
 */
async function anchorFeeds(s: Student, c: StudentConfig, p: StudentBatchParts, x: Float32Array, b: number, rng: Rng): Promise<Record<string, Float32Array | number>> {
  const an = s.anchor;
  const T = s.arch.tasks;
  const zd = s.arch.zDim;
  const k = p.currentTask;
  const feeds: Record<string, Float32Array | number> = {};
  if (!s.anchored) return feeds;
  const prior = s.frozenPrior();
  const frozen = k > 0 && (an.decoderRows || an.encoder) ? await s.frozen(b) : null;
  if (an.decoderRows) {
    const A = an.decoderRows;
    const z = new Float32Array(A * zd);
    const task = new Float32Array(A * T);
    let target = new Float32Array(A * IMAGE);
    if (frozen) {
      for (let i = 0; i < A; i++) {
        const t = i % k; // earlier tasks in turn
        task[i * T + t] = 1;
        for (let j = 0; j < zd; j++) z[i * zd + j] = prior.mu[t * zd + j]! + Math.exp(0.5 * prior.logvar[t * zd + j]!) * rng.normal();
      }
      const r = await frozen.decoder.run({ z: new ort.Tensor('float32', z, [A, zd]), task: new ort.Tensor('float32', task, [A, T]) });
      target = Float32Array.from(r.images!.data as Float32Array);
    }
    Object.assign(feeds, { align_z: z, align_task: task, align_target: target, align_weight: frozen ? c.anchor.decoderWeight : 0 });
  }
  if (an.encoder) {
    const mask = new Float32Array(b);
    let mu = new Float32Array(b * zd);
    let logvar = new Float32Array(b * zd);
    if (frozen) {
      for (let i = p.realCount; i < b; i++) mask[i] = 1;
      const r = await frozen.encoder.run({ images: new ort.Tensor('float32', x, [b, 1, 28, 28]) });
      mu = Float32Array.from(r.mu!.data as Float32Array);
      logvar = Float32Array.from(r.logvar!.data as Float32Array);
    }
    Object.assign(feeds, { anchor_mu: mu, anchor_logvar: logvar, anchor_mask: mask, anchor_weight: frozen ? c.anchor.encoderWeight : 0 });
  }
  if (an.freezePrior) {
    const free = new Float32Array(T);
    for (let t = 0; t < T; t++) free[t] = t >= k ? 1 : 0;
    Object.assign(feeds, { prior_frozen_mu: prior.mu, prior_frozen_logvar: prior.logvar, prior_free: free });
  }
  return feeds;
}

/**
 * The teacher's task posterior for each image: a softmax at temperature T over tasks of the
 * calibrated critic score of the expert holding each task (tasks not yet learned excluded);
 * and the critic features of the expert holding the row's task.
 */
async function teacherTargets(experts: (Expert | null)[], x: Float32Array, b: number, task: Float32Array, T: number, kdT: number, featureDim: number) {
  const posterior = new Float32Array(b * T);
  const features = new Float32Array(b * featureDim);
  const distinct = [...new Set(experts.filter((e): e is Expert => !!e))];
  const judged = new Map<Expert, Awaited<ReturnType<Expert['judge']>>>();
  for (const e of distinct) judged.set(e, await e.judge(x, b));
  // A softmax over experts of their calibrated critic scores: the critics tell experts apart,
  // not the tasks one expert holds, so an expert's share goes to the row's own task where the
  // expert holds it, and evenly over its tasks otherwise.
  const held = new Map<Expert, number[]>();
  for (let t = 0; t < T; t++) {
    const e = experts[t];
    if (e) held.set(e, [...(held.get(e) ?? []), t]);
  }
  for (let i = 0; i < b; i++) {
    let own = 0;
    for (let t = 1; t < T; t++) if (task[i * T + t]! > task[i * T + own]!) own = t;
    const logits = distinct.map((e) => (judged.get(e)!.scores[i]! - e.scoreStats.mean) / e.scoreStats.std / kdT);
    const m = Math.max(...logits);
    const ex = logits.map((l) => Math.exp(l - m));
    const sum = ex.reduce((a, v) => a + v, 0);
    distinct.forEach((e, j) => {
      const ts = held.get(e)!;
      if (ts.includes(own)) posterior[i * T + own] += ex[j]! / sum;
      else for (const t of ts) posterior[i * T + t] += ex[j]! / sum / ts.length;
    });
    if (featureDim) {
      // The expert of the row's (largest) task supplies the features to match.
      const e = experts[own] ?? distinct[0];
      if (e) features.set(judged.get(e)!.features.subarray(i * featureDim, (i + 1) * featureDim), i * featureDim);
    }
  }
  return { posterior, features };
}

