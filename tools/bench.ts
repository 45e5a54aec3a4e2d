// npm run bench: the benchmark cases of docs/models.md at batch 64 on the CPU, median ms over
// timed steps after warm-up, each graph lowered for the cpu target and for the plain one (the
// standard-ONNX forms that other providers run); side by side with PyTorch
// (tools/bench_torch.py) where Debian's python3-torch is installed. Writes
// results/bench/latest.json.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { Graph } from '../src/graph/ir.js';
import type { EmittedModel, Target } from '../src/graph/onnx.js';
import type { StepGraph } from '../src/graph/step.js';
import { createSession, StepRunner, TensorStore } from '../src/runtime/index.js';
import { Rng } from '../src/util/rng.js';
import { makeDirs, writeFileAtomic } from '../src/util/fs.js';
import * as teacher from '../graphs/teacher.js';
import * as student from '../graphs/student.js';
import { STUDENT_STEPS_PER_RUN } from '../src/train/student.js';
import { buildFeatureStep } from '../graphs/features.js';

const HELP = `npm run bench -- [options]

Times the benchmark cases of docs/models.md at batch 64 on the CPU, each
graph lowered for the cpu target (ours) and for the plain target (standard ONNX operators, as
WebAssembly, WebGPU and CUDA run them), and compares them with PyTorch (tools/bench_torch.py,
run with /usr/bin/python3) when it is installed.

Options:
  --threads N     intra-op threads for both sides (default: number of cores)
  --steps N       timed runs per case (default 50; a run is one step, or the student's
                  --student-steps-per-run steps, or one inference)
  --min-time S    and more timed runs until they add up to S seconds, on each side
                  (default 2: a batch-1 inference's 50 runs last 10 ms, short enough for
                  one busy moment of the machine to move their median)
  --warmup N      untimed runs first (default 10)
  --rounds N      split each case's timed runs into N rounds, alternating with PyTorch's
                  rounds of the same case (default 1: per case, our runs and then
                  PyTorch's, so both sides are timed within seconds of each other); each
                  round starts with the warm-up runs
  --cases a,b     only these cases
  --student-steps-per-run N
                  student steps per onnxruntime run (default ${STUDENT_STEPS_PER_RUN}, as npm run train
                  runs them; student_step reports the time per step)
  --no-torch      skip the PyTorch side
  --no-plain      skip the plain-target column
  --profile DIR   write onnxruntime per-op profiles to DIR
  --out FILE      where to write the JSON (default results/bench/latest.json)
  -h, --help      this text
`;

const CASES = ['critic_step', 'generator_step', 'student_step', 'features_step', 'generator_b1', 'generator_b64', 'decoder_b1', 'decoder_b64'] as const;
type CaseName = (typeof CASES)[number];

process.on('uncaughtException', (err) => {
  process.stderr.write(`error: ${err.message}\n`);
  process.exit(1);
});

const { values: args } = parseArgs({
  options: {
    threads: { type: 'string' }, steps: { type: 'string', default: '50' }, warmup: { type: 'string', default: '10' }, rounds: { type: 'string', default: '1' }, 'min-time': { type: 'string', default: '2' },
    cases: { type: 'string' }, 'student-steps-per-run': { type: 'string' }, 'no-torch': { type: 'boolean', default: false }, 'no-plain': { type: 'boolean', default: false }, profile: { type: 'string' },
    out: { type: 'string', default: 'results/bench/latest.json' }, help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const int = (s: string | undefined, name: string, dflt: number): number => {
  if (s === undefined) return dflt;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got '${s}'`);
  return n;
};
const threads = int(args.threads, 'threads', cpus().length);
const steps = int(args.steps, 'steps', 50);
const studentStepsPerRun = int(args['student-steps-per-run'], 'student-steps-per-run', STUDENT_STEPS_PER_RUN);
const warmup = int(args.warmup, 'warmup', 10);
const rounds = Math.min(int(args.rounds, 'rounds', 1), steps);
const minTime = Number(args['min-time']);
if (!(minTime >= 0)) throw new Error(`--min-time must be a number of seconds >= 0, got '${args['min-time']}'`);
// Between the two sides' rounds: long enough for the other process's worker threads to stop
// spinning and sleep, so neither side is timed next to the other's busy-waiting threads.
const PAUSE_MS = 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const selected = (args.cases?.split(',') ?? [...CASES]) as CaseName[];
for (const c of selected) if (!CASES.includes(c)) throw new Error(`unknown case '${c}'; valid cases: ${CASES.join(', ')}`);

const B = 64;
const rng = new Rng(0);
const rand = (n: number, f: () => number) => Float32Array.from({ length: n }, f);
const images = (n: number) => rand(n * 784, () => rng.uniform());
const oneHot = (n: number, k: number) => {
  const out = new Float32Array(n * k);
  for (let i = 0; i < n; i++) out[i * k + rng.int(k)] = 1;
  return out;
};
if (args.profile) makeDirs(args.profile);
const opts = (label: string) => ({ threads, profilePrefix: args.profile ? `${args.profile}/${label}` : undefined });
/** The lowering targets timed: the cpu one, and the plain one unless --no-plain. */
const TIMED: readonly Target[] = args['no-plain'] ? ['cpu'] : ['cpu', 'plain'];

/** `run` takes `perRun` steps (or inferences). */
interface Timed { run: () => Promise<unknown>; perRun: number; nodes: number; end: () => Promise<void>; release: () => Promise<void> }

async function stepCase(label: string, target: Target, build: (g: Graph) => StepGraph, feeds: Record<string, Float32Array | number>, stepsPerRun = 1): Promise<Timed> {
  const g = new Graph();
  const step = build(g);
  const store = new TensorStore();
  store.declare(g, 0);
  const runner = await StepRunner.create(step, store, { ...opts(label), stepsPerRun, target });
  const tensors = Object.fromEntries(
    Object.entries(feeds).map(([k, v]) => {
      const inp = step.inputs.find((i) => i.name === k)!;
      return [k, typeof v === 'number' ? v : new ort.Tensor('float32', v, inp.shape)];
    }),
  );
  const batch = Array.from({ length: stepsPerRun }, () => tensors);
  return {
    run: () => (stepsPerRun > 1 ? runner.runSteps(batch) : runner.run(tensors)), perRun: stepsPerRun,
    nodes: runner.graph.nodeCount, end: async () => runner.endProfiling(), release: () => runner.release(),
  };
}

async function inferCase(label: string, model: EmittedModel, feeds: Record<string, Float32Array>): Promise<Timed> {
  const session = await createSession(model.bytes, opts(label));
  const tensors = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v, model.inputs.find((i) => i.name === k)!.shape)]));
  return { run: () => session.run(tensors), perRun: 1, nodes: model.nodeCount, end: async () => void session.endProfiling(), release: () => session.release() };
}

function weightsFor(build: (g: Graph) => void): Map<string, Float32Array> {
  const g = new Graph();
  build(g);
  const store = new TensorStore();
  store.declare(g, 0);
  return new Map([...store.specs.keys()].map((n) => [n, store.read(n)]));
}

const T = teacher.referenceTeacher;
const S = student.referenceStudent;
const tt = teacher.referenceTraining;

/** `round` names the profile file when there are several rounds; `target` is the lowering target. */
async function makeCase(name: CaseName, round: number, target: Target): Promise<Timed> {
  const label = `${name}${target === 'cpu' ? '' : `_${target}`}${rounds > 1 ? `_round${round + 1}` : ''}`;
  switch (name) {
    case 'critic_step':
      return stepCase(label, target, (g) => teacher.buildCriticStep(g, T, tt), {
        real: images(B), fake: rand(B * 784, () => rng.uniform() * 2 - 1), eps: rand(B, () => rng.uniform()), lr: 1e-4,
      });
    case 'generator_step':
      return stepCase(label, target, (g) => teacher.buildGeneratorStep(g, T, tt), { z: rand(B * T.zDim, () => rng.normal()), lr: 1e-4 });
    case 'student_step':
      return stepCase(label, target, (g) => student.buildStudentStep(g, S, student.referenceStudentLoss, B), {
        x: images(B), task: oneHot(B, S.tasks), view1: images(B), view2: images(B), noise: rand(B * S.zDim, () => rng.normal()), lr: 1e-3,
      }, studentStepsPerRun);
    case 'features_step':
      return stepCase(label, target, (g) => buildFeatureStep(g, B), { x: images(B), labels: oneHot(B, 20), lr: 1e-3 });
    case 'generator_b1':
    case 'generator_b64': {
      const n = name === 'generator_b1' ? 1 : B;
      const w = weightsFor((g) => teacher.generatorParams(g, T));
      const baked = teacher.normalizedGeneratorWeights(T, (k) => w.get(k)!);
      return inferCase(label, teacher.emitGeneratorInference(T, n, baked, false, target), { z: rand(n * T.zDim, () => rng.normal()) });
    }
    case 'decoder_b1':
    case 'decoder_b64': {
      const n = name === 'decoder_b1' ? 1 : B;
      const w = weightsFor((g) => student.decoderParams(g, S));
      return inferCase(label, student.emitDecoderInference(S, n, w, false, target), { z: rand(n * S.zDim, () => rng.normal()), task: oneHot(n, S.tasks) });
    }
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** The PyTorch side: tools/bench_torch.py --serve, one process for the whole bench. */
class TorchSide {
  private constructor(private readonly child: ChildProcess, private readonly lines: AsyncIterator<string>) {}

  static async start(): Promise<TorchSide | null> {
    if (args['no-torch']) return null;
    const probe = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' });
    if (probe.status !== 0) {
      console.error('PyTorch not found (/usr/bin/python3 -c "import torch" failed): pytorch_ms will be null. Install Debian\'s python3-torch and libopenblas0-openmp to compare.');
      return null;
    }
    console.error('starting the PyTorch side (tools/bench_torch.py --serve)...');
    const child = spawn('/usr/bin/python3', ['tools/bench_torch.py', '--serve', '--threads', String(threads)], { stdio: ['pipe', 'pipe', 'inherit'] });
    const side = new TorchSide(child, createInterface({ input: child.stdout! })[Symbol.asyncIterator]());
    await side.reply();
    return side;
  }

  private async reply(): Promise<Record<string, unknown>> {
    const next = await this.lines.next();
    if (next.done) throw new Error(`the PyTorch side (tools/bench_torch.py) exited (code ${this.child.exitCode}); its error is above. Run with --no-torch to time our side alone.`);
    const msg = JSON.parse(next.value) as Record<string, unknown>;
    if (typeof msg.error === 'string') throw new Error(`PyTorch side: ${msg.error}`);
    return msg;
  }

  async times(name: CaseName, warm: number, n: number, minMs: number): Promise<number[]> {
    this.child.stdin!.write(`run ${name} ${warm} ${n} ${Math.round(minMs)}\n`);
    return (await this.reply()).times as number[];
  }

  close(): void {
    this.child.stdin!.end('quit\n');
  }
}

/** Times one case's runs for `target`: `n` runs and at least `minMs` after the warm-up; ms per step. */
async function timeCase(name: CaseName, r: number, target: Target, n: number, minMs: number, into: number[]): Promise<{ nodes: number; perRun: number }> {
  const c = await makeCase(name, r, target);
  for (let i = 0; i < warmup; i++) await c.run();
  for (let i = 0, spent = 0; i < n || spent < minMs; i++) {
    const t0 = performance.now();
    await c.run();
    const ms = performance.now() - t0;
    spent += ms;
    into.push(ms / c.perRun);
  }
  if (args.profile) await c.end(); // flushes the profile file
  await c.release();
  return { nodes: c.nodes, perRun: c.perRun };
}

const torch = await TorchSide.start();
const ours: Record<string, Partial<Record<Target, { ms: number; nodes: number }>>> = {};
const theirs: Record<string, number> = {};
for (const name of selected) {
  const times: Record<string, number[]> = Object.fromEntries(TIMED.map((t) => [t, []]));
  const nodes: Record<string, number> = {};
  const torchTimes: number[] = [];
  let perRun = 1;
  for (let r = 0; r < rounds; r++) {
    // steps spread over the rounds; each side warms up before its round (caches, threads), and
    // our session is released before PyTorch's round so that its threads are not the neighbours
    const n = Math.floor((steps * (r + 1)) / rounds) - Math.floor((steps * r) / rounds);
    const minMs = (minTime * 1000) / rounds;
    for (const target of TIMED) ({ nodes: nodes[target]!, perRun } = await timeCase(name, r, target, n, minMs, times[target]!));
    if (torch) {
      await sleep(PAUSE_MS);
      torchTimes.push(...(await torch.times(name, warmup, n, minMs)));
      await sleep(PAUSE_MS);
    }
  }
  ours[name] = Object.fromEntries(TIMED.map((t) => [t, { ms: median(times[t]!), nodes: nodes[t]! }]));
  if (torch) theirs[name] = median(torchTimes);
  const pt = torch ? `; PyTorch ${theirs[name]!.toFixed(2)} ms (min ${Math.min(...torchTimes).toFixed(2)}, ${torchTimes.length} runs)` : '';
  const sides = TIMED.map((t) => `${t} ${ours[name]![t]!.ms.toFixed(2)} ms (min ${Math.min(...times[t]!).toFixed(2)}, ${times[t]!.length} runs; ${nodes[t]} ONNX nodes)`).join('; ');
  process.stderr.write(`${name}: ${sides}${perRun > 1 ? `, ${perRun} steps per run` : ''}${pt}\n`);
}
torch?.close();
const cases = selected.map((name) => {
  const pt = theirs[name] ?? null;
  const { ms, nodes } = ours[name]!.cpu!;
  const plain = ours[name]!.plain;
  return {
    name, ms: round(ms), pytorch_ms: pt === null ? null : round(pt), ratio: pt === null ? null : round(ms / pt), nodes,
    plain_ms: plain ? round(plain.ms) : null, plain_ratio: plain && pt !== null ? round(plain.ms / pt) : null, plain_nodes: plain?.nodes ?? null,
  };
});
function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, onnxruntime-node ${ort.env.versions.common}${process.env.GLIBC_TUNABLES ? `, GLIBC_TUNABLES=${process.env.GLIBC_TUNABLES}` : ''}`;
const result = { cases, threads, machine, steps, min_time_s: minTime, warmup, rounds, student_steps_per_run: studentStepsPerRun };
writeFileAtomic(args.out!, JSON.stringify(result, null, 2) + '\n');
// ours: the cpu target; plain: the plain target (the price of portability), both against PyTorch
console.log(`\n${'case'.padEnd(16)}${'ours ms'.padStart(10)}${'pytorch ms'.padStart(12)}${'ratio'.padStart(8)}${'plain ms'.padStart(11)}${'plain ratio'.padStart(13)}`);
for (const c of cases) {
  const f = (x: number | null, w: number) => (x?.toFixed(2) ?? '-').padStart(w);
  console.log(`${c.name.padEnd(16)}${f(c.ms, 10)}${f(c.pytorch_ms, 12)}${f(c.ratio, 8)}${f(c.plain_ms, 11)}${f(c.plain_ratio, 13)}`);
}
console.log(`\n${machine}; threads ${threads}; median of at least ${steps} runs and ${minTime} s per case and side, after ${warmup} warm-up (one step each; student_step: ${studentStepsPerRun} per run, ms per step), in ${rounds} rounds alternating with PyTorch's; written to ${args.out}`);
