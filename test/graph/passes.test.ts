// The emitter's node-level passes, one describe per pass, and the pipeline in onnxruntime.

import { describe, expect, it } from 'vitest';
import type onnxProto from 'onnx-proto';
import { Graph } from '../../src/graph/ir.js';
import * as o from '../../src/graph/ops.js';
import { decodeModel, emitModel } from '../../src/graph/onnx.js';
import { CPU_PASSES, foldReshapes, runPasses, sinkTransposes, withoutDeadNodes, type Pass } from '../../src/graph/passes/index.js';
import * as ort from 'onnxruntime-node';
import { gradients } from '../../src/graph/autodiff.js';
import { rng, sample } from './harness.ts';

type Node = onnxProto.onnx.INodeProto;
const T = (x: string, y: string, perm: number[]): Node => ({ opType: 'Transpose', input: [x], output: [y], attribute: [{ name: 'perm', type: 7, ints: perm }] });
const op = (opType: string, input: string[], y: string, attribute: Node['attribute'] = []): Node => ({ opType, input, output: [y], attribute });
const shapes: Record<string, number[]> = {
  x: [2, 5, 5, 3], a: [2, 3, 5, 5], r: [2, 3, 5, 5], m: [2, 3, 5, 5], b: [2, 3, 5, 5], y: [2, 3, 5, 5], s: [], axes: [3],
};
const run = (nodes: Node[], outputs: string[], ints: Record<string, number[]> = {}) =>
  sinkTransposes(nodes, (n) => shapes[n], (n) => ints[n], outputs);
const summary = (nodes: Node[]) => nodes.map((n) => `${n.opType}(${(n.input ?? []).join(',')})${n.opType === 'Transpose' ? `[${n.attribute![0]!.ints}]` : ''}`);

describe('sinkTransposes', () => {
  it('cancels a transpose and its inverse around element-wise ops', () => {
    const out = run([T('x', 'a', [0, 3, 1, 2]), op('Relu', ['a'], 'r'), op('Mul', ['r', 's'], 'm'), T('m', 'back', [0, 2, 3, 1]), op('Reshape', ['back', 'shape'], 'z')], ['z']);
    expect(out.map((n) => n.opType)).toEqual(['Relu', 'Mul', 'Reshape']); // the scalar s broadcasts in any layout
    expect(out[2]!.input![0]).toBe(out[1]!.output![0]);
    expect(out[0]!.input).toEqual(['x']);
  });

  it('writes the logical layout for other consumers and never defers a graph output', () => {
    const out = run([T('x', 'a', [0, 3, 1, 2]), op('Relu', ['a'], 'r'), op('Reshape', ['r', 'shape'], 'z'), op('Neg', ['a'], 'y')], ['z', 'y']);
    expect(summary(out)).toEqual([expect.stringMatching(/^Relu\(x\)$/), expect.stringMatching(/^Transpose\(r_sunk\d+\)\[0,3,1,2\]$/), expect.stringMatching(/^Reshape\(r,shape\)$/), 'Transpose(x)[0,3,1,2]', 'Neg(a)']);
  });

  it('transposes one other input when the result heads into a transpose, and not otherwise', () => {
    const nodes = (tail: Node) => [T('x', 'a', [0, 3, 1, 2]), op('Mul', ['a', 'b'], 'm'), tail];
    const heads = run(nodes(T('m', 'back', [0, 2, 3, 1])).concat(op('Reshape', ['back', 'shape'], 'z')), ['z']);
    expect(summary(heads)).toEqual(['Transpose(b)[0,2,3,1]', expect.stringMatching(/^Mul\(x,b_p\d+\)$/), expect.stringMatching(/^Reshape\(m_sunk\d+,shape\)$/)]);
    const stays = run(nodes(op('Reshape', ['m', 'shape'], 'z')), ['z']);
    expect(summary(stays)).toEqual(['Transpose(x)[0,3,1,2]', 'Mul(a,b)', 'Reshape(m,shape)']);
  });

  it('reduces the source over the permuted axes when the kept axes stay in order', () => {
    const sum = run([T('x', 'a', [0, 3, 1, 2]), op('ReduceMax', ['a'], 'z', [{ name: 'axes', type: 7, ints: [0, 1] }, { name: 'keepdims', type: 2, i: 0 }])], ['z']);
    expect(sum.map((n) => n.opType)).toEqual(['ReduceMax']);
    expect(sum[0]!.attribute!.find((a) => a.name === 'axes')!.ints).toEqual([0, 3]);
    expect(sum[0]!.input).toEqual(['x']);
    const keepsHW = run([T('x', 'a', [0, 3, 1, 2]), op('ReduceSum', ['a', 'axes'], 'z', [{ name: 'keepdims', type: 2, i: 0 }])], ['z'], { axes: [0, 1] });
    expect(keepsHW.map((n) => n.opType)).toEqual(['Constant', 'ReduceSum']);
    expect(keepsHW[0]!.attribute![0]!.ints).toEqual([0, 3]);
    expect(keepsHW[1]!.input![0]).toBe('x');
    // Keeping [C, H] of an NHWC source would need them reordered: the transpose stays.
    const kept = run([T('x', 'a', [0, 3, 1, 2]), op('ReduceMean', ['a'], 'z', [{ name: 'axes', type: 7, ints: [0, 3] }, { name: 'keepdims', type: 2, i: 0 }])], ['z']);
    expect(kept.map((n) => n.opType)).toEqual(['Transpose', 'ReduceMean']);
  });

  it('sums a channels-last bias gradient over the batch first, then over positions', () => {
    const sum = run([T('x', 'a', [0, 3, 1, 2]), op('ReduceSum', ['a', 'axes'], 'z', [{ name: 'keepdims', type: 2, i: 0 }])], ['z'], { axes: [0, 2, 3] });
    expect(summary(sum)).toEqual([
      'Constant()', expect.stringMatching(/^Reshape\(x,/), 'Constant()', expect.stringMatching(/^ReduceSum\(/),
      'Constant()', expect.stringMatching(/^Reshape\(/), 'Constant()', expect.stringMatching(/^ReduceSum\(/),
    ]);
    expect(sum.filter((n) => n.opType === 'Constant').map((n) => [...n.attribute![0]!.ints!].map(Number))).toEqual([[2, 75], [0], [25, 3], [0]]);
    expect(sum.at(-1)!.output).toEqual(['z']);
    expect(sum.at(-1)!.attribute).toEqual([{ name: 'keepdims', type: 2, i: 0 }]);
  });

  it('leaves values unchanged in onnxruntime: a conv stack whose layout transposes cancel', async () => {
    // conv -> LeakyReLU -> conv, with the weight gradients: the second conv's im2col reads the
    // first conv's channels-last GEMM output directly.
    const g = new Graph();
    const x = g.input('x', [8, 16, 6, 6]);
    const w1 = g.input('w1', [16, 16, 3, 3]);
    const w2 = g.input('w2', [16, 16, 2, 2]);
    const a = { strides: [2, 2], pads: [1, 1, 1, 1] };
    const h = o.leakyRelu(o.conv(x, w1, a), 0.2);
    const y = o.conv(h, w2, { strides: [1, 1], pads: [0, 0, 0, 0] });
    const loss = o.sumAll(o.mul(y, y));
    const [d1, d2] = gradients(loss, [w1, w2]);
    const outputs = { y, d1: d1!, d2: d2!, s: o.reduceSum(h, [0, 2, 3], 0) };
    const r = rng('layout');
    const feeds = Object.fromEntries(['x', 'w1', 'w2'].map((n) => [n, new ort.Tensor('float32', Float32Array.from(sample({ shape: [...g.leaves.get(n)!.value.shape] }, r).data), g.leaves.get(n)!.value.shape)]));
    const results = [];
    for (const sink of [true, false]) {
      const model = emitModel(g, { outputs, passes: sink ? undefined : [] });
      const transposes = decodeModel(model.bytes).graph!.node!.filter((n) => n.opType === 'Transpose' && n.attribute![0]!.ints!.length === 4).length;
      const session = await ort.InferenceSession.create(model.bytes, { graphOptimizationLevel: 'disabled' });
      results.push({ transposes, out: await session.run(feeds) });
    }
    const [sunk, plain] = results as [(typeof results)[0], (typeof results)[0]];
    // At least NCHW and back around the LeakyReLU and one on the mask path (the stride-1 input
    // gradient, an im2col GEMM, is channels-last too).
    expect(sunk.transposes).toBeLessThanOrEqual(plain.transposes - 2);
    for (const k of Object.keys(outputs)) {
      const [u, v] = [sunk.out[k]!.data as Float32Array, plain.out[k]!.data as Float32Array];
      expect(u.length).toBe(v.length);
      // Element-wise results are bit-identical; the bias-style ReduceSum over permuted axes may round differently.
      for (let i = 0; i < u.length; i++) expect(Math.abs(u[i]! - v[i]!)).toBeLessThanOrEqual(k === 's' ? 1e-5 * (1 + Math.abs(v[i]!)) : 0);
    }
  });
});

describe('foldReshapes', () => {
  const ints: Record<string, number[]> = { s6: [6], s23: [2, 3], s32: [3, 2] };
  const fold = (nodes: Node[], outputs: string[]) => foldReshapes(nodes, (n) => ({ v: [2, 3] } as Record<string, number[]>)[n], (n) => ints[n], outputs);
  it('reads the first input of a Reshape chain and drops a Reshape back to its input shape', () => {
    const out = fold([op('Reshape', ['v', 's6'], 'a'), op('Reshape', ['a', 's32'], 'b'), op('Reshape', ['b', 's23'], 'c'), op('Relu', ['c'], 'y')], ['y']);
    // a -> b reads v directly; c (back to v's shape) is dropped and its use reads v.
    expect(summary(out)).toEqual(['Reshape(v,s6)', 'Reshape(v,s32)', 'Relu(v)']);
  });
  it('keeps a Reshape that is a graph output, and leaves its input untouched', () => {
    const nodes = [op('Reshape', ['v', 's6'], 'a'), op('Reshape', ['a', 's23'], 'c')];
    const before = JSON.stringify(nodes);
    expect(summary(fold(nodes, ['c']))).toEqual(['Reshape(v,s6)', 'Reshape(v,s23)']);
    expect(JSON.stringify(nodes)).toBe(before);
  });
});

describe('withoutDeadNodes', () => {
  it('drops nodes that no output reads, directly or through others', () => {
    const out = withoutDeadNodes([op('Relu', ['x'], 'a'), op('Neg', ['x'], 'unused'), op('Exp', ['unused'], 'unused2'), op('Mul', ['a', 'a'], 'y')], ['y']);
    expect(summary(out)).toEqual(['Relu(x)', 'Mul(a,a)']);
  });
});

describe('runPasses', () => {
  it('runs the passes in order, each on the previous one\'s result', () => {
    const seen: string[] = [];
    const tag = (name: string): Pass => ({ name, run: (nodes) => (seen.push(`${name}:${nodes.length}`), [...nodes, op('Identity', ['x'], name)]) });
    const out = runPasses([op('Relu', ['x'], 'a')], [tag('p1'), tag('p2')], { shapeOf: () => undefined, intsOf: () => undefined, outputs: ['a'] });
    expect(seen).toEqual(['p1:1', 'p2:2']);
    expect(out.map((n) => n.output![0])).toEqual(['a', 'p1', 'p2']);
    expect(CPU_PASSES.map((p) => p.name)).toEqual(['fold-reshapes', 'sink-transposes', 'dead-nodes']);
  });
});
