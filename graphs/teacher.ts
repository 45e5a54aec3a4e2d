// Teacher expert: a WGAN-GP generator (spectral norm per layer) and critic, as in
// docs/models.md. Plain functions over the graph builder.

import { Graph, type Value } from '../src/graph/ir.js';
import * as o from '../src/graph/ops.js';
import * as nn from '../src/graph/nn.js';
import { gradients } from '../src/graph/autodiff.js';
import { buildTrainStep, type StepGraph } from '../src/graph/step.js';
import { emitModel, type EmittedModel, type Target } from '../src/graph/onnx.js';
import type { OptimizerSpec } from '../src/graph/optim.js';

export interface TeacherArch {
  zDim: number;
  /** Channels of the generator's 7x7 feature map (128 in the reference). */
  genWidth: number;
  /** Channels of the critic's first conv (64 in the reference; the second has twice as many). */
  criticWidth: number;
  /** Spectral norm on [fc, deconv1, deconv2]. */
  spectralNorm: readonly [boolean, boolean, boolean];
  /** A SAGAN-style self-attention block on the 14x14 feature maps of generator and critic. */
  attention?: boolean;
  /** Batch norm after the generator's fc and first deconv (DCGAN); the critic never has it (WGAN-GP). */
  batchNorm?: boolean;
}

export const referenceTeacher: TeacherArch = { zDim: 64, genWidth: 128, criticWidth: 64, spectralNorm: [true, true, true] };

export interface AttentionParams { q: Value; k: Value; v: Value; gamma: Value }

export function attentionParams(g: Graph, name: string, channels: number): AttentionParams {
  const c8 = Math.max(1, Math.floor(channels / 8));
  const init = (fanIn: number) => ({ kind: 'kaimingUniform', fanIn, gain: Math.sqrt(1 / 3) }) as const;
  return {
    q: g.param(`${name}.query`, [c8, channels], init(channels)),
    k: g.param(`${name}.key`, [c8, channels], init(channels)),
    v: g.param(`${name}.value`, [channels, channels], init(channels)),
    gamma: g.param(`${name}.gamma`, [1], { kind: 'zeros' }),
  };
}

/** Self-attention (Zhang et al. 2019): x + gamma * V softmax(Q^T K)^T over the H*W positions. */
export function selfAttention(x: Value, p: AttentionParams): Value {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const flat = o.reshape(x, [n, c, h * w]); // [N, C, HW]
  const q = o.matmul(p.q, flat); // [N, C/8, HW]
  const k = o.matmul(p.k, flat); // [N, C/8, HW]
  const v = o.matmul(p.v, flat); // [N, C, HW]
  const attn = nn.softmax(o.matmul(o.swapLast(q), k), -1); // [N, HW, HW]: row i attends over j
  const out = o.matmul(v, o.swapLast(attn)); // [N, C, HW]
  return o.add(x, o.mul(o.reshape(out, [n, c, h, w]), p.gamma));
}

export interface GeneratorParams {
  fc: nn.Linear;
  ct1: nn.Conv2d;
  ct2: nn.Conv2d;
  /** Power-iteration vectors, one per spectrally normalised layer. */
  u: (Value | null)[];
  attention?: AttentionParams;
  /** Batch norm after fc and ct1 (TeacherArch.batchNorm). */
  bn?: BatchNormParams[];
}

export function generatorParams(g: Graph, a: TeacherArch, prefix = 'G'): GeneratorParams {
  const w = a.genWidth;
  const fc = nn.linearParams(g, `${prefix}.fc`, a.zDim, w * 7 * 7);
  const ct1 = nn.convTranspose2dParams(g, `${prefix}.ct1`, w, w / 2, 4, 2, 1);
  const ct2 = nn.convTranspose2dParams(g, `${prefix}.ct2`, w / 2, 1, 4, 2, 1);
  // u has the length of the weight's dim 0 (Linear: out) or dim 1 (ConvTranspose: out channels).
  const rows = [w * 7 * 7, w / 2, 1];
  const u = a.spectralNorm.map((on, i) => (on ? g.buffer(`${prefix}.sn${i}.u`, [rows[i]!], { kind: 'normal', std: 1 }) : null));
  const attention = a.attention ? attentionParams(g, `${prefix}.attn`, w / 2) : undefined;
  const bn = a.batchNorm ? [batchNormParams(g, `${prefix}.bn0`, w), batchNormParams(g, `${prefix}.bn1`, w / 2)] : undefined;
  return { fc, ct1, ct2, u, attention, bn };
}

export interface BatchNormParams { gamma: Value; beta: Value; mean: Value; var: Value }

/** Each tensor is [1, C, 1, 1], broadcasting against [N, C, H, W] without a reshape (which a dynamic-batch graph cannot hold). */
function batchNormParams(g: Graph, name: string, channels: number): BatchNormParams {
  const shape = [1, channels, 1, 1];
  return {
    gamma: g.param(`${name}.weight`, shape, { kind: 'ones' }),
    beta: g.param(`${name}.bias`, shape, { kind: 'zeros' }),
    mean: g.buffer(`${name}.running_mean`, shape, { kind: 'zeros' }),
    var: g.buffer(`${name}.running_var`, shape, { kind: 'ones' }),
  };
}

const BATCH_NORM_TENSORS = ['weight', 'bias', 'running_mean', 'running_var'] as const;
const BATCH_NORM_EPS = 1e-5;

/**
 * Batch norm over N, H, W of [N, C, H, W] as PyTorch's BatchNorm2d: batch statistics while
 * training (the running ones move by `momentum`, the variance unbiased), running ones when frozen.
 */
function batchNorm(x: Value, p: BatchNormParams, frozen: boolean, updates: Map<Value, Value>, momentum = 0.1, eps = BATCH_NORM_EPS): Value {
  const [n, , h, w] = x.shape as [number, number, number, number];
  // Frozen: gamma and beta hold the running statistics folded in (normalizedGeneratorWeights).
  if (frozen) return o.add(o.mul(x, p.gamma), p.beta);
  const mean = o.reduceMean(x, [0, 2, 3], 1);
  const d = o.sub(x, mean);
  const variance = o.reduceMean(o.mul(d, d), [0, 2, 3], 1);
  const count = n * h * w;
  updates.set(p.mean, o.add(o.mul(p.mean, 1 - momentum), o.mul(o.stopGradient(mean), momentum)));
  updates.set(p.var, o.add(o.mul(p.var, 1 - momentum), o.mul(o.stopGradient(variance), (momentum * count) / Math.max(count - 1, 1))));
  const xhat = o.div(d, o.sqrt(o.add(variance, eps)));
  return o.add(o.mul(xhat, p.gamma), p.beta);
}

export interface GeneratorOut {
  images: Value; // [N, 1, 28, 28] in [-1, 1]
  bufferUpdates: Map<Value, Value>;
}

/** `frozen`: use the weights as given (already normalised, e.g. baked for inference). */
export function generator(z: Value, p: GeneratorParams, frozen = false): GeneratorOut {
  const bufferUpdates = new Map<Value, Value>();
  const weight = (w: Value, i: number, dim: number): Value => {
    const u = p.u[i];
    if (!u || frozen) return w;
    const sn = nn.spectralNorm(w, u, dim);
    bufferUpdates.set(u, sn.u);
    return sn.w;
  };
  const width = p.fc.w.shape[0]! / 49;
  const norm = (x: Value, i: number) => (p.bn ? batchNorm(x, p.bn[i]!, frozen, bufferUpdates) : x);
  let h = nn.linear(z, p.fc, weight(p.fc.w, 0, 0));
  // Without batch norm the ReLU comes before the reshape, as the reference model has it.
  h = p.bn ? o.relu(norm(nn.unflatten(h, [width, 7, 7]), 0)) : nn.unflatten(o.relu(h), [width, 7, 7]); // [N, C, 7, 7]
  h = o.relu(norm(nn.convTranspose2d(h, p.ct1, weight(p.ct1.w, 1, 1)), 1)); // [N, C/2, 14, 14]
  if (p.attention) h = selfAttention(h, p.attention);
  const images = o.tanh(nn.convTranspose2d(h, p.ct2, weight(p.ct2.w, 2, 1))); // [N, 1, 28, 28]
  return { images, bufferUpdates };
}

export interface CriticParams {
  c1: nn.Conv2d;
  c2: nn.Conv2d;
  fc: nn.Linear;
  attention?: AttentionParams;
}

export function criticParams(g: Graph, a: TeacherArch, prefix = 'D'): CriticParams {
  const w = a.criticWidth;
  return {
    c1: nn.conv2dParams(g, `${prefix}.c1`, 1, w, 4, 2, 1),
    c2: nn.conv2dParams(g, `${prefix}.c2`, w, 2 * w, 4, 2, 1),
    fc: nn.linearParams(g, `${prefix}.fc`, 2 * w * 7 * 7, 1),
    attention: a.attention ? attentionParams(g, `${prefix}.attn`, w) : undefined,
  };
}

export function criticParamList(p: CriticParams): Value[] {
  const att = p.attention ? [p.attention.q, p.attention.k, p.attention.v, p.attention.gamma] : [];
  return [p.c1.w, p.c1.b!, ...att, p.c2.w, p.c2.b!, p.fc.w, p.fc.b!];
}

export function generatorParamList(p: GeneratorParams): Value[] {
  const att = p.attention ? [p.attention.q, p.attention.k, p.attention.v, p.attention.gamma] : [];
  const bn = (p.bn ?? []).flatMap((b) => [b.gamma, b.beta]);
  return [p.fc.w, p.fc.b!, p.ct1.w, p.ct1.b!, ...att, p.ct2.w, p.ct2.b!, ...bn];
}

/** Critic scores [N, 1]; `features` is the flattened last conv activation [N, 2w*7*7]. */
export function critic(x: Value, p: CriticParams): { score: Value; features: Value } {
  let h = o.leakyRelu(nn.conv2d(x, p.c1), 0.2); // [N, w, 14, 14]
  if (p.attention) h = selfAttention(h, p.attention);
  h = o.leakyRelu(nn.conv2d(h, p.c2), 0.2); // [N, 2w, 7, 7]
  const features = nn.flatten(h); // [N, 49*2w], channels-last
  return { score: nn.linear(features, p.fc), features };
}

/** lambda * mean((||dD(x_hat)/dx_hat||_2 - 1)^2), x_hat = eps*real + (1-eps)*fake. */
export function gradientPenalty(p: CriticParams, real: Value, fake: Value, eps: Value, lambda: number): Value {
  const xHat = o.add(o.mul(eps, real), o.mul(o.sub(1, eps), fake));
  const [dx] = gradients(o.sumAll(critic(xHat, p).score), [xHat]);
  const norm = nn.l2Norm(dx!, [1, 2, 3], 1e-12); // [N, 1, 1, 1]
  const dev = o.sub(norm, 1);
  return o.mul(o.meanAll(o.mul(dev, dev)), lambda);
}

export interface TeacherTraining {
  batch: number;
  gpLambda: number;
  optimizer: OptimizerSpec;
}

export const referenceTraining: TeacherTraining = { batch: 64, gpLambda: 10, optimizer: { kind: 'adam', beta1: 0.5, beta2: 0.9 } };

/**
 * The critic step. `fake: 'input'` takes generated images as an input (the benchmark's form);
 * `fake: 'generator'` draws them inside the step from z and the generator's current weights
 * (no gradient, no buffer update), saving a session run per critic step.
 */
export function buildCriticStep(g: Graph, a: TeacherArch, t: TeacherTraining, fakeFrom: 'input' | 'generator' = 'input'): StepGraph {
  const b = t.batch;
  const D = criticParams(g, a);
  const real = g.input('real', [b, 1, 28, 28]);
  const fake = fakeFrom === 'input' ? g.input('fake', [b, 1, 28, 28]) : o.stopGradient(generator(g.input('z', [b, a.zDim]), generatorParams(g, a)).images);
  const eps = g.input('eps', [b, 1, 1, 1]);
  const scores = critic(o.concat([real, fake], 0), D).score; // [2B, 1]
  const dReal = o.meanAll(o.slice(scores, [0, 0], [b, 1]));
  const dFake = o.meanAll(o.slice(scores, [b, 0], [2 * b, 1]));
  const gp = gradientPenalty(D, real, fake, eps, t.gpLambda);
  const wasserstein = o.sub(dReal, dFake);
  const loss = o.add(o.neg(wasserstein), gp);
  return buildTrainStep(g, {
    name: 'critic_step',
    loss,
    groups: [{ params: criticParamList(D) }],
    optimizer: t.optimizer,
    metrics: { wasserstein, gp },
  });
}

export function buildGeneratorStep(g: Graph, a: TeacherArch, t: TeacherTraining): StepGraph {
  const G = generatorParams(g, a);
  const D = criticParams(g, a);
  const z = g.input('z', [t.batch, a.zDim]);
  const { images, bufferUpdates } = generator(z, G);
  const loss = o.neg(o.meanAll(critic(images, D).score));
  return buildTrainStep(g, {
    name: 'generator_step',
    loss,
    groups: [{ params: generatorParamList(G) }],
    optimizer: t.optimizer,
    bufferUpdates,
  });
}

/** The servable generator: z [N, zDim] -> images [N, 1, 28, 28] in [0, 1], weights baked in. */
export function emitGeneratorInference(a: TeacherArch, n: number, weights: ReadonlyMap<string, Float32Array>, dynamicBatch = false, target: Target = 'cpu'): EmittedModel {
  const g = new Graph();
  const G = generatorParams(g, { ...a, spectralNorm: [false, false, false] });
  const z = g.input('z', [n, a.zDim]);
  const images = o.add(o.mul(generator(z, G, true).images, 0.5), 0.5);
  return emitModel(g, { outputs: { images }, bake: weights, name: 'generator', dynamicBatch: dynamicBatch ? n : undefined, target });
}

/** The frozen critic for distillation: images in [0, 1] -> score [N, 1] and spatially pooled features [N, 2w]. */
export function emitCriticInference(a: TeacherArch, n: number, weights: ReadonlyMap<string, Float32Array>, target: Target = 'cpu'): EmittedModel {
  const g = new Graph();
  const D = criticParams(g, a);
  const x = g.input('images', [n, 1, 28, 28]);
  const { score, features } = critic(o.sub(o.mul(x, 2), 1), D);
  const pooled = o.reduceMean(o.reshape(features, [n, 49, 2 * a.criticWidth]), [1], 0); // [N, 2w]
  return emitModel(g, { outputs: { score, features: pooled }, bake: weights, name: 'critic', target });
}

/**
 * The generator's weights with spectral norm applied (W / sigma, sigma from the stored u as
 * PyTorch's eval mode does) and batch norm's running statistics folded into its scale and shift,
 * so the inference graph needs no normalisation ops.
 */
export function normalizedGeneratorWeights(a: TeacherArch, get: (name: string) => Float32Array, prefix = 'G'): Map<string, Float32Array> {
  const w = a.genWidth;
  const layers: [string, number[], number][] = [
    [`${prefix}.fc.weight`, [w * 49, a.zDim], 0],
    [`${prefix}.ct1.weight`, [w, w / 2, 4, 4], 1],
    [`${prefix}.ct2.weight`, [w / 2, 1, 4, 4], 1],
  ];
  const out = new Map<string, Float32Array>();
  for (const name of ['fc', 'ct1', 'ct2']) out.set(`${prefix}.${name}.bias`, get(`${prefix}.${name}.bias`));
  if (a.attention) for (const k of ['query', 'key', 'value', 'gamma']) out.set(`${prefix}.attn.${k}`, get(`${prefix}.attn.${k}`));
  if (a.batchNorm) {
    for (const i of [0, 1]) {
      const [gamma, beta, mean, variance] = BATCH_NORM_TENSORS.map((k) => get(`${prefix}.bn${i}.${k}`));
      const scale = Float32Array.from(gamma!, (gm, c) => gm / Math.sqrt(variance![c]! + BATCH_NORM_EPS));
      out.set(`${prefix}.bn${i}.weight`, scale);
      out.set(`${prefix}.bn${i}.bias`, Float32Array.from(beta!, (b, c) => b - mean![c]! * scale[c]!));
    }
  }
  layers.forEach(([name, shape, dim], i) => {
    const weight = get(name);
    out.set(name, a.spectralNorm[i] ? scaleBySigma(weight, shape, dim, get(`${prefix}.sn${i}.u`)) : weight);
  });
  return out;
}

function scaleBySigma(w: Float32Array, shape: number[], dim: number, uRaw: Float32Array): Float32Array {
  const uNorm = Math.hypot(...uRaw) + 1e-12;
  const u = Float64Array.from(uRaw, (x) => x / uNorm);
  // Element (r, c) of the matrix view [shape[dim], rest] for dim 0 or 1 of a row-major tensor.
  const rows = shape[dim]!;
  const inner = shape.slice(2).reduce((x, y) => x * y, 1);
  const at = (flat: number): [number, number] => {
    if (dim === 0) return [Math.floor(flat / (w.length / rows)), 0];
    const d0 = Math.floor(flat / (shape[1]! * inner));
    const d1 = Math.floor(flat / inner) % shape[1]!;
    return [d1, d0];
  };
  const cols = w.length / rows;
  const colOf = (flat: number, r: number): number => {
    if (dim === 0) return flat - r * cols;
    const d0 = Math.floor(flat / (shape[1]! * inner));
    return d0 * inner + (flat % inner);
  };
  const v = new Float64Array(cols);
  for (let f = 0; f < w.length; f++) {
    const [r] = at(f);
    v[colOf(f, r)]! += w[f]! * u[r]!;
  }
  const vn = Math.hypot(...v) + 1e-12;
  const wv = new Float64Array(rows);
  for (let f = 0; f < w.length; f++) {
    const [r] = at(f);
    wv[r]! += (w[f]! * v[colOf(f, r)]!) / vn;
  }
  let sigma = 0;
  for (let r = 0; r < rows; r++) sigma += u[r]! * wv[r]!;
  return Float32Array.from(w, (x) => x / sigma);
}
