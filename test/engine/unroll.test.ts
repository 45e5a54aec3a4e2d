// Several training steps unrolled into one graph (unrollSteps, StepRunner.runSteps) compute
// exactly what the same number of single-step runs compute.

import { describe, expect, it } from 'vitest';
import { Graph } from '../../src/graph/ir.js';
import { unrollSteps } from '../../src/graph/step.js';
import { StepRunner, TensorStore } from '../../src/runtime/index.js';
import { Rng } from '../../src/util/rng.js';
import * as teacher from '../../graphs/teacher.js';

const arch: teacher.TeacherArch = { zDim: 8, genWidth: 16, criticWidth: 8, spectralNorm: [true, false, true] };
const t = { batch: 4, gpLambda: 10, optimizer: { kind: 'adam', beta1: 0.5, beta2: 0.9 } } as const;

/** A teacher (critic and generator steps over one store) with the generator step unrolled k times. */
async function setup(k: number) {
  const store = new TensorStore();
  const gc = new Graph();
  const critic = teacher.buildCriticStep(gc, arch, t, 'generator');
  const gg = new Graph();
  const gen = teacher.buildGeneratorStep(gg, arch, t);
  store.declare(gc, 3);
  store.declare(gg, 3);
  const c = await StepRunner.create(critic, store, { threads: 1 });
  const g = await StepRunner.create(gen, store, { threads: 1, stepsPerRun: k });
  return { store, c, g, gen };
}

/** Generator feeds for n steps; the learning rate changes per step (a schedule). */
function genFeeds(rng: Rng, n: number) {
  return Array.from({ length: n }, (_, i) => ({ z: rng.fillNormal(new Float32Array(4 * 8)), lr: 1e-3 * (1 + i) }));
}

describe('steps unrolled into one graph', () => {
  it('generator steps (critic weights read, spectral-norm buffers updated): the same values, bit for bit, as single-step runs', async () => {
    const a = await setup(1);
    const b = await setup(3);
    expect(b.g.stepsPerRun).toBe(3);
    const rngA = new Rng(5);
    const rngB = new Rng(5);
    const crit = (rng: Rng) => ({ real: rng.fillUniform(new Float32Array(4 * 784), -1, 1), z: rng.fillNormal(new Float32Array(4 * 8)), eps: rng.fillUniform(new Float32Array(4)), lr: 1e-3 });
    for (let round = 0; round < 2; round++) {
      await a.c.run(crit(rngA));
      await b.c.run(crit(rngB));
      const ma: Record<string, number>[] = [];
      for (const f of genFeeds(rngA, 3)) ma.push(await a.g.run(f));
      const mb = await b.g.runSteps(genFeeds(rngB, 3));
      expect(mb).toEqual(ma);
      expect(b.g.steps).toBe(a.g.steps);
    }
    expect(a.g.steps).toBe(6);
    for (const name of a.store.specs.keys()) expect(b.store.read(name), name).toEqual(a.store.read(name));
    expect([...a.store.counters]).toEqual([...b.store.counters]);
    await Promise.all([a.c, a.g, b.c, b.g].map((r) => r.release()));
  });

  it('other batch sizes run step by step, with the same results', async () => {
    const a = await setup(1);
    const b = await setup(3);
    const ma: Record<string, number>[] = [];
    for (const f of genFeeds(new Rng(9), 2)) ma.push(await a.g.run(f));
    expect(await b.g.runSteps(genFeeds(new Rng(9), 2))).toEqual(ma);
    for (const name of a.store.specs.keys()) expect(b.store.read(name), name).toEqual(a.store.read(name));
    await Promise.all([a.c, a.g, b.c, b.g].map((r) => r.release()));
  });

  it('the unrolled graph feeds stored leaves once and data, lr and step once per step, and names a missing input', async () => {
    const { store, gen, c, g } = await setup(2);
    const u = unrollSteps(gen, 2, new Set(store.specs.keys()));
    expect(u.perStep.sort()).toEqual(['lr', 'step', 'z']);
    expect(u.shared.every((n) => n.startsWith('D.'))).toBe(true); // the critic's weights: read, not updated
    expect(u.inputs.map((i) => i.name)).toContain('z@1');
    expect(u.outputs.map((o) => o.name)).toEqual(expect.arrayContaining(['loss@0', 'loss@1', 'G.ct2.weight.next', 'G.sn0.u.next']));
    await expect(g.runSteps([{ lr: 1e-3 }, { lr: 1e-3 }] as never)).rejects.toThrow(/missing input 'z'/);
    expect(() => unrollSteps(gen, 0, new Set())).toThrow(/positive integer/);
    await Promise.all([c.release(), g.release()]);
  });
});
