// The checkpoint format: a safetensors file of float32 tensors whose metadata holds the format
// version and the step counters (validated on read).

import { z } from 'zod';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from '../graph/safetensors.js';

/**
 * Version 2: linear layers after a convolution read its output flattened channels-last
 * (nn.flatten), so version-1 weights load with the right shapes but the wrong meaning.
 */
export const CHECKPOINT_FORMAT = 'lifelong-gen-checkpoint/2';

const countersSchema = z.record(z.string(), z.number().int().nonnegative());

export interface CheckpointTensor {
  shape: number[];
  data: Float32Array;
}

export function encodeCheckpoint(tensors: ReadonlyMap<string, CheckpointTensor>, counters: ReadonlyMap<string, number>, metadata: Record<string, string> = {}): Uint8Array {
  const out = new Map<string, NamedTensor>();
  for (const [name, t] of tensors) out.set(name, { dtype: 'float32', shape: t.shape, data: t.data });
  return encodeSafetensors(out, { ...metadata, counters: JSON.stringify(Object.fromEntries(counters)), format: CHECKPOINT_FORMAT });
}

/** Reads checkpoint bytes (`path` names the file in errors): its tensors, step counters and metadata. */
export function decodeCheckpoint(bytes: Uint8Array, path: string): { tensors: Map<string, CheckpointTensor>; counters: Map<string, number>; metadata: Record<string, string> } {
  const { tensors, metadata } = decodeSafetensors(bytes, path);
  if (metadata.format !== CHECKPOINT_FORMAT) {
    throw new Error(`checkpoint ${path} has format '${metadata.format ?? 'none'}', but this version reads '${CHECKPOINT_FORMAT}' (version 1 flattened convolution outputs channels-first). Start the run over (\`npm run train -- --fresh\` with the same settings), or use the version that wrote it.`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(metadata.counters ?? '{}');
  } catch {
    raw = null;
  }
  const counters = countersSchema.safeParse(raw);
  if (!counters.success) throw new Error(`checkpoint ${path}: its step counters (metadata 'counters') are not a JSON object of step counts; the file is damaged: resume from the kept generation or start over with --fresh`);
  const out = new Map<string, CheckpointTensor>();
  for (const [name, t] of tensors) out.set(name, { shape: [...t.shape], data: t.data as Float32Array });
  return { tensors: out, counters: new Map(Object.entries(counters.data)), metadata };
}
