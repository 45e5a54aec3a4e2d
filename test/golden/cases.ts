// What the golden tests hold: every training-step and inference graph of the reference models
// (docs/models.md, the benchmark's shapes) and of the default preset, the
// parameters after three steps of each training step, and the smoke run's metric rows.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { Graph } from '../../src/graph/ir.js';
import type { EmittedModel } from '../../src/graph/onnx.js';
import type { StepGraph } from '../../src/graph/step.js';
import { unrollSteps } from '../../src/graph/step.js';
import { resolveConfig } from '../../src/train/config.js';
import { StepRunner, TensorStore, type Feed } from '../../src/runtime/index.js';
import { anchorOptions, distillOptions, STUDENT_STEPS_PER_RUN, studentArch } from '../../src/train/student.js';
import { teacherArch } from '../../src/train/teacher.js';
import { Rng } from '../../src/util/rng.js';
import * as teacher from '../../graphs/teacher.js';
import * as student from '../../graphs/student.js';
import { buildFeatureStep, emitFeatureInference, featureParams } from '../../graphs/features.js';

export const GOLDEN_FILE = join(import.meta.dirname, 'golden.json');

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** The CPU the golden values were written on: parameters and metrics are compared bit for bit only on the same model of CPU (onnxruntime's kernels differ by instruction set). */
export function cpuModel(): string {
  let flags = '';
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    flags = (line?.split(':')[1] ?? '').split(/\s+/).filter((f) => /^(avx|fma|amx|f16c)/.test(f)).sort().join(' ');
  } catch {
    // not Linux: the model name alone
  }
  return `${cpus()[0]?.model ?? 'unknown'} [${flags}]`;
}

const T = teacher.referenceTeacher;
const S = student.referenceStudent;
const tt = teacher.referenceTraining;
const B = 64;

const defaults = resolveConfig({}, []);
const DT = teacherArch(defaults.teacher);
const DTT: teacher.TeacherTraining = { batch: defaults.teacher.train.batch, gpLambda: defaults.teacher.train.gpLambda, optimizer: { kind: 'adam', beta1: defaults.teacher.train.beta1, beta2: defaults.teacher.train.beta2 } };
const DS = studentArch(defaults.student, 2);

/** Training steps: a builder per case, and how many steps one onnxruntime run takes. */
export const STEP_CASES: Record<string, { build: (g: Graph) => StepGraph; stepsPerRun?: number }> = {
  'reference/critic_step': { build: (g) => teacher.buildCriticStep(g, T, tt) },
  'reference/generator_step': { build: (g) => teacher.buildGeneratorStep(g, T, tt) },
  'reference/student_step': { build: (g) => student.buildStudentStep(g, S, student.referenceStudentLoss, B) },
  'reference/features_step': { build: (g) => buildFeatureStep(g, B) },
  'default/critic_step': { build: (g) => teacher.buildCriticStep(g, DT, DTT, 'generator') },
  'default/generator_step': { build: (g) => teacher.buildGeneratorStep(g, DT, DTT) },
  'default/student_step': {
    build: (g) => student.buildStudentStep(g, DS, defaults.student.loss, defaults.student.train.batch, { kind: 'adam' }, distillOptions(defaults.student, 2 * defaults.teacher.arch.criticWidth), anchorOptions(defaults.student)),
    stepsPerRun: STUDENT_STEPS_PER_RUN,
  },
};

function initialWeights(build: (g: Graph) => void): Map<string, Float32Array> {
  const g = new Graph();
  build(g);
  const store = new TensorStore();
  store.declare(g, 0);
  return new Map([...store.specs.keys()].map((n) => [n, store.read(n)]));
}

/** Inference graphs, with the initial weights baked in. */
export const INFERENCE_CASES: Record<string, () => EmittedModel> = {
  'reference/generator_b1': () => teacher.emitGeneratorInference(T, 1, teacher.normalizedGeneratorWeights(T, (k) => gw(T).get(k)!)),
  'reference/generator_b64': () => teacher.emitGeneratorInference(T, B, teacher.normalizedGeneratorWeights(T, (k) => gw(T).get(k)!)),
  'reference/critic_b64': () => teacher.emitCriticInference(T, B, initialWeights((g) => teacher.criticParams(g, T))),
  'reference/decoder_b1': () => student.emitDecoderInference(S, 1, initialWeights((g) => student.decoderParams(g, S))),
  'reference/decoder_b64': () => student.emitDecoderInference(S, B, initialWeights((g) => student.decoderParams(g, S))),
  'reference/encoder_b64': () => student.emitEncoderInference(S, B, initialWeights((g) => student.encoderParams(g, S))),
  'reference/features_dynamic': () => emitFeatureInference(11, initialWeights((g) => featureParams(g, 20)), 20, true),
  'default/generator_dynamic': () => teacher.emitGeneratorInference(DT, 256, teacher.normalizedGeneratorWeights(DT, (k) => gw(DT).get(k)!), true),
  'default/critic_b256': () => teacher.emitCriticInference(DT, 256, initialWeights((g) => teacher.criticParams(g, DT))),
  'default/decoder_dynamic': () => student.emitDecoderInference(DS, 64, initialWeights((g) => student.decoderParams(g, DS)), true),
  'default/encoder_dynamic': () => student.emitEncoderInference(DS, 64, initialWeights((g) => student.encoderParams(g, DS)), true),
};

function gw(a: teacher.TeacherArch): Map<string, Float32Array> {
  return initialWeights((g) => teacher.generatorParams(g, a));
}

/** sha256 of every emitted graph: the step graphs, their unrolled forms, and the inference graphs. */
export function graphHashes(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, c] of Object.entries(STEP_CASES)) {
    const g = new Graph();
    const step = c.build(g);
    out[name] = sha256(step.bytes);
    if (c.stepsPerRun && c.stepsPerRun > 1) {
      const store = new TensorStore();
      store.declare(g, 0);
      out[`${name}_x${c.stepsPerRun}`] = sha256(unrollSteps(step, c.stepsPerRun, new Set(store.specs.keys())).bytes);
    }
  }
  for (const [name, build] of Object.entries(INFERENCE_CASES)) out[name] = sha256(build().bytes);
  return out;
}

/** Per tensor: its L2 norm and its projection on a fixed random direction (what the comparison on another CPU model uses). */
export type Fingerprint = Record<string, [number, number]>;

export interface StepResult {
  sha256: string;
  tensors: Fingerprint;
}

/** Three steps (one step per run) of a case from its seeded initial weights, on one thread, with seeded feeds. */
export async function paramsAfterThreeSteps(name: string): Promise<StepResult> {
  const c = STEP_CASES[name]!;
  const g = new Graph();
  const step = c.build(g);
  const store = new TensorStore();
  store.declare(g, 0);
  const runner = await StepRunner.create(step, store, { threads: 1 });
  const rng = new Rng(1);
  const feeds = (): Record<string, Feed> => {
    const f: Record<string, Feed> = {};
    for (const inp of step.inputs) {
      if (store.specs.has(inp.name) || inp.name === 'step') continue;
      if (inp.shape.length === 0) f[inp.name] = inp.name.startsWith('lr') ? 1e-3 : 0.5;
      else f[inp.name] = rng.fillUniform(new Float32Array(inp.shape.reduce((a, b) => a * b, 1)));
    }
    return f;
  };
  for (let i = 0; i < 3; i++) await runner.run(feeds());
  const hash = createHash('sha256');
  const tensors: Fingerprint = {};
  const dir = new Rng(2);
  for (const k of [...store.specs.keys()].sort()) {
    const v = store.read(k);
    hash.update(k).update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    let l2 = 0;
    let proj = 0;
    for (let i = 0; i < v.length; i++) {
      l2 += v[i]! * v[i]!;
      proj += v[i]! * dir.normal();
    }
    tensors[k] = [Math.sqrt(l2), proj];
  }
  await runner.release();
  return { sha256: hash.digest('hex'), tensors };
}

export { ort };
