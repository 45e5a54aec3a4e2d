// Writes an export folder with untrained (randomly initialised) models of the reference
// shapes, so serving and evaluation can be developed and tested without a training run.
// Usage: npx tsx tools/make-demo-export.ts OUT_DIR [--tasks mnist,fashion] [--seed N]

import { parseArgs } from 'node:util';
import { Graph } from '../src/graph/ir.js';
import { TensorStore } from './../src/train/session.js';
import { writeExportManifest, writeModel, EXPORT_FORMAT } from '../src/train/export.js';
import * as student from '../graphs/student.js';
import * as teacher from '../graphs/teacher.js';

const { values: a, positionals } = parseArgs({ allowPositionals: true, options: { tasks: { type: 'string', default: 'mnist,fashion' }, seed: { type: 'string', default: '0' }, help: { type: 'boolean', short: 'h' } } });
if (a.help || positionals.length !== 1) {
  console.log('usage: npx tsx tools/make-demo-export.ts OUT_DIR [--tasks mnist,fashion] [--seed N]\nWrites an export folder with untrained models of the reference shapes (for developing serving and evaluation).');
  process.exit(a.help ? 0 : 1);
}
const dir = positionals[0]!;
const tasks = a.tasks!.split(',');
const S = { ...student.referenceStudent, tasks: tasks.length };
const T = teacher.referenceTeacher;
const g = new Graph();
student.decoderParams(g, S);
student.priorParams(g, S);
teacher.generatorParams(g, T);
const store = new TensorStore();
store.declare(g, Number(a.seed));
const w = new Map([...store.specs.keys()].map((k) => [k, store.read(k)]));
const B = 7; // any size: the batch dimension is emitted as 'N'
const decoder = writeModel(dir, 'student_decoder.onnx', student.emitDecoderInference(S, B, w, true), B);
const expert = writeModel(dir, 'teacher_expert0.onnx', teacher.emitGeneratorInference(T, B, teacher.normalizedGeneratorWeights(T, (k) => w.get(k)!), true), B);
const rows = (x: Float32Array) => tasks.map((_, t) => Array.from(x.subarray(t * S.zDim, (t + 1) * S.zDim)));
writeExportManifest(dir, {
  format: EXPORT_FORMAT,
  run: 'demo-untrained',
  createdAt: new Date().toISOString(),
  tasks: tasks.map((name, index) => ({ name, index })),
  student: { zDim: S.zDim, decoder, prior: { mu: rows(w.get('prior.mu')!), logvar: rows(w.get('prior.logvar')!) } },
  teacher: { zDim: T.zDim, experts: [{ ...expert, tasks }] },
});
console.log(`wrote ${dir}/manifest.json (untrained demo models for tasks ${tasks.join(', ')})`);
