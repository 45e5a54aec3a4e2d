// The student: a beta-VAE with a task-conditional prior, trained on each task's real data mixed
// with the teacher's samples of earlier tasks, and distilled from the teacher (its task
// posterior and its critic features), each part switchable in the config.

import * as ort from 'onnxruntime-node';
import { Graph } from '../graph/ir.js';
import type { EmittedModel } from '../graph/onnx.js';
import * as student from '../../graphs/student.js';
import { Rng } from '../util/rng.js';
import type { StudentConfig } from './config.js';
import { createSession, StepRunner, TensorStore, type RuntimeOptions } from './session.js';
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

export class Student {
  private constructor(
    readonly arch: student.StudentArch,
    readonly distill: student.DistillOptions,
    readonly store: TensorStore,
    readonly step: StepRunner,
    private readonly runtime: RuntimeOptions,
  ) {}

  static async create(c: StudentConfig, tasks: number, featureDim: number, seed: number, runtime: RuntimeOptions): Promise<Student> {
    const arch = studentArch(c, tasks);
    const d = distillOptions(c, featureDim);
    const g = new Graph();
    const step = student.buildStudentStep(g, arch, c.loss, c.train.batch, { kind: 'adam' }, d);
    const store = new TensorStore();
    store.declare(g, seed + 7);
    return new Student(arch, d, store, await StepRunner.create(step, store, { ...runtime, stepsPerRun: STUDENT_STEPS_PER_RUN }), runtime);
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

/** Shifts each 28x28 image by up to `max` pixels in x and y (zero fill). */
export function shiftViews(x: Float32Array, n: number, max: number, rng: Rng): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < n; i++) {
    const dy = rng.int(2 * max + 1) - max;
    const dx = rng.int(2 * max + 1) - max;
    for (let r = 0; r < 28; r++) {
      const sr = r - dy;
      if (sr < 0 || sr >= 28) continue;
      for (let c = 0; c < 28; c++) {
        const sc = c - dx;
        if (sc >= 0 && sc < 28) out[i * IMAGE + r * 28 + c] = x[i * IMAGE + sr * 28 + sc]!;
      }
    }
  }
  return out;
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
  currentTask: number;
  replay: ReplaySource[];
  /** Experts by the tasks they hold (for the teacher posterior), index = task. */
  experts: (Expert | null)[];
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
  for (let i = 0; i < p.realCount; i++) task[i * T + p.currentTask] = 1;
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
      const lam = betaSample(rng, c.replay.mixupAlpha);
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
    lr: c.train.lr,
  };
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
  for (let i = 0; i < b; i++) {
    const logits: number[] = [];
    for (let t = 0; t < T; t++) {
      const e = experts[t];
      logits.push(e ? (judged.get(e)!.scores[i]! - e.scoreStats.mean) / e.scoreStats.std / kdT : -Infinity);
    }
    const m = Math.max(...logits);
    const ex = logits.map((l) => (l === -Infinity ? 0 : Math.exp(l - m)));
    const sum = ex.reduce((a, v) => a + v, 0);
    ex.forEach((v, t) => (posterior[i * T + t] = v / sum));
    if (featureDim) {
      // The expert of the row's (largest) task supplies the features to match.
      let t = 0;
      for (let k = 1; k < T; k++) if (task[i * T + k]! > task[i * T + t]!) t = k;
      const e = experts[t] ?? distinct[0];
      if (e) features.set(judged.get(e)!.features.subarray(i * featureDim, (i + 1) * featureDim), i * featureDim);
    }
  }
  return { posterior, features };
}

function betaSample(rng: Rng, alpha: number): number {
  return rng.beta(alpha, alpha);
}
