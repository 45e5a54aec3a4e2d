// The plain target on the reference models' training steps: every step graph emitted for it
// passes onnx.checker with full shape checking, and three steps of it in onnxruntime-node give
// the cpu target's losses and parameters within float rounding (the forms differ, so the sums
// round differently; Adam's normalised updates carry that into the parameters).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Graph } from '../../src/graph/ir.js';
import { decodeModel } from '../../src/graph/onnx.js';
import { StepRunner, TensorStore, type Feed } from '../../src/runtime/index.js';
import { Rng } from '../../src/util/rng.js';
import { STEP_CASES } from './cases.js';

const hasOnnx = spawnSync('/usr/bin/python3', ['-c', 'import onnx'], { stdio: 'ignore' }).status === 0;

interface Run { losses: number[]; initial: Map<string, Float32Array>; final: Map<string, Float32Array>; ops: Set<string> }

/** Three steps of a case on one thread, emitted for `target`, with the golden tests' seeded feeds. */
async function threeSteps(name: string, target: 'cpu' | 'plain'): Promise<Run> {
  const g = new Graph();
  const step = STEP_CASES[name]!.build(g);
  const store = new TensorStore();
  store.declare(g, 0);
  const initial = new Map([...store.specs.keys()].map((k) => [k, store.read(k)]));
  const runner = await StepRunner.create(step, store, { threads: 1, target });
  const ops = new Set(decodeModel(runner.graph.bytes).graph!.node!.map((n) => n.opType!));
  const rng = new Rng(1);
  const losses: number[] = [];
  for (let i = 0; i < 3; i++) {
    const f: Record<string, Feed> = {};
    for (const inp of step.inputs) {
      if (store.specs.has(inp.name) || inp.name === 'step') continue;
      if (inp.shape.length === 0) f[inp.name] = inp.name.startsWith('lr') ? 1e-3 : 0.5;
      else f[inp.name] = rng.fillUniform(new Float32Array(inp.shape.reduce((a, b) => a * b, 1)));
    }
    losses.push((await runner.run(f)).loss!);
  }
  const final = new Map([...store.specs.keys()].map((k) => [k, store.read(k)]));
  await runner.release();
  return { losses, initial, final, ops };
}

const norm = (a: Float32Array, b?: Float32Array) => Math.sqrt(a.reduce((s, x, i) => s + (x - (b?.[i] ?? 0)) ** 2, 0));

describe('the plain target on the reference training steps', () => {
  it.skipIf(!hasOnnx && !process.env.CI)('every step graph passes onnx.checker with full shape checking', () => {
    const dir = mkdtempSync(join(tmpdir(), 'onnx-plain-'));
    for (const [name, c] of Object.entries(STEP_CASES)) writeFileSync(join(dir, `${name.replace('/', '_')}.onnx`), c.build(new Graph()).retarget!('plain').bytes);
    const py = `
import onnx, sys, glob
for f in sorted(glob.glob(sys.argv[1] + '/*.onnx')):
    m = onnx.load(f)
    onnx.checker.check_model(m, full_check=True)
    onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True)
    print('ok', f.split('/')[-1])
`;
    const r = spawnSync('/usr/bin/python3', ['-c', py, dir], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(Object.keys(STEP_CASES).length);
    rmSync(dir, { recursive: true });
  });

  const worst = { loss: 0, params: 0 };
  for (const name of Object.keys(STEP_CASES)) {
    it(`${name}: three steps match the cpu target within float rounding`, { timeout: 120_000 }, async () => {
      const cpu = await threeSteps(name, 'cpu');
      const plain = await threeSteps(name, 'plain');
      // The plain graph runs the standard convolution and pooling operators.
      if (cpu.ops.has('Gather')) expect([...plain.ops].some((op) => op === 'Conv' || op === 'ConvTranspose'), 'a standard convolution').toBe(true);
      for (let i = 0; i < 3; i++) {
        const rel = Math.abs(plain.losses[i]! - cpu.losses[i]!) / (Math.abs(cpu.losses[i]!) + 1e-3);
        worst.loss = Math.max(worst.loss, rel);
        expect(rel, `${name} loss of step ${i + 1}: cpu ${cpu.losses[i]}, plain ${plain.losses[i]}`).toBeLessThanOrEqual(1e-3);
      }
      // Each tensor's difference between the targets, against how far three steps moved it (at
      // most 3% on these cases: Adam's first steps are about lr * sign(gradient), so elements
      // with gradients near rounding size move either way);
      // except parameters whose gradient is zero up to rounding (a bias before a batch norm:
      // Adam's second moment below 1e-12), which Adam moves by its step size in directions that
      // the rounding picks, and their moments.
      const noise = [...cpu.final].filter(([k, v]) => k.endsWith('.adam_v') && v.every((x) => x < 1e-12)).map(([k]) => k.slice(0, -'.adam_v'.length));
      for (const [k, a] of cpu.final) {
        const moved = norm(a, cpu.initial.get(k));
        if (moved === 0 || noise.some((p) => k === p || k.startsWith(`${p}.adam_`))) continue; // not updated (a frozen copy), or noise
        const rel = norm(a, plain.final.get(k)) / moved;
        worst.params = Math.max(worst.params, rel);
        expect(rel, `${name} ${k}: |cpu - plain| / |cpu - initial|`).toBeLessThanOrEqual(0.05);
      }
    });
  }
  afterAll(() => console.log(`plain vs cpu target: worst relative loss difference ${worst.loss.toExponential(2)}, worst parameter difference ${worst.params.toExponential(2)} of the three steps' change`));
});
