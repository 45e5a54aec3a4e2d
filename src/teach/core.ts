// Teaching the student outside `npm run train` (in a browser tab, or in Node for the benchmark):
// the step graph comes from the same builder (graphs/student.ts), the batch is assembled as
// src/train/student.ts's studentFeeds does (real rows, replay of the other tasks, InfoNCE views,
// the anchor terms against a frozen copy), and any onnxruntime (web or node) runs it.
// Pure: no Node, no DOM, no onnxruntime import; the runtime comes in through `TeachRuntime`.
//
// What differs from the CLI: the teacher's distillation terms are off (the critics are not part
// of export/, and a task the visitor draws has no teacher expert), the Adam moments start at
// zero (export/ holds no optimizer state), and every task but the one being taught is kept:
// replayed, anchored and its prior row frozen (the CLI keeps the tasks before the current one).

import { Graph } from '../graph/ir.js';
import { initialize } from '../graph/init.js';
import { decodeModel, type EmittedModel, type Target } from '../graph/onnx.js';
import { NEXT, type StepGraph } from '../graph/step.js';
import { decodeCheckpoint as decodeCliCheckpoint, encodeCheckpoint as encodeCliCheckpoint, type CheckpointTensor } from '../formats/checkpoint.js';
import * as student from '../../graphs/student.js';
import { Rng } from '../util/rng.js';
import { shiftViews } from '../data/augment.js';

export { shiftViews };

export const IMAGE = 28 * 28;

export { CHECKPOINT_FORMAT } from '../formats/checkpoint.js';
export const STEP_NAME = 'student_step';

/**
 * The part of a run's student config (src/train/config.ts's StudentConfig, which fits it) the
 * teaching step reads; written out here so the browser bundle's types need nothing of Node.
 */
export interface TeachConfig {
  arch: { zDim: number; hidden: number; uDim: number };
  loss: { beta: number; klWarmup: number; temperature: number; contrastiveWeight: number };
  train: { batch: number; lr: number; maxShift: number };
  replay: { ratio: number | 'auto'; mixup: boolean; mixupAlpha: number };
  anchor: { decoder: boolean; decoderWeight: number; decoderBatch: number; encoder: boolean; encoderWeight: number; freezePrior: boolean };
}

export function teachArch(c: TeachConfig, tasks: number): student.StudentArch {
  return { zDim: c.arch.zDim, hidden: c.arch.hidden, tasks, uDim: c.arch.uDim };
}

export function teachAnchor(c: TeachConfig): student.AnchorOptions {
  return { betaInput: c.loss.klWarmup > 0, decoderRows: c.anchor.decoder ? c.anchor.decoderBatch : 0, encoder: c.anchor.encoder, freezePrior: c.anchor.freezePrior };
}

/** The student's training step for `tasks` task slots, built with the project's graph builder and lowered for `target`. */
export function buildTeachStep(c: TeachConfig, tasks: number, target: Target = 'cpu'): { graph: Graph; step: StepGraph } {
  const graph = new Graph();
  const step = student.buildStudentStep(graph, teachArch(c, tasks), c.loss, c.train.batch, { kind: 'adam' }, student.noDistill, teachAnchor(c), target);
  return { graph, step };
}

/** Float32 initializers of an ONNX model whose names start with one of `prefixes` (the baked weights of an exported model). */
export function bakedWeights(onnx: Uint8Array, prefixes: readonly string[]): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const t of decodeModel(onnx).graph?.initializer ?? []) {
    const name = t.name ?? '';
    if (!prefixes.some((p) => name.startsWith(p))) continue;
    if (t.dataType !== 1 || !t.rawData) throw new Error(`initializer '${name}' is not raw float32; export the run again with this version`);
    const raw = t.rawData;
    out.set(name, new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)));
  }
  return out;
}

/** The student's weights from export/: the decoder's and encoder's baked initializers and the manifest's prior. */
export function exportWeights(decoder: Uint8Array, encoder: Uint8Array, prior: { mu: number[][]; logvar: number[][] }): Map<string, Float32Array> {
  const w = new Map([...bakedWeights(decoder, ['dec.']), ...bakedWeights(encoder, ['enc.'])]);
  w.set('prior.mu', Float32Array.from(prior.mu.flat()));
  w.set('prior.logvar', Float32Array.from(prior.logvar.flat()));
  return w;
}

/**
 * The stored leaves (parameters, Adam moments) of `graph`, taken from `from` where it has them.
 * A leaf whose task dimension grew (a new task slot) keeps the old values in its leading block
 * and its new entries start from the leaf's initializer (zeros for Adam moments), so the old
 * tasks' outputs do not change: their one-hot never reaches the new slot.
 */
export function fitLeaves(graph: Graph, from: ReadonlyMap<string, Float32Array>, seed: number): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const leaf of graph.leaves.values()) {
    if (leaf.role === 'input') continue;
    const shape = leaf.value.shape;
    const fresh = initialize(leaf.init ?? { kind: 'zeros' }, shape, seed, leaf.name);
    const old = from.get(leaf.name);
    if (old) {
      if (old.length === fresh.length) fresh.set(old);
      else copyCorner(old, fresh, shape, leaf.name);
    } else if (leaf.role === 'param' && from.size) {
      throw new Error(`the saved student has no '${leaf.name}': it was trained with another configuration (student.arch) than this run's`);
    }
    out.set(leaf.name, fresh);
  }
  return out;
}

/** Copies `src` (the same rank, each dimension no larger, grown only along one axis) into the leading block of `dst`. */
function copyCorner(src: Float32Array, dst: Float32Array, shape: readonly number[], name: string): void {
  // Only one axis can have grown; find it from the sizes.
  for (let axis = 0; axis < shape.length; axis++) {
    const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
    const oldDim = src.length / (outer * inner);
    if (!Number.isInteger(oldDim) || oldDim > shape[axis]! || oldDim < 1) continue;
    for (let o = 0; o < outer; o++) {
      dst.set(src.subarray(o * oldDim * inner, (o + 1) * oldDim * inner), o * shape[axis]! * inner);
    }
    return;
  }
  throw new Error(`'${name}' has ${src.length} values saved but shape [${shape}] now: the saved student does not fit this run's model`);
}

/** A student checkpoint in the CLI's format (src/formats/checkpoint.ts): every stored leaf, the step counter, and the task names in the metadata. */
export function encodeCheckpoint(leaves: ReadonlyMap<string, Float32Array>, shapes: ReadonlyMap<string, readonly number[]>, step: number, meta: { run: string; tasks: string[] }): Uint8Array {
  const tensors = new Map<string, CheckpointTensor>();
  for (const [name, data] of leaves) tensors.set(name, { shape: [...shapes.get(name)!], data });
  return encodeCliCheckpoint(tensors, new Map([[STEP_NAME, step]]), { run: meta.run, tasks: JSON.stringify(meta.tasks), producer: 'lifelong-gen teach' });
}

export interface Checkpoint {
  leaves: Map<string, Float32Array>;
  step: number;
  run: string;
  tasks: string[];
}

export function decodeCheckpoint(bytes: Uint8Array, file = 'checkpoint.safetensors'): Checkpoint {
  let c: ReturnType<typeof decodeCliCheckpoint>;
  try {
    c = decodeCliCheckpoint(bytes, file);
  } catch (err) {
    // The format module's remedies speak of npm run train; here the remedy is another file.
    throw new Error(`${(err as Error).message.split('. ')[0]}; give a checkpoint.safetensors the teach panel downloaded`);
  }
  let tasks: unknown;
  try {
    tasks = JSON.parse(c.metadata.tasks ?? 'null');
  } catch {
    tasks = null;
  }
  if (!Array.isArray(tasks) || !tasks.every((t) => typeof t === 'string')) throw new Error(`${file} does not name its tasks (metadata 'tasks'); it was not written by the teach panel`);
  const leaves = new Map<string, Float32Array>();
  for (const [name, t] of c.tensors) leaves.set(name, t.data);
  return { leaves, step: c.counters.get(STEP_NAME) ?? 0, run: c.metadata.run ?? '', tasks };
}

/**
 * The servable decoder of these weights, as src/train/student.ts exports it (batch 64, symbolic
 * N); the cpu lowering by default, as export/ has it, since the download is for onnxruntime-node.
 */
export function exportDecoder(c: TeachConfig, tasks: number, leaves: ReadonlyMap<string, Float32Array>, target: Target = 'cpu'): EmittedModel {
  return student.emitDecoderInference(teachArch(c, tasks), 64, decoderWeights(leaves), true, target);
}

export function decoderWeights(leaves: ReadonlyMap<string, Float32Array>): Map<string, Float32Array> {
  return new Map([...leaves].filter(([n]) => n.startsWith('dec.') && !n.includes('.adam_')));
}

export function encoderWeights(leaves: ReadonlyMap<string, Float32Array>): Map<string, Float32Array> {
  return new Map([...leaves].filter(([n]) => n.startsWith('enc.') && !n.includes('.adam_')));
}

/** Prior rows as the export manifest holds them. */
export function priorRows(leaves: ReadonlyMap<string, Float32Array>, tasks: number, zDim: number): { mu: number[][]; logvar: number[][] } {
  const rows = (x: Float32Array) => Array.from({ length: tasks }, (_, t) => Array.from(x.subarray(t * zDim, (t + 1) * zDim)));
  return { mu: rows(leaves.get('prior.mu')!), logvar: rows(leaves.get('prior.logvar')!) };
}

// ---- running it

export interface TensorLike {
  readonly data: unknown;
  readonly dims: readonly number[];
}
export interface SessionLike {
  run(feeds: Record<string, TensorLike>): Promise<Record<string, TensorLike>>;
  release(): Promise<void>;
}
/** onnxruntime-web or onnxruntime-node, as the trainer needs them. */
export interface TeachRuntime {
  tensor(data: Float32Array, dims: readonly number[]): TensorLike;
  session(bytes: Uint8Array, kind: 'step' | 'inference'): Promise<SessionLike>;
  /**
   * The lowering of the graphs built for a kind of session, as its execution provider wants it
   * (targetForDevice: 'cpu' for onnxruntime's CPU provider, 'plain' for wasm, webgpu, cuda);
   * 'cpu' where absent.
   */
  target?(kind: 'step' | 'inference'): Target;
}

/** The lowering for a kind of session of `rt` ('cpu' where the runtime does not say). */
const loweringOf = (rt: TeachRuntime, kind: 'step' | 'inference'): Target => rt.target?.(kind) ?? 'cpu';

/** Draws k images in [0, 1] of one kept task. */
export type ReplaySampler = (k: number, rng: Rng) => Promise<Float32Array>;

export interface TeachOptions {
  config: TeachConfig;
  /** Task names by slot, the taught one included (a new task is the last slot). */
  tasks: string[];
  /** The slot being taught. */
  target: number;
  /** Stored leaves to start from (fitted to the step graph's shapes; missing moments start at zero). */
  leaves: ReadonlyMap<string, Float32Array>;
  /** Steps already taken (Adam's bias correction goes on from it). */
  step: number;
  /** The visitor's images of the taught task, [n, 784] in [0, 1]. */
  images: Float32Array;
  /** A teacher expert's generator (z [N, zDim] -> images in [0, 1]) for a kept task, where the run has one. */
  teacher?: (task: number) => { session: SessionLike; zDim: number } | undefined;
  seed: number;
}

export type Metrics = Record<string, number>;

/**
 * A teaching session: the step graph, its session, the stored leaves as runtime tensors fed back
 * step after step, and the frozen copy (the student as the session began) that the kept tasks'
 * replay and anchors come from.
 */
export class Teacher {
  readonly rng: Rng;
  /** Steps taken in this session (the KL warm-up counts from here, as the CLI counts per task). */
  sessionSteps = 0;
  private constructor(
    private readonly rt: TeachRuntime,
    readonly o: TeachOptions,
    readonly step: StepGraph,
    readonly shapes: Map<string, readonly number[]>,
    private readonly session: SessionLike,
    private readonly stored: Map<string, TensorLike>,
    private readonly frozen: { decoder: SessionLike; encoder: SessionLike | null; mu: Float32Array; logvar: Float32Array },
    private readonly replay: { task: number; sample: ReplaySampler }[],
    private sampler: SessionLike | null,
    public steps: number,
  ) {
    this.rng = new Rng(o.seed);
  }

  static async create(rt: TeachRuntime, o: TeachOptions): Promise<Teacher> {
    const T = o.tasks.length;
    if (!(o.target >= 0 && o.target < T)) throw new Error(`task slot ${o.target} is not one of the ${T} tasks`);
    if (o.images.length < IMAGE || o.images.length % IMAGE) throw new Error(`teaching needs at least one 28x28 image of the task (got ${o.images.length} values)`);
    const { graph, step } = buildTeachStep(o.config, T, loweringOf(rt, 'step'));
    const leaves = fitLeaves(graph, o.leaves, o.seed + 7);
    const shapes = new Map([...graph.leaves.values()].filter((l) => l.role !== 'input').map((l) => [l.name, l.value.shape] as const));
    const stored = new Map([...leaves].map(([n, d]) => [n, rt.tensor(d, shapes.get(n)!)] as const));
    const session = await rt.session(step.bytes, 'step');
    // The frozen copy: this session's starting point, as the CLI freezes the student before each task.
    const arch = teachArch(o.config, T);
    const decoder = await rt.session(student.emitDecoderInference(arch, 64, decoderWeights(leaves), true, loweringOf(rt, 'inference')).bytes, 'inference');
    const an = teachAnchor(o.config);
    const encoder = an.encoder ? await rt.session(student.emitEncoderInference(arch, o.config.train.batch, encoderWeights(leaves), false, loweringOf(rt, 'inference')).bytes, 'inference') : null;
    const frozen = { decoder, encoder, mu: leaves.get('prior.mu')!.slice(), logvar: leaves.get('prior.logvar')!.slice() };
    const replay: { task: number; sample: ReplaySampler }[] = [];
    const zd = o.config.arch.zDim;
    for (let t = 0; t < T; t++) {
      if (t === o.target) continue;
      const expert = o.teacher?.(t);
      if (expert) {
        replay.push({ task: t, sample: async (k, rng) => images(await expert.session.run({ z: rt.tensor(rng.fillNormal(new Float32Array(k * expert.zDim)), [k, expert.zDim]) })) });
      } else {
        // A task without a teacher expert (one taught in the page) is replayed from the frozen student.
        replay.push({ task: t, sample: async (k, rng) => {
          const { z, task } = priorDraw(frozen.mu, frozen.logvar, zd, T, Array(k).fill(t), rng);
          return images(await decoder.run({ z: rt.tensor(z, [k, zd]), task: rt.tensor(task, [k, T]) }));
        } });
      }
    }
    return new Teacher(rt, o, step, shapes, session, stored, frozen, replay, null, o.step);
  }

  get tasks(): number {
    return this.o.tasks.length;
  }

  /** The batch of one step, assembled as src/train/student.ts's studentFeeds does. */
  async feeds(): Promise<Record<string, TensorLike>> {
    const { config: c, target, images: real } = this.o;
    const rng = this.rng;
    const b = c.train.batch;
    const T = this.tasks;
    const zd = c.arch.zDim;
    const kept = this.replay.length;
    const ratio = c.replay.ratio === 'auto' ? kept / (kept + 1) : c.replay.ratio;
    const replay = ratio > 0 ? this.replay : [];
    const realCount = replay.length ? b - Math.round(b * ratio) : b;
    const n = real.length / IMAGE;
    const x = new Float32Array(b * IMAGE);
    const task = new Float32Array(b * T);
    for (let i = 0; i < realCount; i++) {
      const j = rng.int(n);
      x.set(real.subarray(j * IMAGE, (j + 1) * IMAGE), i * IMAGE);
      task[i * T + target] = 1;
    }
    let at = realCount;
    const per = replay.length ? Math.ceil((b - realCount) / replay.length) : 0;
    for (const r of replay) {
      const k = Math.min(per, b - at);
      if (k <= 0) break;
      x.set((await r.sample(k, rng)).subarray(0, k * IMAGE), at * IMAGE);
      for (let i = at; i < at + k; i++) task[i * T + r.task] = 1;
      at += k;
    }
    if (c.replay.mixup && replay.length && realCount) {
      for (let i = realCount; i < b; i++) {
        const j = rng.int(realCount);
        const lam = rng.beta(c.replay.mixupAlpha, c.replay.mixupAlpha);
        for (let q = 0; q < IMAGE; q++) x[i * IMAGE + q] = lam * x[i * IMAGE + q]! + (1 - lam) * x[j * IMAGE + q]!;
        for (let t = 0; t < T; t++) task[i * T + t] = lam * task[i * T + t]! + (1 - lam) * task[j * T + t]!;
      }
    }
    const f: Record<string, Float32Array> = {
      x,
      task,
      view1: shiftViews(x, b, c.train.maxShift, rng),
      view2: shiftViews(x, b, c.train.maxShift, rng),
      noise: rng.fillNormal(new Float32Array(b * zd)),
      lr: Float32Array.of(c.train.lr),
    };
    if (c.loss.klWarmup > 0) f.beta = Float32Array.of(c.loss.beta * Math.min(1, (this.sessionSteps + 1) / c.loss.klWarmup));
    const an = teachAnchor(c);
    const on = kept > 0;
    if (an.decoderRows) {
      const A = an.decoderRows;
      const order = Array.from({ length: A }, (_, i) => this.replay[i % Math.max(1, kept)]?.task ?? 0);
      const draw = priorDraw(this.frozen.mu, this.frozen.logvar, zd, T, order, rng, on);
      const target = on ? images(await this.frozen.decoder.run({ z: this.rt.tensor(draw.z, [A, zd]), task: this.rt.tensor(draw.task, [A, T]) })) : new Float32Array(A * IMAGE);
      Object.assign(f, { align_z: draw.z, align_task: draw.task, align_target: target, align_weight: Float32Array.of(on ? c.anchor.decoderWeight : 0) });
    }
    if (an.encoder) {
      const mask = new Float32Array(b);
      let mu = new Float32Array(b * zd);
      let logvar = new Float32Array(b * zd);
      if (on && this.frozen.encoder) {
        for (let i = realCount; i < b; i++) mask[i] = 1;
        const r = await this.frozen.encoder.run({ images: this.rt.tensor(x, [b, 1, 28, 28]) });
        mu = Float32Array.from(r.mu!.data as Float32Array);
        logvar = Float32Array.from(r.logvar!.data as Float32Array);
      }
      Object.assign(f, { anchor_mu: mu, anchor_logvar: logvar, anchor_mask: mask, anchor_weight: Float32Array.of(on ? c.anchor.encoderWeight : 0) });
    }
    if (an.freezePrior) {
      const free = new Float32Array(T);
      free[target] = 1;
      Object.assign(f, { prior_frozen_mu: this.frozen.mu, prior_frozen_logvar: this.frozen.logvar, prior_free: free });
    }
    const shapeOf = new Map(this.step.inputs.map((i) => [i.name, i.shape]));
    return Object.fromEntries(Object.entries(f).map(([k, v]) => [k, this.rt.tensor(v, shapeOf.get(k) ?? [v.length])]));
  }

  /** One training step; returns its metrics (loss, recon, kl, task_ce, infonce, align, anchor). */
  async train(): Promise<Metrics> {
    const inputs = await this.feeds();
    for (const [name, t] of this.stored) inputs[name] = t;
    inputs.step = this.rt.tensor(Float32Array.of(this.steps + 1), []);
    const out = await this.session.run(inputs);
    for (const name of this.step.updates) this.stored.set(name, out[name + NEXT]!);
    this.steps++;
    this.sessionSteps++;
    if (teachAnchor(this.o.config).freezePrior) this.restoreFrozenPrior();
    return Object.fromEntries(this.step.metrics.map((m) => [m, (out[m]!.data as Float32Array)[0]!]));
  }

  /** Adam's momentum would still move frozen rows that have none of this step's gradient: put them back (as Student.restoreFrozenPrior does). */
  private restoreFrozenPrior(): void {
    const zd = this.o.config.arch.zDim;
    for (const [name, frozen] of [['prior.mu', this.frozen.mu], ['prior.logvar', this.frozen.logvar]] as const) {
      const v = Float32Array.from(this.stored.get(name)!.data as Float32Array);
      for (let t = 0; t < this.tasks; t++) if (t !== this.o.target) v.set(frozen.subarray(t * zd, (t + 1) * zd), t * zd);
      this.stored.set(name, this.rt.tensor(v, [this.tasks, zd]));
    }
  }

  /** A copy of every stored leaf as it is now. */
  leaves(): Map<string, Float32Array> {
    return new Map([...this.stored].map(([n, t]) => [n, Float32Array.from(t.data as Float32Array)]));
  }

  checkpoint(run: string): Uint8Array {
    return encodeCheckpoint(this.leaves(), this.shapes, this.steps, { run, tasks: this.o.tasks });
  }

  /** n samples of each task for the progress view: the live weights through a decoder whose weights are inputs (no re-export). */
  async samples(feeds: { z: Float32Array; task: Float32Array }, n: number): Promise<Float32Array> {
    const arch = teachArch(this.o.config, this.tasks);
    if (!this.sampler) this.sampler = await this.rt.session(student.emitDecoderInference(arch, n, new Map(), false, loweringOf(this.rt, 'inference')).bytes, 'inference');
    const inputs: Record<string, TensorLike> = { z: this.rt.tensor(feeds.z, [n, arch.zDim]), task: this.rt.tensor(feeds.task, [n, this.tasks]) };
    for (const [name, t] of this.stored) if (name.startsWith('dec.') && !name.includes('.adam_')) inputs[name] = t;
    return images(await this.sampler.run(inputs));
  }

  /** A copy of one stored leaf. */
  read(name: string): Float32Array {
    return Float32Array.from(this.stored.get(name)!.data as Float32Array);
  }

  async release(): Promise<void> {
    await this.session.release();
    await this.frozen.decoder.release();
    await this.frozen.encoder?.release();
    await this.sampler?.release();
  }
}

function images(out: Record<string, TensorLike>): Float32Array {
  return out.images!.data as Float32Array;
}

/** z from the prior rows of the given tasks and their one-hots ([k, zDim], [k, T]); zeros when `draw` is false (no noise is drawn then, as in the CLI before any earlier task). */
function priorDraw(mu: Float32Array, logvar: Float32Array, zd: number, T: number, tasks: number[], rng: Rng, draw = true): { z: Float32Array; task: Float32Array } {
  const k = tasks.length;
  const z = new Float32Array(k * zd);
  const task = new Float32Array(k * T);
  if (!draw) return { z, task };
  for (let i = 0; i < k; i++) {
    const t = tasks[i]!;
    task[i * T + t] = 1;
    for (let j = 0; j < zd; j++) z[i * zd + j] = mu[t * zd + j]! + Math.exp(0.5 * logvar[t * zd + j]!) * rng.normal();
  }
  return { z, task };
}

/** src/train/export.ts's EXPORT_FORMAT (a test checks they agree). */
export const EXPORT_FORMAT = 'lifelong-gen-export/1';

/** An export/manifest.json for a taught decoder, so the downloaded files are an export folder that serving and evaluation read. */
/** Milliseconds of each of `steps` teaching steps after `warmup` untimed ones (the benchmark's measure, in Node and in the page). */
export async function timeSteps(t: Teacher, warmup: number, steps: number): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await t.train();
  const ms: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await t.train();
    ms.push(performance.now() - t0);
  }
  return ms;
}

export function exportManifest(a: { run: string; tasks: string[]; zDim: number; decoder: EmittedModel; sha256: string; prior: { mu: number[][]; logvar: number[][] } }) {
  const dims = (shape: number[]) => shape.map((d, i) => (i === 0 && d === 64 ? ('N' as const) : d));
  const io = (ts: EmittedModel['inputs']) => ts.map((t) => ({ ...t, shape: dims(t.shape) }));
  return {
    format: EXPORT_FORMAT,
    run: a.run,
    createdAt: new Date().toISOString(),
    tasks: a.tasks.map((name, index) => ({ name, index })),
    student: { zDim: a.zDim, decoder: { file: 'student_decoder.onnx', sha256: a.sha256, bytes: a.decoder.bytes.length, inputs: io(a.decoder.inputs), outputs: io(a.decoder.outputs) }, prior: a.prior },
  };
}
