// The LeNet-style feature network behind FID (docs/models.md):
// 128 features from the penultimate layer, 20 class logits (MNIST 0-9, Fashion 10-19).

import { Graph, type Value } from '../src/graph/ir.js';
import * as o from '../src/graph/ops.js';
import * as nn from '../src/graph/nn.js';
import { buildTrainStep, type StepGraph } from '../src/graph/step.js';
import type { OptimizerSpec } from '../src/graph/optim.js';
import { emitModel, type EmittedModel, type Target } from '../src/graph/onnx.js';

export interface FeatureParams { c1: nn.Conv2d; c2: nn.Conv2d; fc: nn.Linear; out: nn.Linear }

export function featureParams(g: Graph, classes = 20): FeatureParams {
  return {
    c1: nn.conv2dParams(g, 'feat.c1', 1, 32, 3, 1, 1),
    c2: nn.conv2dParams(g, 'feat.c2', 32, 64, 3, 1, 1),
    fc: nn.linearParams(g, 'feat.fc', 64 * 7 * 7, 128),
    out: nn.linearParams(g, 'feat.out', 128, classes),
  };
}

export function featureNet(x: Value, p: FeatureParams): { features: Value; logits: Value } {
  // ReLU after the pooling: the same function (ReLU is monotonic, so it commutes with max) and,
  // with ties and zeros routed alike, the same gradients; but its mask is a quarter the size.
  let h = o.relu(o.maxPool(nn.conv2d(x, p.c1), [2, 2])); // [N, 32, 14, 14]
  h = o.relu(o.maxPool(nn.conv2d(h, p.c2), [2, 2])); // [N, 64, 7, 7]
  // Flattened channels-last, the order the convolutions and pools compute in (nn.flatten).
  const features = o.relu(nn.linear(nn.flatten(h), p.fc)); // [N, 128]
  return { features, logits: nn.linear(features, p.out) };
}

export function featureParamList(p: FeatureParams): Value[] {
  return [p.c1, p.c2, p.fc, p.out].flatMap((l) => [l.w, l.b!]);
}

export function buildFeatureStep(g: Graph, batch: number, classes = 20, optimizer: OptimizerSpec = { kind: 'adam' }): StepGraph {
  const p = featureParams(g, classes);
  const x = g.input('x', [batch, 1, 28, 28]);
  const labels = g.input('labels', [batch, classes]);
  const { logits } = featureNet(x, p);
  const loss = nn.crossEntropy(logits, labels);
  // A sample counts as correct when its label's logit is the row maximum.
  const isMax = o.cast(o.equal(logits, o.reduceMax(logits, [1], 1)), 'float32');
  const correct = o.sumAll(o.mul(o.stopGradient(isMax), labels));
  return buildTrainStep(g, { name: 'features_step', loss, groups: [{ params: featureParamList(p) }], optimizer, metrics: { correct } });
}

/**
 * The trained feature network as an inference graph (weights baked in): images x [n, 1, 28, 28]
 * in [0, 1] -> features [n, 128] and logits [n, classes]. With `dynamicBatch`, one file serves
 * any batch size (dimension 0 emitted as 'N').
 */
export function emitFeatureInference(n: number, weights: ReadonlyMap<string, Float32Array>, classes = 20, dynamicBatch = false, target: Target = 'cpu'): EmittedModel {
  const g = new Graph();
  const p = featureParams(g, classes);
  const x = g.input('x', [n, 1, 28, 28]);
  const { features, logits } = featureNet(x, p);
  return emitModel(g, { outputs: { features, logits }, bake: weights, name: 'features', dynamicBatch: dynamicBatch ? n : undefined, target });
}
