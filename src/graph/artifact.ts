// The artifact format: a directory per model, self-describing. This module builds the file
// contents (pure); src/train/artifacts.ts writes and reads them.

import { createHash } from 'node:crypto';
import type { DType, InputRole } from './ir.js';
import { IR_VERSION, OPSET, type EmittedModel } from './onnx.js';
import type { StepGraph } from './step.js';

export const ARTIFACT_FORMAT = 'lifelong-gen-artifact/1';

export interface TensorInfo { name: string; shape: number[]; dtype: DType }
export interface LeafInfo extends TensorInfo { role: Exclude<InputRole, 'input'> }

export interface GraphEntry {
  file: string;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  /** Train steps only: leaves updated through `<name>.next` outputs, and scalar metrics. */
  updates?: string[];
  metrics?: string[];
}

export interface Manifest {
  format: string;
  model: string;
  opset: number;
  irVersion: number;
  leaves: LeafInfo[];
  graphs: Record<string, GraphEntry>;
  checkpoint: string;
  hyperParameters: Record<string, unknown>;
  configHash: string;
  provenance: { createdAt: string; producer: string; node: string };
}

/** sha256 of the canonical (key-sorted) JSON of a config. */
export function configHash(config: unknown): string {
  return createHash('sha256').update(canonicalJson(config)).digest('hex');
}

export function canonicalJson(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(canonicalJson).join(',')}]`;
  if (x && typeof x === 'object') {
    return `{${Object.keys(x).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((x as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(x) ?? 'null';
}

export interface ArtifactInput {
  model: string;
  leaves: LeafInfo[];
  steps: StepGraph[];
  /** Inference graphs with weights baked in, by name (e.g. `infer`). */
  inference: Record<string, EmittedModel>;
  checkpoint: Uint8Array;
  hyperParameters: Record<string, unknown>;
  config: unknown;
}

/** The files of an artifact directory, by file name. */
export function artifactFiles(a: ArtifactInput): { manifest: Manifest; files: Map<string, Uint8Array> } {
  const files = new Map<string, Uint8Array>();
  const graphs: Record<string, GraphEntry> = {};
  for (const s of a.steps) {
    graphs[s.name] = { file: `${s.name}.onnx`, inputs: s.inputs, outputs: s.outputs, updates: s.updates, metrics: s.metrics };
    files.set(`${s.name}.onnx`, s.bytes);
  }
  for (const [name, m] of Object.entries(a.inference)) {
    graphs[name] = { file: `${name}.onnx`, inputs: m.inputs, outputs: m.outputs };
    files.set(`${name}.onnx`, m.bytes);
  }
  files.set('checkpoint.safetensors', a.checkpoint);
  const manifest: Manifest = {
    format: ARTIFACT_FORMAT,
    model: a.model,
    opset: OPSET,
    irVersion: IR_VERSION,
    leaves: a.leaves,
    graphs,
    checkpoint: 'checkpoint.safetensors',
    hyperParameters: a.hyperParameters,
    configHash: configHash(a.config),
    provenance: { createdAt: new Date().toISOString(), producer: 'lifelong-gen 0.1.0', node: process.version },
  };
  files.set('manifest.json', new TextEncoder().encode(JSON.stringify(manifest, null, 2) + '\n'));
  return { manifest, files };
}
