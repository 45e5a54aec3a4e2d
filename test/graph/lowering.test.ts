// The lowering targets: the selectors that choose each op's form (called directly, with the
// facts the emitter would hand them), and the plain target's standard-ONNX forms, checked on
// every row of the primitive table like the cpu target's.

import { afterAll, describe, expect, it } from 'vitest';
import { Graph, type Value } from '../../src/graph/ir.ts';
import * as o from '../../src/graph/ops.ts';
import { gradients } from '../../src/graph/autodiff.ts';
import { decodeModel, emitModel, type Target, targetForDevice } from '../../src/graph/onnx.ts';
import { checkRow, contractionOk } from './harness.ts';
import { rows } from './rows.ts';

/** The facts a selector reads, as the emitter would find them; defaults: nothing special. */
function env(target: Target, over: Partial<o.LowerEnv> = {}): o.LowerEnv {
  return { target, auxValues: [], isConstant: () => false, channelsLast: () => false, phases: () => undefined, ...over };
}

const a = { strides: [2, 2], pads: [1, 1, 1, 1] };

describe('targets', () => {
  it('the CPU provider gets the cpu target, every other provider the plain one', () => {
    expect(targetForDevice('cpu')).toBe('cpu');
    for (const d of ['wasm', 'webgpu', 'cuda'] as const) expect(targetForDevice(d)).toBe('plain');
  });
});

describe('selectConvForm', () => {
  const g = new Graph();
  const folded = o.conv(g.input('x', [8, 8, 8, 8]), g.input('w', [4, 8, 4, 4]), a);
  const small = o.conv(g.input('x2', [2, 8, 8, 8]), g.input('w2', [4, 8, 4, 4]), a);
  const large = o.conv(g.input('x3', [8, 8, 28, 28]), g.input('w3', [4, 8, 4, 4]), a);
  const cols = g.input('cols', [8 * 4 * 4, 8 * 16]);

  it('cpu: a GEMM on the im2col matrix when the emitter found one', () => {
    expect(o.selectConvForm(folded, env('cpu', { auxValues: [cols] }))).toBe('cols');
    expect(o.selectConvForm(large, env('cpu', { auxValues: [cols] }))).toBe('cols');
  });
  it('cpu: the batch folded into the height for a batch of small outputs, unless the weights are constants', () => {
    expect(o.selectConvForm(folded, env('cpu'))).toBe('folded');
    expect(o.selectConvForm(folded, env('cpu', { isConstant: (i) => i === 1 }))).toBe('standard');
    expect(o.selectConvForm(small, env('cpu'))).toBe('standard');
    expect(o.selectConvForm(large, env('cpu'))).toBe('standard');
  });
  it('plain: always the standard Conv', () => {
    for (const v of [folded, small, large]) expect(o.selectConvForm(v, env('plain', { auxValues: [cols] }))).toBe('standard');
  });
});

describe('selectConvTransposeForm', () => {
  const g = new Graph();
  const ct = (n: number, c: number, m: number, k: number, s: number, p: number, dil = 1) =>
    o.convTranspose(g.input(`x${g.nodes.length}`, [n, c, 7, 7]), g.input(`w${g.nodes.length}`, [c, m, k, k]), { strides: [s, s], pads: [p, p, p, p], dilations: [dil, dil] });

  it('cpu: sub-pixel GEMMs, GEMM and fold, the flipped kernel or the standard operator', () => {
    expect(o.selectConvTransposeForm(ct(8, 32, 16, 4, 2, 1), env('cpu'))).toBe('subpixel');
    expect(o.selectConvTransposeForm(ct(8, 32, 1, 4, 2, 1), env('cpu'))).toBe('col2im');
    expect(o.selectConvTransposeForm(ct(8, 32, 16, 3, 1, 1), env('cpu'))).toBe('flipped');
    expect(o.selectConvTransposeForm(ct(8, 32, 16, 3, 1, 1), env('cpu', { dynamicBatch: 8 }))).toBe('standard');
    expect(o.selectConvTransposeForm(ct(4, 32, 16, 4, 2, 1), env('cpu'))).toBe('standard'); // small batch
    expect(o.selectConvTransposeForm(ct(8, 8, 16, 4, 2, 1), env('cpu'))).toBe('standard'); // few input channels
    expect(o.selectConvTransposeForm(ct(8, 32, 16, 3, 2, 1), env('cpu'))).toBe('standard'); // kernel not a multiple of the stride
    expect(o.selectConvTransposeForm(ct(8, 32, 16, 4, 2, 1, 2), env('cpu'))).toBe('standard'); // dilation
  });
  it('plain: always the standard ConvTranspose', () => {
    for (const v of [ct(8, 32, 16, 4, 2, 1), ct(8, 32, 1, 4, 2, 1), ct(8, 32, 16, 3, 1, 1)]) expect(o.selectConvTransposeForm(v, env('plain'))).toBe('standard');
  });
});

describe('selectMaxPoolForm and selectMaxPoolGradForm', () => {
  const g = new Graph();
  const x = g.input('x', [2, 3, 8, 8]);
  const y = o.maxPool(x, [2, 2]);
  const overlapping = o.maxPool(x, [3, 3], [1, 1]);
  const dx = gradients(o.sumAll(o.mul(y, y)), [x])[0]!;
  const grad = dx.op === 'MaxPoolGrad' ? dx : dx.inputs.find((v) => v.op === 'MaxPoolGrad')!;

  it('cpu: phase order, channels-last or the standard forms, from what the input is', () => {
    expect(grad.op).toBe('MaxPoolGrad');
    expect(o.selectMaxPoolForm(y, env('cpu', { phases: () => [2, 2] }))).toBe('phases');
    expect(o.selectMaxPoolForm(y, env('cpu', { phases: () => [4, 4], channelsLast: () => true }))).toBe('nhwc');
    expect(o.selectMaxPoolForm(y, env('cpu', { channelsLast: () => true }))).toBe('nhwc');
    expect(o.selectMaxPoolForm(y, env('cpu'))).toBe('standard');
    expect(o.selectMaxPoolForm(overlapping, env('cpu', { channelsLast: () => true }))).toBe('standard');
    expect(o.selectMaxPoolGradForm(grad, env('cpu', { phases: () => [2, 2] }))).toBe('phases');
    expect(o.selectMaxPoolGradForm(grad, env('cpu', { channelsLast: () => true }))).toBe('nhwc');
    expect(o.selectMaxPoolGradForm(grad, env('cpu'))).toBe('upsampled');
  });
  it('plain: the standard MaxPool, its gradient an equality mask of upsampled tensors', () => {
    const all = env('plain', { phases: () => [2, 2], channelsLast: () => true });
    expect(o.selectMaxPoolForm(y, all)).toBe('standard');
    expect(o.selectMaxPoolGradForm(grad, all)).toBe('upsampled');
  });
});

describe('the plain target emits the standard operators', () => {
  const opsOf = (target: Target, build: (g: Graph) => Record<string, Value>) => {
    const g = new Graph();
    return decodeModel(emitModel(g, { outputs: build(g), target }).bytes).graph!.node!.map((n) => n.opType!);
  };
  // A Conv with its weight gradient (an im2col GEMM on the cpu target), a MaxPool after it, a
  // sub-pixel ConvTranspose, and a second use of the Conv's weight without a gradient of its own
  // (which the cpu target also runs on an im2col matrix).
  const build = (g: Graph) => {
    const w = g.input('w', [16, 16, 4, 4]);
    const wt = g.input('wt', [16, 16, 4, 4]);
    const y = o.relu(o.maxPool(o.conv(g.input('x', [8, 16, 16, 16]), w, a), [2, 2]));
    const z = o.convTranspose(y, wt, { ...a, outputPadding: [0, 0] });
    const [dw, dwt] = gradients(o.sumAll(o.mul(z, z)), [w, wt]) as [Value, Value];
    return { z, dw, dwt, other: o.conv(g.input('x2', [8, 16, 16, 16]), w, a) };
  };
  it('cpu: no Conv, ConvTranspose or MaxPool operator; plain: each of them', () => {
    const cpu = opsOf('cpu', build);
    expect(cpu).not.toContain('MaxPool');
    expect(cpu).not.toContain('ConvTranspose');
    const plain = opsOf('plain', build);
    for (const op of ['Conv', 'ConvTranspose', 'MaxPool']) expect(plain, op).toContain(op);
  });
  it('emitting does not change the graph', () => {
    for (const target of ['cpu', 'plain'] as const) {
      const g = new Graph();
      const outputs = build(g);
      const before = g.nodes.length;
      emitModel(g, { outputs, target });
      emitModel(g, { outputs, target });
      expect(g.nodes.length, target).toBe(before);
    }
  });
});

describe('primitive table on the plain target', () => {
  let checked = 0;
  for (const row of rows) {
    it(`${row.op}: ${row.name} (order ${row.order})`, async () => {
      const res = await checkRow(row, 'plain');
      expect(res.fwdErr, 'forward value vs float64 reference').toBeLessThanOrEqual(res.tol.fwd);
      for (const c of res.vjp) expect(contractionOk(c, res.tol.vjp), 'VJP').toBe(true);
      for (const c of res.vjp2) expect(contractionOk(c, res.tol.vjp2), 'grad-of-grad').toBe(true);
      checked++;
    });
  }
  afterAll(() => {
    if (checked) console.log(`plain target: ${checked} rows checked`);
  });
});
