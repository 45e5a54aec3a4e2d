// A tiny run folder with the layout the training driver writes, built from untrained models of
// the reference shapes (the code of tools/make-demo-export.ts): stage k has learned tasks[0..k],
// and the teacher has one expert holding every task learned so far (so from stage 1 on, its
// samples of one task are routed by the feature net's classifier).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeDemoExport } from '../../src/train/demo.js';

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
