// npx tsx tools/val-fid.ts results/<id> [results/<id> ...] [--samples N] [--limit N]
// The student's FID per stage and task against the TRAINING split, for choosing settings without
// touching the test set that `npm run eval` reports on (docs/quality.md uses it for the replay
// ratio and the number of student steps).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadFeatureExtractor } from '../src/eval/featnet.js';
import { fidAgainst, realTaskStats } from '../src/eval/reference.js';
import { ExportSampler } from '../src/eval/generate.js';
import { Rng } from '../src/util/rng.js';
import { wholeNumberFlag } from './args.js';

const HELP = `usage: npx tsx tools/val-fid.ts RUN_DIR [RUN_DIR ...] [--samples N] [--limit N]
For each run folder and each stage's export (stages/<k>/export), samples the student N times per
task learned so far (default 2,000, seeded) and prints its FID (the project's LeNet features)
against a seeded subsample of --limit images (default 10,000) of the task's training split. The
same seeds for every run, so runs are compared on the same draws of real images.`;

const { values: a, positionals } = parseArgs({ allowPositionals: true, options: { samples: { type: 'string', default: '2000' }, limit: { type: 'string', default: '10000' }, help: { type: 'boolean', short: 'h' } } });
if (a.help || positionals.length === 0) {
  console.log(HELP);
  process.exit(a.help ? 0 : 1);
}
const samples = wholeNumberFlag('samples', a.samples, 2);
const limit = wholeNumberFlag('limit', a.limit, 2);
for (const dir of positionals) if (!existsSync(join(dir, 'stages', '0', 'export'))) throw new Error(`${dir} has no stages/0/export: give a run folder of npm run train (results/<id>)`);

const fx = await loadFeatureExtractor({ log: () => {} });
const stats = new Map<string, Awaited<ReturnType<typeof realTaskStats>>>();
for (const dir of positionals) {
  const out: string[] = [];
  for (let k = 0; existsSync(join(dir, 'stages', String(k), 'export')); k++) {
    const s = ExportSampler.open(join(dir, 'stages', String(k), 'export'), { threads: 2 });
    try {
      for (const task of s.tasks) {
        if (!stats.has(task)) stats.set(task, await realTaskStats(fx, task, { split: 'train', limit, seed: 1 }));
        const images = await s.student(task, samples, new Rng(Rng.derive(5, 'val', k, task)));
        out.push(`stage ${k + 1} ${task} ${(await fidAgainst(fx, stats.get(task)!, images, samples)).toFixed(1)}`);
      }
    } finally {
      await s.close();
    }
  }
  console.log(`${dir.replace(/\/$/, '').split('/').at(-1)} | ${out.join(' | ')}`);
}
