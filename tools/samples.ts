// npm run samples -- --run DIR --task NAME [--n 1000] [--seed 7] --out FILE.f32
// Writes n samples of the student decoder of an export folder (a run's export/, or the three
// files the teach panel downloads) as raw float32 [n, 784] in [0, 1], the noise GET /sample
// draws for that seed, so that `npm run eval -- --samples FILE.f32 --task NAME` scores them.

import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { resolveExportDir } from '../src/serve/node/run.js';
import { studentFeeds } from '../src/serve/sampling.js';
import { readExportManifest } from '../src/train/export.js';
import { writeFileAtomic } from '../src/util/fs.js';

const HELP = `usage: npm run samples -- --run DIR --task NAME [--n 1000] [--seed 7] --out FILE.f32
Samples the student decoder of DIR (a run folder, its export/, or a folder with the teach panel's
downloaded student_decoder.onnx and manifest.json) for task NAME and writes them as raw float32
(n x 784, pixels in [0, 1]); score them with npm run eval -- --samples FILE.f32 --task TASK.`;

const { values: a } = parseArgs({ options: { run: { type: 'string' }, task: { type: 'string' }, n: { type: 'string', default: '1000' }, seed: { type: 'string', default: '7' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
if (a.help) {
  console.log(HELP);
  process.exit(0);
}
try {
  if (!a.run || !a.task || !a.out) throw new Error('give --run, --task and --out (see --help)');
  const n = Number(a.n);
  const seed = Number(a.seed);
  if (!Number.isInteger(n) || n < 1 || n > 100000) throw new Error(`--n must be a whole number from 1 to 100000, got '${a.n}'`);
  if (!Number.isSafeInteger(seed)) throw new Error(`--seed must be a whole number, got '${a.seed}'`);
  const dir = resolveExportDir(a.run);
  const m = readExportManifest(dir);
  const t = m.tasks.find((x) => x.name === a.task);
  if (!t) throw new Error(`${dir} has no task '${a.task}'; it has ${m.tasks.map((x) => x.name).join(', ')}`);
  const session = await ort.InferenceSession.create(join(dir, m.student.decoder.file));
  const f = studentFeeds(m.student.prior, t.index, m.tasks.length, n, seed);
  const r = await session.run({ z: new ort.Tensor('float32', f.z.data, f.z.dims), task: new ort.Tensor('float32', f.task.data, f.task.dims) });
  const images = r.images!.data as Float32Array;
  writeFileAtomic(a.out, new Uint8Array(images.buffer, images.byteOffset, images.byteLength));
  await session.release();
  console.log(`wrote ${n} samples of ${a.task} (seed ${seed}) from ${dir} to ${a.out}; score them with npm run eval -- --samples ${a.out} --task <mnist|fashion|...>`);
} catch (err) {
  console.error(`samples: ${(err as Error).message}`);
  process.exit(1);
}
