// npx tsx tools/fit-steps.ts [--tasks mnist,fashion] [--train N] [--val N] [--steps 300,1000,...] [--seeds N]
// How long the fitting-capacity classifier must train to converge, chosen on the TRAINING split
// only: it trains on N real training images with their true labels (as the eval's ceiling does)
// and is scored on other, held-out training images, so neither the test set that `npm run eval`
// reports on nor any generated sample enters the choice (docs/quality.md uses it for the eval's
// --fit-steps default).

import { parseArgs } from 'node:util';
import { loadTask, localLabels } from '../src/data/index.js';
import { fittingCapacity, type LabelledImages } from '../src/eval/fitting.js';
import { PIXELS } from '../src/eval/features.js';
import { Rng } from '../src/util/rng.js';
import { wholeNumberFlag } from './args.js';

const HELP = `usage: npx tsx tools/fit-steps.ts [--tasks mnist,fashion] [--train 2000] [--val 10000] [--steps 300,600,1000,2000,3000] [--seeds 3]
For each task, draws --train + --val images of its training split without replacement (seeded),
trains the fitting-capacity classifier (the LeNet of src/eval/fitting.ts, batch 64, Adam 1e-3) on
the first --train with their true labels for each number of --steps, and prints its accuracy on
the other --val, as the mean (and range) over --seeds classifier seeds.`;

const { values: a } = parseArgs({
  options: {
    tasks: { type: 'string', default: 'mnist,fashion' },
    train: { type: 'string', default: '2000' },
    val: { type: 'string', default: '10000' },
    steps: { type: 'string', default: '300,600,1000,2000,3000' },
    seeds: { type: 'string', default: '3' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (a.help) {
  console.log(HELP);
  process.exit(0);
}
const nTrain = wholeNumberFlag('train', a.train, 1);
const nVal = wholeNumberFlag('val', a.val, 1);
const seeds = wholeNumberFlag('seeds', a.seeds, 1);
const stepsList = a.steps!.split(',').map((s) => wholeNumberFlag('steps', s, 1));

function pick(images: Uint8Array, labels: Uint8Array, index: ArrayLike<number>): LabelledImages {
  const out = new Float32Array(index.length * PIXELS);
  const lab = new Uint8Array(index.length);
  for (let i = 0; i < index.length; i++) {
    const k = index[i]!;
    for (let p = 0; p < PIXELS; p++) out[i * PIXELS + p] = images[k * PIXELS + p]! / 255;
    lab[i] = labels[k]!;
  }
  return { images: out, labels: lab, n: index.length };
}

for (const task of a.tasks!.split(',')) {
  const t = await loadTask(task);
  if (nTrain + nVal > t.train.n) throw new Error(`--train ${nTrain} + --val ${nVal} exceeds the ${t.train.n} training images of ${task}`);
  const labels = localLabels(t.train.labels, t.spec.classes);
  const perm = new Rng(Rng.derive(7, 'fit-steps', task)).permutation(t.train.n);
  const train = pick(t.train.images, labels, perm.slice(0, nTrain));
  const val = pick(t.train.images, labels, perm.slice(nTrain, nTrain + nVal));
  for (const steps of stepsList) {
    const acc: number[] = [];
    for (let s = 0; s < seeds; s++) acc.push((await fittingCapacity(train, val, t.spec.classes.length, { steps, seed: s, threads: 2 })).accuracy);
    const mean = acc.reduce((x, y) => x + y, 0) / acc.length;
    const pct = (v: number) => (100 * v).toFixed(1);
    console.log(`${task} steps ${steps}: held-out accuracy ${pct(mean)}% (${acc.map(pct).join(', ')}; ${nTrain} train, ${nVal} held out)`);
  }
}
