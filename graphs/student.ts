// Student: a beta-VAE with a task-conditional prior p(z|u), a task head q(u|x) and an InfoNCE
// term over two augmented views, as in docs/models.md.

import { Graph, type Value } from '../src/graph/ir.js';
import * as o from '../src/graph/ops.js';
import * as nn from '../src/graph/nn.js';
import { buildTrainStep, type StepGraph } from '../src/graph/step.js';
import { emitModel, type EmittedModel, type Target } from '../src/graph/onnx.js';
import type { OptimizerSpec } from '../src/graph/optim.js';

export interface StudentArch {
  zDim: number;
  tasks: number;
  hidden: number;
  /** Size of a learned task embedding fed to the decoder instead of the one-hot (0: one-hot). */
  uDim?: number;
}

export interface StudentLoss {
  beta: number;
  temperature: number;
  contrastiveWeight: number;
}

export const referenceStudent: StudentArch = { zDim: 32, tasks: 2, hidden: 256 };
export const referenceStudentLoss: StudentLoss = { beta: 4, temperature: 0.5, contrastiveWeight: 1 };

export interface EncoderParams { c1: nn.Conv2d; c2: nn.Conv2d; fc: nn.Linear; head: nn.Linear; task: nn.Linear }
export interface DecoderParams { fc1: nn.Linear; fc2: nn.Linear; ct1: nn.Conv2d; ct2: nn.Conv2d; embed?: Value }
export interface PriorParams { mu: Value; logvar: Value }

export function encoderParams(g: Graph, a: StudentArch): EncoderParams {
  return {
    c1: nn.conv2dParams(g, 'enc.c1', 1, 32, 4, 2, 1),
    c2: nn.conv2dParams(g, 'enc.c2', 32, 64, 4, 2, 1),
    fc: nn.linearParams(g, 'enc.fc', 64 * 7 * 7, a.hidden),
    head: nn.linearParams(g, 'enc.head', a.hidden, 2 * a.zDim),
    task: nn.linearParams(g, 'enc.task', a.hidden, a.tasks),
  };
}

export function decoderParams(g: Graph, a: StudentArch): DecoderParams {
  return {
    embed: a.uDim ? g.param('dec.task_embedding', [a.tasks, a.uDim], { kind: 'normal', std: 1 }) : undefined,
    fc1: nn.linearParams(g, 'dec.fc1', a.zDim + (a.uDim || a.tasks), a.hidden),
    fc2: nn.linearParams(g, 'dec.fc2', a.hidden, 64 * 7 * 7),
    ct1: nn.convTranspose2dParams(g, 'dec.ct1', 64, 32, 4, 2, 1),
    ct2: nn.convTranspose2dParams(g, 'dec.ct2', 32, 1, 4, 2, 1),
  };
}

export function priorParams(g: Graph, a: StudentArch): PriorParams {
  return {
    mu: g.param('prior.mu', [a.tasks, a.zDim], { kind: 'normal', std: 1 }),
    logvar: g.param('prior.logvar', [a.tasks, a.zDim], { kind: 'zeros' }),
  };
}

export interface Encoded { mu: Value; logvar: Value; taskLogits: Value; h: Value }

export function encode(x: Value, p: EncoderParams): Encoded {
  const n = x.shape[0]!;
  let h = o.relu(nn.conv2d(x, p.c1)); // [N, 32, 14, 14]
  h = o.relu(nn.conv2d(h, p.c2)); // [N, 64, 7, 7]
  h = o.relu(nn.linear(nn.flatten(h), p.fc)); // [N, hidden]
  const stats = nn.linear(h, p.head); // [N, 2z]
  const z = stats.shape[1]! / 2;
  return {
    mu: o.slice(stats, [0, 0], [n, z]),
    logvar: o.slice(stats, [0, z], [n, 2 * z]),
    taskLogits: nn.linear(h, p.task),
    h,
  };
}

/** Pixel logits [N, 1, 28, 28] from z [N, zDim] and the task one-hot [N, T]. */
export function decode(z: Value, task: Value, p: DecoderParams): Value {
  const u = p.embed ? o.gemm(task, p.embed) : task; // [N, uDim] or the one-hot [N, T]
  let h = o.relu(nn.linear(o.concat([z, u], 1), p.fc1));
  h = o.relu(nn.linear(h, p.fc2));
  h = nn.unflatten(h, [64, 7, 7]); // [N, 64, 7, 7]
  h = o.relu(nn.convTranspose2d(h, p.ct1)); // [N, 32, 14, 14]
  return nn.convTranspose2d(h, p.ct2); // [N, 1, 28, 28]
}

/** KL(N(mu, e^logvar) || N(pmu, e^plogvar)) summed over latent dims, averaged over the batch. */
export function gaussianKl(mu: Value, logvar: Value, pmu: Value, plogvar: Value): Value {
  const d = o.sub(mu, pmu);
  const t = o.div(o.add(o.exp(logvar), o.mul(d, d)), o.exp(plogvar));
  const kl = o.mul(o.add(o.sub(plogvar, logvar), o.sub(t, 1)), 0.5);
  return o.div(o.sumAll(kl), mu.shape[0]!);
}

/** InfoNCE over two views: row i of view 1 should pick row i of view 2 among the batch. */
export function infoNce(m1: Value, m2: Value, temperature: number): Value {
  const n = m1.shape[0]!;
  const unit = (m: Value) => o.div(m, nn.l2Norm(m, [1], 1e-12));
  const sim = o.div(o.gemm(unit(m1), unit(m2), 0, 1), temperature); // [N, N]
  const eye = m1.graph.constant(Float32Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0)), [n, n]);
  return nn.crossEntropy(sim, eye);
}

export interface StudentBatch {
  x: Value;
  task: Value;
  view1: Value;
  view2: Value;
  noise: Value;
  /** Per-sample weight [B, 1] (adaptive weighting of teacher samples); absent: all 1. */
  weight?: Value;
  /** Distillation targets: the teacher's task posterior [B, T] and the distillation temperature (scalar). */
  teacherPosterior?: Value;
  kdTemperature?: Value;
  /** The teacher critic's pooled features [B, F]. */
  teacherFeatures?: Value;
  /** KL weight this step (a warm-up schedule); absent: the loss's beta. */
  beta?: Value;
  /** Replay alignment: z [A, zDim], task one-hot [A, T], the frozen decoder's probabilities [A, 1, 28, 28], weight (scalar; 0 before any earlier task). */
  alignZ?: Value;
  alignTask?: Value;
  alignTarget?: Value;
  alignWeight?: Value;
  /** Encoder anchor: the frozen encoder's mu and logvar [B, zDim] on the batch, the rows it applies to [B, 1], weight (scalar). */
  anchorMu?: Value;
  anchorLogvar?: Value;
  anchorMask?: Value;
  anchorWeight?: Value;
  /** Frozen prior rows: their values [T, zDim] and which rows train [T, 1] (1) or stay frozen (0). */
  priorFrozenMu?: Value;
  priorFrozenLogvar?: Value;
  priorFree?: Value;
}

export interface DistillOptions {
  posterior: boolean;
  posteriorWeight: number;
  /** Width of the teacher features to match (0: off). */
  featureDim: number;
  featureWeight: number;
  weighted: boolean;
}

/** The step's optional inputs: the KL weight's schedule and what anchors the student to a frozen copy of itself taken before the current task. */
export interface AnchorOptions {
  /** The KL weight as an input (a warm-up) instead of the constant beta. */
  betaInput: boolean;
  /** Rows of replay alignment per step (0: off): z from earlier tasks' priors, the frozen decoder's probabilities as targets. */
  decoderRows: number;
  /** The encoder's posterior on replayed rows matched to the frozen encoder's. */
  encoder: boolean;
  /** Earlier tasks' prior rows taken from an input instead of the parameters. */
  freezePrior: boolean;
}

export const noAnchor: AnchorOptions = { betaInput: false, decoderRows: 0, encoder: false, freezePrior: false };

export const noDistill: DistillOptions = { posterior: false, posteriorWeight: 0, featureDim: 0, featureWeight: 0, weighted: false };

export function studentInputs(g: Graph, a: StudentArch, batch: number, d: DistillOptions = noDistill, an: AnchorOptions = noAnchor): StudentBatch {
  const A = an.decoderRows;
  return {
    ...(an.betaInput ? { beta: g.input('beta', []) } : {}),
    ...(A ? { alignZ: g.input('align_z', [A, a.zDim]), alignTask: g.input('align_task', [A, a.tasks]), alignTarget: g.input('align_target', [A, 1, 28, 28]), alignWeight: g.input('align_weight', []) } : {}),
    ...(an.encoder ? { anchorMu: g.input('anchor_mu', [batch, a.zDim]), anchorLogvar: g.input('anchor_logvar', [batch, a.zDim]), anchorMask: g.input('anchor_mask', [batch, 1]), anchorWeight: g.input('anchor_weight', []) } : {}),
    ...(an.freezePrior ? { priorFrozenMu: g.input('prior_frozen_mu', [a.tasks, a.zDim]), priorFrozenLogvar: g.input('prior_frozen_logvar', [a.tasks, a.zDim]), priorFree: g.input('prior_free', [a.tasks, 1]) } : {}),
    x: g.input('x', [batch, 1, 28, 28]),
    task: g.input('task', [batch, a.tasks]),
    view1: g.input('view1', [batch, 1, 28, 28]),
    view2: g.input('view2', [batch, 1, 28, 28]),
    noise: g.input('noise', [batch, a.zDim]),
    weight: d.weighted ? g.input('weight', [batch, 1]) : undefined,
    teacherPosterior: d.posterior ? g.input('teacher_posterior', [batch, a.tasks]) : undefined,
    kdTemperature: d.posterior ? g.input('kd_temperature', []) : undefined,
    teacherFeatures: d.featureDim ? g.input('teacher_features', [batch, d.featureDim]) : undefined,
  };
}

/** Per-sample values [B, 1] averaged with the batch's weights (plain mean when unweighted). */
function weightedMean(perSample: Value, weight: Value | undefined): Value {
  const n = perSample.shape[0]!;
  return weight ? o.div(o.sumAll(o.mul(perSample, weight)), o.add(o.sumAll(weight), 1e-8)) : o.div(o.sumAll(perSample), n);
}

export function studentLoss(b: StudentBatch, enc: EncoderParams, dec: DecoderParams, prior: PriorParams, l: StudentLoss, d: DistillOptions = noDistill, proj?: nn.Linear): Record<string, Value> {
  const n = b.x.shape[0]!;
  // One encoder pass over the batch and both views: larger convolutions run faster than three small ones.
  const all = encode(o.concat([b.x, b.view1, b.view2], 0), enc);
  const rows = (v: Value, i: number) => o.slice(v, [i * n, 0], [(i + 1) * n, v.shape[1]!]);
  const q = { mu: rows(all.mu, 0), logvar: rows(all.logvar, 0), taskLogits: rows(all.taskLogits, 0), h: rows(all.h, 0) };
  const z = o.add(q.mu, o.mul(o.exp(o.mul(q.logvar, 0.5)), b.noise));
  const A = b.alignZ ? b.alignZ.shape[0]! : 0;
  // The alignment rows go through the decoder with the batch: one larger pass runs faster than two.
  const decoded = A ? decode(o.concat([z, b.alignZ!], 0), o.concat([b.task, b.alignTask!], 0), dec) : decode(z, b.task, dec);
  const logits = A ? o.slice(decoded, [0, 0, 0, 0], [n, 1, 28, 28]) : decoded;
  const bce = o.reduceSum(o.reshape(o.sub(nn.softplus(logits), o.mul(b.x, logits)), [n, 784]), [1], 1); // [B, 1]
  const recon = weightedMean(bce, b.weight);
  // Frozen rows come from the inputs, so no gradient reaches them.
  const frozenOr = (p: Value, frozen: Value | undefined) => (frozen && b.priorFree ? o.add(o.mul(p, b.priorFree), o.mul(frozen, o.sub(1, b.priorFree))) : p);
  const pmu = o.gemm(b.task, frozenOr(prior.mu, b.priorFrozenMu));
  const plv = o.gemm(b.task, frozenOr(prior.logvar, b.priorFrozenLogvar));
  const dz = o.sub(q.mu, pmu);
  const ratio = o.div(o.add(o.exp(q.logvar), o.mul(dz, dz)), o.exp(plv));
  const klPer = o.mul(o.reduceSum(o.add(o.sub(plv, q.logvar), o.sub(ratio, 1)), [1], 1), 0.5); // [B, 1]
  const kl = weightedMean(klPer, b.weight);
  const cePer = o.neg(o.reduceSum(o.mul(nn.logSoftmax(q.taskLogits), b.task), [1], 1)); // [B, 1]
  const taskCe = weightedMean(cePer, b.weight);
  const nce = infoNce(rows(all.mu, 1), rows(all.mu, 2), l.temperature);
  let loss = o.add(o.add(recon, o.mul(kl, b.beta ?? l.beta)), o.add(taskCe, o.mul(nce, l.contrastiveWeight)));
  const terms: Record<string, Value> = { recon, kl, task_ce: taskCe, infonce: nce };
  if (A && b.alignTarget && b.alignWeight) {
    // BCE of the decoder's logits against the frozen decoder's probabilities, summed over pixels.
    const al = o.slice(decoded, [n, 0, 0, 0], [n + A, 1, 28, 28]);
    const per = o.reduceSum(o.reshape(o.sub(nn.softplus(al), o.mul(b.alignTarget, al)), [A, 784]), [1], 1);
    const align = o.mul(o.div(o.sumAll(per), A), b.alignWeight);
    loss = o.add(loss, align);
    terms.align = align;
  }
  if (b.anchorMu && b.anchorLogvar && b.anchorMask && b.anchorWeight) {
    // KL(q(z|x) || q_frozen(z|x)) on the rows the mask selects (replayed images).
    const d2 = o.sub(q.mu, b.anchorMu);
    const r = o.div(o.add(o.exp(q.logvar), o.mul(d2, d2)), o.exp(b.anchorLogvar));
    const per = o.mul(o.reduceSum(o.add(o.sub(b.anchorLogvar, q.logvar), o.sub(r, 1)), [1], 1), 0.5); // [B, 1]
    const anchor = o.mul(o.div(o.sumAll(o.mul(per, b.anchorMask)), o.add(o.sumAll(b.anchorMask), 1e-8)), b.anchorWeight);
    loss = o.add(loss, anchor);
    terms.anchor = anchor;
  }
  if (d.posterior && b.teacherPosterior && b.kdTemperature) {
    // T^2 * KL(p_teacher || softmax(logits / T)), the entropy of the fixed target dropped.
    const t = b.kdTemperature;
    const logq = nn.logSoftmax(o.div(q.taskLogits, t));
    const kdPer = o.neg(o.reduceSum(o.mul(b.teacherPosterior, logq), [1], 1));
    const kd = o.mul(weightedMean(kdPer, b.weight), o.mul(t, t));
    loss = o.add(loss, o.mul(kd, d.posteriorWeight));
    terms.kd_posterior = kd;
  }
  if (d.featureDim && b.teacherFeatures && proj) {
    const diff = o.sub(nn.linear(q.h, proj), b.teacherFeatures);
    const fPer = o.reduceMean(o.mul(diff, diff), [1], 1); // [B, 1]
    const kdf = weightedMean(fPer, b.weight);
    loss = o.add(loss, o.mul(kdf, d.featureWeight));
    terms.kd_features = kdf;
  }
  return { loss, ...terms };
}

export function allStudentParams(enc: EncoderParams, dec: DecoderParams, prior: PriorParams, proj?: nn.Linear): Value[] {
  const lin = (l: nn.Linear | nn.Conv2d) => [l.w, ...(l.b ? [l.b] : [])];
  return [
    ...[enc.c1, enc.c2, enc.fc, enc.head, enc.task].flatMap(lin),
    ...[dec.fc1, dec.fc2, dec.ct1, dec.ct2].flatMap(lin),
    ...(dec.embed ? [dec.embed] : []),
    prior.mu,
    prior.logvar,
    ...(proj ? lin(proj) : []),
  ];
}

export function buildStudentStep(g: Graph, a: StudentArch, l: StudentLoss, batch: number, optimizer: OptimizerSpec = { kind: 'adam' }, d: DistillOptions = noDistill, an: AnchorOptions = noAnchor, target: Target = 'cpu'): StepGraph {
  const enc = encoderParams(g, a);
  const dec = decoderParams(g, a);
  const prior = priorParams(g, a);
  const proj = d.featureDim ? nn.linearParams(g, 'distill.proj', a.hidden, d.featureDim) : undefined;
  const { loss, ...metrics } = studentLoss(studentInputs(g, a, batch, d, an), enc, dec, prior, l, d, proj);
  return buildTrainStep(g, { name: 'student_step', loss: loss!, groups: [{ params: allStudentParams(enc, dec, prior, proj) }], optimizer, metrics, target });
}

/** The servable encoder: images [N, 1, 28, 28] in [0, 1] -> mu, logvar [N, zDim], task logits [N, T]. */
export function emitEncoderInference(a: StudentArch, n: number, weights: ReadonlyMap<string, Float32Array>, dynamicBatch = false, target: Target = 'cpu'): EmittedModel {
  const g = new Graph();
  const enc = encoderParams(g, a);
  const q = encode(g.input('images', [n, 1, 28, 28]), enc);
  return emitModel(g, { outputs: { mu: q.mu, logvar: q.logvar, task_logits: q.taskLogits }, bake: weights, name: 'encoder', dynamicBatch: dynamicBatch ? n : undefined, target });
}

/** The servable decoder: z [N, zDim], task one-hot [N, T] -> pixels [N, 1, 28, 28] in [0, 1]. */
export function emitDecoderInference(a: StudentArch, n: number, weights: ReadonlyMap<string, Float32Array>, dynamicBatch = false, target: Target = 'cpu'): EmittedModel {
  const g = new Graph();
  const dec = decoderParams(g, a);
  const z = g.input('z', [n, a.zDim]);
  const task = g.input('task', [n, a.tasks]);
  return emitModel(g, { outputs: { images: o.sigmoid(decode(z, task, dec)) }, bake: weights, name: 'decoder', dynamicBatch: dynamicBatch ? n : undefined, target });
}
