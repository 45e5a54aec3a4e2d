// Transpose sinking on an emitted ONNX node list. Convolutions run as GEMMs over channels-last
// (NHWC) matrices while the IR's tensors are NCHW, so a lowering ends with a Transpose to NCHW
// and the next convolution's im2col starts with one back. Between them sit element-wise ops
// (activations, their masks, gradient products), which commute with any transpose. This pass
// defers every Transpose, runs element-wise ops in the layout their inputs already have,
// composes transposes of transposes, and writes a Transpose only where a consumer needs the
// logical layout: NHWC -> NCHW -> ReLU -> NHWC becomes ReLU on the NHWC tensor.

import { INTS, permOf, type IntsOf, type Node, type Pass, type ShapeOf } from './pass.js';

const UNARY = new Set(['Relu', 'LeakyRelu', 'Cast', 'Neg', 'Sqrt', 'Exp', 'Log', 'Tanh', 'Sigmoid', 'Abs', 'Sign', 'Not', 'Identity']);
const NARY = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Greater', 'Less', 'Equal', 'Where', 'Max', 'Min', 'And', 'Or', 'Clip']);
const REDUCE = new Set(['ReduceSum', 'ReduceMean', 'ReduceMax']);
const elementwise = (op: string | null | undefined) => UNARY.has(op ?? '') || NARY.has(op ?? '');

/** Logical tensor = Transpose(src, perm). */
interface Deferred { src: string; perm: number[] }

const isIdentity = (p: readonly number[]) => p.every((x, i) => x === i);
/** T(T(s, q), p) = T(s, q∘p). */
const compose = (q: readonly number[], p: readonly number[]) => p.map((i) => q[i]!);
const inverse = (p: readonly number[]) => p.map((_, i) => p.indexOf(i));
const transposeNode = (input: string, output: string, perm: readonly number[], name: string): Node =>
  ({ opType: 'Transpose', input: [input], output: [output], name, attribute: [{ name: 'perm', type: INTS, ints: [...perm] }] });

/**
 * Whether a sum over `axes` of a tensor of `shape` is a sum over every axis but a narrow last
 * one (<= 128: a bias gradient over a channels-last tensor), which onnxruntime 1.30 runs as one
 * short vector add per row. Summed as [N, rest] over N (wide rows) and then [rest / C, C], the
 * same sums took a third or less of the time (profiled kernel time of all ReduceSums: student
 * step 1.89 -> 0.59 ms, critic step 1.37 -> 0.37 ms), in another order: the last bits may differ.
 */
export function splitsNarrowSum(shape: readonly number[], axes: readonly number[]): boolean {
  const r = shape.length;
  return r >= 3 && axes.length === r - 1 && [...axes].sort((a, b) => a - b).every((a, i) => a === i) && shape[r - 1]! <= 128 && shape[0]! > 1;
}

/**
 * Rewrites `nodes` (topologically ordered) so that transposes move past element-wise ops and
 * reductions and cancel where they meet their inverse. `outputs` (the graph's outputs) are never
 * deferred, so they keep their logical layout. Element-wise results are bit-identical; a
 * reduction over permuted axes may round differently.
 */
export function sinkTransposes(nodes: readonly Node[], shapeOf: ShapeOf, intsOf: IntsOf, outputs: readonly string[]): Node[] {
  const out: Node[] = [];
  const deferred = new Map<string, Deferred>();
  const written = new Map<string, string>(); // `${src}|${perm}` -> the emitted transpose's output
  const used = new Set<string>(); // names produced in `out`
  const outputSet = new Set(outputs);
  const consumers = new Map<string, Node[]>();
  for (const n of nodes) for (const i of n.input ?? []) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  let fresh = 0;

  /** A new int64 Constant node with these values; returns its output's name. */
  const constInts = (vals: readonly number[], hint: string): string => {
    const c = `${hint}_sunk${fresh++}`;
    out.push({ opType: 'Constant', input: [], output: [c], name: `Constant_sunk_${fresh++}`, attribute: [{ name: 'value_ints', type: INTS, ints: [...vals] }] });
    return c;
  };
  /** Transpose(src, perm), written once; `name` is used for the output when still free. */
  const write = (src: string, perm: readonly number[], name: string): string => {
    if (isIdentity(perm)) return src;
    const key = `${src}|${perm.join(',')}`;
    let t = written.get(key);
    if (!t) {
      t = used.has(name) ? `${name}_sunk${fresh++}` : name;
      out.push(transposeNode(src, t, perm, `Transpose_sunk_${fresh++}`));
      used.add(t);
      written.set(key, t);
    }
    return t;
  };
  /** A tensor in its logical layout. */
  const logical = (name: string): string => {
    const d = deferred.get(name);
    return d ? write(d.src, d.perm, name) : name;
  };
  /** The physical u with T(u, p) equal to the logical `name`. */
  const inLayout = (name: string, p: readonly number[]): string => {
    const d = deferred.get(name) ?? { src: name, perm: p.map((_, k) => k) };
    return write(d.src, compose(d.perm, inverse(p)), `${name}_p${p.join('')}`);
  };
  const sizeOne = (name: string) => !deferred.has(name) && (shapeOf(name)?.every((d) => d === 1) ?? false);
  /** Whether every use of `name` is a transpose or a reduction, directly or through element-wise ops. */
  const headsToTranspose = (name: string, depth: number): boolean => {
    const cs = consumers.get(name) ?? [];
    return cs.length > 0 && !outputSet.has(name) && cs.every((c) => c.opType === 'Transpose' || REDUCE.has(c.opType ?? '')
      || (depth > 0 && elementwise(c.opType) && headsToTranspose(c.output![0]!, depth - 1)));
  };

  for (const n of nodes) {
    const ins = n.input ?? [];
    const y = n.output?.[0];
    const single = y !== undefined && n.output!.length === 1 && !outputSet.has(y);
    if (n.opType === 'Transpose' && single) {
      const d = deferred.get(ins[0]!);
      deferred.set(y, d ? { src: d.src, perm: compose(d.perm, permOf(n)) } : { src: ins[0]!, perm: permOf(n) });
      continue;
    }
    if (elementwise(n.opType) && single) {
      // Run in the layout of a deferred input when every other full-size input is deferred the
      // same way, or when one input must be transposed to it and the result heads into a
      // transpose anyway (one transpose instead of two).
      const big = ins.filter((i) => !sizeOne(i));
      const p = big.map((i) => deferred.get(i)?.perm).find((q) => q && !isIdentity(q));
      const others = big.filter((i) => deferred.get(i)?.perm.join() !== p?.join());
      const mixed = others.length === 1 && shapeOf(others[0]!)?.join() === shapeOf(y)?.join() && headsToTranspose(y, 4);
      if (p && (others.length === 0 || mixed)) {
        const phys = `${y}_sunk${fresh++}`;
        out.push({ ...n, input: ins.map((i) => (sizeOne(i) ? i : inLayout(i, p))), output: [phys] });
        used.add(phys);
        deferred.set(y, { src: phys, perm: p });
        continue;
      }
    }
    // A reduction of a deferred tensor that drops the reduced axes and keeps the others in order
    // is the reduction of the source over the permuted axes.
    const d = REDUCE.has(n.opType ?? '') && y !== undefined ? deferred.get(ins[0]!) : undefined;
    if (d) {
      const axes = n.opType === 'ReduceSum' ? intsOf(ins[1] ?? '') : n.attribute?.find((x) => x.name === 'axes')?.ints?.map(Number);
      const keepdims = Number(n.attribute?.find((x) => x.name === 'keepdims')?.i ?? 1);
      const kept = d.perm.filter((_, i) => !axes?.includes(i));
      if (axes?.length && keepdims === 0 && kept.every((k, i) => i === 0 || k > kept[i - 1]!)) {
        const mapped = axes.map((i) => d.perm[i]!);
        const logical = shapeOf(ins[0]!);
        const srcShape = logical && d.perm.map((_, j) => logical[d.perm.indexOf(j)]!);
        if (n.opType === 'ReduceSum' && srcShape && splitsNarrowSum(srcShape, mapped)) {
          // Sum over the batch first (wide rows), then over the remaining positions.
          const ints = (vals: number[]) => constInts(vals, `${y}_c`);
          const [batch, width] = [srcShape[0]!, srcShape[srcShape.length - 1]!];
          const rest = srcShape.slice(1).reduce((a, b) => a * b, 1);
          const [rows, perBatch, grid] = [`${y}_rows_sunk${fresh++}`, `${y}_batchsum_sunk${fresh++}`, `${y}_grid_sunk${fresh++}`];
          out.push({ opType: 'Reshape', input: [d.src, ints([batch, rest])], output: [rows], name: `Reshape_sunk_${fresh++}` });
          out.push({ ...n, name: `ReduceSum_sunk_${fresh++}`, input: [rows, ints([0])], output: [perBatch] });
          out.push({ opType: 'Reshape', input: [perBatch, ints([rest / width, width])], output: [grid], name: `Reshape_sunk_${fresh++}` });
          out.push({ ...n, input: [grid, ints([0])] });
          used.add(y!);
          continue;
        }
        if (n.opType === 'ReduceSum') {
          out.push({ ...n, input: [d.src, constInts(mapped, `${y}_axes`)] });
        } else {
          out.push({ ...n, input: [d.src], attribute: [...(n.attribute ?? []).filter((x) => x.name !== 'axes'), { name: 'axes', type: INTS, ints: mapped }] });
        }
        used.add(y!);
        continue;
      }
    }
    out.push({ ...n, input: ins.map((i) => (i === '' ? i : logical(i))) });
    for (const o of n.output ?? []) used.add(o);
  }
  return out;
}


export const sinkTransposesPass: Pass = { name: 'sink-transposes', run: (nodes, c) => sinkTransposes(nodes, c.shapeOf, c.intsOf, c.outputs) };
