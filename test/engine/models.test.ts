// The model graphs' options build, load in onnxruntime and take a finite training step.

import { describe, expect, it } from 'vitest';
import { Graph } from '../../src/graph/ir.js';
import { StepRunner, TensorStore } from '../../src/train/session.js';
import { Rng } from '../../src/util/rng.js';
import * as teacher from '../../graphs/teacher.js';

describe('teacher options', () => {
  it('self-attention (SAGAN) in generator and critic: critic (with gradient penalty) and generator steps run', async () => {
    const arch: teacher.TeacherArch = { zDim: 8, genWidth: 16, criticWidth: 8, spectralNorm: [true, false, true], attention: true };
    const t = { batch: 4, gpLambda: 10, optimizer: { kind: 'adam', beta1: 0.5, beta2: 0.9 } } as const;
    const store = new TensorStore();
    const gc = new Graph();
    const critic = teacher.buildCriticStep(gc, arch, t, 'generator');
    const gg = new Graph();
    const gen = teacher.buildGeneratorStep(gg, arch, t);
    store.declare(gc, 1);
    store.declare(gg, 1);
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
