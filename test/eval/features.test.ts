import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { sha256 } from '../../src/train/export.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Graph } from '../../src/graph/ir.js';
import * as o from '../../src/graph/ops.js';
import { emitModel } from '../../src/graph/onnx.js';
import { ensureDataset } from '../../src/data/index.js';
import { loadFeatureExtractor, type LeNetExtractor } from '../../src/eval/featnet.js';
import { loadOnnxExtractor, resizeBilinear } from '../../src/eval/features.js';
import { fid } from '../../src/eval/fid.js';
import { evaluateSamples } from '../../src/eval/samples.js';
import { fidAgainst, realTaskStats } from '../../src/eval/reference.js';
import { Rng } from '../../src/util/rng.js';

const cacheDir = mkdtempSync(join(tmpdir(), 'eval-features-'));
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

// A small training budget: enough to separate the datasets, quick on 2 cores.
const budget = { cacheDir, steps: 40, testSamples: 400, threads: 2 };
let fx: LeNetExtractor;
const lines: string[] = [];

beforeAll(async () => {
  fx = await loadFeatureExtractor({ ...budget, log: (l) => lines.push(l) });
});

function firstImages(images: Uint8Array, n: number, offset = 0): Float32Array {
  const out = new Float32Array(n * 784);
  for (let i = 0; i < out.length; i++) out[i] = images[offset * 784 + i]! / 255;
  return out;
}

describe('LeNet feature network', () => {
  it('trains with the engine on first use, prints its test accuracy per dataset, and caches with checksums', async () => {
    expect(fx.dim).toBe(128);
    expect(fx.classes).toBe(20);
    expect(fx.info.cached).toBe(false);
    expect(lines.join('\n')).toMatch(/feature net: trained in [\d.]+ s; test accuracy mnist [\d.]+% \(400 images\), fashion [\d.]+% \(400 images\)/);
    expect(fx.info.testAccuracy.mnist.accuracy).toBeGreaterThan(0.3);
    expect(fx.info.testAccuracy.fashion.accuracy).toBeGreaterThan(0.3);
    expect(fx.info.weightsSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(fx.info.dataSha256).toMatch(/^[0-9a-f]{64}$/);

    const again: string[] = [];
    const cached = await loadFeatureExtractor({ ...budget, log: (l) => again.push(l) });
    expect(cached.info.cached).toBe(true);
    expect(cached.info.weightsSha256).toBe(fx.info.weightsSha256);
    expect(again.join('\n')).toMatch(/feature net: cached in .*test accuracy mnist/);
    const x = new Float32Array(3 * 784).map((_, i) => (i % 7) / 7);
    expect(await cached.features(x, 3)).toEqual(await fx.features(x, 3));
    await cached.close();

    // A damaged weights file is detected by its checksum and the network is trained again.
    const dir = fx.info.dir;
    writeFileSync(join(dir, 'features.onnx'), 'garbage');
    const retrained: string[] = [];
    const fresh = await loadFeatureExtractor({ ...budget, log: (l) => retrained.push(l) });
    expect(retrained.join('\n')).toMatch(/does not match its checksum.*training again/);
    expect(fresh.info.cached).toBe(false);
    expect(sha256(readFileSync(join(dir, 'features.onnx')))).toBe(fresh.info.weightsSha256);
    expect(readdirSync(cacheDir)).toHaveLength(1);
    await fresh.close();
  });

  it('separates the datasets: FID(mnist train, mnist test) << FID(mnist, fashion)', async () => {
    const m = await ensureDataset('mnist', { log: () => {} });
    const f = await ensureDataset('fashion', { log: () => {} });
    const n = 500;
    const a = await fx.features(firstImages(m.trainImages, n), n);
    const b = await fx.features(firstImages(m.testImages, n), n);
    const c = await fx.features(firstImages(f.testImages, n), n);
    const same = fid(a, b, 128);
    const cross = fid(a, c, 128);
    expect(cross).toBeGreaterThan(10 * same);
  });

  it('real statistics computed once per task: FID of the test set against itself is 0', async () => {
    const real = await realTaskStats(fx, 'mnist');
    expect(real.n).toBe(10000); // the full MNIST test set
    const m = await ensureDataset('mnist', { log: () => {} });
    expect(await fidAgainst(fx, real, firstImages(m.testImages, 10000), 10000)).toBeLessThan(1e-6);
    expect(await fidAgainst(fx, real, firstImages(m.trainImages, 10000), 10000)).toBeGreaterThan(0.01);
  });

  it('scores a set of images against a task, with the real-vs-real floor and fitting capacity', async () => {
    const f = await ensureDataset('fashion', { log: () => {} });
    const n = 500;
    const real = await evaluateSamples({ images: firstImages(f.trainImages, n, 1000), n, source: 'fashion train' }, 'fashion', { labeler: fx, fitSteps: 40, kidSubsets: 5, threads: 2, log: () => {} });
    expect(real.n).toBe(n);
    expect(real.nReal).toBe(10000);
    expect(real.floor!.nTrain).toBe(n);
    expect(real.fid!).toBeLessThan(3 * real.floor!.fid + 1);
    expect(real.fitting!.accuracy).toBeGreaterThan(0.3);
    const rng = new Rng(1);
    const noise = new Float32Array(n * 784).map(() => rng.uniform());
    const bad = await evaluateSamples({ images: noise, n, source: 'noise' }, 'fashion', { labeler: fx, fitSteps: 0, kidSubsets: 5, threads: 2, log: () => {} });
    expect(bad.fid!).toBeGreaterThan(20 * real.fid!);
    expect(bad.kid!.mean).toBeGreaterThan(real.kid!.mean);
    expect(bad.fitting).toBeNull();
  });
});

describe('external ONNX feature extractors', () => {
  /** A stand-in for Inception: per-channel spatial means of a [N, C, S, S] (or NHWC) input. */
  function meanModel(size: number, channels: number, layout: 'nchw' | 'nhwc', batch: number | 'dynamic'): Uint8Array {
    const g = new Graph();
    const n = batch === 'dynamic' ? 5 : batch;
    const x = g.input('pixels', layout === 'nchw' ? [n, channels, size, size] : [n, size, size, channels]);
    const pooled = o.reduceMean(x, layout === 'nchw' ? [2, 3] : [1, 2], 0); // [N, C]
    return emitModel(g, { outputs: { pool: pooled }, dynamicBatch: batch === 'dynamic' ? 5 : undefined }).bytes;
  }

  const dir = mkdtempSync(join(tmpdir(), 'eval-onnx-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const constantImages = (values: number[]) => {
    const x = new Float32Array(values.length * 784);
    values.forEach((v, k) => x.fill(v, k * 784, (k + 1) * 784));
    return x;
  };

  it('resizes, repeats channels and normalises (NCHW, symbolic batch)', async () => {
    const file = join(dir, 'mean.onnx');
    writeFileSync(file, meanModel(32, 3, 'nchw', 'dynamic'));
    const ex = await loadOnnxExtractor(file, { normalization: 'imagenet' });
    expect(ex.dim).toBe(3);
    expect(ex.description).toMatch(/nchw 3x32x32/);
    const feats = await ex.features(constantImages([0, 0.5, 1]), 3);
    const mean = [0.485, 0.456, 0.406];
    const std = [0.229, 0.224, 0.225];
    [0, 0.5, 1].forEach((v, k) => mean.forEach((m, c) => expect(feats[k * 3 + c]!).toBeCloseTo((v - m) / std[c]!, 4)));
    await ex.close();
  });

  it('feeds NHWC models with a fixed batch (padding the last chunk)', async () => {
    const file = join(dir, 'mean-nhwc.onnx');
    writeFileSync(file, meanModel(28, 2, 'nhwc', 4));
    const ex = await loadOnnxExtractor(file, { layout: 'nhwc', normalization: '0.5/0.5' });
    const values = [0, 0.25, 0.5, 0.75, 1, 0.1];
    const feats = await ex.features(constantImages(values), values.length);
    expect(feats.length).toBe(12);
    values.forEach((v, k) => expect(feats[k * 2 + 1]!).toBeCloseTo(2 * v - 1, 5));
    await expect(loadOnnxExtractor(file, { layout: 'nhwc', size: 299 })).rejects.toThrow(/takes 28x28 images, not 299x299/);
    await expect(loadOnnxExtractor(file, { normalization: 'nope' })).rejects.toThrow(/unknown normalization 'nope'/);
    await ex.close();
  });

  it('bilinear resize matches PyTorch (align_corners=False)', () => {
    const out = resizeBilinear(Float32Array.from([0, 1, 2, 3]), 2, 4);
    expect([...out]).toEqual([0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3]);
  });
});
