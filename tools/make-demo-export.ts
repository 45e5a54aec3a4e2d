// Writes an export folder with untrained (randomly initialised) models of the reference
// shapes, so serving and evaluation can be developed and tested without a training run.
// Usage: npx tsx tools/make-demo-export.ts OUT_DIR [--tasks mnist,fashion] [--seed N]

import { parseArgs } from 'node:util';
import { writeDemoExport } from '../src/train/demo.js';

const { values: a, positionals } = parseArgs({ allowPositionals: true, options: { tasks: { type: 'string', default: 'mnist,fashion' }, seed: { type: 'string', default: '0' }, help: { type: 'boolean', short: 'h' } } });
if (a.help || positionals.length !== 1) {
  console.log('usage: npx tsx tools/make-demo-export.ts OUT_DIR [--tasks mnist,fashion] [--seed N]\nWrites an export folder with untrained models of the reference shapes (for developing serving and evaluation).');
  process.exit(a.help ? 0 : 1);
}
const tasks = a.tasks!.split(',');
writeDemoExport(positionals[0]!, tasks, tasks, Number(a.seed));
console.log(`wrote ${positionals[0]}/manifest.json (untrained demo models for tasks ${tasks.join(', ')})`);
