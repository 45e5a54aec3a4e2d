// A tiny run folder with the layout the training driver writes, built from untrained models of
// the reference shapes (the code of tools/make-demo-export.ts): stage k has learned tasks[0..k],
// and the teacher has one expert holding every task learned so far (so from stage 1 on, its
// samples of one task are routed by the feature net's classifier).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Graph } from '../../src/graph/ir.js';
import { TensorStore } from '../../src/train/session.js';
import { EXPORT_FORMAT, writeExportManifest, writeModel } from '../../src/train/export.js';
import * as student from '../../graphs/student.js';
import * as teacher from '../../graphs/teacher.js';

/**
 * Writes an untrained export folder (as tools/make-demo-export.ts does): the student knows all
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

/**
 * A run folder as the training driver (src/train/driver.ts) writes it: config.json (tasks as a
 * sequence spec), metrics.jsonl (made-up rows of its types: teacher, student, phase, decision),
 * stages/<k>/export after each stage and export/.
 */
export function writeDemoRun(dir: string, tasks: string[] = ['mnist', 'fashion'], stepsPerStage = 50): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ preset: 'demo', tasks: tasks.join(','), seed: 0, note: 'untrained demo models (test fixture)' }, null, 2));
  const lines: string[] = [];
  const time = new Date(0).toISOString();
  tasks.forEach((task, stage) => {
    lines.push(JSON.stringify({ time, type: 'decision', stage, task, fids: {}, action: stage ? 'reuse' : 'first', expert: 0 }));
    for (let iteration = 1; iteration <= stepsPerStage; iteration++) {
      const fid = iteration % 10 === 0 ? { fid: 400 / iteration } : {};
      lines.push(JSON.stringify({ time, type: 'teacher', stage, task, expert: 0, iteration, critic_loss: -5 / Math.sqrt(iteration) - 0.1 * stage, generator_loss: 2 + Math.sin(iteration) * 0.1, wasserstein: 5 / Math.sqrt(iteration), gp: 0.1, ...fid }));
    }
    lines.push(JSON.stringify({ time, type: 'phase', stage, task, phase: 'teacher', expert: 0, seconds: 1 }));
    for (let step = 1; step <= stepsPerStage; step++) {
      lines.push(JSON.stringify({ time, type: 'student', stage, task, step, temperature: 2, loss: 200 / (1 + 0.05 * step) + 10 * stage, kl: 8 + Math.cos(step) }));
    }
    lines.push(JSON.stringify({ time, type: 'phase', stage, task, phase: 'student', seconds: 1 }));
    writeDemoExport(join(dir, 'stages', String(stage), 'export'), tasks, tasks.slice(0, stage + 1), stage, 'demo');
  });
  lines.push('not json: a truncated line');
  writeFileSync(join(dir, 'metrics.jsonl'), lines.join('\n') + '\n');
  writeDemoExport(join(dir, 'export'), tasks, tasks, tasks.length - 1, 'demo');
}
