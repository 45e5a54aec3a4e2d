// Feature extractors behind FID and KID: a common interface over ONNX models, the project's own
// LeNet (features + 20 class logits, see featnet.ts) or any external model (e.g. Inception-v3
// pool3 exported to ONNX) with its input size, channels, layout and normalisation as options.

import { readFileSync, existsSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { createSession, type Device } from '../runtime/index.js';
import { sha256 } from '../train/export.js';

export const PIXELS = 28 * 28;

export interface FeatureExtractor {
  /** Short name for reports, e.g. 'lenet-mnist-fashion' or the ONNX file's name. */
  readonly name: string;
  /** Feature dimension. */
  readonly dim: number;
  /** One line on what the features are and where they come from. */
  readonly description: string;
  /** Features of n images (n x 784 floats in [0, 1], row-major 28x28), as n x dim float64. */
  features(images: Float32Array, n: number): Promise<Float64Array>;
  close(): Promise<void>;
}

/** The project's LeNet also classifies into 20 classes (MNIST 0-9, Fashion 10-19). */
export interface ClassifyingExtractor extends FeatureExtractor {
  readonly classes: number;
  /** Class logits, n x classes. */
  logits(images: Float32Array, n: number): Promise<Float32Array>;
  /** Both at once (one pass). */
  featuresAndLogits(images: Float32Array, n: number): Promise<{ features: Float64Array; logits: Float32Array }>;
}

export function checkImages(images: Float32Array, n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0) throw new Error(`${what}: n must be a non-negative integer, got ${n}`);
  if (images.length !== n * PIXELS) throw new Error(`${what}: expected ${n} images of 28x28 (${n * PIXELS} values), got ${images.length} values`);
}

/** A session over an ONNX model with a symbolic (or fixed) batch dimension, run in chunks. */
async function runChunks(
  session: ort.InferenceSession,
  n: number,
  chunk: number,
  fixedBatch: number | null,
  feed: (start: number, count: number, batch: number) => Record<string, ort.Tensor>,
  take: (out: ort.InferenceSession.ReturnType, start: number, count: number) => void,
): Promise<void> {
  for (let start = 0; start < n; start += fixedBatch ?? chunk) {
    const count = Math.min(fixedBatch ?? chunk, n - start);
    const out = await session.run(feed(start, count, fixedBatch ?? count));
    take(out, start, count);
  }
}

/** An extractor over the project's feature-network inference graph (x [N,1,28,28] -> features, logits). */
export async function lenetExtractor(bytes: Uint8Array, opts: { name: string; description: string; threads?: number; device?: Device; chunk?: number }): Promise<ClassifyingExtractor> {
  const session = await createSession(bytes, { threads: opts.threads, device: opts.device });
  const outMeta = (name: string) => {
    const m = session.outputMetadata.find((o) => o.name === name);
    if (!m || !m.isTensor) throw new Error(`${opts.name}: the feature network has no output '${name}' (has ${session.outputNames.join(', ')})`);
    return m.shape;
  };
  const dim = Number(outMeta('features')[1]);
  const classes = Number(outMeta('logits')[1]);
  const chunk = opts.chunk ?? 500;
  const both = async (images: Float32Array, n: number) => {
    checkImages(images, n, opts.name);
    const features = new Float64Array(n * dim);
    const logits = new Float32Array(n * classes);
    await runChunks(
      session,
      n,
      chunk,
      null,
      (start, count) => ({ x: new ort.Tensor('float32', images.subarray(start * PIXELS, (start + count) * PIXELS), [count, 1, 28, 28]) }),
      (out, start) => {
        features.set(out.features!.data as Float32Array, start * dim);
        logits.set(out.logits!.data as Float32Array, start * classes);
      },
    );
    return { features, logits };
  };
  return {
    name: opts.name,
    description: opts.description,
    dim,
    classes,
    features: async (images, n) => (await both(images, n)).features,
    logits: async (images, n) => (await both(images, n)).logits,
    featuresAndLogits: both,
    close: () => session.release(),
  };
}

export interface Normalization {
  mean: number[];
  std: number[];
}

/** Named normalisations of [0, 1] pixels: x' = (x - mean[c]) / std[c]. */
export const NORMALIZATIONS: Record<string, Normalization> = {
  /** Pixels as they are, in [0, 1]. */
  unit: { mean: [0], std: [1] },
  /** [-1, 1], as Inception-v3 ports (pytorch-fid, TF-GAN) expect. */
  inception: { mean: [0.5], std: [0.5] },
  /** torchvision's ImageNet mean and std per channel. */
  imagenet: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  /** [0, 255]. */
  byte: { mean: [0], std: [1 / 255] },
};

/** 'unit' | 'inception' | 'imagenet' | 'byte' | 'MEAN/STD' with comma lists (one value or one per channel). */
export function parseNormalization(spec: string): Normalization {
  const named = NORMALIZATIONS[spec];
  if (named) return named;
  const m = /^([^/]+)\/([^/]+)$/.exec(spec);
  const nums = (s: string) => s.split(',').map((x) => Number(x.trim()));
  if (m) {
    const mean = nums(m[1]!);
    const std = nums(m[2]!);
    if ([...mean, ...std].every(Number.isFinite) && std.every((s) => s !== 0)) return { mean, std };
  }
  throw new Error(`unknown normalization '${spec}': use one of ${Object.keys(NORMALIZATIONS).join(', ')} or MEAN/STD such as 0.5/0.5 or 0.485,0.456,0.406/0.229,0.224,0.225`);
}

export interface OnnxExtractorOptions {
  /** Input image size (square); default: from the model's input shape, else 28. */
  size?: number;
  /** Input channels (the grayscale image is repeated); default: from the model, else 1. */
  channels?: number;
  /** Default 'unit' (pixels in [0, 1]). */
  normalization?: Normalization | string;
  /** Default 'nchw'. */
  layout?: 'nchw' | 'nhwc';
  /** Input and output names; default: the model's first input and output. */
  input?: string;
  output?: string;
  /** Images per run when the model's batch dimension is symbolic (default 64). */
  chunk?: number;
  threads?: number;
  device?: Device;
}

/**
 * Bilinear resize of a 28x28 image to size x size with half-pixel centres (PyTorch
 * `align_corners=False`, TF2 `resize`), as used to feed 299x299 Inception.
 */
export function resizeBilinear(src: Float32Array, from: number, to: number, out = new Float32Array(to * to)): Float32Array {
  if (from === to) {
    out.set(src.subarray(0, from * from));
    return out;
  }
  const scale = from / to;
  const idx0 = new Int32Array(to);
  const idx1 = new Int32Array(to);
  const frac = new Float32Array(to);
  for (let d = 0; d < to; d++) {
    const s = Math.min(Math.max((d + 0.5) * scale - 0.5, 0), from - 1);
    idx0[d] = Math.floor(s);
    idx1[d] = Math.min(idx0[d]! + 1, from - 1);
    frac[d] = s - idx0[d]!;
  }
  for (let y = 0; y < to; y++) {
    const r0 = idx0[y]! * from;
    const r1 = idx1[y]! * from;
    const fy = frac[y]!;
    for (let x = 0; x < to; x++) {
      const c0 = idx0[x]!;
      const c1 = idx1[x]!;
      const fx = frac[x]!;
      const top = src[r0 + c0]! * (1 - fx) + src[r0 + c1]! * fx;
      const bottom = src[r1 + c0]! * (1 - fx) + src[r1 + c1]! * fx;
      out[y * to + x] = top * (1 - fy) + bottom * fy;
    }
  }
  return out;
}

/** Any ONNX model as a feature extractor: resizes, repeats channels and normalises the 28x28 images. */
export async function loadOnnxExtractor(path: string, opts: OnnxExtractorOptions = {}): Promise<FeatureExtractor> {
  if (!existsSync(path)) throw new Error(`feature extractor ${path} does not exist`);
  const bytes = readFileSync(path);
  const session = await createSession(bytes, { threads: opts.threads, device: opts.device });
  const inputName = opts.input ?? session.inputNames[0]!;
  const outputName = opts.output ?? session.outputNames[0]!;
  const inMeta = session.inputMetadata.find((m) => m.name === inputName);
  if (!inMeta) throw new Error(`${path}: no input named '${inputName}' (inputs: ${session.inputNames.join(', ')})`);
  if (!session.outputNames.includes(outputName)) throw new Error(`${path}: no output named '${outputName}' (outputs: ${session.outputNames.join(', ')})`);
  const shape = inMeta.isTensor ? inMeta.shape : [];
  if (shape.length !== 0 && shape.length !== 4) throw new Error(`${path}: input '${inputName}' has shape [${shape.join(', ')}]; a feature extractor needs a 4-d image input`);
  const layout = opts.layout ?? 'nchw';
  const dimAt = (i: number) => (typeof shape[i] === 'number' && (shape[i] as number) > 0 ? (shape[i] as number) : null);
  const modelChannels = dimAt(layout === 'nchw' ? 1 : 3);
  const modelSize = dimAt(2);
  const channels = opts.channels ?? modelChannels ?? 1;
  const size = opts.size ?? modelSize ?? 28;
  if (modelChannels !== null && modelChannels !== channels) throw new Error(`${path}: the model takes ${modelChannels} channels (${layout}), not ${channels}; check --feature-channels and --feature-layout`);
  if (modelSize !== null && modelSize !== size) throw new Error(`${path}: the model takes ${modelSize}x${modelSize} images, not ${size}x${size}; check --feature-size`);
  const fixedBatch = dimAt(0);
  const norm = typeof opts.normalization === 'string' ? parseNormalization(opts.normalization) : opts.normalization ?? NORMALIZATIONS.unit!;
  const meanOf = (c: number) => norm.mean[norm.mean.length === 1 ? 0 : c] ?? Number.NaN;
  const stdOf = (c: number) => norm.std[norm.std.length === 1 ? 0 : c] ?? Number.NaN;
  for (let c = 0; c < channels; c++) {
    if (!Number.isFinite(meanOf(c)) || !Number.isFinite(stdOf(c))) throw new Error(`normalization has ${norm.mean.length} means and ${norm.std.length} stds for ${channels} channels: give one value or one per channel`);
  }
  const plane = size * size;
  const chunk = opts.chunk ?? 64;
  const resized = new Float32Array(plane);

  const prepare = (images: Float32Array, start: number, count: number, batch: number): ort.Tensor => {
    const data = new Float32Array(batch * channels * plane);
    for (let i = 0; i < count; i++) {
      resizeBilinear(images.subarray((start + i) * PIXELS, (start + i + 1) * PIXELS), 28, size, resized);
      for (let c = 0; c < channels; c++) {
        const m = meanOf(c);
        const s = stdOf(c);
        for (let p = 0; p < plane; p++) {
          const v = (resized[p]! - m) / s;
          if (layout === 'nchw') data[(i * channels + c) * plane + p] = v;
          else data[(i * plane + p) * channels + c] = v;
        }
      }
    }
    return new ort.Tensor('float32', data, layout === 'nchw' ? [batch, channels, size, size] : [batch, size, size, channels]);
  };

  let dim = 0;
  const features = async (images: Float32Array, n: number): Promise<Float64Array> => {
    checkImages(images, n, path);
    const parts: { start: number; data: Float32Array; count: number }[] = [];
    await runChunks(
      session,
      n,
      chunk,
      fixedBatch,
      (start, count, batch) => ({ [inputName]: prepare(images, start, count, batch) }),
      (out, start, count) => {
        const t = out[outputName]!;
        const data = t.data as Float32Array;
        const per = data.length / t.dims[0]!;
        if (dim && per !== dim) throw new Error(`${path}: output '${outputName}' changed size between batches (${dim} vs ${per})`);
        dim = per;
        parts.push({ start, count, data: data.slice(0, count * per) });
      },
    );
    const out = new Float64Array(n * dim);
    for (const p of parts) out.set(p.data, p.start * dim);
    return out;
  };
  // Probe once with a blank image to learn the feature dimension.
  await features(new Float32Array(PIXELS), 1);
  const normText = `mean ${norm.mean.join(',')} std ${norm.std.join(',')}`;
  return {
    name: path.split('/').pop()!,
    dim,
    description: `${path} (sha256 ${sha256(bytes).slice(0, 12)}), output '${outputName}' (${dim} features), input '${inputName}' ${layout} ${channels}x${size}x${size}, bilinear resize from 28x28, ${normText}`,
    features,
    close: () => session.release(),
  };
}
