// The FID feature network (the LeNet of docs/models.md), trained with the
// project's own engine on the MNIST and Fashion-MNIST training sets on first use and cached:
// `<cacheDir>/lenet-<key>/features.onnx` (weights baked in, batch symbolic) and `meta.json`
// with the SHA-256 of the weights file and of the training data it saw, its training budget
// and its test accuracy per dataset. The key covers the data and the budget, so other data
// (say, another dataset source) or another budget trains a new network.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { Graph } from '../graph/ir.js';
import { targetForDevice } from '../graph/onnx.js';
import { buildFeatureStep, emitFeatureInference, featureParamList, featureParams } from '../../graphs/features.js';
import { StepRunner, TensorStore, type Device } from '../runtime/index.js';
import { sha256 } from '../train/export.js';
import { writeFileAtomic } from '../util/fs.js';
import { ensureDataset, endlessBatches, type LoadedDataset, type Split } from '../data/index.js';
import { lenetExtractor, PIXELS, type ClassifyingExtractor } from './features.js';

export const FEATURE_NET_FORMAT = 'lifelong-gen-featnet/1';
export const DEFAULT_FEATURE_CACHE = join('datasets', 'features');
export const FEATURE_CLASSES = 20;
/** Class offset of each dataset in the 20 feature-net classes. */
export const CLASS_OFFSET = { mnist: 0, fashion: 10 } as const;

export interface FeatureNetOptions {
  /** Cache folder (git-ignored); default datasets/features. */
  cacheDir?: string;
  /** Datasets root for ensureDataset (default 'datasets'). */
  dataRoot?: string;
  /** Use local / offline dataset sources only. */
  offline?: boolean;
  /** Training steps (default 1500: about a minute on 2 cores). */
  steps?: number;
  /** Batch size, half MNIST and half Fashion-MNIST (default 64). */
  batch?: number;
  lr?: number;
  seed?: number;
  /** Test images per dataset for the accuracy check (default: the whole test sets). */
  testSamples?: number;
  /** Train again even if a cached network exists. */
  retrain?: boolean;
  threads?: number;
  device?: Device;
  /** Status lines (default: stderr). */
  log?: (line: string) => void;
}

const accuracySchema = z.object({ accuracy: z.number(), n: z.number().int() });
const metaSchema = z.object({
  format: z.literal(FEATURE_NET_FORMAT),
  file: z.string(),
  weightsSha256: z.string(),
  dataSha256: z.string(),
  config: z.object({ steps: z.number(), batch: z.number(), lr: z.number(), seed: z.number() }),
  trainSamples: z.object({ mnist: z.number(), fashion: z.number() }),
  dataSources: z.object({ mnist: z.string(), fashion: z.string() }),
  testAccuracy: z.object({ mnist: accuracySchema, fashion: accuracySchema }),
  trainSeconds: z.number(),
  trainedAt: z.string(),
});
export type FeatureNetInfo = z.infer<typeof metaSchema> & { dir: string; cached: boolean };

export interface LeNetExtractor extends ClassifyingExtractor {
  readonly info: FeatureNetInfo;
}

const stderrLog = (line: string) => process.stderr.write(line + '\n');

function dataHash(m: LoadedDataset, f: LoadedDataset): string {
  const h = createHash('sha256');
  for (const ds of [m, f]) {
    h.update(`${ds.name}:${ds.n.train}:${ds.rows}x${ds.cols};`);
    h.update(ds.trainImages);
    h.update(ds.trainLabels);
  }
  return h.digest('hex');
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export function describeAccuracy(info: Pick<FeatureNetInfo, 'testAccuracy'>): string {
  const a = info.testAccuracy;
  return `test accuracy mnist ${pct(a.mnist.accuracy)} (${a.mnist.n} images), fashion ${pct(a.fashion.accuracy)} (${a.fashion.n} images)`;
}

/**
 * The LeNet feature extractor: loaded from the cache when its checksums match, else trained
 * (and cached). Prints its test accuracy per dataset either way.
 */
export async function loadFeatureExtractor(opts: FeatureNetOptions = {}): Promise<LeNetExtractor> {
  const log = opts.log ?? stderrLog;
  const config = { steps: opts.steps ?? 1500, batch: opts.batch ?? 64, lr: opts.lr ?? 1e-3, seed: opts.seed ?? 0 };
  if (!Number.isInteger(config.steps) || config.steps < 1) throw new Error(`feature net: steps must be a positive integer, got ${config.steps}`);
  if (!Number.isInteger(config.batch) || config.batch < 2 || config.batch % 2) throw new Error(`feature net: batch must be an even integer >= 2, got ${config.batch}`);
  const ensure = { root: opts.dataRoot, offline: opts.offline, log, progress: null };
  const mnist = await ensureDataset('mnist', ensure);
  const fashion = await ensureDataset('fashion', ensure);
  const dataSha256 = dataHash(mnist, fashion);
  // The training graph is part of the key: an engine whose lowering computes the step in another
  // order trains other weights, and every FID moves with them.
  const g = new Graph();
  // The step as the device runs it (its lowering target, see StepRunner.create).
  const target = targetForDevice(opts.device ?? 'cpu');
  const built = buildFeatureStep(g, config.batch, FEATURE_CLASSES);
  const step = built.target === target ? built : built.retarget!(target);
  const graphSha256 = sha256(step.bytes);
  const key = createHash('sha256').update(JSON.stringify({ dataSha256, config, graphSha256 })).digest('hex').slice(0, 16);
  const dir = join(opts.cacheDir ?? DEFAULT_FEATURE_CACHE, `lenet-${key}`);
  const metaPath = join(dir, 'meta.json');
  const session = { threads: opts.threads, device: opts.device };

  if (!opts.retrain && existsSync(metaPath)) {
    const reason = checkCache(dir, metaPath, dataSha256);
    if (typeof reason !== 'string') {
      const info: FeatureNetInfo = { ...reason.meta, dir, cached: true };
      log(`feature net: cached in ${dir} (weights sha256 ${info.weightsSha256.slice(0, 12)}, data sha256 ${info.dataSha256.slice(0, 12)}); ${describeAccuracy(info)}`);
      return withInfo(await lenetExtractor(reason.bytes, { name: 'lenet-mnist-fashion', description: describe(info), ...session }), info);
    }
    log(`feature net: not using the cache in ${dir}: ${reason}; training again`);
  }

  const trainSplit = (ds: LoadedDataset): Split => ({ images: ds.trainImages, labels: ds.trainLabels, n: ds.n.train, rows: ds.rows, cols: ds.cols });
  log(`feature net: training the LeNet on MNIST (${mnist.n.train} images) + Fashion-MNIST (${fashion.n.train}), ${config.steps} steps of ${config.batch} (half from each), Adam lr ${config.lr}; cached in ${dir}`);
  const t0 = performance.now();
  const store = new TensorStore();
  store.declare(g, config.seed);
  const runner = await StepRunner.create(step, store, session);
  const half = config.batch / 2;
  const streams = [
    { it: endlessBatches(trainSplit(mnist), { batchSize: half, seed: `featnet-mnist-${config.seed}`, dropLast: true }), offset: CLASS_OFFSET.mnist },
    { it: endlessBatches(trainSplit(fashion), { batchSize: half, seed: `featnet-fashion-${config.seed}`, dropLast: true }), offset: CLASS_OFFSET.fashion },
  ];
  const x = new Float32Array(config.batch * PIXELS);
  const labels = new Float32Array(config.batch * FEATURE_CLASSES);
  let lossSum = 0;
  let correct = 0;
  let seen = 0;
  const every = Math.max(1, Math.round(config.steps / 10));
  for (let s = 1; s <= config.steps; s++) {
    labels.fill(0);
    streams.forEach((src, k) => {
      const b = src.it.next().value!;
      x.set(b.x, k * half * PIXELS);
      for (let i = 0; i < half; i++) labels[(k * half + i) * FEATURE_CLASSES + src.offset + b.y[i]!] = 1;
    });
    const m = await runner.run({ x, labels, lr: config.lr });
    lossSum += m.loss!;
    correct += m.correct!;
    seen += config.batch;
    if (s % every === 0 || s === config.steps) {
      log(`feature net: step ${s}/${config.steps} loss ${(lossSum / (seen / config.batch)).toFixed(3)} train acc ${pct(correct / seen)} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
      lossSum = correct = seen = 0;
    }
  }
  const weights = new Map(featureParamList(featureParams(new Graph(), FEATURE_CLASSES)).map((p) => [String(p.attrs.name), store.read(String(p.attrs.name))]));
  const bytes = emitFeatureInference(11, weights, FEATURE_CLASSES, true, target).bytes;
  const trainSeconds = (performance.now() - t0) / 1000;
  const fx = await lenetExtractor(bytes, { name: 'lenet-mnist-fashion', description: '', ...session });
  const testAccuracy = {
    mnist: await testAccuracyOf(fx, mnist, CLASS_OFFSET.mnist, opts.testSamples),
    fashion: await testAccuracyOf(fx, fashion, CLASS_OFFSET.fashion, opts.testSamples),
  };
  const meta: z.infer<typeof metaSchema> = {
    format: FEATURE_NET_FORMAT,
    file: 'features.onnx',
    weightsSha256: sha256(bytes),
    dataSha256,
    config,
    trainSamples: { mnist: mnist.n.train, fashion: fashion.n.train },
    dataSources: { mnist: mnist.source, fashion: fashion.source },
    testAccuracy,
    trainSeconds,
    trainedAt: new Date().toISOString(),
  };
  writeFileAtomic(join(dir, 'features.onnx'), bytes);
  writeFileAtomic(metaPath, JSON.stringify(meta, null, 2) + '\n');
  const info: FeatureNetInfo = { ...meta, dir, cached: false };
  log(`feature net: trained in ${trainSeconds.toFixed(1)} s; ${describeAccuracy(info)}`);
  return withInfo({ ...fx, description: describe(info) }, info);
}

function describe(info: FeatureNetInfo): string {
  return `LeNet (docs/models.md) trained on MNIST + Fashion-MNIST, 128 ReLU features; weights sha256 ${info.weightsSha256.slice(0, 12)}; ${describeAccuracy(info)}`;
}

function withInfo(fx: ClassifyingExtractor, info: FeatureNetInfo): LeNetExtractor {
  return { ...fx, info };
}

function checkCache(dir: string, metaPath: string, dataSha256: string): { meta: z.infer<typeof metaSchema>; bytes: Uint8Array } | string {
  let meta: z.infer<typeof metaSchema>;
  try {
    const parsed = metaSchema.safeParse(JSON.parse(readFileSync(metaPath, 'utf8')));
    if (!parsed.success) return `${metaPath} is not a valid feature-net record`;
    meta = parsed.data;
  } catch (err) {
    return `cannot read ${metaPath} (${(err as Error).message})`;
  }
  if (meta.dataSha256 !== dataSha256) return `it was trained on other data (data sha256 ${meta.dataSha256.slice(0, 12)}, now ${dataSha256.slice(0, 12)})`;
  const file = join(dir, meta.file);
  if (!existsSync(file)) return `${file} is missing`;
  const bytes = readFileSync(file);
  const actual = sha256(bytes);
  if (actual !== meta.weightsSha256) return `${file} does not match its checksum (sha256 ${actual.slice(0, 12)}, expected ${meta.weightsSha256.slice(0, 12)})`;
  return { meta, bytes };
}

/** 20-way accuracy of the feature net on a dataset's test set (optionally its first `limit` images). */
async function testAccuracyOf(fx: ClassifyingExtractor, ds: LoadedDataset, offset: number, limit?: number): Promise<{ accuracy: number; n: number }> {
  const n = Math.min(limit ?? ds.n.test, ds.n.test);
  const images = new Float32Array(n * PIXELS);
  for (let i = 0; i < images.length; i++) images[i] = ds.testImages[i]! / 255;
  const logits = await fx.logits(images, n);
  let correct = 0;
  for (let i = 0; i < n; i++) if (argmax(logits, i * FEATURE_CLASSES, FEATURE_CLASSES) === offset + ds.testLabels[i]!) correct++;
  return { accuracy: correct / n, n };
}

export function argmax(a: ArrayLike<number>, start: number, count: number): number {
  let best = 0;
  for (let k = 1; k < count; k++) if (a[start + k]! > a[start + best]!) best = k;
  return best;
}
