// Fitting capacity (Lesort et al. 2019, "Generative models from the perspective of continual
// learning"): train a classifier only on generated samples of a task, then measure its accuracy
// on the task's real test set. The generators here are conditioned on tasks, not classes, so the
// generated samples are labelled by the feature net's classifier (argmax over the task's classes).
// The classifier is the LeNet of the feature net with one output per class of the task.

import * as ort from 'onnxruntime-node';
import { Graph } from '../graph/ir.js';
import { buildFeatureStep, featureNet, featureParamList, featureParams } from '../../graphs/features.js';
import { emitModel, targetForDevice } from '../graph/onnx.js';
import { StepRunner, TensorStore, createSession, type Device } from '../runtime/index.js';
import { Rng } from '../util/rng.js';
import { PIXELS, type ClassifyingExtractor } from './features.js';
import { FEATURE_CLASSES, argmax } from './featnet.js';
import { taskClasses } from './generate.js';

export interface LabelledImages {
  images: Float32Array;
  /** Class index within the task, 0..classes-1. */
  labels: Uint8Array;
  n: number;
}

/**
 * Classifier steps when none are given: where its held-out accuracy stops rising on both tasks
 * (2,000 real training images, scored on 10,000 other training images: tools/fit-steps.ts), so the
 * measure reflects the samples rather than an undertrained classifier.
 */
export const DEFAULT_FIT_STEPS = 2000;

export interface FittingOptions {
  /** Training steps (default DEFAULT_FIT_STEPS). */
  steps?: number;
  batch?: number;
  lr?: number;
  seed?: number;
  threads?: number;
  device?: Device;
}

export interface FittingResult {
  /** Accuracy on the real test set. */
  accuracy: number;
  nTrain: number;
  nTest: number;
  steps: number;
  batch: number;
  /** Training images per class (for generated sets, the feature net's labels): how balanced the set is. */
  labelCounts: number[];
}

/** Labels generated images of `task` by the feature net's classifier, restricted to the task's classes. */
export async function pseudoLabels(fx: ClassifyingExtractor, task: string, images: Float32Array, n: number): Promise<Uint8Array> {
  const classes = taskClasses(task);
  const logits = await fx.logits(images, n);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let k = 1; k < classes.length; k++) if (logits[i * FEATURE_CLASSES + classes[k]!]! > logits[i * FEATURE_CLASSES + classes[best]!]!) best = k;
    out[i] = best;
  }
  return out;
}

interface ClassifierKit {
  graph: Graph;
  runner: StepRunner;
  /** Inference with the weights as inputs, so one session serves every trained classifier. */
  infer: ort.InferenceSession;
  params: string[];
  lock: Promise<unknown>;
}

// Sessions are reused across fitting-capacity runs (the first steps of a new session are slow);
// each run starts from freshly initialised weights.
const kits = new Map<string, Promise<ClassifierKit>>();

async function makeKit(classes: number, batch: number, session: { threads?: number; device?: Device }): Promise<ClassifierKit> {
  const graph = new Graph();
  const step = buildFeatureStep(graph, batch, classes);
  const store = new TensorStore();
  store.declare(graph, 0);
  const runner = await StepRunner.create(step, store, session);
  const ig = new Graph();
  const p = featureParams(ig, classes);
  const x = ig.input('x', [11, 1, 28, 28]);
  const params = featureParamList(p).map((v) => String(v.attrs.name));
  const infer = await createSession(emitModel(ig, { outputs: { logits: featureNet(x, p).logits }, dynamicBatch: 11, name: 'classifier', target: targetForDevice(session.device ?? 'cpu') }).bytes, session);
  return { graph, runner, infer, params, lock: Promise.resolve() };
}

/** Trains a LeNet classifier on `train` and returns its accuracy on `test`. */
export async function fittingCapacity(train: LabelledImages, test: LabelledImages, classes: number, opts: FittingOptions = {}): Promise<FittingResult> {
  const steps = opts.steps ?? DEFAULT_FIT_STEPS;
  const batch = opts.batch ?? 64;
  if (train.n < 1) throw new Error('fitting capacity: no training images');
  if (test.n < 1) throw new Error('fitting capacity: no test images');
  const session = { threads: opts.threads, device: opts.device };
  const key = `${classes}|${batch}|${opts.threads ?? 0}|${opts.device ?? 'cpu'}`;
  let kitP = kits.get(key);
  if (!kitP) {
    kitP = makeKit(classes, batch, session);
    kits.set(key, kitP);
    kitP.catch(() => kits.delete(key));
  }
  const kit = await kitP;
  const run = kit.lock.then(() => trainAndTest(kit, train, test, classes, steps, batch, opts));
  kit.lock = run.catch(() => {});
  return run;
}

async function trainAndTest(kit: ClassifierKit, train: LabelledImages, test: LabelledImages, classes: number, steps: number, batch: number, opts: FittingOptions): Promise<FittingResult> {
  const { runner } = kit;
  const store = runner.store;
  store.specs.clear();
  store.tensors.clear();
  store.counters.clear();
  store.declare(kit.graph, opts.seed ?? 0);
  const rng = new Rng(Rng.derive(opts.seed ?? 0, 'fitting'));
  const x = new Float32Array(batch * PIXELS);
  const y = new Float32Array(batch * classes);
  let order = rng.permutation(train.n);
  let at = 0;
  for (let s = 0; s < steps; s++) {
    y.fill(0);
    for (let i = 0; i < batch; i++) {
      if (at === train.n) {
        order = rng.permutation(train.n);
        at = 0;
      }
      const k = order[at++]!;
      x.set(train.images.subarray(k * PIXELS, (k + 1) * PIXELS), i * PIXELS);
      y[i * classes + train.labels[k]!] = 1;
    }
    await runner.run({ x, labels: y, lr: opts.lr ?? 1e-3 });
  }
  const weights = Object.fromEntries(kit.params.map((name) => [name, store.get(name)]));
  let correct = 0;
  const chunk = 1000;
  for (let start = 0; start < test.n; start += chunk) {
    const count = Math.min(chunk, test.n - start);
    const out = await kit.infer.run({ ...weights, x: new ort.Tensor('float32', test.images.subarray(start * PIXELS, (start + count) * PIXELS), [count, 1, 28, 28]) });
    const logits = out.logits!.data as Float32Array;
    for (let i = 0; i < count; i++) if (argmax(logits, i * classes, classes) === test.labels[start + i]) correct++;
  }
  const labelCounts = new Array<number>(classes).fill(0);
  for (let i = 0; i < train.n; i++) labelCounts[train.labels[i]!]!++;
  return { accuracy: correct / test.n, nTrain: train.n, nTest: test.n, steps, batch, labelCounts };
}
