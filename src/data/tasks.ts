/**
 * Task specs. A task is a dataset and a set of its classes; its canonical
 * name is the stable identifier used everywhere (results, the HTTP API):
 *
 *   mnist            all ten digits
 *   fashion          all ten Fashion-MNIST classes
 *   mnist:0-4        a class subset (ranges and lists: fashion:0,2,4, mnist:0-2,7)
 *
 * Canonical form: classes sorted and deduplicated, runs of consecutive
 * classes written as a-b, all ten classes written as the bare dataset name.
 * So 'mnist:4,3,2,1,0' and 'mnist:0-4' are the same task, named 'mnist:0-4'.
 *
 * A sequence is a list of tasks: a named one (split-mnist, split-fashion,
 * mnist,fashion) or tasks separated by commas or spaces ('mnist:0-4,fashion:0,2,4'
 * reads as two tasks: a bare number after a subset continues its class list).
 */
import { DATASETS, DATASET_NAMES, isDatasetName, type DatasetName } from './catalog.ts';

export interface TaskSpec {
  /** Canonical, stable name. */
  name: string;
  dataset: DatasetName;
  /** Sorted, unique class labels (as in the dataset's label files). */
  classes: number[];
  classNames: string[];
}

export const NUM_CLASSES = 10;
export const DEFAULT_SEQUENCE = 'mnist,fashion';

function pairs(dataset: DatasetName): string[] {
  const out: string[] = [];
  for (let c = 0; c < NUM_CLASSES; c += 2) out.push(`${dataset}:${c}-${c + 1}`);
  return out;
}

/** Named sequences. */
export const SEQUENCES: Readonly<Record<string, readonly string[]>> = {
  'split-mnist': pairs('mnist'),
  'split-fashion': pairs('fashion'),
  'mnist,fashion': ['mnist', 'fashion'],
};

export const TASK_HELP =
  `Valid tasks: ${DATASET_NAMES.join(', ')}, or a class subset such as mnist:0-4 or fashion:0,2,4 (classes 0-${NUM_CLASSES - 1}). ` +
  `Named sequences: ${Object.keys(SEQUENCES).map((s) => (s === DEFAULT_SEQUENCE ? `${s} (default)` : s)).join(', ')}; ` +
  'or a list of tasks separated by commas or spaces.';

export class TaskError extends Error {
  constructor(message: string) {
    super(`${message}. ${TASK_HELP}`);
    this.name = 'TaskError';
  }
}

/** Parses '0-4', '0,2,4', '0-2,7' into sorted unique classes. */
export function parseClassList(text: string, taskName: string): number[] {
  const set = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new TaskError(`Invalid class list '${text}' in task '${taskName}': '${part}' is not a class or a range a-b`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new TaskError(`Invalid range '${part}' in task '${taskName}': the end is below the start`);
    for (const c of [lo, hi]) {
      if (c >= NUM_CLASSES) throw new TaskError(`Class ${c} in task '${taskName}' is out of range 0-${NUM_CLASSES - 1}`);
    }
    for (let c = lo; c <= hi; c++) set.add(c);
  }
  return [...set].sort((a, b) => a - b);
}

/** Canonical class text: runs of consecutive classes as a-b. */
export function formatClassList(classes: readonly number[]): string {
  const sorted = [...new Set(classes)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    parts.push(j > i ? `${sorted[i]}-${sorted[j]}` : `${sorted[i]}`);
    i = j + 1;
  }
  return parts.join(',');
}

export function canonicalTaskName(dataset: DatasetName, classes: readonly number[]): string {
  const unique = new Set(classes);
  return unique.size === NUM_CLASSES ? dataset : `${dataset}:${formatClassList([...unique])}`;
}

export function makeTask(dataset: DatasetName, classes: readonly number[]): TaskSpec {
  const sorted = [...new Set(classes)].sort((a, b) => a - b);
  if (sorted.length === 0) throw new TaskError(`Task on ${dataset} has no classes`);
  const names = DATASETS[dataset].classNames;
  return { name: canonicalTaskName(dataset, sorted), dataset, classes: sorted, classNames: sorted.map((c) => names[c]) };
}

/** Parses one task name ('mnist', 'fashion:0,2,4', ...). Unknown names get an error listing the valid ones. */
export function parseTask(name: string): TaskSpec {
  const trimmed = name.trim();
  const colon = trimmed.indexOf(':');
  const ds = (colon < 0 ? trimmed : trimmed.slice(0, colon)).toLowerCase();
  if (!isDatasetName(ds)) {
    throw new TaskError(`Unknown task '${name}'${SEQUENCES[trimmed] ? ` ('${trimmed}' is a sequence; use parseSequence)` : ''}`);
  }
  if (colon < 0) return makeTask(ds, Array.from({ length: NUM_CLASSES }, (_, i) => i));
  return makeTask(ds, parseClassList(trimmed.slice(colon + 1), name));
}

/** Splits a sequence text into task texts; a bare class or range after a subset continues its list. */
function splitTaskList(spec: string): string[] {
  const out: string[] = [];
  for (const token of spec.split(/[\s,]+/).filter(Boolean)) {
    const last = out.length - 1;
    if (/^\d+(-\d+)?$/.test(token) && last >= 0 && out[last].includes(':')) out[last] += `,${token}`;
    else out.push(token);
  }
  return out;
}

/** Parses a sequence: a named one, or a list of tasks (named sequences may appear in the list). */
export function parseSequence(spec: string = DEFAULT_SEQUENCE): TaskSpec[] {
  const trimmed = spec.trim();
  if (!trimmed) throw new TaskError('Empty task sequence');
  const named = SEQUENCES[trimmed];
  if (named) return named.map(parseTask);
  return splitTaskList(trimmed).flatMap((t) => (SEQUENCES[t] ? SEQUENCES[t].map(parseTask) : [parseTask(t)]));
}

/**
 * The canonical name of a sequence: the named sequence it equals (e.g. 'split-mnist'),
 * else its tasks' names joined by ' ' (unambiguous, since task names contain commas).
 */
export function sequenceName(tasks: readonly TaskSpec[]): string {
  const names = tasks.map((t) => t.name);
  for (const [key, seq] of Object.entries(SEQUENCES)) {
    if (seq.length === names.length && seq.every((t, i) => t === names[i])) return key;
  }
  return names.join(' ');
}
