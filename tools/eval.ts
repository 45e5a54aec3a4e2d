// npm run eval: FID / KID / fitting capacity, forgetting analysis and the run report, offline
// from a run folder, or for any set of 28x28 grayscale images against a task.

import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import type { FeatureExtractor } from '../src/eval/index.js';
import { DEVICES, probeDevice, type Device } from '../src/runtime/index.js';

const HELP = `Evaluation: FID, KID, fitting capacity, forgetting and reports.

Usage:
  npm run eval -- --run results/<run-id> [options]
      Recomputes everything from the run folder (stages/<k>/export, metrics.jsonl, config.json) and writes
      report.html, fid.json, forgetting.json and figures/*.png into it (or into --out).
  npm run eval -- --samples DIR|FILE --task TASK [options]
      Scores a set of 28x28 grayscale images against TASK (e.g. mnist, fashion, fashion:0,2): a folder of images,
      one image or a grid of 28x28 cells (PNG, JPEG, ...), a .npy array ((N,784), (N,28,28) or (N,1,28,28);
      uint8 or float), raw float32 (.f32/.bin/.raw) or uint8 (.u8) values, or an IDX images file.

Sampling and metrics:
  --n N                  generated samples per model, stage and task (run mode; default 2000)
  --kid-subsets N        KID subsets (default 10; the literature often uses 100)
  --kid-size N           KID subset size (default min(1000, n, test size))
  --fit-steps N          classifier steps for the fitting capacity, 0 to skip (default 2000)
  --seed N               seed for sampling, subsets and classifiers (default 0)
  --out PATH             run mode: output folder (default: the run folder); samples mode: write the result as JSON

Samples mode input:
  --range R              value range of float arrays: 0,1 (default), -1,1 or 0,255
  --grid-scale S         grids drawn with each pixel upscaled S times (default 1)
  --grid-pad P           pixels of padding between grid cells (default 0)
  --limit N              use at most N images

Feature extractor (default: the project's LeNet, trained on MNIST + Fashion-MNIST on first use and cached):
  --feature-cache DIR    cache folder (default datasets/features)
  --feature-steps N      LeNet training steps (default 1500, about a minute on 2 cores)
  --retrain-features     train the LeNet again
  --features FILE.onnx   any ONNX extractor for FID/KID instead (e.g. Inception-v3 pool3 for numbers comparable
                         with the literature); the LeNet still labels samples for the fitting capacity
  --feature-size S       its input size (default: from the model, else 28; images are resized bilinearly)
  --feature-channels C   its input channels (grayscale repeated; default: from the model, else 1)
  --feature-norm N       unit ([0,1], default), inception ([-1,1]), imagenet, byte ([0,255]) or MEAN/STD
                         (e.g. 0.485,0.456,0.406/0.229,0.224,0.225)
  --feature-layout L     nchw (default) or nhwc
  --feature-input NAME, --feature-output NAME   (default: the model's first input and output)

Runtime and data:
  --threads N            onnxruntime intra-op threads (default: all cores)
  --device D             cpu (default), cuda or webgpu
  --data-root DIR        datasets folder (default datasets)
  --offline              use local and offline dataset sources only
  -q, --quiet            only the final results
  -h, --help
`;

const options = {
  run: { type: 'string' },
  samples: { type: 'string' },
  task: { type: 'string' },
  n: { type: 'string' },
  'kid-subsets': { type: 'string' },
  'kid-size': { type: 'string' },
  'fit-steps': { type: 'string' },
  seed: { type: 'string' },
  out: { type: 'string' },
  range: { type: 'string' },
  'grid-scale': { type: 'string' },
  'grid-pad': { type: 'string' },
  limit: { type: 'string' },
  'feature-cache': { type: 'string' },
  'feature-steps': { type: 'string' },
  'retrain-features': { type: 'boolean' },
  features: { type: 'string' },
  'feature-size': { type: 'string' },
  'feature-channels': { type: 'string' },
  'feature-norm': { type: 'string' },
  'feature-layout': { type: 'string' },
  'feature-input': { type: 'string' },
  'feature-output': { type: 'string' },
  threads: { type: 'string' },
  device: { type: 'string' },
  'data-root': { type: 'string' },
  offline: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

function fail(message: string): never {
  process.stderr.write(`eval: ${message}\nRun with --help for usage.\n`);
  process.exit(1);
}

function int(name: string, v: string | undefined, min = 0): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isInteger(x) || x < min) fail(`--${name} must be an integer >= ${min}, got '${v}'`);
  return x;
}

async function main(): Promise<void> {
  let a;
  try {
    a = parseArgs({ options, allowPositionals: false }).values;
  } catch (err) {
    fail((err as Error).message);
  }
  if (a.help) {
    process.stdout.write(HELP);
    return;
  }
  if (!a.run === !a.samples) fail('give either --run results/<run-id> or --samples DIR|FILE --task TASK');
  if (a.samples && !a.task) fail('--samples needs --task (e.g. --task fashion)');
  if (a.run && a.task) fail('--task is only for --samples; a run folder lists its own tasks');
  const device = (a.device ?? 'cpu') as Device;
  if (!DEVICES.includes(device)) fail(`--device must be ${DEVICES.join(', ')}, got '${a.device}'`);
  await probeDevice(device); // a device that cannot run fails before any data is loaded
  const layout = a['feature-layout'] ?? 'nchw';
  if (layout !== 'nchw' && layout !== 'nhwc') fail(`--feature-layout must be nchw or nhwc, got '${layout}'`);
  const range = a.range;
  if (range !== undefined && range !== '0,1' && range !== '-1,1' && range !== '0,255') fail(`--range must be 0,1, -1,1 or 0,255, got '${range}'`);
  const log = a.quiet ? () => {} : (l: string) => process.stderr.write(l + '\n');
  // Loaded after the arguments are checked, so --help and usage errors answer at once.
  const { evaluateRun, evaluateSamples, formatScore, kidDigits, loadOnnxExtractor } = await import('../src/eval/index.js');
  const threads = int('threads', a.threads, 0);
  const data = { root: a['data-root'], offline: a.offline, log, progress: null };
  const featureNet = { cacheDir: a['feature-cache'], steps: int('feature-steps', a['feature-steps'], 1), retrain: a['retrain-features'] };
  const score = {
    kidSubsets: int('kid-subsets', a['kid-subsets'], 1),
    kidSubsetSize: int('kid-size', a['kid-size'], 2),
    fitSteps: int('fit-steps', a['fit-steps'], 0),
    seed: int('seed', a.seed, 0),
    threads,
    device,
  };
  let features: FeatureExtractor | undefined;
  if (a.features) {
    features = await loadOnnxExtractor(a.features, {
      size: int('feature-size', a['feature-size'], 1),
      channels: int('feature-channels', a['feature-channels'], 1),
      normalization: a['feature-norm'] ?? 'unit',
      layout,
      input: a['feature-input'],
      output: a['feature-output'],
      threads,
      device,
    });
  } else if (a['feature-size'] || a['feature-channels'] || a['feature-norm'] || a['feature-input'] || a['feature-output'] || a['feature-layout']) {
    fail('--feature-size, --feature-channels, --feature-norm, --feature-layout, --feature-input and --feature-output describe an external extractor: pass it with --features FILE.onnx');
  }

  if (a.run) {
    const r = await evaluateRun(a.run, { ...score, n: int('n', a.n, 2), out: a.out, features, featureNet, data, log });
    const lines = [`run ${r.run.id}: ${r.fid.featureExtractor.name} features (${r.fid.featureExtractor.dim}-d)`];
    for (const c of r.fid.results) lines.push(`  stage ${c.stage} ${c.model.padEnd(7)} ${c.task.padEnd(10)} ${formatScore(c)}`);
    for (const [model, m] of Object.entries(r.forgetting.models)) {
      for (const [key, s] of Object.entries(m)) {
        const d = key === 'fid' ? 2 : key === 'kid' ? kidDigits(...s.R.flat().filter((v): v is number => v !== null), 0) : 3;
        lines.push(`  ${model.padEnd(7)} ${key.padEnd(7)} average forgetting ${s.averageForgetting === null ? '–' : s.averageForgetting.toFixed(d)}, BWT ${s.bwt === null ? '–' : s.bwt.toFixed(d)}`);
      }
    }
    lines.push(`report: ${r.outDir}/report.html`);
    process.stdout.write(lines.join('\n') + '\n');
  } else {
    const r = await evaluateSamples(a.samples!, a.task!, {
      ...score,
      features,
      featureNet,
      data,
      log,
      read: { range: range as '0,1' | '-1,1' | '0,255' | undefined, gridScale: int('grid-scale', a['grid-scale'], 1), gridPad: int('grid-pad', a['grid-pad'], 0), limit: int('limit', a.limit, 1) },
    });
    process.stdout.write(`${r.task}: ${r.n} images from ${r.source}\n  ${formatScore(r)}\n  features: ${r.featureExtractor.description}\n`);
    if (a.out) {
      writeFileSync(a.out, JSON.stringify(r, null, 2) + '\n');
      process.stdout.write(`wrote ${a.out}\n`);
    }
  }
  await features?.close();
}

main().catch((err: unknown) => {
  process.stderr.write(`eval: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
