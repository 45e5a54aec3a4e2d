// The teaching core in Node (onnxruntime-node): the same module the page's worker runs.

import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { decodeCheckpoint as cliDecode } from '../../src/formats/checkpoint.js';
import { shiftViews as cliShiftViews } from '../../src/train/student.js';
import { decodeSafetensors } from '../../src/graph/safetensors.js';
import { Checkpoints } from '../../src/train/runfiles.js';
import { EXPORT_FORMAT, decodeCheckpoint, encodeCheckpoint, shiftViews, exportDecoder, exportWeights, fitLeaves, buildTeachStep, priorRows, Teacher } from '../../src/teach/core.js';
import { decodeModel } from '../../src/graph/onnx.js';
import { toTaskImage } from '../../src/teach/images.js';
import { nodeTeachRuntime } from '../../src/teach/node.js';
import { readSamples } from '../../src/eval/images.js';
import { Rng } from '../../src/util/rng.js';
import { loadFeatureExtractor } from '../../src/eval/featnet.js';
import { fid } from '../../src/eval/fid.js';
import { studentFeeds } from '../../src/serve/sampling.js';
import { EXPORT_FORMAT as CLI_EXPORT } from '../../src/train/export.js';
import { makeSmokeRun, type SmokeRun } from './fixture.js';

let run: SmokeRun;
beforeAll(() => {
  run = makeSmokeRun();
}, 300_000);
afterAll(() => run?.remove());

const file = (name: string) => new Uint8Array(readFileSync(join(run.exportDir, name)));
const weights = () => exportWeights(file(run.manifest.student.decoder.file), file(run.manifest.student.encoder!.file), run.manifest.student.prior);

/** 8 images of a vertical bar: an easy new task. */
function bars(n = 8): Float32Array {
  const x = new Float32Array(n * 784);
  for (let i = 0; i < n; i++) for (let r = 4; r < 24; r++) for (let c = 12 + (i % 3); c < 16 + (i % 3); c++) x[i * 784 + r * 28 + c] = 1;
  return x;
}

async function decode(onnx: Uint8Array, z: Float32Array, task: Float32Array, n: number, T: number): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(onnx);
  const r = await s.run({ z: new ort.Tensor('float32', z, [n, 32]), task: new ort.Tensor('float32', task, [n, T]) });
  await s.release();
  return r.images!.data as Float32Array;
}

describe('teaching core', () => {
  test('checkpoints are the CLI format (src/formats/checkpoint.ts reads them); the export format is the CLI one', () => {
    const bytes = encodeCheckpoint(new Map([['prior.mu', Float32Array.of(1, 2, 3, 4)]]), new Map([['prior.mu', [2, 2]]]), 12, { run: 'r', tasks: ['a', 'b'] });
    const c = cliDecode(bytes, 'x');
    expect(c.counters.get('student_step')).toBe(12);
    expect(c.tensors.get('prior.mu')).toEqual({ shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) });
    expect(EXPORT_FORMAT).toBe(CLI_EXPORT);
    expect(() => decodeCheckpoint(new Uint8Array(4))).toThrow(/not a safetensors file.*teach panel downloaded/);
  });

  test("the InfoNCE views are src/train/student.ts's: the same draws and pixels", () => {
    const x = new Rng(9).fillNormal(new Float32Array(5 * 784));
    for (const max of [0, 2, 4]) {
      const a = new Rng(max);
      const b = new Rng(max);
      expect(shiftViews(x, 5, max, a)).toEqual(cliShiftViews(x, 5, max, b));
      expect(a.next()).toBe(b.next());
    }
  });

  test("export/'s baked weights are the run's last checkpointed student parameters", () => {
    const ckpts = new Checkpoints(join(run.run, 'checkpoints'), 'test');
    const state = ckpts.open();
    const { tensors } = decodeSafetensors(readFileSync(ckpts.path(state, 'student.safetensors')));
    const w = weights();
    const params = [...tensors.keys()].filter((n) => /^(enc|dec|prior)\./.test(n) && !n.includes('.adam_'));
    expect([...w.keys()].sort()).toEqual(params.sort());
    for (const n of params) expect(w.get(n), n).toEqual(tensors.get(n)!.data);
  });

  test('a new task slot leaves the old tasks\' decoder outputs as they were', async () => {
    const { graph } = buildTeachStep(run.student, 3);
    const fitted = fitLeaves(graph, weights(), 7);
    const rng = new Rng(3);
    const n = 4;
    const z = rng.fillNormal(new Float32Array(n * 32));
    const oneHot = (T: number) => Float32Array.from({ length: n * T }, (_, i) => (i % T === (Math.floor(i / T) % 2) ? 1 : 0));
    const before = await decode(file(run.manifest.student.decoder.file), z, oneHot(2), n, 2);
    const after = await decode(exportDecoder(run.student, 3, fitted).bytes, z, oneHot(3), n, 3);
    expect(Math.max(...before.map((v, i) => Math.abs(v - after[i]!)))).toBeLessThan(1e-6);
  });

  test('steps on a new task lower its loss, change the weights, and keep the checkpoint readable', async () => {
    const rt = nodeTeachRuntime(1);
    const start = fitLeaves(buildTeachStep(run.student, 3).graph, weights(), 7);
    const experts = await Promise.all(run.manifest.teacher!.experts.map((e) => ort.InferenceSession.create(file(e.file))));
    const t = await Teacher.create(rt, {
      config: run.student, tasks: ['mnist', 'fashion', 'bars'], target: 2, leaves: start, step: 0, images: bars(), seed: 1,
      teacher: (task) => ({ session: experts[task]!, zDim: run.manifest.teacher!.zDim }),
    });
    const losses: number[] = [];
    for (let i = 0; i < 16; i++) losses.push((await t.train()).loss!);
    expect(losses.every(Number.isFinite)).toBe(true);
    const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
    expect(mean(losses.slice(-4))).toBeLessThan(mean(losses.slice(0, 4)));
    const now = t.leaves();
    expect(now.get('dec.fc1.weight')).not.toEqual(start.get('dec.fc1.weight'));
    // Frozen prior rows of the kept tasks stay; the new row moves.
    const mu = now.get('prior.mu')!;
    expect(mu.subarray(0, 64)).toEqual(start.get('prior.mu')!.subarray(0, 64));
    expect(mu.subarray(64)).not.toEqual(start.get('prior.mu')!.subarray(64));
    const back = decodeCheckpoint(t.checkpoint('smoke'));
    expect(back.tasks).toEqual(['mnist', 'fashion', 'bars']);
    expect(back.step).toBe(16);
    expect(back.leaves.get('dec.fc1.weight')).toEqual(now.get('dec.fc1.weight'));
    await t.release();
  });

  const feedsOf = (f: ReturnType<typeof studentFeeds>) => ({ z: f.z.data as Float32Array, task: f.task.data as Float32Array });
  test("the page's plain lowering (standard Conv, no im2col) takes the cpu lowering's steps", async () => {
    const experts = await Promise.all(run.manifest.teacher!.experts.map((e) => ort.InferenceSession.create(file(e.file))));
    const start = fitLeaves(buildTeachStep(run.student, 3).graph, weights(), 7);
    const go = async (target?: 'plain') => {
      const rt = { ...nodeTeachRuntime(1), ...(target ? { target: () => target } : {}) };
      const t = await Teacher.create(rt, {
        config: run.student, tasks: ['mnist', 'fashion', 'bars'], target: 2, leaves: start, step: 0, images: bars(), seed: 3,
        teacher: (task) => ({ session: experts[task]!, zDim: run.manifest.teacher!.zDim }),
      });
      const losses: number[] = [];
      for (let i = 0; i < 3; i++) losses.push((await t.train()).loss!);
      const ops = new Set(decodeModel(t.step.bytes).graph!.node!.map((n) => n.opType));
      const out = { target: t.step.target, ops, losses, w: t.read('dec.fc1.weight'), grid: await t.samples(feedsOf(studentFeeds(priorRows(t.leaves(), 3, 32), 0, 3, 4, 7)), 4) };
      await t.release();
      return out;
    };
    const cpu = await go();
    const plain = await go('plain');
    expect([cpu.target, plain.target]).toEqual(['cpu', 'plain']);
    expect(cpu.ops.has('Conv')).toBe(false);
    expect(plain.ops.has('Conv') && plain.ops.has('ConvTranspose')).toBe(true);
    plain.losses.forEach((l, i) => expect(Math.abs(l - cpu.losses[i]!) / Math.abs(cpu.losses[i]!)).toBeLessThan(1e-3));
    // The weights' difference against how far the steps moved them (L2), as test/golden/targets.test.ts measures it.
    const dist = (a: Float32Array, b: Float32Array) => Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]!) ** 2, 0));
    const moved = dist(cpu.w, start.get('dec.fc1.weight')!);
    expect(moved).toBeGreaterThan(0);
    expect(dist(plain.w, cpu.w)).toBeLessThan(0.05 * moved);
    expect(Math.max(...plain.grid.map((v, i) => Math.abs(v - cpu.grid[i]!)))).toBeLessThan(1e-3);
  });
});

test("without replay and anchors the earlier tasks' samples drift far (the bound the browser test states means something)", async () => {
  const rt = nodeTeachRuntime(1);
  const off = { ...run.student, replay: { ...run.student.replay, ratio: 0 }, anchor: { ...run.student.anchor, decoder: false, encoder: false, freezePrior: false } };
  const t = await Teacher.create(rt, { config: off, tasks: ['mnist', 'fashion', 'bars'], target: 2, leaves: weights(), step: 0, images: bars(), seed: 1 });
  for (let i = 0; i < 30; i++) await t.train();
  const fx = await loadFeatureExtractor({ log: () => undefined });
  try {
    const leaves = t.leaves();
    const zd = 32;
    const prior = { mu: [0, 1, 2].map((k) => Array.from(leaves.get('prior.mu')!.subarray(k * zd, (k + 1) * zd))), logvar: [0, 1, 2].map((k) => Array.from(leaves.get('prior.logvar')!.subarray(k * zd, (k + 1) * zd))) };
    const draw = async (onnx: Uint8Array, p: typeof prior, T: number) => {
      const f = studentFeeds(p, 0, T, 256, 11);
      return fx.features(await decode(onnx, f.z.data, f.task.data, 256, T), 256);
    };
    const before = await draw(file(run.manifest.student.decoder.file), run.manifest.student.prior, 2);
    const after = await draw(exportDecoder(off, 3, leaves).bytes, prior, 3);
    expect(fid(before, after, fx.dim)).toBeGreaterThan(200);
  } finally {
    await fx.close();
    await t.release();
  }
});

describe('image conversion', () => {
  test('a 56x56 picture becomes the 28x28 image the eval reads from it (grid scale 2)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'teach-img-'));
    try {
      const rng = new Rng(5);
      const gray = Uint8Array.from({ length: 56 * 56 }, () => Math.floor(rng.uniform() * 120));
      const path = join(dir, 'x.png');
      writeFileSync(path, await sharp(gray, { raw: { width: 56, height: 56, channels: 1 } }).png().toBuffer());
      const evalRead = await readSamples(path, { gridScale: 2 });
      const rgba = new Uint8Array(56 * 56 * 4);
      gray.forEach((v, i) => rgba.set([v, v, v, 255], i * 4));
      const { image, inverted } = toTaskImage(rgba, 56, 56);
      expect(inverted).toBe(false);
      expect(Math.max(...image.map((v, i) => Math.abs(v - evalRead.images[i]!)))).toBeLessThan(1e-5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a dark drawing on white paper is inverted to light-on-dark; a wide picture is centred', () => {
    const w = 84;
    const h = 28;
    const rgba = new Uint8Array(w * h * 4).fill(255);
    for (let x = 20; x < 64; x++) for (let y = 12; y < 16; y++) rgba.fill(0, (y * w + x) * 4, (y * w + x) * 4 + 3); // a black stroke
    const { image, inverted } = toTaskImage(rgba, w, h);
    expect(inverted).toBe(true);
    // the paper and the padding become black, the stroke light, in the middle third of the square
    expect(image[0]).toBeCloseTo(0, 5);
    expect(image[27 * 28 + 27]).toBeCloseTo(0, 5);
    expect(image[13 * 28 + 14]).toBeGreaterThan(0.5);
    expect(Math.max(...image.subarray(0, 8 * 28))).toBe(0);
  });
});
