// Table-driven primitive tests: every row of rows.ts is built, emitted to ONNX and run in
// onnxruntime; its forward value, its VJP and (order 2) its grad-of-grad are compared with
// the float64 reference and finite differences of it (see harness.ts).

import { afterAll, describe, expect, it } from 'vitest';
import { Graph, ShapeError, type Value } from '../../src/graph/ir.ts';
import * as o from '../../src/graph/ops.ts';
import { gradients } from '../../src/graph/autodiff.ts';
import { decodeModel, emitModel } from '../../src/graph/onnx.ts';
import { checkRow, type Contraction, contractionOk, fwdError, rng, runOrt, sample, SEED_SALT, withoutPadFusion } from './harness.ts';
import * as R from './reference.ts';
import { critic, criticInputGradRef, criticRef, rows } from './rows.ts';

const worst = { fwd: 0, vjp: 0, vjp2: 0 };
const rel = (c: Contraction) => Math.abs(c.lhs - c.rhs) / (c.scale || 1);
const show = (c: Contraction) => `graph ${c.lhs} vs finite difference ${c.rhs} (scale ${c.scale}, noise ${c.noise})`;

describe('primitive table', () => {
  it('row names are unique', () => {
    const seen = new Set<string>();
    for (const r of rows) {
      expect(seen.has(r.name), `duplicate row name '${r.name}'`).toBe(false);
      seen.add(r.name);
    }
  });

  it('every primitive in the registry has a row', () => {
    const covered = new Set(rows.map((r) => r.op));
    const missing = Object.keys(o.rules).filter((p) => !covered.has(p as o.Prim));
    expect(missing).toEqual([]);
    const unknown = [...covered].filter((p) => !(p in o.rules));
    expect(unknown).toEqual([]);
  });

  it('every differentiable primitive has a VJP row, and every op on the gradient-penalty path an order-2 row', () => {
    const forwardOnly = new Set(['Sign', 'Greater', 'Less', 'Equal', 'OneHot']);
    const withVjp = new Set(rows.filter((r) => r.order >= 1).map((r) => r.op));
    expect(Object.keys(o.rules).filter((p) => !forwardOnly.has(p) && !withVjp.has(p as o.Prim))).toEqual([]);
    const order2 = new Set(rows.filter((r) => r.order === 2).map((r) => r.op));
    const gpPath: o.Prim[] = ['Conv', 'ConvTranspose', 'MatMul', 'Gemm', 'LeakyRelu', 'Add', 'Mul', 'ReduceSum', 'Sqrt', 'Pow'];
    expect(gpPath.filter((p) => !order2.has(p))).toEqual([]);
  });

  for (const row of rows) {
    it(`${row.op}: ${row.name} (order ${row.order})`, async () => {
      const res = await checkRow(row);
      const { tol } = res;
      worst.fwd = Math.max(worst.fwd, res.fwdErr);
      expect(res.fwdErr, 'forward value vs float64 reference').toBeLessThanOrEqual(tol.fwd);
      if (row.vjpRef) {
        expect(res.vjpRefErr, 'gradient vs the expected (documented) gradient').toBeLessThanOrEqual(tol.fwd);
      }
      for (const c of res.vjp) {
        worst.vjp = Math.max(worst.vjp, rel(c));
        expect(contractionOk(c, tol.vjp), `VJP <grad, v>: ${show(c)}`).toBe(true);
      }
      for (const c of res.vjp2) {
        worst.vjp2 = Math.max(worst.vjp2, rel(c));
        expect(contractionOk(c, tol.vjp2), `grad-of-grad <H w, v>: ${show(c)}`).toBe(true);
      }
      if (row.order >= 1 && !row.vjpRef) expect(res.vjp.length, 'a VJP check ran').toBeGreaterThan(0);
      if (row.order === 2 && !row.vjpRef) expect(res.vjp2.length, 'a second-order check ran').toBeGreaterThan(0);
    });
  }

  afterAll(() => {
    console.log(`worst relative errors: forward ${worst.fwd.toExponential(2)}, VJP ${worst.vjp.toExponential(2)}, grad-of-grad ${worst.vjp2.toExponential(2)}`);
  });
});

describe('Conv and ConvTranspose lowering', () => {
  // Which ONNX ops a graph's Conv or ConvTranspose lowers to (the numerics of each form are rows of the table).
  const opsOf = (build: (g: Graph) => Record<string, Value>, bake?: string[], dynamicBatch?: number) => {
    const g = new Graph();
    const outputs = build(g);
    const baked = new Map((bake ?? []).map((n) => [n, new Float32Array(g.nodes.find((v) => v.op === 'Input' && v.attrs.name === n)!.size)] as const));
    return decodeModel(emitModel(g, { outputs, bake: baked, dynamicBatch }).bytes).graph!.node!.map((n) => n.opType!);
  };
  const a = { strides: [2, 2], pads: [1, 1, 1, 1] };

  it('a batch of small outputs is folded into one tall image', () => {
    const ops = opsOf((g) => ({ y: o.conv(g.input('x', [8, 8, 8, 8]), g.input('w', [4, 8, 4, 4]), a) }));
    expect(ops).toEqual(['Transpose', 'Pad', 'Reshape', 'Conv', 'Reshape', 'Slice', 'Transpose']); // 2 gap rows per image: 5 output rows, 4 kept
  });

  it('small batches, large outputs and baked weights keep the plain Conv', () => {
    expect(opsOf((g) => ({ y: o.conv(g.input('x', [2, 8, 8, 8]), g.input('w', [4, 8, 4, 4]), a) }))).toEqual(['Conv']);
    expect(opsOf((g) => ({ y: o.conv(g.input('x', [8, 8, 28, 28]), g.input('w', [4, 8, 4, 4]), a) }))).toEqual(['Conv']);
    expect(opsOf((g) => ({ y: o.conv(g.input('x', [8, 8, 8, 8]), g.input('w', [4, 8, 4, 4]), a) }), ['w'])).toEqual(['Conv']);
  });

  it('with a weight gradient in the graph, the forward pass is a GEMM on the shared im2col matrix', () => {
    const ops = opsOf((g) => {
      const w = g.input('w', [4, 16, 4, 4]);
      const y = o.conv(g.input('x', [8, 16, 8, 8]), w, a);
      return { y, dw: gradients(o.sumAll(o.mul(y, y)), [w])[0]! };
    });
    expect(ops.filter((t) => t === 'Gather')).toHaveLength(1); // one im2col for both
    expect(ops).not.toContain('Conv');
    expect(ops.filter((t) => t === 'Gemm')).toHaveLength(1);
    expect(ops.filter((t) => t === 'MatMul')).toHaveLength(1); // a small weight gradient: a batch of products over slices of the rows
  });

  it('a second use of that weight, without a gradient of its own, runs as a GEMM on its own im2col matrix', async () => {
    // The critic step's shape: real images (weight gradient) and x_hat (forward only, for its masks).
    const build = (g: Graph) => {
      const w = g.input('w', [4, 16, 4, 4]);
      const y = o.conv(g.input('x', [8, 16, 8, 8]), w, a);
      const y2 = o.conv(g.input('x2', [4, 16, 8, 8]), w, a);
      return { y2, dw: gradients(o.sumAll(o.mul(y, y)), [w])[0]! };
    };
    const ops = opsOf(build);
    expect(ops).not.toContain('Conv'); // alone, x2's conv would be folded (the first test)
    expect(ops.filter((t) => t === 'Gather')).toHaveLength(2);
    expect(ops.filter((t) => t === 'Gemm' || t === 'MatMul')).toHaveLength(3);
    // One channel: the pixel-pair im2col of both inputs.
    expect(opsOf((g) => {
      const w = g.input('w', [8, 1, 4, 4]);
      const y = o.conv(g.input('x', [8, 1, 28, 28]), w, a);
      const y2 = o.conv(g.input('x2', [8, 1, 28, 28]), w, a);
      return { y2, dw: gradients(o.sumAll(o.mul(y, y)), [w])[0]! };
    })).not.toContain('Conv');
    const r = rng('shared-weight-cols');
    const feeds = { w: sample({ shape: [4, 16, 4, 4] }, r), x: sample({ shape: [8, 16, 8, 8] }, r), x2: sample({ shape: [4, 16, 8, 8] }, r) };
    const g = new Graph();
    const out = await runOrt(g, build(g), Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, { t, dtype: 'float32' as const }])));
    expect(fwdError(out.y2!, R.conv2d(feeds.x2, feeds.w, undefined, a))).toBeLessThan(1e-5);
  });

  it('a second use of a one-channel weight with a bias adds the bias in its GEMM, as the first does', async () => {
    // The critic's conv1 on x_hat: its matrix carries the column of ones too, so no Add follows the GEMM.
    const build = (g: Graph) => {
      const [w, b] = [g.input('w', [8, 1, 4, 4]), g.input('b', [8])];
      const y = o.conv(g.input('x', [8, 1, 28, 28]), w, { ...a, bias: b });
      const y2 = o.conv(g.input('x2', [4, 1, 28, 28]), w, { ...a, bias: b });
      return { y, y2, dw: gradients(o.sumAll(o.mul(y, g.input('dy', y.shape))), [w, b])[0]! };
    };
    const ops = opsOf(build);
    expect(ops).not.toContain('Conv');
    expect(ops).not.toContain('Add');
    expect(ops.filter((t) => t === 'Gemm')).toHaveLength(2);
    const r = rng('shared-weight-cols-bias');
    const feeds = {
      w: sample({ shape: [8, 1, 4, 4] }, r), b: sample({ shape: [8] }, r), x: sample({ shape: [8, 1, 28, 28] }, r),
      x2: sample({ shape: [4, 1, 28, 28] }, r), dy: sample({ shape: [8, 8, 14, 14] }, r),
    };
    const g = new Graph();
    const out = await runOrt(g, build(g), Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, { t, dtype: 'float32' as const }])));
    expect(fwdError(out.y2!, R.conv2d(feeds.x2, feeds.w, feeds.b, a))).toBeLessThan(1e-5);
  });

  it('a MaxPool after a Conv run as a GEMM pools a tensor in phase order, its gradient without upsampling', () => {
    const step = (withGrad: boolean, dx = false) => {
      const g = new Graph();
      const [x, w] = [g.input('x', [8, 16, 8, 8]), g.input('w', [16, 16, 3, 3])];
      const y = o.maxPool(o.conv(x, w, { pads: [1, 1, 1, 1] }), [2, 2]);
      const out: Record<string, Value> = { y };
      if (withGrad) Object.assign(out, Object.fromEntries(gradients(o.sumAll(o.mul(y, y)), dx ? [w, x] : [w]).map((d, i) => [`d${i}`, d!])));
      return decodeModel(emitModel(g, { outputs: out }).bytes).graph!.node!;
    };
    const types = (nodes: ReturnType<typeof step>) => nodes.map((n) => n.opType!);
    const perms = (nodes: ReturnType<typeof step>) => nodes.filter((n) => n.opType === 'Transpose').map((n) => n.attribute![0]!.ints!.length);
    for (const trained of [step(true), step(true, true)]) {
      expect(types(trained)).not.toContain('MaxPool');
      expect(types(trained).filter((t) => t === 'ReduceMax')).toHaveLength(1); // over the phases
      expect(perms(trained)).not.toContain(6); // the phase order is never permuted back to NCHW
    }
    // The input gradient (a stride-1 ConvTranspose run as a flipped-kernel GEMM) gathers the
    // phase-ordered gradient in place: two zero-row Concats (the im2col's and its), no upsampling.
    expect(types(step(true, true)).filter((t) => t === 'Concat')).toHaveLength(2);
    expect(types(step(false))).toContain('MaxPool'); // forward only: onnxruntime's Conv and MaxPool
  });

  it('a ConvTranspose over a batch with 16 or more channels in and out is a GEMM per group of sub-pixel phases', () => {
    const ops = opsOf((g) => ({ y: o.convTranspose(g.input('x', [8, 16, 7, 7]), g.input('w', [16, 16, 4, 4]), a) }));
    // The padding is a zero row per image (Concat) that the Gathers read; a symbolic batch keeps a Pad.
    // The weights: a 2-D transpose and a move of rows of M floats (Reshape, Transpose, Reshape, Transpose, Reshape).
    // Only the phases the cropped output keeps: the 6 x 6 inner blocks need all four (one Gemm), the 24
    // edge blocks two and the 4 corners one (a batched MatMul each, over their four classes); a Concat
    // of the three results and a Gather in (image, y, x) order.
    const gathers = ['Gather', 'Gather', 'Reshape', 'Reshape'];
    expect(ops).toEqual([
      'Transpose', 'Reshape', 'Reshape', 'Concat', 'Reshape', 'Transpose', 'Reshape', 'Transpose', 'Reshape', 'Reshape',
      ...gathers, 'Transpose', 'MatMul', 'Reshape', ...gathers, 'Transpose', 'MatMul', 'Reshape', ...gathers, 'Gemm', 'Reshape',
      'Concat', 'Gather', 'Reshape', 'Transpose',
    ]);
    expect(opsOf((g) => ({ y: o.convTranspose(g.input('x', [8, 16, 7, 7]), g.input('w', [16, 16, 4, 4]), a) }), ['w'])).toContain('Gemm');
    const dynamic = opsOf((g) => ({ y: o.convTranspose(g.input('x', [8, 16, 7, 7]), g.input('w', [16, 16, 4, 4]), a) }), ['w'], 8);
    expect(dynamic).toContain('Pad'); // and one GEMM over every phase of every block
    expect(dynamic).not.toContain('Concat');
    expect(dynamic.filter((t) => t === 'Gemm' || t === 'MatMul')).toEqual(['Gemm']);
  });

  it('with fewer than 16 output channels it is one GEMM and a fold of the shifted taps', () => {
    const ops = opsOf((g) => ({ y: o.convTranspose(g.input('x', [8, 16, 7, 7]), g.input('w', [16, 1, 4, 4]), { ...a, bias: g.input('b', [1]) }) }));
    expect(ops.filter((t) => t === 'Gemm' || t === 'Split' || t === 'Sum' || t === 'Pad')).toEqual(['Gemm', 'Split', 'Pad', 'Pad', 'Pad', 'Pad', 'Sum']);
    expect(ops).not.toContain('ConvTranspose');
    expect(opsOf((g) => ({ y: o.convTranspose(g.input('x', [8, 16, 7, 7]), g.input('w', [16, 1, 4, 4]), a) }), ['w'], 8)).toContain('Sum'); // symbolic batch too
    expect(opsOf((g) => ({ y: o.convTranspose(g.input('x', [1, 16, 7, 7]), g.input('w', [16, 1, 4, 4]), a) }))).toEqual(['ConvTranspose']); // one image
  });

  it('with stride 1 it is an im2col GEMM with the flipped kernel', () => {
    const ops = opsOf((g) => ({ y: o.convTranspose(g.input('x', [8, 16, 7, 7]), g.input('w', [16, 16, 3, 3]), { pads: [1, 1, 1, 1] }) }));
    expect(ops).not.toContain('ConvTranspose');
    expect(ops.filter((t) => t === 'Gemm')).toHaveLength(1);
  });

  it('a stride-1 ConvTranspose whose matrix exceeds 4 MB gathers and multiplies it in chunks of images', async () => {
    // 576 rows of 64 floats per image: 28 images per 4 MB chunk, so 40 images make two GEMMs.
    const [xs, ws] = [[40, 64, 8, 8], [64, 16, 3, 3]];
    const build = (g: Graph) => ({ y: o.convTranspose(g.input('x', xs), g.input('w', ws), { pads: [1, 1, 1, 1], bias: g.input('b', [16]) }) });
    const ops = opsOf(build);
    expect(ops.filter((t) => t === 'Gemm')).toHaveLength(2);
    expect(ops).toContain('Concat');
    const r = rng('chunked-flipped');
    const feeds = { x: sample({ shape: xs }, r), w: sample({ shape: ws }, r), b: sample({ shape: [16] }, r) };
    const g = new Graph();
    const out = await runOrt(g, build(g), Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, { t, dtype: 'float32' as const }])));
    expect(fwdError(out.y!, R.convTranspose2d(feeds.x, feeds.w, feeds.b, { pads: [1, 1, 1, 1] }))).toBeLessThan(1e-5);
  });

  it('small batches, few channels, large pads, dilation and kernels that are not multiples of the stride keep ConvTranspose', () => {
    const ct = (x: number[], w: number[], attrs: o.ConvOptions & { outputPadding?: number[] } = a) => opsOf((g) => ({ y: o.convTranspose(g.input('x', x), g.input('w', w), attrs) }));
    expect(ct([2, 16, 7, 7], [16, 16, 4, 4])).toEqual(['ConvTranspose']);
    expect(ct([8, 8, 7, 7], [8, 16, 4, 4])).toEqual(['ConvTranspose']);
    expect(ct([8, 4, 7, 7], [4, 1, 4, 4])).toEqual(['ConvTranspose']);
    expect(ct([8, 8, 7, 7], [8, 16, 3, 3], { pads: [1, 1, 1, 1] })).toEqual(['ConvTranspose']);
    expect(ct([8, 16, 7, 7], [16, 16, 3, 3], { pads: [3, 3, 0, 0] })).toEqual(['ConvTranspose']); // stride 1, pads beyond the kernel
    expect(ct([8, 16, 7, 7], [16, 16, 4, 4], { ...a, dilations: [2, 2] })).toEqual(['ConvTranspose']);
    expect(ct([8, 16, 7, 7], [16, 16, 3, 3], a)).toEqual(['ConvTranspose']);
    expect(ct([8, 16, 7, 7], [16, 16, 4, 4], { ...a, outputPadding: [1, 1], pads: [1, 1, 0, 0] })).toEqual(['ConvTranspose']);
  });
});

describe('onnxruntime Pad_Fusion', () => {
  // onnxruntime 1.30's Pad_Fusion rewrite folds a Pad into a Conv even when the Pad feeds the
  // Conv's weight input W (minimal repro: Conv(x, Pad(w, pads)) fails to load). Second-order graphs
  // of ConvTranspose with output_padding used to contain that pattern; the Conv/ConvTranspose weight
  // gradients now size their output by trimming padding (convToSize), so these graphs load with
  // default session options.
  /** <u, y>'s gradient, then the gradient of <g, w> w.r.t. x and W: the harness's order-2 graph. */
  const build = () => {
    const g = new Graph();
    const x = g.input('x', [1, 2, 3, 3]);
    const w = g.input('w', [2, 3, 3, 3]);
    const y = o.convTranspose(x, w, { strides: [2, 2], pads: [1, 1, 1, 1], outputPadding: [1, 1] });
    const u = g.input('u', y.shape);
    const [gx, gw] = gradients(o.sumAll(o.mul(y, u)), [x, w]);
    const t = o.add(o.sumAll(o.mul(gx!, g.input('wx', x.shape))), o.sumAll(o.mul(gw!, g.input('ww', w.shape))));
    const [hx] = gradients(t, [x, w]);
    const r = rng('pad-fusion');
    const feed = (v: Value) => ({ t: sample({ shape: [...v.shape] }, r), dtype: 'float32' as const });
    const feeds = Object.fromEntries([...g.leaves.values()].map((l) => [l.name, feed(l.value)]));
    return { g, hx: hx!, feeds };
  };

  it('grad-of-grad of ConvTranspose with output_padding loads with default session options', async () => {
    const { g, hx, feeds } = build();
    await runOrt(g, { hx }, feeds);
  });

  it('the same graph loads and runs with Pad_Fusion disabled', async () => {
    const { g, hx, feeds } = build();
    const res = await runOrt(g, { hx }, feeds, withoutPadFusion);
    expect(res.hx!.shape).toEqual([1, 2, 3, 3]);
  });
});

describe('reductions over an empty axis list', () => {
  // ONNX opset 17 reduces over ALL axes when the axes list is empty; the builders return x unchanged
  // for [] (and the shape rule rejects an empty list), so the declared shape always matches the runtime's.
  for (const [name, reduce] of [['reduceSum', o.reduceSum], ['reduceMean', o.reduceMean], ['reduceMax', o.reduceMax]] as const) {
    it(`${name}(x, [], 1) on [2, 3]: rejected at build time or runs with its inferred shape`, async () => {
      const g = new Graph();
      let y: Value;
      try {
        y = reduce(g.input('x', [2, 3]), [], 1);
      } catch (e) {
        expect(e).toBeInstanceOf(ShapeError);
        return;
      }
      const x = sample({ shape: [2, 3] }, rng(name));
      const res = await runOrt(g, { y }, { x: { t: x, dtype: 'float32' } }, { logSeverityLevel: 3 });
      expect(res.y!.data).toEqual(x.data);
    });
  }
});

describe('ConvTranspose attribute limits', () => {
  it('refuses output_padding not smaller than the stride or the dilation, naming both', () => {
    const g = new Graph();
    const [x, w] = [g.input('x', [1, 2, 4, 4]), g.input('w', [2, 3, 3, 3])];
    expect(() => o.convTranspose(x, w, { pads: [1, 1, 1, 1], outputPadding: [1, 0] })).toThrow(/output_padding \[1, 0\] must be smaller than the stride or the dilation.*strides \[1, 1\]/);
    expect(o.convTranspose(x, w, { strides: [2, 2], pads: [1, 1, 1, 1], outputPadding: [1, 1] }).shape).toEqual([1, 3, 8, 8]);
  });
});

describe('MaxPool gradient limits', () => {
  it('overlapping windows are refused with an error that names MaxPool', () => {
    const g = new Graph();
    const x = g.input('x', [1, 1, 5, 5]);
    expect(() => gradients(o.sumAll(o.maxPool(x, [3, 3], [1, 1])), [x])).toThrow(/MaxPool/);
  });
});

describe('LeakyRelu slope', () => {
  for (const target of ['cpu', 'plain'] as const) {
    it(`is exactly 1 for every positive float (denormals and the largest included) and alpha elsewhere (${target} target)`, async () => {
      const xs = [0, -0, 1e-45, 1e-40, 1.2e-38, 1, 3.4e38, -1e-45, -1e-40, -1, -3.4e38];
      const g = new Graph();
      const x = g.input('x', [xs.length]);
      const [dx] = gradients(o.sumAll(o.leakyRelu(x, 0.2)), [x]);
      const out = await runOrt(g, { dx: dx! }, { x: { t: { shape: [xs.length], data: Float64Array.from(Float32Array.from(xs)) }, dtype: 'float32' } }, undefined, target);
      const alpha = Math.fround(0.2);
      expect([...out.dx!.data]).toEqual(xs.map((v) => (Math.fround(v) > 0 ? 1 : alpha)));
    });
  }
  it('is Where(x > 0, 1, alpha) in the graph; the cpu target computes it as Clip(x * 2^127 * 2^127, alpha, 1)', () => {
    const opsFor = (target: 'cpu' | 'plain') => {
      const g = new Graph();
      const x = g.input('x', [4]);
      const [dx] = gradients(o.sumAll(o.leakyRelu(x, 0.2)), [x]);
      expect(g.nodes.some((v) => v.op === 'Clip')).toBe(false);
      return decodeModel(emitModel(g, { outputs: { dx: dx! }, target }).bytes).graph!.node!.map((n) => n.opType!);
    };
    const cpu = opsFor('cpu');
    expect(cpu.filter((op) => ['Clip', 'Where', 'Greater'].includes(op))).toEqual(['Clip']);
    expect(cpu.filter((op) => op === 'Mul')).toHaveLength(3); // 2^127 twice, and dy times the slope
    const plain = opsFor('plain');
    expect(plain.filter((op) => ['Clip', 'Where', 'Greater'].includes(op))).toEqual(['Greater', 'Where']);
  });
});

describe('StopGradient', () => {
  it('autodiff reports no gradient (null) through stopGradient', () => {
    const g = new Graph();
    const x = g.input('x', [3]);
    expect(gradients(o.sumAll(o.stopGradient(x)), [x])).toEqual([null]);
  });
});

describe('WGAN-GP gradient penalty through the critic', () => {
  it('penalty and its weight gradients match float64 finite differences', async () => {
    const r = rng('wgan-gp' + SEED_SALT);
    const shapes: [string, number[], number][] = [
      ['x', [2, 1, 8, 8], 1], ['w1', [4, 1, 4, 4], 0.5], ['b1', [4], 0.1], ['w2', [8, 4, 4, 4], 0.25], ['b2', [8], 0.1], ['wf', [1, 32], 0.3], ['bf', [1], 1],
    ];
    const vals = shapes.map(([, s, k]) => sample({ shape: s, scale: k }, r));
    const g = new Graph();
    const ins = shapes.map(([n, s]) => g.input(n, s));
    const [x, w1, b1, w2, b2, wf, bf] = ins as [Value, Value, Value, Value, Value, Value, Value];
    const out = critic(x, w1, b1, w2, b2, wf, bf);
    const [dx] = gradients(o.sumAll(out), [x]);
    const norm = o.sqrt(o.reduceSum(o.mul(dx!, dx!), [1, 2, 3], 0));
    const pen = o.meanAll(o.pow(o.sub(norm, 1), 2));
    const weights = ins.slice(1);
    const gw = gradients(pen, weights);
    const outputs: Record<string, Value> = { pen, dx: dx! };
    gw.forEach((gv, i) => gv && (outputs[`g${i}`] = gv));
    const feeds = Object.fromEntries(shapes.map(([n], i) => [n, { t: vals[i]!, dtype: 'float32' as const }]));
    const res = await runOrt(g, outputs, feeds);

    const [x64, ...w64] = vals as [R.T, ...R.T[]];
    // The penalty depends on the weights through the LeakyRelu pattern too; finite differences
    // use the pattern at the base point (the smooth piece autodiff differentiates).
    const { pattern } = criticRef(vals);
    const penRef = (ws: R.T[], frozen?: typeof pattern) => {
      const d = criticInputGradRef([x64, ...ws], frozen);
      const sq = R.reduce(R.mul(d, d), [1, 2, 3], 0, 'sum');
      return R.reduce(R.map(R.sqrt(sq), (v) => (v - 1) ** 2), [0], 0, 'mean').data[0]!;
    };
    expect(fwdError(res.dx!, criticInputGradRef(vals))).toBeLessThan(1e-5);
    expect(Math.abs(res.pen!.data[0]! - penRef(w64)) / penRef(w64)).toBeLessThan(1e-5);

    const eps = 1e-6;
    for (let rep = 0; rep < 3; rep++) {
      const vs = w64.map((w) => R.tensor(w.shape, Array.from({ length: w.data.length }, () => 2 * r() - 1)));
      const at = (c: number) => penRef(w64.map((w, i) => R.add(w, R.mul(vs[i]!, R.scalar(c)))), pattern);
      const rhs = (at(eps) - at(-eps)) / (2 * eps);
      let lhs = 0;
      let scale = 0;
      gw.forEach((gv, i) => {
        if (!gv) return;
        const gt = res[`g${i}`]!;
        for (let k = 0; k < gt.data.length; k++) {
          lhs += gt.data[k]! * vs[i]!.data[k]!;
          scale += Math.abs(gt.data[k]! * vs[i]!.data[k]!);
        }
      });
      expect(scale).toBeGreaterThan(0);
      expect(Math.abs(lhs - rhs), `d penalty / d weights: graph ${lhs} vs finite difference ${rhs}`).toBeLessThanOrEqual(1e-4 * scale + 1e-9);
    }
  });
});

describe('shape errors name the op and the shapes', () => {
  const cases: { name: string; op: string; shapes: string[]; build: (g: Graph) => unknown }[] = [
    { name: 'add [2,3] + [4]', op: 'Add', shapes: ['[2, 3]', '[4]'], build: (g) => o.add(g.input('a', [2, 3]), g.input('b', [4])) },
    { name: 'mul [2,3] * [2,4]', op: 'Mul', shapes: ['[2, 3]', '[2, 4]'], build: (g) => o.mul(g.input('a', [2, 3]), g.input('b', [2, 4])) },
    { name: 'matmul [2,3] x [4,5]', op: 'MatMul', shapes: ['[2, 3]', '[4, 5]'], build: (g) => o.matmul(g.input('a', [2, 3]), g.input('b', [4, 5])) },
    { name: 'matmul batch [2,3,4] x [3,4,5]', op: 'MatMul', shapes: ['[2, 3, 4]', '[3, 4, 5]'], build: (g) => o.matmul(g.input('a', [2, 3, 4]), g.input('b', [3, 4, 5])) },
    { name: 'gemm [2,3] x [4,5]', op: 'Gemm', shapes: ['[2, 3]', '[4, 5]'], build: (g) => o.gemm(g.input('a', [2, 3]), g.input('b', [4, 5])) },
    {
      name: 'conv channel mismatch', op: 'Conv', shapes: ['[1, 3, 8, 8]', '[4, 2, 3, 3]'],
      build: (g) => o.conv(g.input('x', [1, 3, 8, 8]), g.input('w', [4, 2, 3, 3])),
    },
    {
      name: 'convTranspose channel mismatch', op: 'ConvTranspose', shapes: ['[1, 3, 4, 4]', '[2, 5, 3, 3]'],
      build: (g) => o.convTranspose(g.input('x', [1, 3, 4, 4]), g.input('w', [2, 5, 3, 3])),
    },
    { name: 'concat [2,3] with [3,4] on axis 0', op: 'Concat', shapes: ['[3, 4]', '[2, 3]'], build: (g) => o.concat([g.input('a', [2, 3]), g.input('b', [3, 4])], 0) },
    { name: 'reshape [2,3] to [4]', op: 'Reshape', shapes: ['[2, 3]', '[4]'], build: (g) => o.reshape(g.input('a', [2, 3]), [4]) },
    { name: 'expand [3] to [2,4]', op: 'Expand', shapes: ['[3]', '[2, 4]'], build: (g) => o.expand(g.input('a', [3]), [2, 4]) },
    {
      name: 'where condition [2] with [3]', op: 'Where', shapes: ['[2]', '[3]'],
      build: (g) => o.where(o.greater(g.input('c', [2]), 0), g.input('a', [3]), g.input('b', [3])),
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const g = new Graph();
      let err: unknown;
      try {
        c.build(g);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ShapeError);
      const msg = (err as Error).message;
      expect(msg).toContain(c.op);
      for (const s of c.shapes) expect(msg).toContain(s);
    });
  }
});
