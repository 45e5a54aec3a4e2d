// Sampling from an export folder (src/train/export.ts): the student decoder with z drawn from
// the task's prior N(mu_u, exp(logvar_u)), and the teacher's experts with z ~ N(0, I).
// An expert that holds several tasks is one unconditional generator over all of them; its
// samples of one task are those that the feature net's classifier assigns to that task.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { expertIndexForTask, readExportManifest, sha256, type ExportManifest, type ExportedModel } from '../train/export.js';
import { createSession, type Device } from '../runtime/index.js';
import { Rng } from '../util/rng.js';
import { parseTask } from '../data/index.js';
import { PIXELS, type ClassifyingExtractor } from './features.js';
import { CLASS_OFFSET, FEATURE_CLASSES } from './featnet.js';

export type ModelKind = 'student' | 'teacher';

export interface Generated {
  images: Float32Array;
  n: number;
  /** How the samples were obtained, when it needs saying (e.g. routed from a multi-task expert). */
  note?: string;
}

/** The 20 feature-net classes of a task (MNIST 0-9, Fashion 10-19). */
export function taskClasses(task: string): number[] {
  const spec = parseTask(task);
  return spec.classes.map((c) => c + CLASS_OFFSET[spec.dataset]);
}

/** For each image, the index (into `tasks`) of the task with the largest total class probability. */
export async function routeToTasks(fx: ClassifyingExtractor, tasks: readonly string[], images: Float32Array, n: number): Promise<Int32Array> {
  const sets = tasks.map(taskClasses);
  const logits = await fx.logits(images, n);
  const out = new Int32Array(n);
  const p = new Float64Array(FEATURE_CLASSES);
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let k = 0; k < FEATURE_CLASSES; k++) max = Math.max(max, logits[i * FEATURE_CLASSES + k]!);
    for (let k = 0; k < FEATURE_CLASSES; k++) p[k] = Math.exp(logits[i * FEATURE_CLASSES + k]! - max);
    let best = 0;
    let bestMass = -1;
    sets.forEach((set, t) => {
      const mass = set.reduce((s, k) => s + p[k]!, 0);
      if (mass > bestMass) [best, bestMass] = [t, mass];
    });
    out[i] = best;
  }
  return out;
}

export class ExportSampler {
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();

  private constructor(
    readonly dir: string,
    readonly manifest: ExportManifest,
    private readonly opts: { threads?: number; device?: Device },
  ) {}

  static open(dir: string, opts: { threads?: number; device?: Device } = {}): ExportSampler {
    return new ExportSampler(dir, readExportManifest(dir), opts);
  }

  get tasks(): string[] {
    return this.manifest.tasks.map((t) => t.name);
  }

  models(): ModelKind[] {
    return this.manifest.teacher ? ['student', 'teacher'] : ['student'];
  }

  /** The expert that holds `task` (expertIndexForTask), or null. */
  expertFor(task: string): { index: number; model: ExportedModel & { tasks: string[] } } | null {
    const experts = this.manifest.teacher?.experts ?? [];
    const i = expertIndexForTask(experts, task);
    return i === null ? null : { index: i, model: experts[i]! };
  }

  canSample(model: ModelKind, task: string): boolean {
    return model === 'student' ? this.tasks.includes(task) : this.expertFor(task) !== null;
  }

  private session(m: ExportedModel): Promise<ort.InferenceSession> {
    let s = this.sessions.get(m.file);
    if (!s) {
      const bytes = readFileSync(join(this.dir, m.file));
      const actual = sha256(bytes);
      if (actual !== m.sha256) throw new Error(`${join(this.dir, m.file)} does not match the sha256 in its manifest (${actual.slice(0, 12)} vs ${m.sha256.slice(0, 12)}); the export folder is damaged or was changed`);
      s = createSession(bytes, this.opts);
      this.sessions.set(m.file, s);
    }
    return s;
  }

  /** n images of `task` from the student decoder (z from the task's prior). */
  async student(task: string, n: number, rng: Rng): Promise<Float32Array> {
    const entry = this.manifest.tasks.find((t) => t.name === task);
    if (!entry) throw new Error(`${this.dir}: the student has no task '${task}' (tasks: ${this.tasks.join(', ')})`);
    const dec = this.manifest.student.decoder;
    const zDim = this.manifest.student.zDim;
    const taskInput = dec.inputs.find((i) => i.name === 'task');
    const zInput = dec.inputs.find((i) => i.name === 'z');
    if (!taskInput || !zInput) throw new Error(`${this.dir}: the student decoder needs inputs 'z' and 'task' (has ${dec.inputs.map((i) => i.name).join(', ')})`);
    const T = Number(taskInput.shape[1]);
    if (entry.index >= T) throw new Error(`${this.dir}: task '${task}' has index ${entry.index} but the decoder's task input has ${T} slots`);
    const mu = this.manifest.student.prior.mu[entry.index];
    const logvar = this.manifest.student.prior.logvar[entry.index];
    if (!mu || !logvar || mu.length !== zDim || logvar.length !== zDim) throw new Error(`${this.dir}: the student prior has no ${zDim}-dimensional mu/logvar for task index ${entry.index}`);
    const session = await this.session(dec);
    return this.chunked(n, async (count) => {
      const z = new Float32Array(count * zDim);
      for (let i = 0; i < count; i++) for (let j = 0; j < zDim; j++) z[i * zDim + j] = mu[j]! + Math.exp(0.5 * logvar[j]!) * rng.normal();
      const onehot = new Float32Array(count * T);
      for (let i = 0; i < count; i++) onehot[i * T + entry.index] = 1;
      const out = await session.run({ z: new ort.Tensor('float32', z, [count, zDim]), task: new ort.Tensor('float32', onehot, [count, T]) });
      return out[dec.outputs[0]!.name]!.data as Float32Array;
    });
  }

  /** n images from expert `index` (z ~ N(0, I)), whatever tasks it holds. */
  async expert(index: number, n: number, rng: Rng): Promise<Float32Array> {
    const t = this.manifest.teacher;
    const m = t?.experts[index];
    if (!t || !m) throw new Error(`${this.dir}: no teacher expert ${index}`);
    const session = await this.session(m);
    const zName = m.inputs[0]!.name;
    return this.chunked(n, async (count) => {
      const z = new Float32Array(count * t.zDim);
      for (let i = 0; i < z.length; i++) z[i] = rng.normal();
      const out = await session.run({ [zName]: new ort.Tensor('float32', z, [count, t.zDim]) });
      return out[m.outputs[0]!.name]!.data as Float32Array;
    });
  }

  /**
   * n images of `task` from a model. For a teacher expert that holds several tasks, samples are
   * drawn in rounds and kept when `fx` routes them to `task` (at most `maxRounds` times n drawn);
   * fewer than n may come back, and the note says how many.
   */
  async sample(model: ModelKind, task: string, n: number, rng: Rng, fx?: ClassifyingExtractor, maxRounds = 8): Promise<Generated> {
    if (model === 'student') return { images: await this.student(task, n, rng), n };
    const e = this.expertFor(task);
    if (!e) throw new Error(`${this.dir}: no teacher expert holds task '${task}'`);
    if (e.model.tasks.length === 1) return { images: await this.expert(e.index, n, rng), n };
    if (!fx) throw new Error(`expert ${e.index} holds tasks ${e.model.tasks.join(', ')}: routing its samples to '${task}' needs the feature net's classifier`);
    const want = e.model.tasks.indexOf(task);
    const kept = new Float32Array(n * PIXELS);
    let have = 0;
    let drawn = 0;
    while (have < n && drawn < maxRounds * n) {
      const count = Math.min(n, maxRounds * n - drawn);
      const imgs = await this.expert(e.index, count, rng);
      drawn += count;
      const route = await routeToTasks(fx, e.model.tasks, imgs, count);
      for (let i = 0; i < count && have < n; i++) {
        if (route[i] === want) kept.set(imgs.subarray(i * PIXELS, (i + 1) * PIXELS), PIXELS * have++);
      }
    }
    const note = `expert ${e.index} holds ${e.model.tasks.join(', ')}: kept the ${have} of ${drawn} samples that the feature net assigns to ${task}`;
    return { images: kept.slice(0, have * PIXELS), n: have, note };
  }

  private async chunked(n: number, run: (count: number) => Promise<Float32Array>, chunk = 500): Promise<Float32Array> {
    const out = new Float32Array(n * PIXELS);
    for (let start = 0; start < n; start += chunk) {
      const count = Math.min(chunk, n - start);
      const data = await run(count);
      if (data.length !== count * PIXELS) throw new Error(`${this.dir}: a model returned ${data.length} values for ${count} images (expected 28x28 each)`);
      for (let i = 0; i < data.length; i++) {
        const v = data[i]!;
        out[start * PIXELS + i] = v < 0 ? 0 : v > 1 ? 1 : Number.isNaN(v) ? 0 : v;
      }
    }
    return out;
  }

  async close(): Promise<void> {
    for (const s of this.sessions.values()) await (await s).release();
    this.sessions.clear();
  }
}
