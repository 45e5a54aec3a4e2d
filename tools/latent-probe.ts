// npx tsx tools/latent-probe.ts RUN_DIR [--stage K] [--components N] [--samples N] [--seed S]
// Where the student's MNIST fitting capacity is lost, on the TRAINING split only: samples from
// the learned prior, from a mixture fitted afterwards to the encoder's posterior means (ex-post
// density estimation, Ghosh et al. 2020), and reconstructions of real images (decoder of the
// encoder's means), each scored by FID against other training images and by the fitting
// capacity of the eval (feature-net labels, tested on held-out training images), with the class
// counts of those labels. docs/quality.md uses it for the fitting-capacity diagnosis.

import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { loadTask, localLabels } from '../src/data/index.js';
import { loadFeatureExtractor } from '../src/eval/featnet.js';
import { PIXELS } from '../src/eval/features.js';
import { fidAgainst } from '../src/eval/reference.js';
import { statsAsync } from '../src/eval/gram.js';
import { ExportSampler } from '../src/eval/generate.js';
import { fittingCapacity, pseudoLabels, type LabelledImages } from '../src/eval/fitting.js';
import { readExportManifest } from '../src/train/export.js';
import { Rng } from '../src/util/rng.js';
import { wholeNumberFlag } from './args.js';

const HELP = `usage: npx tsx tools/latent-probe.ts RUN_DIR [--stage K] [--components 10] [--samples 2000] [--seed 0]
For each task of the stage's export (stages/K/export, default 0): draws 10,000 training images to
encode and 10,000 other training images as the reference, then prints FID and fitting capacity
(feature-net labels, 2,000-step classifier, tested on the reference images) of --samples images
from (a) the task's prior, (b) a diagonal Gaussian mixture of --components fitted by EM to the
encoder's posterior means, (c) the decoder's reconstructions of encoded images, (d) those real
images themselves (the measure's ceiling under the feature net's labels). --seed changes
the draws of (a) and (b) and the classifier's seed (FID and fitting capacity move with them).`;

const { values: a, positionals } = parseArgs({
  allowPositionals: true,
  options: { stage: { type: 'string', default: '0' }, components: { type: 'string', default: '10' }, samples: { type: 'string', default: '2000' }, seed: { type: 'string', default: '0' }, help: { type: 'boolean', short: 'h' } },
});
if (a.help || positionals.length !== 1) {
  console.log(HELP);
  process.exit(a.help ? 0 : 1);
}
const stage = wholeNumberFlag('stage', a.stage, 0);
const K = wholeNumberFlag('components', a.components, 1);
const N = wholeNumberFlag('samples', a.samples, 2);
const seed = wholeNumberFlag('seed', a.seed, 0);
const dir = join(positionals[0]!, 'stages', String(stage), 'export');
if (!existsSync(join(dir, 'manifest.json'))) throw new Error(`${dir} has no manifest.json: give a run folder of npm run train (results/<id>) and a stage it finished`);
if (N > 10000) throw new Error(`--samples ${N}: at most 10,000 (the encoded images)`);

interface Mixture {
  w: Float64Array;
  mu: Float64Array[];
  v: Float64Array[];
}

/** EM for a diagonal Gaussian mixture, k-means++ initialisation, variances floored at 1e-4. */
function fitMixture(x: Float32Array, n: number, d: number, k: number, rng: Rng, iters = 100): Mixture {
  const first = rng.int(n);
  const mu: Float64Array[] = [Float64Array.from(x.subarray(first * d, first * d + d))];
  const dist = new Float64Array(n).fill(Infinity);
  while (mu.length < k) {
    const c = mu.at(-1)!;
    let total = 0;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += (x[i * d + j]! - c[j]!) ** 2;
      dist[i] = Math.min(dist[i]!, s);
      total += dist[i]!;
    }
    let r = rng.uniform() * total;
    let i = 0;
    for (; i < n - 1 && r > dist[i]!; i++) r -= dist[i]!;
    mu.push(Float64Array.from(x.subarray(i * d, i * d + d)));
  }
  const mean = new Float64Array(d);
  const global = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j]! / n;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) global[j] += (x[i * d + j]! - mean[j]!) ** 2 / n;
  const v = mu.map(() => Float64Array.from(global));
  const w = new Float64Array(k).fill(1 / k);
  const resp = new Float64Array(n * k);
  for (let it = 0; it < iters; it++) {
    for (let i = 0; i < n; i++) {
      let max = -Infinity;
      for (let c = 0; c < k; c++) {
        let s = Math.log(w[c]!);
        for (let j = 0; j < d; j++) s -= 0.5 * (Math.log(v[c]![j]!) + (x[i * d + j]! - mu[c]![j]!) ** 2 / v[c]![j]!);
        resp[i * k + c] = s;
        max = Math.max(max, s);
      }
      let z = 0;
      for (let c = 0; c < k; c++) z += (resp[i * k + c] = Math.exp(resp[i * k + c]! - max));
      for (let c = 0; c < k; c++) resp[i * k + c]! /= z;
    }
    for (let c = 0; c < k; c++) {
      let nk = 0;
      const m = new Float64Array(d);
      for (let i = 0; i < n; i++) {
        nk += resp[i * k + c]!;
        for (let j = 0; j < d; j++) m[j] += resp[i * k + c]! * x[i * d + j]!;
      }
      for (let j = 0; j < d; j++) m[j] /= nk;
      const vv = new Float64Array(d);
      for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) vv[j] += resp[i * k + c]! * (x[i * d + j]! - m[j]!) ** 2;
      for (let j = 0; j < d; j++) vv[j] = Math.max(vv[j]! / nk, 1e-4);
      [w[c], mu[c], v[c]] = [nk / n, m, vv];
    }
  }
  return { w, mu, v };
}

function sampleMixture(g: Mixture, n: number, d: number, rng: Rng): Float32Array {
  const z = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    let u = rng.uniform();
    let c = 0;
    for (; c < g.w.length - 1 && u > g.w[c]!; c++) u -= g.w[c]!;
    for (let j = 0; j < d; j++) z[i * d + j] = g.mu[c]![j]! + Math.sqrt(g.v[c]![j]!) * rng.normal();
  }
  return z;
}

function pick(images: Uint8Array, index: ArrayLike<number>): Float32Array {
  const out = new Float32Array(index.length * PIXELS);
  for (let i = 0; i < index.length; i++) for (let p = 0; p < PIXELS; p++) out[i * PIXELS + p] = images[index[i]! * PIXELS + p]! / 255;
  return out;
}

const fx = await loadFeatureExtractor({ log: () => {} });
const m = readExportManifest(dir);
if (!m.student.encoder) throw new Error(`${dir}: the export has no student encoder; export again with npm run train -- --resume`);
const session = (file: string) => ort.InferenceSession.create(readFileSync(join(dir, file)), { intraOpNumThreads: 2 });
const enc = await session(m.student.encoder.file);
const dec = await session(m.student.decoder.file);
const T = Number(m.student.decoder.inputs.find((i) => i.name === 'task')!.shape[1]);
const d = m.student.zDim;
const sampler = ExportSampler.open(dir, { threads: 2 });

async function decode(z: Float32Array, taskIndex: number): Promise<Float32Array> {
  const onehot = new Float32Array(N * T);
  for (let i = 0; i < N; i++) onehot[i * T + taskIndex] = 1;
  const out = await dec.run({ z: new ort.Tensor('float32', z, [N, d]), task: new ort.Tensor('float32', onehot, [N, T]) });
  return Float32Array.from(out[m.student.decoder.outputs[0]!.name]!.data as Float32Array, (v) => (v > 0 ? (v < 1 ? v : 1) : 0));
}

// A stage's export lists every task of the sequence; the ones learned by then are those its teacher holds.
const learned = new Set(m.teacher ? m.teacher.experts.flatMap((e) => e.tasks) : m.tasks.map((t) => t.name));
for (const entry of m.tasks.filter((t) => learned.has(t.name))) {
  const task = entry.name;
  const t = await loadTask(task);
  const labels = localLabels(t.train.labels, t.spec.classes);
  const perm = new Rng(Rng.derive(11, 'latent-probe', task)).permutation(t.train.n);
  const encIdx = perm.slice(0, 10000);
  const refIdx = perm.slice(10000, 20000);
  const ref: LabelledImages = { images: pick(t.train.images, refIdx), labels: Uint8Array.from(refIdx, (i) => labels[i]!), n: refIdx.length };
  const refStats = await statsAsync(await fx.features(ref.images, ref.n), fx.dim);
  const x = pick(t.train.images, encIdx);
  const means = new Float32Array(encIdx.length * d);
  for (let s = 0; s < encIdx.length; s += 500) {
    const out = await enc.run({ [m.student.encoder.inputs[0]!.name]: new ort.Tensor('float32', x.slice(s * PIXELS, (s + 500) * PIXELS), [500, 1, 28, 28]) });
    means.set(out[m.student.encoder.outputs[0]!.name]!.data as Float32Array, s * d);
  }
  const mixture = fitMixture(means, encIdx.length, d, K, new Rng(3));
  const sets: [string, () => Promise<Float32Array>][] = [
    ['prior', () => sampler.student(task, N, new Rng(Rng.derive(5 + 2 * seed, 'latent-probe', task)))],
    [`mixture of ${K}`, () => decode(sampleMixture(mixture, N, d, new Rng(Rng.derive(6 + 2 * seed, 'latent-probe', task))), entry.index)],
    ['reconstructions', () => decode(means.slice(0, N * d), entry.index)],
    ['the encoded real images themselves', async () => x.slice(0, N * PIXELS)],
  ];
  for (const [name, make] of sets) {
    const images = await make();
    const fid = await fidAgainst(fx, refStats, images, N);
    const pl = await pseudoLabels(fx, task, images, N);
    const fit = await fittingCapacity({ images, labels: pl, n: N }, ref, t.spec.classes.length, { seed, threads: 2 });
    console.log(`stage ${stage} ${task} ${name}: FID ${fid.toFixed(1)} (train split), fitting capacity ${(100 * fit.accuracy).toFixed(1)}%, label counts ${fit.labelCounts.join(' ')}`);
  }
}
await sampler.close();
