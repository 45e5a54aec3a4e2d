// Shared by the primitives' rules: shape checks that name the op, the input and the shapes, and
// the one-node standard lowering.

import { broadcastShapes, type DType, fmtShape, type NodeSpec, type Shape, ShapeError, type Value } from '../ir.js';
import { type Ints, type LowerCtx, type Reduce } from './types.js';

export function fail(op: string, msg: string): never {
  throw new ShapeError(`${op}: ${msg}`);
}

export function arity(op: string, inputs: readonly Value[], n: number, m = n): void {
  if (inputs.length < n || inputs.length > m) fail(op, `expects ${n === m ? n : `${n}-${m}`} inputs, got ${inputs.length}`);
}

export function float(op: string, x: Value, what = 'input'): void {
  if (x.dtype !== 'float32') fail(op, `${what} ${x} must be float32, got ${x.dtype}`);
}

export function elementwise(op: string, inputs: readonly Value[]): NodeSpec {
  arity(op, inputs, 1);
  float(op, inputs[0]!);
  return { shape: inputs[0]!.shape, dtype: 'float32' };
}

export function broadcast(op: string, inputs: readonly Value[], dtype?: DType): NodeSpec {
  arity(op, inputs, 2);
  const [a, b] = inputs as [Value, Value];
  if (a.dtype !== b.dtype) fail(op, `input A ${fmtShape(a.shape)} is ${a.dtype} but input B ${fmtShape(b.shape)} is ${b.dtype}`);
  const shape = broadcastShapes(a.shape, b.shape);
  if (!shape) fail(op, `input A of shape ${fmtShape(a.shape)} does not broadcast with input B of shape ${fmtShape(b.shape)}`);
  return { shape, dtype: dtype ?? a.dtype };
}

export function normAxes(op: string, axes: Ints, rank: number): number[] {
  return axes.map((a) => {
    const b = a < 0 ? a + rank : a;
    if (b < 0 || b >= rank) fail(op, `axis ${a} is out of range for rank ${rank}`);
    return b;
  });
}

export function reduceInfer(op: string) {
  return (inputs: readonly Value[], a: Reduce): NodeSpec => {
    arity(op, inputs, 1);
    const x = inputs[0]!;
    if (a.axes.length === 0) fail(op, 'axes is empty (ONNX would reduce over every axis); list the axes to reduce');
    const axes = normAxes(op, a.axes, x.rank);
    const shape = a.keepdims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
    return { shape, dtype: x.dtype };
  };
}

export function convOut(size: number, k: number, s: number, d: number, p0: number, p1: number): number {
  return Math.floor((size + p0 + p1 - ((k - 1) * d + 1)) / s) + 1;
}

export function convTOut(size: number, k: number, s: number, d: number, p0: number, p1: number, op: number): number {
  return s * (size - 1) + op + ((k - 1) * d + 1) - p0 - p1;
}

export function checkConv(op: string, inputs: readonly Value[], wantWChannels: (x: Shape, w: Shape) => [number, number]): void {
  arity(op, inputs, 2, 3);
  const [x, w, b] = inputs as [Value, Value, Value | undefined];
  float(op, x, 'input X');
  float(op, w, 'input W');
  if (x.rank !== 4) fail(op, `input X must be [N, C, H, W], got ${fmtShape(x.shape)}`);
  if (w.rank !== 4) fail(op, `input W must be rank 4, got ${fmtShape(w.shape)}`);
  const [got, want] = wantWChannels(x.shape, w.shape);
  if (got !== want) fail(op, `input X ${fmtShape(x.shape)} has ${want} channels but input W ${fmtShape(w.shape)} expects ${got}`);
  if (b && (b.rank !== 1 || b.shape[0] !== (op === 'Conv' ? w.shape[0] : w.shape[1]))) {
    fail(op, `bias B ${fmtShape(b.shape)} does not match W ${fmtShape(w.shape)}`);
  }
}

export const onnxType: Record<DType, number> = { float32: 1, int64: 7, bool: 9 };

export const simple = (opType: string) => (ctx: LowerCtx) => ctx.node(opType, ctx.inputs, [ctx.output]);

export function keptShape(x: Value, a: Reduce): number[] {
  const axes = normAxes('Reduce', a.axes, x.rank);
  return x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
}
