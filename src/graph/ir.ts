// The typed IR: immutable values with static shapes and dtypes, recorded by a Graph.
// A value is the output of one node; identical nodes are interned, which gives
// common-subexpression elimination for free (the gradient rules rely on it).

export type DType = 'float32' | 'int64' | 'bool';
export type Shape = readonly number[];
export type AttrValue = number | string | readonly number[] | undefined;
export type Attrs = { readonly [key: string]: AttrValue };
export type TensorData = Float32Array | BigInt64Array | Uint8Array;

export type Initializer =
  | { kind: 'zeros' }
  | { kind: 'ones' }
  | { kind: 'constant'; value: number }
  | { kind: 'normal'; std: number; mean?: number }
  | { kind: 'uniform'; low: number; high: number }
  | { kind: 'kaimingUniform'; fanIn: number; gain?: number }
  | { kind: 'kaimingNormal'; fanIn: number; gain?: number }
  | { kind: 'xavierUniform'; fanIn: number; fanOut: number; gain?: number }
  | { kind: 'xavierNormal'; fanIn: number; fanOut: number; gain?: number };

/** Graph leaves: data fed per step, trainable parameters, non-trainable buffers, optimizer state. */
export type InputRole = 'input' | 'param' | 'buffer' | 'state';

export interface InputInfo {
  readonly name: string;
  readonly role: InputRole;
  readonly value: Value;
  readonly init?: Initializer;
}

export class Value {
  constructor(
    readonly graph: Graph,
    readonly id: number,
    readonly op: string,
    readonly inputs: readonly Value[],
    readonly attrs: Attrs,
    readonly dtype: DType,
    readonly shape: Shape,
  ) {}

  get size(): number {
    return sizeOf(this.shape);
  }

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    const name = this.op === 'Input' ? `:${String(this.attrs.name)}` : '';
    return `${this.op}${name}#${this.id}<${this.dtype}[${this.shape.join(',')}]>`;
  }
}

export class ShapeError extends Error {
  override name = 'ShapeError';
}

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function fmtShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Numpy-style broadcast of two shapes, or null when they do not broadcast. */
export function broadcastShapes(a: Shape, b: Shape): number[] | null {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return null;
    out.push(da === 1 ? db : da);
  }
  return out;
}

export interface NodeSpec {
  readonly shape: Shape;
  readonly dtype: DType;
}

/** Shape inference for one op application; supplied by the op registry. */
export type InferFn = (op: string, inputs: readonly Value[], attrs: Attrs) => NodeSpec;

let inferHook: InferFn | null = null;

/** Installed by ops.ts so that ir.ts does not depend on the registry. */
export function setInferHook(fn: InferFn): void {
  inferHook = fn;
}

export class Graph {
  readonly nodes: Value[] = [];
  readonly leaves = new Map<string, InputInfo>();
  readonly constants = new Map<number, TensorData>();
  private readonly interned = new Map<string, Value>();
  private readonly side = new Map<string, unknown>();

  /**
   * Bookkeeping that a lowering keeps about this graph's values (e.g. which im2col matrices
   * exist), created on first use: it lives and dies with the graph instead of in module state.
   */
  sideTable<T>(key: string, create: () => T): T {
    if (!this.side.has(key)) this.side.set(key, create());
    return this.side.get(key) as T;
  }

  /**
   * A copy of this graph on new values with the same ids, leaves, constants, interned nodes and
   * side tables (their values, maps, arrays and plain objects copied, values mapped), and the map
   * from this graph's values to the copy's. Building on the copy leaves this graph as it is.
   */
  copy(): { graph: Graph; map: ReadonlyMap<Value, Value> } {
    const c = new Graph();
    const map = new Map<Value, Value>();
    for (const v of this.nodes) {
      const u = new Value(c, v.id, v.op, v.inputs.map((i) => map.get(i)!), v.attrs, v.dtype, v.shape);
      map.set(v, u);
      c.nodes.push(u);
    }
    for (const [name, info] of this.leaves) c.leaves.set(name, { ...info, value: map.get(info.value)! });
    for (const [id, data] of this.constants) c.constants.set(id, data);
    for (const [key, v] of this.interned) c.interned.set(key, map.get(v)!);
    const remap = (x: unknown): unknown => {
      if (x instanceof Value) return map.get(x) ?? x;
      if (x instanceof Map) return new Map([...x].map(([k, y]) => [remap(k), remap(y)]));
      if (Array.isArray(x)) return x.map(remap);
      if (x && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype) {
        return Object.fromEntries(Object.entries(x).map(([k, y]) => [k, remap(y)]));
      }
      return x;
    };
    for (const [key, t] of this.side) c.side.set(key, remap(t));
    return { graph: c, map };
  }

  /** Per-step data (a batch, noise, the step counter). */
  input(name: string, shape: Shape, dtype: DType = 'float32'): Value {
    return this.leaf(name, 'input', shape, dtype);
  }

  /** A trainable parameter with a seeded initializer. */
  param(name: string, shape: Shape, init: Initializer): Value {
    return this.leaf(name, 'param', shape, 'float32', init);
  }

  /** A non-trainable tensor carried across steps (e.g. spectral-norm vectors). */
  buffer(name: string, shape: Shape, init: Initializer, dtype: DType = 'float32'): Value {
    return this.leaf(name, 'buffer', shape, dtype, init);
  }

  /** Optimizer state (moments); initialised with zeros. */
  state(name: string, shape: Shape): Value {
    return this.leaf(name, 'state', shape, 'float32', { kind: 'zeros' });
  }

  leafInfo(v: Value): InputInfo | undefined {
    return v.op === 'Input' ? this.leaves.get(String(v.attrs.name)) : undefined;
  }

  byRole(role: InputRole): InputInfo[] {
    return [...this.leaves.values()].filter((l) => l.role === role);
  }

  private leaf(name: string, role: InputRole, shape: Shape, dtype: DType, init?: Initializer): Value {
    if (this.leaves.has(name)) {
      throw new Error(`graph input '${name}' is declared twice; give each parameter, buffer and input a unique name`);
    }
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 1) throw new ShapeError(`graph input '${name}': bad shape ${fmtShape(shape)}`);
    }
    const v = new Value(this, this.nodes.length, 'Input', [], { name, role }, dtype, [...shape]);
    this.nodes.push(v);
    this.leaves.set(name, { name, role, value: v, init });
    return v;
  }

  /** A constant tensor; scalars and small constants are interned by value. */
  constant(data: TensorData | readonly number[], shape: Shape, dtype: DType = 'float32'): Value {
    const arr = toTensorData(data, dtype);
    if (arr.length !== sizeOf(shape)) {
      throw new ShapeError(`constant: ${arr.length} values do not fill shape ${fmtShape(shape)}`);
    }
    const key = arr.length <= 64 ? `Constant|${dtype}|${shape.join(',')}|${Array.from(arr as ArrayLike<number | bigint>).join(',')}` : null;
    if (key) {
      const hit = this.interned.get(key);
      if (hit) return hit;
    }
    const v = new Value(this, this.nodes.length, 'Constant', [], {}, dtype, [...shape]);
    this.nodes.push(v);
    this.constants.set(v.id, arr);
    if (key) this.interned.set(key, v);
    return v;
  }

  scalar(x: number, dtype: DType = 'float32'): Value {
    return this.constant([x], [], dtype);
  }

  /** The node that `apply(op, inputs, attrs)` would return, if the graph holds it already; builds nothing. */
  lookup(op: string, inputs: readonly Value[], attrs: Attrs = {}): Value | undefined {
    return this.interned.get(`${op}|${inputs.map((x) => x.id).join(',')}|${JSON.stringify(attrs)}`);
  }

  /** Records one op application after shape inference; identical applications are shared. */
  apply(op: string, inputs: readonly Value[], attrs: Attrs = {}): Value {
    for (const x of inputs) {
      if (x.graph !== this) throw new Error(`${op}: input ${x} belongs to another graph`);
    }
    const key = `${op}|${inputs.map((x) => x.id).join(',')}|${JSON.stringify(attrs)}`;
    const hit = this.interned.get(key);
    if (hit) return hit;
    if (!inferHook) throw new Error('op registry not loaded: import src/graph/ops.ts');
    const spec = inferHook(op, inputs, attrs);
    const v = new Value(this, this.nodes.length, op, inputs, attrs, spec.dtype, [...spec.shape]);
    this.nodes.push(v);
    this.interned.set(key, v);
    return v;
  }
}

export function toTensorData(data: TensorData | readonly number[], dtype: DType): TensorData {
  if (dtype === 'float32') return data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>, Number);
  if (dtype === 'int64') {
    return data instanceof BigInt64Array ? data : BigInt64Array.from(data as ArrayLike<number>, (x) => BigInt(x));
  }
  return data instanceof Uint8Array ? data : Uint8Array.from(data as ArrayLike<number>, (x) => (x ? 1 : 0));
}
