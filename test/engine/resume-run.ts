// A training run for the resume test: trains the toy classifier for --steps steps, saving a
// checkpoint (parameters, Adam state, step counter and the data generator's state) every
// --save-every steps, and appending each step's loss to --log. --kill-at N kills the process
// with SIGKILL right after step N, as a crash would. --resume continues from the checkpoint.

import { appendFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { StepRunner, TensorStore } from '../../src/runtime/index.js';
import { Rng } from '../../src/util/rng.js';
import { toyBatch, toyTrainStep } from './toy.js';

const { values: a } = parseArgs({
  options: {
    dir: { type: 'string' }, steps: { type: 'string', default: '30' }, 'save-every': { type: 'string', default: '5' },
    'kill-at': { type: 'string' }, resume: { type: 'boolean', default: false }, seed: { type: 'string', default: '7' },
  },
});
const dir = a.dir!;
const batch = 16;
const { graph, step } = toyTrainStep(batch);
const store = new TensorStore();
store.declare(graph, Number(a.seed));
const rng = new Rng(Number(a.seed));
const ckpt = join(dir, 'checkpoint.safetensors');
if (a.resume && existsSync(ckpt)) rng.setState(JSON.parse(store.load(ckpt).rng!) as number[]);
const runner = await StepRunner.create(step, store, { threads: 1 });
const log = join(dir, 'losses.jsonl');
while (runner.steps < Number(a.steps)) {
  const { x, y } = toyBatch(rng, batch);
  const m = await runner.run({ x, y, lr: 1e-2 });
  appendFileSync(log, JSON.stringify({ step: runner.steps, loss: m.loss }) + '\n');
  if (runner.steps % Number(a['save-every']) === 0) store.save(ckpt, { rng: JSON.stringify(rng.getState()) });
  if (a['kill-at'] && runner.steps === Number(a['kill-at'])) process.kill(process.pid, 'SIGKILL');
}
