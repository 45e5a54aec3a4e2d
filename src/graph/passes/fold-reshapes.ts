// Folding of Reshape chains (see foldReshapes).

import { permOf, type IntsOf, type Node, type Pass, type ShapeOf } from './pass.js';

/**
 * The shape a Reshape to `target` gives a tensor of `input` shape (ONNX semantics: 0 copies the
 * input's dimension, -1 takes the rest), or undefined when either is unknown.
 */
function reshaped(target: readonly number[] | undefined, input: readonly number[] | undefined): number[] | undefined {
  if (!target || (!input && target.some((d) => d <= 0))) return undefined;
  const dims = target.map((d, i) => (d === 0 ? input![i]! : d));
  const free = dims.indexOf(-1);
  if (free < 0) return dims;
  const known = dims.reduce((a, d) => (d === -1 ? a : a * d), 1);
  dims[free] = input!.reduce((a, b) => a * b, 1) / known;
  return dims;
}

/**
 * Folds chains of Reshapes: a Reshape of a Reshape reads the first one's input, and a Reshape
 * that gives back its input's shape is dropped (its uses read the input). A lowering that
 * computes a tensor in another memory order ends with Reshape -> Transpose -> Reshape to the
 * logical shape, and a consumer that reads that order starts with the inverse chain: folded, the
 * two Transposes meet, and `sinkTransposes` cancels them. Every value is unchanged.
 */
export function foldReshapes(nodes: readonly Node[], shapeOf: ShapeOf, intsOf: IntsOf, outputs: readonly string[]): Node[] {
  const outputSet = new Set(outputs);
  const producer = new Map<string, Node>();
  const shapes = new Map<string, readonly number[]>(); // of Reshape and Transpose outputs
  const shape = (name: string) => shapes.get(name) ?? shapeOf(name);
  const alias = new Map<string, string>();
  const out: Node[] = [];
  for (const n0 of nodes) {
    const n: Node = { ...n0, input: (n0.input ?? []).map((i) => alias.get(i) ?? i) };
    const y = n.output?.[0];
    if (n.opType === 'Reshape' && y !== undefined) {
      let src = n.input![0]!;
      while (producer.get(src)?.opType === 'Reshape') src = producer.get(src)!.input![0]!;
      const from = shape(src);
      const to = reshaped(intsOf(n.input![1]!), shape(n.input![0]!));
      if (to) shapes.set(y, to);
      if (to && from && to.length === from.length && to.every((d, i) => d === from[i]) && !outputSet.has(y)) {
        alias.set(y, src);
        continue;
      }
      if (!intsOf(n.input![1]!)?.includes(0)) n.input = [src, ...n.input!.slice(1)]; // 0 copies a dimension of the direct input
    } else if (n.opType === 'Transpose' && y !== undefined) {
      const from = shape(n.input![0]!);
      if (from) shapes.set(y, permOf(n).map((p) => from[p]!));
    }
    for (const o of n.output ?? []) producer.set(o, n);
    out.push(n);
  }
  return out;
}

export const foldReshapesPass: Pass = { name: 'fold-reshapes', run: (nodes, c) => foldReshapes(nodes, c.shapeOf, c.intsOf, c.outputs) };
