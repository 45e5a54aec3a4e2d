/**
 * Task data: the images (uint8, N × rows·cols) and labels of a task's classes,
 * train and test. Labels keep the dataset's values (0-9); `localLabels` maps
 * them to 0..k-1 within the task when a model needs that.
 */
import { ensureDataset, type EnsureOptions, type LoadedDataset } from './sources.ts';
import { parseSequence, parseTask, type TaskSpec } from './tasks.ts';

export interface Split {
  /** n × rows × cols bytes, row-major. */
  images: Uint8Array;
  labels: Uint8Array;
  n: number;
  rows: number;
  cols: number;
}

export interface TaskData {
  spec: TaskSpec;
  train: Split;
  test: Split;
  /** Where the data came from (printed by the loader too). */
  source: string;
  /** True: every source gives the original files. */
  original: boolean;
}

/** The examples of `split` whose label is in `classes`, in their original order. Returns `split` itself when nothing is dropped. */
export function selectClasses(split: Split, classes: readonly number[]): Split {
  const keep = new Uint8Array(256);
  for (const c of classes) keep[c] = 1;
  let count = 0;
  for (let i = 0; i < split.n; i++) count += keep[split.labels[i]];
  if (count === split.n) return split;
  const pixels = split.rows * split.cols;
  const images = new Uint8Array(count * pixels);
  const labels = new Uint8Array(count);
  let k = 0;
  for (let i = 0; i < split.n; i++) {
    if (!keep[split.labels[i]]) continue;
    images.set(split.images.subarray(i * pixels, (i + 1) * pixels), k * pixels);
    labels[k++] = split.labels[i];
  }
  return { images, labels, n: count, rows: split.rows, cols: split.cols };
}

/** Maps dataset labels to their index within `classes` (e.g. classes [2,3]: 2→0, 3→1). */
export function localLabels(labels: Uint8Array, classes: readonly number[]): Uint8Array {
  const map = new Int16Array(256).fill(-1);
  classes.forEach((c, i) => (map[c] = i));
  const out = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const m = map[labels[i]];
    if (m < 0) throw new Error(`localLabels: label ${labels[i]} at index ${i} is not one of the classes ${classes.join(',')}`);
    out[i] = m;
  }
  return out;
}

export function taskFromDataset(spec: TaskSpec, ds: LoadedDataset): TaskData {
  const whole = (images: Uint8Array, labels: Uint8Array, n: number): Split => ({ images, labels, n, rows: ds.rows, cols: ds.cols });
  return {
    spec,
    train: selectClasses(whole(ds.trainImages, ds.trainLabels, ds.n.train), spec.classes),
    test: selectClasses(whole(ds.testImages, ds.testLabels, ds.n.test), spec.classes),
    source: ds.source,
    original: ds.original,
  };
}

/** Loads one task, e.g. `loadTask('fashion:0,2,4')`; fetches the dataset first if needed. */
export async function loadTask(task: string | TaskSpec, opts: EnsureOptions = {}): Promise<TaskData> {
  const spec = typeof task === 'string' ? parseTask(task) : task;
  return taskFromDataset(spec, await ensureDataset(spec.dataset, opts));
}

/** Loads every task of a sequence (default 'mnist,fashion'); datasets are loaded once and shared. */
export async function loadSequence(spec?: string, opts: EnsureOptions = {}): Promise<TaskData[]> {
  const out: TaskData[] = [];
  for (const t of parseSequence(spec)) out.push(await loadTask(t, opts));
  return out;
}
