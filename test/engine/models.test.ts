// The model graphs' options build, load in onnxruntime and take a finite training step.

import { describe, expect, it } from 'vitest';
import { Graph } from '../../src/graph/ir.js';
import { StepRunner, TensorStore } from '../../src/runtime/index.js';
import { Rng } from '../../src/util/rng.js';
import * as teacher from '../../graphs/teacher.js';

/** A teacher's critic step (fakes drawn inside) and generator step at batch 4 over one store. */
function teacherSteps(arch: teacher.TeacherArch) {
  const t = { batch: 4, gpLambda: 10, optimizer: { kind: 'adam', beta1: 0.5, beta2: 0.9 } } as const;
  const store = new TensorStore();
  const gc = new Graph();
  const critic = teacher.buildCriticStep(gc, arch, t, 'generator');
  const gg = new Graph();
  const gen = teacher.buildGeneratorStep(gg, arch, t);
  store.declare(gc, 1);
  store.declare(gg, 1);
  return { store, critic, gen };
}

describe('teacher options', () => {
  it('self-attention (SAGAN) in generator and critic: critic (with gradient penalty) and generator steps run', async () => {
    const arch: teacher.TeacherArch = { zDim: 8, genWidth: 16, criticWidth: 8, spectralNorm: [true, false, true], attention: true };
    const { store, critic, gen } = teacherSteps(arch);
    expect([...store.specs.keys()]).toContain('G.attn.gamma');
    expect([...store.specs.keys()]).toContain('D.attn.query');
    // gamma starts at zero, so the attention path must receive a gradient to move it.
    const c = await StepRunner.create(critic, store, { threads: 1 });
    const g = await StepRunner.create(gen, store, { threads: 1 });
    const u0 = store.read('G.sn0.u');
    const rng = new Rng(2);
    for (let i = 0; i < 2; i++) {
      const m = await c.run({ real: rng.fillUniform(new Float32Array(4 * 784), -1, 1), z: rng.fillNormal(new Float32Array(4 * 8)), eps: rng.fillUniform(new Float32Array(4)), lr: 1e-3 });
      expect(Number.isFinite(m.loss) && Number.isFinite(m.gp)).toBe(true);
      const mg = await g.run({ z: rng.fillNormal(new Float32Array(4 * 8)), lr: 1e-3 });
      expect(Number.isFinite(mg.loss)).toBe(true);
    }
    expect(Math.abs(store.read('D.attn.gamma')[0]!)).toBeGreaterThan(0);
    expect(Math.abs(store.read('G.attn.gamma')[0]!)).toBeGreaterThan(0);
    // The generator step updates the spectral-norm vector (one power iteration per step, unit length).
    const u1 = store.read('G.sn0.u');
    expect(u1).not.toEqual(u0);
    expect(Math.hypot(...u1)).toBeCloseTo(1, 4);
  });
});

describe('generator batch norm', () => {
  it('trains on batch statistics, moves the running ones, and the inference graph uses the running ones', async () => {
    const arch: teacher.TeacherArch = { zDim: 8, genWidth: 16, criticWidth: 8, spectralNorm: [false, false, false], batchNorm: true };
    const { store, critic, gen } = teacherSteps(arch);
    expect(store.read('G.bn1.running_var')).toEqual(new Float32Array(8).fill(1));
    const c = await StepRunner.create(critic, store, { threads: 1 });
    const g = await StepRunner.create(gen, store, { threads: 1 });
    const rng = new Rng(3);
    for (let i = 0; i < 3; i++) {
      await c.run({ real: rng.fillUniform(new Float32Array(4 * 784), -1, 1), z: rng.fillNormal(new Float32Array(4 * 8)), eps: rng.fillUniform(new Float32Array(4)), lr: 1e-3 });
      const m = await g.run({ z: rng.fillNormal(new Float32Array(4 * 8)), lr: 1e-3 });
      expect(Number.isFinite(m.loss)).toBe(true);
    }
    // The generator step moves the running statistics (the critic step's fakes do not) and the scale.
    const mean = store.read('G.bn0.running_mean');
    expect(mean.some((v) => v !== 0)).toBe(true);
    expect(store.read('G.bn0.weight').some((v) => v !== 1)).toBe(true);
    // Inference normalises with the running statistics: one sample alone comes out as in a batch.
    const weights = teacher.normalizedGeneratorWeights(arch, (k) => store.read(k));
    expect(weights.has('G.bn1.running_var')).toBe(false); // folded into the scale and shift
    const { createSession } = await import('../../src/runtime/index.js');
    const ort = await import('onnxruntime-node');
    const s = await createSession(teacher.emitGeneratorInference(arch, 3, weights, true).bytes, { threads: 1 });
    const z = rng.fillNormal(new Float32Array(3 * 8));
    const three = (await s.run({ z: new ort.Tensor('float32', z, [3, 8]) })).images!.data as Float32Array;
    const one = (await s.run({ z: new ort.Tensor('float32', z.slice(0, 8), [1, 8]) })).images!.data as Float32Array;
    for (let i = 0; i < 784; i++) expect(one[i]).toBeCloseTo(three[i]!, 5);
    // With the running statistics changed, the samples change: they are really used.
    const shifted = teacher.normalizedGeneratorWeights(arch, (k) => (k === 'G.bn0.running_mean' ? Float32Array.from(mean, (v) => v + 1) : store.read(k)));
    const s2 = await createSession(teacher.emitGeneratorInference(arch, 1, shifted, true).bytes, { threads: 1 });
    const moved = (await s2.run({ z: new ort.Tensor('float32', z.slice(0, 8), [1, 8]) })).images!.data as Float32Array;
    expect(moved.some((v, i) => Math.abs(v - one[i]!) > 1e-3)).toBe(true);
  });
});
