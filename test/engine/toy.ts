// A small synthetic image task and conv classifier for the end-to-end engine tests:
// 8x8 images holding one noisy bar (horizontal, vertical, diagonal or anti-diagonal).

import { Graph } from '../../src/graph/ir.js';
import * as o from '../../src/graph/ops.js';
import * as nn from '../../src/graph/nn.js';
import { buildTrainStep, type StepGraph } from '../../src/graph/step.js';
import { emitModel, type EmittedModel } from '../../src/graph/onnx.js';
import { Rng } from '../../src/util/rng.js';

export const CLASSES = 4;
export const SIZE = 8;

export function toyBatch(rng: Rng, n: number): { x: Float32Array; y: Float32Array; labels: number[] } {
  const x = new Float32Array(n * SIZE * SIZE);
  const y = new Float32Array(n * CLASSES);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const k = rng.int(CLASSES);
    const at = rng.int(SIZE);
    labels.push(k);
    y[i * CLASSES + k] = 1;
    for (let r = 0; r < SIZE; r++) {
      for (let c = 0; c < SIZE; c++) {
        const on = k === 0 ? r === at : k === 1 ? c === at : k === 2 ? r === c : r + c === SIZE - 1;
        x[i * SIZE * SIZE + r * SIZE + c] = (on ? 1 : 0) + 0.3 * rng.normal();
      }
    }
  }
  return { x, y, labels };
}

function classifier(g: Graph) {
  return { c1: nn.conv2dParams(g, 'c1', 1, 8, 3, 1, 1), fc: nn.linearParams(g, 'fc', 8 * 4 * 4, CLASSES) };
}

function logitsOf(x: ReturnType<Graph['input']>, p: ReturnType<typeof classifier>, n: number) {
  const h = o.maxPool(o.relu(nn.conv2d(x, p.c1)), [2, 2]); // [N, 8, 4, 4]
  return nn.linear(o.reshape(h, [n, 8 * 16]), p.fc); // [N, 4]
}

export function toyTrainStep(batch: number): { graph: Graph; step: StepGraph } {
  const g = new Graph();
  const p = classifier(g);
  const x = g.input('x', [batch, 1, SIZE, SIZE]);
  const y = g.input('y', [batch, CLASSES]);
  const loss = nn.crossEntropy(logitsOf(x, p, batch), y);
  const step = buildTrainStep(g, { name: 'train_step', loss, groups: [{ params: [p.c1.w, p.c1.b!, p.fc.w, p.fc.b!] }], optimizer: { kind: 'adam' } });
  return { graph: g, step };
}

export function toyInference(n: number, weights: ReadonlyMap<string, Float32Array>): EmittedModel {
  const g = new Graph();
  const p = classifier(g);
  const x = g.input('x', [n, 1, SIZE, SIZE]);
  return emitModel(g, { outputs: { logits: logitsOf(x, p, n) }, bake: weights, name: 'toy' });
}
