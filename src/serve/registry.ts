// The models of one exported run, loaded into an inference backend: the student decoder and
// the teacher experts, with their bytes kept for /models/<file>.onnx. Runtime-agnostic: model
// bytes come from a `ModelFiles` (a folder under Node, a bucket or bundle elsewhere) and hashes
// are checked with WebCrypto.

import type { ExportManifest, ExportedModel } from '../train/export.js';
import { expertIndexForTask } from '../formats/expert-of-task.js';
import type { InferenceBackend, InferenceSession, TensorData } from './backend/types.js';
import { PIXELS, studentFeeds, teacherFeeds } from './sampling.js';

export interface ModelFiles {
  /** The bytes of a model file named in the manifest. */
  read(file: string): Promise<Uint8Array>;
}

export const MODEL_KINDS = ['student', 'teacher'] as const;
export type ModelKind = (typeof MODEL_KINDS)[number];

export interface ModelFile {
  file: string;
  sha256: string;
  bytes: Uint8Array;
}

interface Loaded {
  entry: ExportedModel;
  session: InferenceSession;
}

interface Expert extends Loaded {
  tasks: string[];
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** One sampling run of a model, as ModelRegistry.prepare() sets it up. */
export interface SampleRun {
  session: InferenceSession;
  feeds: Record<string, TensorData>;
  /** The output that holds the images. */
  output: string;
  /** The model's file, for errors. */
  file: string;
  n: number;
}

/** The n images [n, 1, 28, 28] among a run's outputs; an error naming the model file if they are not there. */
export function imagesOf(run: Pick<SampleRun, 'output' | 'file' | 'n'>, outputs: Record<string, TensorData>): Float32Array {
  const images = outputs[run.output];
  if (!images || images.data.length !== run.n * PIXELS) {
    throw new Error(`${run.file} returned ${images ? `[${images.dims.join(', ')}]` : 'no output'} for ${run.n} samples; expected [${run.n}, 1, 28, 28]`);
  }
  return images.data;
}

export class ModelRegistry {
  private constructor(
    readonly manifest: ExportManifest,
    readonly backendName: string,
    private readonly files: Map<string, ModelFile>,
    private readonly student: Loaded,
    private readonly experts: Expert[],
  ) {}

  /** Reads, checks (size and sha256 against the manifest) and loads every model of the run. */
  static async load(manifest: ExportManifest, source: ModelFiles, backend: InferenceBackend): Promise<ModelRegistry> {
    const files = new Map<string, ModelFile>();
    const read = async (entry: ExportedModel): Promise<Uint8Array> => {
      const bytes = await source.read(entry.file);
      const hash = await sha256Hex(bytes);
      if (bytes.length !== entry.bytes || hash !== entry.sha256) {
        throw new Error(`${entry.file} does not match the manifest (${bytes.length} bytes, sha256 ${hash}; the manifest says ${entry.bytes} bytes, sha256 ${entry.sha256}). Export the run again, or restore the file`);
      }
      files.set(entry.file, { file: entry.file, sha256: hash, bytes });
      return bytes;
    };
    const open = async (entry: ExportedModel): Promise<InferenceSession> => backend.load(await read(entry));
    const decoder = manifest.student.decoder;
    const names = decoder.inputs.map((t) => t.name);
    if (!names.includes('z') || !names.includes('task')) throw new Error(`the student decoder's inputs are [${names.join(', ')}]; serving needs 'z' and 'task'. Export the run again with src/train/export.ts`);
    const student = { entry: decoder, session: await open(decoder) };
    const experts: Expert[] = [];
    for (const e of manifest.teacher?.experts ?? []) experts.push({ entry: e, tasks: e.tasks, session: await open(e) });
    // Served for the page's teach panel (the encoder is part of the student it trains), not run here.
    if (manifest.student.encoder) await read(manifest.student.encoder);
    return new ModelRegistry(manifest, backend.name, files, student, experts);
  }

  get run(): string {
    return this.manifest.run;
  }

  get taskNames(): string[] {
    return this.manifest.tasks.map((t) => t.name);
  }

  hasTask(task: string): boolean {
    return this.manifest.tasks.some((t) => t.name === task);
  }

  /** The models that can draw `task`. */
  modelsFor(task: string): ModelKind[] {
    return this.hasTask(task) ? (this.expertFor(task) ? ['student', 'teacher'] : ['student']) : [];
  }

  /** The manifest entry of the model that draws `task` for `kind` (undefined if none). */
  modelEntry(kind: ModelKind, task: string): ExportedModel | undefined {
    if (!this.hasTask(task)) return undefined;
    return kind === 'student' ? this.student.entry : this.expertFor(task)?.entry;
  }

  modelFile(file: string): ModelFile | undefined {
    return this.files.get(file);
  }

  /** The run that draws n images of `task` with `kind`'s model: its session, inputs and output (check with `modelsFor` first). */
  prepare(kind: ModelKind, task: string, n: number, seed: number): SampleRun {
    const t = this.manifest.tasks.find((x) => x.name === task);
    if (!t) throw new Error(`unknown task '${task}'; known tasks: ${this.taskNames.join(', ')}`);
    let loaded: Loaded;
    let feeds: Record<string, TensorData>;
    if (kind === 'student') {
      loaded = this.student;
      feeds = studentFeeds(this.manifest.student.prior, t.index, this.manifest.tasks.length, n, seed);
    } else {
      const expert = this.expertFor(task);
      if (!expert) throw new Error(`no teacher expert holds task '${task}'`);
      loaded = expert;
      feeds = teacherFeeds(this.manifest.teacher!.zDim, n, seed);
    }
    return { session: loaded.session, feeds, output: loaded.entry.outputs[0]?.name ?? loaded.session.outputNames[0]!, file: loaded.entry.file, n };
  }

  /** n images [n, 1, 28, 28] in [0, 1] for a known task (check with `modelsFor` first). */
  async sample(kind: ModelKind, task: string, n: number, seed: number): Promise<Float32Array> {
    const run = this.prepare(kind, task, n, seed);
    return imagesOf(run, await run.session.run(run.feeds));
  }

  async close(): Promise<void> {
    await Promise.all([this.student, ...this.experts].map((m) => m.session.release()));
  }

  private expertFor(task: string): Expert | undefined {
    const i = expertIndexForTask(this.experts, task);
    return i === null ? undefined : this.experts[i];
  }
}
