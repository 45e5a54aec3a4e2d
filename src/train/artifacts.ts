// Writing and reading artifact directories (manifest.json, step graphs, inference graphs,
// checkpoint.safetensors). Every file is written atomically.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ARTIFACT_FORMAT, artifactFiles, type ArtifactInput, type LeafInfo, type Manifest } from '../graph/artifact.js';
import type { StepGraph } from '../graph/step.js';
import { writeFileAtomic } from '../util/fs.js';
import type { TensorStore } from '../runtime/index.js';

export function leafInfos(store: TensorStore): LeafInfo[] {
  return [...store.specs.values()].map((s) => ({ name: s.name, shape: s.shape, dtype: s.dtype, role: s.role as LeafInfo['role'] }));
}

export function writeArtifacts(dir: string, a: ArtifactInput): Manifest {
  const { manifest, files } = artifactFiles(a);
  // The manifest goes last, so a directory with a manifest is complete.
  for (const [name, bytes] of files) if (name !== 'manifest.json') writeFileAtomic(join(dir, name), bytes);
  writeFileAtomic(join(dir, 'manifest.json'), files.get('manifest.json')!);
  return manifest;
}

export function readManifest(dir: string): Manifest {
  const path = join(dir, 'manifest.json');
  if (!existsSync(path)) throw new Error(`${dir} is not an artifact directory: it has no manifest.json`);
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(path, 'utf8')) as Manifest;
  } catch (err) {
    throw new Error(`${path} is not valid JSON (${(err as Error).message}); re-export the model`);
  }
  if (m.format !== ARTIFACT_FORMAT) throw new Error(`${path}: format '${m.format}' is not supported (this version reads '${ARTIFACT_FORMAT}')`);
  return m;
}

/** A step graph as the runtime needs it, read back from an artifact directory. */
export function readStepGraph(dir: string, m: Manifest, name: string): StepGraph {
  const e = m.graphs[name];
  if (!e || !e.updates) throw new Error(`${dir}: no train-step graph '${name}' (has: ${Object.keys(m.graphs).join(', ')})`);
  const bytes = readFileSync(join(dir, e.file));
  return { name, bytes, inputs: e.inputs, outputs: e.outputs, nodeCount: -1, updates: e.updates, metrics: e.metrics ?? [] };
}
