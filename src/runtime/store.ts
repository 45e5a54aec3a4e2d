// The tensors of one model that persist across steps (parameters, optimizer state, buffers) as
// onnxruntime tensors, with a step counter per step graph; saved and loaded as checkpoints.

import { existsSync, readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { type Graph, type InputRole } from '../graph/ir.js';
import { initialize } from '../graph/init.js';
import { decodeCheckpoint, encodeCheckpoint } from '../formats/checkpoint.js';
import { writeFileAtomic } from '../util/fs.js';

export interface LeafSpec {
  name: string;
  role: InputRole;
  shape: number[];
  dtype: 'float32' | 'int64';
}

/**
 * Parameters, optimizer state and buffers of one model (shared by its step graphs, e.g. the
 * critic and generator steps), plus a step counter per step graph.
 */
export class TensorStore {
  readonly specs = new Map<string, LeafSpec>();
  readonly tensors = new Map<string, ort.Tensor>();
  readonly counters = new Map<string, number>();

  /** Declares the stored leaves of a graph (params, buffers, state), initialising new ones from the seed. */
  declare(g: Graph, seed: number): void {
    for (const leaf of g.leaves.values()) {
      if (leaf.role === 'input') continue;
      const spec: LeafSpec = { name: leaf.name, role: leaf.role, shape: [...leaf.value.shape], dtype: leaf.value.dtype === 'int64' ? 'int64' : 'float32' };
      const prev = this.specs.get(leaf.name);
      if (prev) {
        if (prev.shape.join() !== spec.shape.join()) {
          throw new Error(`'${leaf.name}' is declared with shape [${spec.shape}] but was stored with [${prev.shape}]`);
        }
        continue;
      }
      this.specs.set(leaf.name, spec);
      const data = initialize(leaf.init ?? { kind: 'zeros' }, spec.shape, seed, leaf.name);
      this.tensors.set(leaf.name, new ort.Tensor('float32', data, spec.shape));
    }
  }

  /**
   * Stores a tensor that belongs to no step graph (a weight average, a frozen copy) but is saved
   * and loaded with the checkpoint like the rest; `data` seeds it when it is new.
   */
  keep(name: string, data: Float32Array, shape: number[] = [data.length]): void {
    if (!this.specs.has(name)) this.specs.set(name, { name, role: 'buffer', shape: [...shape], dtype: 'float32' });
    this.tensors.set(name, new ort.Tensor('float32', data, shape));
  }

  get(name: string): ort.Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`no stored tensor named '${name}'`);
    return t;
  }

  /** A copy of a stored tensor's values as a Float32Array. */
  read(name: string): Float32Array {
    return Float32Array.from(this.get(name).data as Float32Array);
  }

  /** The checkpoint bytes of every stored tensor and step counter (formats/checkpoint.ts). */
  toSafetensors(metadata: Record<string, string> = {}): Uint8Array {
    const tensors = new Map([...this.tensors].map(([name, t]) => [name, { shape: [...t.dims], data: t.data as Float32Array }]));
    return encodeCheckpoint(tensors, this.counters, metadata);
  }

  /** Saves atomically (temp file, fsync, rename): a crash leaves the previous checkpoint whole. */
  save(path: string, metadata: Record<string, string> = {}): void {
    writeFileAtomic(path, this.toSafetensors(metadata));
  }

  /** Loads a checkpoint; names and shapes must match what was declared. Returns its metadata. */
  load(path: string): Record<string, string> {
    if (!existsSync(path)) throw new Error(`checkpoint ${path} does not exist`);
    const { tensors, counters, metadata } = decodeCheckpoint(readFileSync(path), path);
    const missing = [...this.specs.keys()].filter((n) => !tensors.has(n));
    const extra = [...tensors.keys()].filter((n) => !this.specs.has(n));
    if (missing.length || extra.length) {
      throw new Error(
        `checkpoint ${path} does not match this model: ` +
          (missing.length ? `missing ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}` : '') +
          (missing.length && extra.length ? '; ' : '') +
          (extra.length ? `unexpected ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ` and ${extra.length - 5} more` : ''}` : '') +
          '. Was it written by a different model configuration?',
      );
    }
    for (const [name, spec] of this.specs) {
      const t = tensors.get(name)!;
      if (t.shape.join() !== spec.shape.join()) {
        throw new Error(`checkpoint ${path}: '${name}' has shape [${t.shape}] but the model expects [${spec.shape}]. Was it written by a different model configuration?`);
      }
    }
    for (const [name, t] of tensors) this.tensors.set(name, new ort.Tensor('float32', t.data, t.shape));
    this.counters.clear();
    for (const [k, v] of counters) this.counters.set(k, v);
    return metadata;
  }
}

