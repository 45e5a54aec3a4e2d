// Serialisation of the IR to ONNX through the official onnx.proto schema (onnx-proto's
// protobufjs classes). One function per protobuf message; the IR knows nothing of this.

import onnxProto from 'onnx-proto';
import { type DType, type Graph, type Shape, type TensorData, type Value } from './ir.js';
import { type LowerCtx, type OpRule, type Prim, rules, type Target } from './ops.js';
import { CPU_LOWERINGS, type LoweringPlan, planCpu } from './lower/cpu.js';
import { CPU_PASSES, runPasses, type Pass } from './passes/index.js';

const { onnx } = onnxProto;

/** The one opset every emitted graph uses. */
export const OPSET = 17;
export const IR_VERSION = 8;

const dataType: Record<DType, number> = { float32: onnx.TensorProto.DataType.FLOAT, int64: onnx.TensorProto.DataType.INT64, bool: onnx.TensorProto.DataType.BOOL };

export { TARGETS, type Target } from './ops.js';

/** The execution providers that emitted graphs run on. */
export type ExecutionDevice = 'cpu' | 'wasm' | 'webgpu' | 'cuda';

/** The lowering target for a device: onnxruntime's CPU provider gets 'cpu', every other one 'plain'. */
export function targetForDevice(device: ExecutionDevice): Target {
  return device === 'cpu' ? 'cpu' : 'plain';
}

export interface EmitOptions {
  /** Graph outputs by name. */
  outputs: Record<string, Value>;
  /** Leaves to bake in as initializers (e.g. trained weights for an inference graph), by leaf name. */
  bake?: ReadonlyMap<string, TensorData>;
  /** Order of graph inputs by leaf name; leaves not listed follow in creation order. */
  inputOrder?: readonly string[];
  name?: string;
  docString?: string;
  /**
   * Emit dimension 0 of size `dynamicBatch` as the symbolic dimension 'N' on inputs and outputs,
   * and Reshape targets that start with it as -1, so one file serves any batch size. Only for
   * graphs whose batch dimension is leading everywhere (inference graphs).
   */
  dynamicBatch?: number;
  /** The node-level passes run on the emitted nodes (src/graph/passes); default CPU_PASSES, [] for none. */
  passes?: readonly Pass[];
  /** The lowering target (see `Target`, `targetForDevice`); default 'cpu'. */
  target?: Target;
}

export interface EmittedModel {
  bytes: Uint8Array;
  inputs: { name: string; shape: number[]; dtype: DType }[];
  outputs: { name: string; shape: number[]; dtype: DType }[];
  nodeCount: number;
}

export function tensorProto(name: string, data: TensorData, shape: Shape, dtype: DType): onnxProto.onnx.ITensorProto {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { name, dims: [...shape], dataType: dataType[dtype], rawData: bytes.slice() };
}

export function valueInfo(name: string, shape: Shape, dtype: DType, dynamicBatch?: number): onnxProto.onnx.IValueInfoProto {
  const dim = shape.map((d, i) => (i === 0 && d === dynamicBatch ? { dimParam: 'N' } : { dimValue: d }));
  return { name, type: { tensorType: { elemType: dataType[dtype], shape: { dim } } } };
}

export function attributeProto(name: string, v: number | readonly number[] | string): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') return Number.isInteger(v) && name !== 'alpha' ? { name, type: T.INT, i: v } : { name, type: T.FLOAT, f: v };
  return { name, type: T.INTS, ints: [...v] };
}

/** Lowers the part of the graph that the outputs need into an ONNX ModelProto. */
export function emitModel(graph: Graph, opts: EmitOptions): EmittedModel {
  let g = graph;
  let needed = new Set<number>();
  const stack = Object.values(opts.outputs).map((v) => v.id);
  while (stack.length) {
    const id = stack.pop()!;
    if (needed.has(id)) continue;
    needed.add(id);
    for (const i of g.nodes[id]!.inputs) stack.push(i.id);
  }
  const names = new Map<number, string>();
  const nodes: onnxProto.onnx.INodeProto[] = [];
  const initializers: onnxProto.onnx.ITensorProto[] = [];
  const inputs: EmittedModel['inputs'] = [];
  const intConsts = new Map<string, string>();
  const shapes = new Map<string, readonly number[]>(); // of named IR values and constants, for the passes
  const ints = new Map<string, readonly number[]>();
  let temp = 0;

  // An op's tensor takes the output's name when it is the first output to claim it.
  const outputNameOf = new Map<number, string>();
  for (const [name, v] of Object.entries(opts.outputs)) {
    if (v.op !== 'Input' && v.op !== 'Constant' && !outputNameOf.has(v.id)) outputNameOf.set(v.id, name);
  }

  const leaves = [...needed].map((id) => g.nodes[id]!).filter((v) => v.op === 'Input');
  const order = new Map((opts.inputOrder ?? []).map((n, i) => [n, i]));
  leaves.sort((a, b) => (order.get(String(a.attrs.name)) ?? 1e9 + a.id) - (order.get(String(b.attrs.name)) ?? 1e9 + b.id));
  for (const v of leaves) {
    const name = String(v.attrs.name);
    names.set(v.id, name);
    shapes.set(name, v.shape);
    const baked = opts.bake?.get(name);
    if (baked) initializers.push(tensorProto(name, baked, v.shape, v.dtype));
    else inputs.push({ name, shape: [...v.shape], dtype: v.dtype });
  }

  /** A small 1-D constant (shapes, axes, pads) as an initializer, shared by equal values. */
  const constant = (dtype: 'int64' | 'float32', values: readonly number[]): string => {
    const key = `${dtype}:${values.join(',')}`;
    let name = intConsts.get(key);
    if (!name) {
      name = `const_${dtype}_${intConsts.size}`;
      intConsts.set(key, name);
      const data = dtype === 'int64' ? BigInt64Array.from(values, (x) => BigInt(x)) : Float32Array.from(values);
      initializers.push(tensorProto(name, data, [values.length], dtype));
      shapes.set(name, [values.length]);
      if (dtype === 'int64') ints.set(name, values);
    }
    return name;
  };

  const target = opts.target ?? 'cpu';
  const cpu = target === 'cpu';
  // What the target builds in IR terms (the cpu target: its expansions and im2col matrices), on a
  // copy of the graph; and what its lowerings reuse.
  const plan = cpu ? planCpu(g, opts.outputs, needed) : standardPlan(g, opts.outputs, needed);
  g = plan.graph;
  opts = { ...opts, outputs: plan.outputs };
  const { alias, aux } = plan;
  needed = plan.needed;
  for (const [id, e] of alias) {
    const out = outputNameOf.get(id);
    if (out !== undefined && !outputNameOf.has(e.id)) outputNameOf.set(e.id, out);
  }
  const constantIds = new Set(leaves.filter((v) => opts.bake?.has(String(v.attrs.name))).map((v) => v.id));

  const ctxFor = (v: Value, out: string): LowerCtx => ({
    target,
    inputs: v.inputs.map((i) => names.get(i.id)!),
    aux: (aux.get(v.id) ?? []).map((a) => names.get(a.id)!),
    auxValues: aux.get(v.id) ?? [],
    isConstant: (i) => v.inputs[i]!.op === 'Constant' || constantIds.has(v.inputs[i]!.id),
    channelsLast: (i) => plan.channelsLast(v.inputs[i]!),
    phases: (i) => plan.phases(v.inputs[i]!),
    output: out,
    node(opType, ins, outs, attrs = {}) {
      if (opts.dynamicBatch !== undefined && (opType === 'Expand' || v.shape[0] !== opts.dynamicBatch)) {
        throw new Error(`dynamicBatch: ${opType} ${v} does not keep the batch dimension leading; emit with a fixed batch`);
      }
      nodes.push({
        opType,
        input: [...ins],
        output: [...outs],
        name: `${opType}_${nodes.length}`,
        attribute: Object.entries(attrs).map(([k, a]) => attributeProto(k, a)),
      });
    },
    dynamicBatch: opts.dynamicBatch,
    ints: (values) => constant('int64', values),
    floats: (values) => constant('float32', values),
    temp: (hint) => `${hint}_t${temp++}`,
  });

  for (const id of topoOrder(g, needed, aux, alias)) {
    const v = g.nodes[id]!;
    if (v.op === 'Input') continue;
    const e = alias.get(id);
    if (e) {
      names.set(id, names.get(e.id)!);
      continue;
    }
    if (v.op === 'Constant') {
      const name = `const_${v.id}`;
      names.set(v.id, name);
      initializers.push(tensorProto(name, g.constants.get(v.id)!, v.shape, v.dtype));
      shapes.set(name, v.shape);
      continue;
    }
    const name = outputNameOf.get(v.id) ?? `${v.op}_${v.id}`;
    names.set(v.id, name);
    shapes.set(name, v.shape);
    // The target's lowering where it has one, else the rule's standard lowering.
    const lower = (cpu ? (CPU_LOWERINGS as Record<string, OpRule<Prim>['lower'] | undefined>)[v.op] : undefined) ?? (rules as Record<string, OpRule<Prim>>)[v.op]!.lower;
    lower(ctxFor(v, name), v.attrs as never, v);
  }

  const outputs: EmittedModel['outputs'] = [];
  for (const [name, v] of Object.entries(opts.outputs)) {
    const src = names.get(v.id)!;
    if (src !== name) nodes.push({ opType: 'Identity', input: [src], output: [name], name: `Identity_out_${outputs.length}` });
    outputs.push({ name, shape: [...v.shape], dtype: v.dtype });
  }

  const ctx = { shapeOf: (name: string) => shapes.get(name), intsOf: (name: string) => ints.get(name), outputs: outputs.map((o) => o.name) };
  const final = runPasses(nodes, opts.passes ?? CPU_PASSES, ctx);
  const read = new Set(final.flatMap((n) => n.input ?? []));
  const kept = initializers.filter((t) => read.has(t.name!)); // constants the pass made unused
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: 'lifelong-gen',
    producerVersion: '0.1.0',
    docString: opts.docString ?? '',
    opsetImport: [{ domain: '', version: OPSET }],
    graph: {
      name: opts.name ?? 'graph',
      node: final,
      initializer: kept,
      input: inputs.map((i) => valueInfo(i.name, i.shape, i.dtype, opts.dynamicBatch)),
      output: outputs.map((o) => valueInfo(o.name, o.shape, o.dtype, opts.dynamicBatch)),
    },
  });
  return { bytes: onnx.ModelProto.encode(model).finish(), inputs, outputs, nodeCount: final.length };
}

/** The plain target's plan: the graph as it is, each primitive lowered by its rule. */
function standardPlan(g: Graph, outputs: Record<string, Value>, needed: Set<number>): LoweringPlan {
  return { graph: g, outputs, needed, alias: new Map(), aux: new Map(), channelsLast: () => false, phases: () => undefined };
}

/**
 * Node ids in an order where every node follows its inputs and its aux tensors, and an expanded
 * node its expansion (depth first).
 */
function topoOrder(g: Graph, needed: ReadonlySet<number>, aux: ReadonlyMap<number, readonly Value[]>, alias: ReadonlyMap<number, Value>): number[] {
  if (!aux.size && !alias.size) return [...needed].sort((a, b) => a - b); // ids are already topological
  const order: number[] = [];
  const done = new Set<number>();
  for (const root of [...needed].sort((a, b) => a - b)) {
    const stack: [number, boolean][] = [[root, false]];
    while (stack.length) {
      const [id, expanded] = stack.pop()!;
      if (done.has(id)) continue;
      if (expanded) {
        done.add(id);
        order.push(id);
        continue;
      }
      stack.push([id, true]);
      const e = alias.get(id);
      const deps = e ? [e] : [...g.nodes[id]!.inputs, ...(aux.get(id) ?? [])];
      for (let i = deps.length - 1; i >= 0; i--) if (!done.has(deps[i]!.id)) stack.push([deps[i]!.id, false]);
    }
  }
  return order;
}

/** Parses ONNX bytes back into a plain object (for the round-trip test and tooling). */
export function decodeModel(bytes: Uint8Array): onnxProto.onnx.ModelProto {
  return onnx.ModelProto.decode(bytes);
}
