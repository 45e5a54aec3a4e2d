// Experiment configuration: one zod schema with defaults, presets, and command-line overrides
// of any key (`--teacher.train.iterations=200`). The run id is derived from the parsed config.

import { z } from 'zod';
import { canonicalJson, configHash } from '../graph/artifact.js';

const positiveInt = z.number().int().positive();
const prob = z.number().min(0).max(1);
const lrDecay = z.enum(['none', 'linear']).default('none');

/** The learning rate's factor at step `step` (0-based) of `total` under a `lrDecay` setting (teacher's and student's alike). */
export function lrDecayFactor(decay: 'none' | 'linear', step: number, total: number): number {
  return decay === 'linear' ? 1 - step / total : 1;
}

export const teacherConfigSchema = z.object({
  arch: z.object({
    zDim: positiveInt.default(64),
    genWidth: positiveInt.default(128).refine((w) => w % 2 === 0, 'genWidth must be even'),
    criticWidth: positiveInt.default(64),
    /** Spectral norm on the generator's [fc, deconv1, deconv2]; the benchmark keeps all three. */
    spectralNorm: z.tuple([z.boolean(), z.boolean(), z.boolean()]).default([false, false, false]),
    /** A SAGAN-style self-attention block at 14x14 in the generator and the critic. */
    attention: z.boolean().default(false),
    /** Batch norm after the generator's fc and first deconv (DCGAN's generator; the critic has none, as WGAN-GP requires). */
    batchNorm: z.boolean().default(true),
  }),
  train: z.object({
    /** Generator iterations per task (each with nCritic critic steps). */
    iterations: positiveInt.default(1800),
    nCritic: positiveInt.default(2),
    batch: positiveInt.default(64),
    /** The generator's learning rate (and the critic's unless criticLr is set). */
    lr: z.number().positive().default(2e-4),
    /** The critic's learning rate (TTUR, Heusel et al. 2017: a faster critic, fewer critic steps); null: the same as lr. */
    criticLr: z.number().positive().nullable().default(4e-4),
    /** 'linear': both learning rates fall linearly to zero over each task's iterations; 'none': constant. */
    lrDecay,
    beta1: prob.default(0.5),
    beta2: prob.default(0.9),
    gpLambda: z.number().nonnegative().default(10),
    /** FID of the expert's samples on its task every this many iterations (the curve in the log). */
    fidEvery: positiveInt.default(100),
    /** Half-life of the generator's weight average in thousands of images (StyleGAN2-ADA's ema_kimg); 0: no average, the raw generator is sampled and exported. */
    emaKimg: z.number().nonnegative().default(10),
    /** The average's half-life is at most this fraction of the images seen in the task so far (ema_rampup); 0: no ramp. */
    emaRampup: z.number().nonnegative().default(0.05),
  }),
  experts: z.object({
    /** 'relative': a new expert when the best expert's FID on the new task exceeds relativeFactor x its FID on its own tasks; 'absolute': when it exceeds fidThreshold. */
    threshold: z.enum(['relative', 'absolute']).default('relative'),
    relativeFactor: z.number().positive().default(3),
    /** The absolute threshold (threshold=absolute). */
    fidThreshold: z.number().positive().default(150),
    maxExperts: positiveInt.default(4),
    /** Generated and real samples used for every FID the expert manager computes. */
    fidSamples: positiveInt.default(1000),
  }),
});

export const studentConfigSchema = z.object({
  arch: z.object({
    zDim: positiveInt.default(32),
    hidden: positiveInt.default(256),
    /** A learned task embedding of this size for the decoder instead of the one-hot (0: one-hot). */
    uDim: z.number().int().nonnegative().default(0),
  }),
  loss: z.object({
    beta: z.number().nonnegative().default(1),
    /** The KL weight rises linearly from 0 to beta over this many steps of each task (0: no warm-up). */
    klWarmup: z.number().int().nonnegative().default(0),
    temperature: z.number().positive().default(0.5),
    contrastiveWeight: z.number().nonnegative().default(1),
  }),
  train: z.object({
    /** Student steps per task. */
    steps: positiveInt.default(6000),
    batch: positiveInt.default(64),
    lr: z.number().positive().default(1e-3),
    /** 'linear': the learning rate falls linearly to zero over each stage's student steps; 'none': constant. */
    lrDecay,
    maxShift: z.number().int().min(0).max(4).default(2),
  }),
  replay: z.object({
    /** Fraction of each batch drawn from teacher samples of earlier tasks (0: no replay); 'auto': (t-1)/t at task t, every task weighted alike. 0.125: the replay alignment keeps the earlier tasks, and more teacher samples cost the new task more than they give the old ones. */
    ratio: z.union([prob, z.literal('auto')], { error: "a fraction from 0 to 1, or 'auto'" }).default(0.125),
    /** Mix teacher samples and real data with mixup (lambda ~ Beta(alpha, alpha)). */
    mixup: z.boolean().default(false),
    mixupAlpha: z.number().positive().default(0.4),
  }),
  anchor: z.object({
    /** Replay alignment (MeRGAN): the decoder's output on z drawn from each earlier task's prior matches a frozen copy of the student's decoder taken before the task (BCE against its probabilities). */
    decoder: z.boolean().default(true),
    decoderWeight: z.number().nonnegative().default(1),
    /** Rows of z per step for the alignment, spread over the earlier tasks. */
    decoderBatch: positiveInt.default(32),
    /** The encoder's posterior on replayed images matches the frozen encoder's (KL), as in Ramapuram et al.'s lifelong generative modelling; off by default (docs/quality.md, Ablations). */
    encoder: z.boolean().default(false),
    encoderWeight: z.number().nonnegative().default(1),
    /** Earlier tasks' prior parameters stay as the frozen copy has them. */
    freezePrior: z.boolean().default(true),
  }),
  distill: z.object({
    /** KL between the teacher's task posterior (softmax over experts' critic scores at temperature T) and q(u|x). */
    posterior: z.boolean().default(true),
    posteriorWeight: z.number().nonnegative().default(1),
    /** Student encoder features matched to the teacher critic's pooled features through a learned projection. */
    features: z.boolean().default(true),
    featureWeight: z.number().nonnegative().default(0.1),
    /** Weight each teacher sample by its expert's quality: min(1, fidReference / FID). */
    adaptiveWeights: z.boolean().default(true),
    /** On the LeNet FID scale the default teacher reaches about 200 on its task: such an expert's samples count fully. */
    fidReference: z.number().positive().default(250),
    /** Distillation temperature: a linear schedule from `start` to `end` over each student phase, or adaptive. */
    temperature: z
      .discriminatedUnion('kind', [
        z.object({ kind: z.literal('linear'), start: z.number().positive().default(4), end: z.number().positive().default(1) }),
        z.object({ kind: z.literal('adaptive'), start: z.number().positive().default(4), min: z.number().positive().default(1), max: z.number().positive().default(8) }),
      ])
      .default({ kind: 'linear', start: 4, end: 1 }),
  }),
});

export const runConfigSchema = z
  .object({
    preset: z.enum(['smoke', 'default', 'paper']).default('default'),
    tasks: z.string().default('mnist,fashion'),
    seed: z.number().int().nonnegative().default(0),
    /** The joint upper bound: every task's data at once in one stage (same models and budget per task), instead of one task after another. */
    joint: z.boolean().default(false),
    /** A finished run whose teacher experts this run takes as they ended (same tasks and teacher config; each expert trained in one stage), training only the student. */
    teacherFrom: z.string().nullable().default(null),
    /** cpu, cuda (onnxruntime-node's CUDA provider, npm run install:cuda) or webgpu (its WebGPU provider: a Vulkan loader and GPU driver). */
    device: z.enum(['cpu', 'cuda', 'webgpu']).default('cpu'),
    threads: z.number().int().nonnegative().default(0),
    out: z.string().default('results'),
    /** Checkpoint intervals (teacher generator iterations, student steps); not part of the run id: resume is exact at any interval. */
    checkpoint: z.object({ teacherEvery: positiveInt.default(100), studentEvery: positiveInt.default(250) }),
    teacher: teacherConfigSchema,
    student: studentConfigSchema,
    eval: z.object({
      /** Samples per task for the FID after each stage. */
      samples: positiveInt.default(1000),
      /** Training steps of the LeNet feature network behind every FID (trained once, cached). */
      featureNetSteps: positiveInt.default(1500),
    }),
  })
  .superRefine((c, ctx) => {
    if (c.teacher.experts.fidSamples < 2 || c.eval.samples < 2) ctx.addIssue({ code: 'custom', message: 'FID needs at least 2 samples' });
  });

export type RunConfig = z.infer<typeof runConfigSchema>;
export type TeacherConfig = z.infer<typeof teacherConfigSchema>;
export type StudentConfig = z.infer<typeof studentConfigSchema>;

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends readonly unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };

/** Presets: `smoke` for tests (under 2 minutes), `default` for the 2-core CPU (under 20), `paper` for a GPU. */
export const PRESETS: Record<RunConfig['preset'], DeepPartial<RunConfig>> = {
  smoke: {
    // A dozen iterations give no meaningful own-task FID, so the smoke preset keeps the absolute expert threshold.
    teacher: { train: { iterations: 12, nCritic: 2, batch: 32, fidEvery: 6 }, experts: { fidSamples: 256, threshold: 'absolute' } },
    student: { train: { steps: 30, batch: 32 } },
    eval: { samples: 256, featureNetSteps: 300 },
    checkpoint: { teacherEvery: 4, studentEvery: 10 },
  },
  default: {},
  paper: {
    teacher: { train: { iterations: 20000, lr: 1e-4, fidEvery: 1000 }, experts: { fidSamples: 5000, maxExperts: 10 } },
    student: { train: { steps: 20000 } },
    eval: { samples: 10000 },
  },
};

function emptyTree(): Record<string, unknown> {
  return { teacher: { arch: {}, train: {}, experts: {} }, student: { arch: {}, loss: {}, train: {}, replay: {}, anchor: {}, distill: {} }, eval: {}, checkpoint: {} };
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && out[k] && typeof out[k] === 'object' ? merge(out[k] as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

/** Parses `value` as JSON when it is JSON (numbers, booleans, arrays), else as a string. */
function parseValue(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/** Sets `a.b.c = value` in a plain object tree. */
export function setPath(tree: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = tree;
  for (const k of keys.slice(0, -1)) {
    if (!node[k] || typeof node[k] !== 'object') node[k] = {};
    node = node[k] as Record<string, unknown>;
  }
  node[keys.at(-1)!] = value;
}

/** Every leaf key of the schema (for --help and for rejecting unknown overrides). */
export function configKeys(): string[] {
  const full = resolveConfig({}, []);
  const keys: string[] = [];
  const walk = (x: unknown, prefix: string) => {
    if (x && typeof x === 'object' && !Array.isArray(x) && !(prefix.endsWith('temperature'))) {
      for (const [k, v] of Object.entries(x)) walk(v, prefix ? `${prefix}.${k}` : k);
    } else keys.push(prefix);
  };
  walk(full, '');
  return keys;
}

/**
 * Builds the config: schema defaults, then the preset, then `base` (e.g. from the CLI flags
 * --tasks/--seed), then `key=value` overrides. Errors name the key and what is allowed.
 */
export function resolveConfig(base: Record<string, unknown>, overrides: readonly string[]): RunConfig {
  const preset = (base.preset as RunConfig['preset'] | undefined) ?? 'default';
  if (!(preset in PRESETS)) throw new Error(`unknown preset '${String(preset)}'; valid presets: ${Object.keys(PRESETS).join(', ')}`);
  let tree = merge(merge(emptyTree(), PRESETS[preset] as Record<string, unknown>), base);
  const known = overrides.length ? configKeys() : [];
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq < 1) throw new Error(`bad override '${o}': write key=value, e.g. teacher.train.iterations=200`);
    const key = o.slice(0, eq);
    if (!known.some((k) => k === key || k.startsWith(`${key}.`))) {
      throw new Error(`unknown config key '${key}'; valid keys:\n  ${known.join('\n  ')}`);
    }
    const patch: Record<string, unknown> = {};
    setPath(patch, o.slice(0, eq), parseValue(o.slice(eq + 1)));
    tree = merge(tree, patch);
  }
  const parsed = runConfigSchema.safeParse(tree);
  if (!parsed.success) {
    throw new Error(`invalid configuration:\n${parsed.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n')}`);
  }
  return parsed.data;
}

/** A deterministic run id: preset, tasks and a hash of the whole parsed config (the "param stamp"). */
export function runId(c: RunConfig): string {
  const { out: _out, threads: _threads, device: _device, checkpoint: _checkpoint, ...identity } = c;
  const tasks = c.tasks.replace(/[^a-zA-Z0-9,:-]/g, '').replace(/[,:]/g, '_');
  return `${c.preset}-${c.joint ? 'joint-' : ''}${tasks}-s${c.seed}-${configHash(identity).slice(0, 8)}`;
}

export { canonicalJson };
