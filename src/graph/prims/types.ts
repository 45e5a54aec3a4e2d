// The primitives' types: their attributes, the lowering targets, what a lowering sees and what
// a rule holds (shape rule, standard lowering, vector-Jacobian product).

import { type DType, type NodeSpec, type Value } from '../ir.js';

export type Ints = readonly number[];

export type NoAttrs = Record<string, never>;

export type Reduce = { axes: Ints; keepdims: 0 | 1 };

export type ConvAttrs = { strides: Ints; pads: Ints; dilations: Ints };


export interface PrimAttrs {
  Add: NoAttrs; Sub: NoAttrs; Mul: NoAttrs; Div: NoAttrs; Pow: NoAttrs;
  Neg: NoAttrs; Exp: NoAttrs; Log: NoAttrs; Sqrt: NoAttrs; Abs: NoAttrs; Sign: NoAttrs;
  Tanh: NoAttrs; Sigmoid: NoAttrs; Relu: NoAttrs; LeakyRelu: { alpha: number };
  Greater: NoAttrs; Less: NoAttrs; Equal: NoAttrs; Where: NoAttrs; Cast: { to: DType }; Clip: NoAttrs;
  MatMul: NoAttrs; Gemm: { transA: 0 | 1; transB: 0 | 1 };
  Reshape: { shape: Ints }; Transpose: { perm: Ints }; Concat: { axis: number };
  Slice: { starts: Ints; ends: Ints }; Pad: { pads: Ints }; Expand: { shape: Ints };
  ReduceSum: Reduce; ReduceMean: Reduce; ReduceMax: Reduce;
  Conv: ConvAttrs; ConvTranspose: ConvAttrs & { outputPadding: Ints };
  ConvBackwardFilter: ConvAttrs & { kernel: Ints }; ConvBackwardBias: NoAttrs;
  MaxPool: { kernel: Ints; strides: Ints }; MaxPoolGrad: { kernel: Ints };
  Gather: { axis: number }; OneHot: { depth: number };
  Identity: NoAttrs; StopGradient: NoAttrs;
}
export type Prim = keyof PrimAttrs;

/**
 * What an emitted graph is lowered for: 'cpu', onnxruntime's CPU provider, with the tuned
 * GEMM-based forms below; 'plain', standard ONNX operators in their standard forms (Conv,
 * ConvTranspose, MaxPool and element-wise masks), for providers that run them natively
 * (WebAssembly, WebGPU, CUDA).
 */
export type Target = 'cpu' | 'plain';
export const TARGETS: readonly Target[] = ['cpu', 'plain'];

/**
 * What the lowering selectors (`selectConvForm`, `selectConvTransposeForm`, `selectMaxPoolForm`,
 * `selectMaxPoolGradForm`) look at besides the node itself: the target and what the emitter found
 * about the node's inputs.
 */
export interface LowerEnv {
  readonly target: Target;
  /** Set when the batch dimension (of this size) is emitted as symbolic: shape constants must not pin it. */
  readonly dynamicBatch?: number;
  /** Tensors the emitter found for this node to reuse (see `auxInputs`), as values. */
  readonly auxValues: readonly Value[];
  /** Whether input i is a constant (an initializer: baked weights or a graph constant). */
  isConstant(i: number): boolean;
  /** Whether input i comes out of a lowering that computes it channels-last (a Conv run as a GEMM). */
  channelsLast(i: number): boolean;
  /**
   * The pooling window [kh, kw] when input i comes out of a lowering that computes it in phase
   * order (a Conv on an im2col matrix in phase order, or MaxPoolGrad on such a Conv's output):
   * channels-last rows [N, kh*kw phases, H/kh, W/kw, C] (see `im2col`). Else undefined.
   */
  phases(i: number): Tile | undefined;
}

/** What a lowering sees: names of its tensors and a way to add ONNX nodes and int64 constants. */
export interface LowerCtx extends LowerEnv {
  readonly inputs: readonly string[];
  readonly output: string;
  node(opType: string, inputs: readonly string[], outputs: readonly string[], attrs?: Record<string, number | Ints | string>): void;
  ints(values: Ints): string;
  floats(values: Ints): string;
  temp(hint: string): string;
  /** The names of `auxValues`. */
  readonly aux: readonly string[];
}

/** A pooling window [kh, kw]. */
export type Tile = readonly [number, number];

export interface GradArgs<K extends Prim> {
  readonly inputs: readonly Value[];
  readonly output: Value;
  readonly attrs: PrimAttrs[K];
}

export interface OpRule<K extends Prim> {
  infer(inputs: readonly Value[], attrs: PrimAttrs[K]): NodeSpec;
  lower(ctx: LowerCtx, attrs: PrimAttrs[K], v: Value): void;
  /** Vector-Jacobian product: one entry per input, null where no gradient flows. Absent: not differentiable. */
  grad?: (dy: Value, args: GradArgs<K>) => (Value | null)[];
}

/** The rules of the primitives in K (one family's table). */
export type Rules<K extends Prim> = { [P in K]: OpRule<P> };

/** A lowering of primitive K: what a target runs in place of the rule's standard lowering. */
export type Lowering<K extends Prim> = OpRule<K>['lower'];
