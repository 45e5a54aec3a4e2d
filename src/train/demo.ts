// An export folder with untrained (randomly initialised) models of the reference shapes, so
// serving and evaluation can be developed and tested without a training run.

import { Graph } from '../graph/ir.js';
import { TensorStore } from '../runtime/index.js';
import { EXPORT_FORMAT, writeExportManifest, writeModel } from './export.js';
import * as student from '../../graphs/student.js';
import * as teacher from '../../graphs/teacher.js';

/**
 * Writes an untrained export folder : the student knows all
 * `tasks` (as the training driver exports it at every stage), the teacher's one expert holds `held`.
 */
export function writeDemoExport(dir: string, tasks: string[], held: string[] = tasks, seed = 0, run = 'demo-untrained'): void {
  const S = { ...student.referenceStudent, tasks: tasks.length };
  const T = teacher.referenceTeacher;
  const g = new Graph();
  student.decoderParams(g, S);
  student.priorParams(g, S);
  teacher.generatorParams(g, T);
  const store = new TensorStore();
  store.declare(g, seed);
  const w = new Map([...store.specs.keys()].map((k) => [k, store.read(k)]));
  const B = 7;
  const decoder = writeModel(dir, 'student_decoder.onnx', student.emitDecoderInference(S, B, w, true), B);
  const expert = writeModel(dir, 'teacher_expert0.onnx', teacher.emitGeneratorInference(T, B, teacher.normalizedGeneratorWeights(T, (k) => w.get(k)!), true), B);
  const rows = (x: Float32Array) => tasks.map((_, t) => Array.from(x.subarray(t * S.zDim, (t + 1) * S.zDim)));
  writeExportManifest(dir, {
    format: EXPORT_FORMAT,
    run,
    createdAt: new Date().toISOString(),
    tasks: tasks.map((name, index) => ({ name, index })),
    student: { zDim: S.zDim, decoder, prior: { mu: rows(w.get('prior.mu')!), logvar: rows(w.get('prior.logvar')!) } },
    teacher: { zDim: T.zDim, experts: [{ ...expert, tasks: held }] },
  });
}
