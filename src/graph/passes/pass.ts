// The emitter's node-level passes: each takes the ONNX node list (topologically ordered) and
// returns a new one; none mutates its input. A pipeline is a list of passes run in order.

import onnxProto from 'onnx-proto';

export type Node = onnxProto.onnx.INodeProto;
export const INTS = onnxProto.onnx.AttributeProto.AttributeType.INTS;

/** The (logical) shape of a named tensor, if known: IR values and initializers. */
export type ShapeOf = (name: string) => readonly number[] | undefined;
/** The values of a 1-D int64 initializer (axes), if `name` is one. */
export type IntsOf = (name: string) => readonly number[] | undefined;

export interface PassContext {
  shapeOf: ShapeOf;
  intsOf: IntsOf;
  /** The graph's outputs: never removed, renamed or left in another layout. */
  outputs: readonly string[];
}

export interface Pass {
  name: string;
  run(nodes: readonly Node[], ctx: PassContext): Node[];
}

/** Runs `passes` in order. */
export function runPasses(nodes: readonly Node[], passes: readonly Pass[], ctx: PassContext): Node[] {
  let out: readonly Node[] = nodes;
  for (const p of passes) out = p.run(out, ctx);
  return [...out];
}

export const permOf = (n: Node) => (n.attribute?.find((x) => x.name === 'perm')?.ints ?? []).map(Number);
