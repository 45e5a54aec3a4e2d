// One command for a machine with a GPU: the default preset's teacher iteration (two critic steps
// and a generator step) and student step, on the GPU and on the CPU from the same seed and feeds;
// prints the largest parameter difference after the steps and the ms per step of each side.

import { parseArgs } from 'node:util';
import { Graph } from '../src/graph/ir.js';
import type { StepGraph } from '../src/graph/step.js';
import { resolveConfig } from '../src/train/config.js';
import { anchorOptions, distillOptions, studentArch } from '../src/train/student.js';
import { teacherArch } from '../src/train/teacher.js';
import { DEVICES, probeDevice, StepRunner, TensorStore, type Device, type Feed } from '../src/runtime/index.js';
import { Rng } from '../src/util/rng.js';
import * as teacher from '../graphs/teacher.js';
import * as student from '../graphs/student.js';

const HELP = `npm run gpu:check -- [--device cuda|webgpu] [--steps N]

Runs the default preset's teacher iteration and student step on the GPU and on the CPU from the
same seed and the same feeds, then prints, per model, the largest absolute difference of any
parameter after the steps and the median ms per step on each side.

  --device D   cuda (default; npm run install:cuda first), webgpu (a Vulkan loader and driver),
               or cpu (the CPU against itself: a check of this script, differences 0)
  --steps N    steps per side (default 20; the first 3 are warm-up and not timed)
  -h, --help   this text
`;

const { values: a } = parseArgs({ options: { device: { type: 'string', default: 'cuda' }, steps: { type: 'string', default: '20' }, help: { type: 'boolean', short: 'h' } } });
if (a.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const device = a.device as Device;
const steps = Number(a.steps);
if (!DEVICES.includes(device)) fail(`--device must be cuda, webgpu or cpu, got '${a.device}'`);
if (!Number.isInteger(steps) || steps < 4) fail(`--steps must be an integer >= 4, got '${a.steps}'`);

function fail(msg: string): never {
  process.stderr.write(`gpu-check: ${msg}\n`);
  process.exit(1);
}

const cfg = resolveConfig({}, []);
const tArch = teacherArch(cfg.teacher);
const tTrain: teacher.TeacherTraining = { batch: cfg.teacher.train.batch, gpLambda: cfg.teacher.train.gpLambda, optimizer: { kind: 'adam', beta1: cfg.teacher.train.beta1, beta2: cfg.teacher.train.beta2 } };
const sArch = studentArch(cfg.student, 2);

interface Model {
  name: string;
  /** The step graphs of one iteration, in order (a graph may repeat). */
  iteration: string[];
  build: (g: Graph, step: string) => StepGraph;
}
const MODELS: Model[] = [
  {
    name: 'teacher iteration (2 critic steps + 1 generator step)',
    iteration: ['critic', 'critic', 'generator'],
    build: (g, step) => (step === 'critic' ? teacher.buildCriticStep(g, tArch, tTrain, 'generator') : teacher.buildGeneratorStep(g, tArch, tTrain)),
  },
  {
    name: 'student step',
    iteration: ['student'],
    build: (g) => student.buildStudentStep(g, sArch, cfg.student.loss, cfg.student.train.batch, { kind: 'adam' }, distillOptions(cfg.student, 2 * cfg.teacher.arch.criticWidth), anchorOptions(cfg.student)),
  },
];

/** One side: a store from seed 0 and a runner per step graph on `dev`. */
async function side(m: Model, dev: Device): Promise<{ store: TensorStore; runners: Map<string, StepRunner> }> {
  const store = new TensorStore();
  const graphs = new Map<string, StepGraph>();
  for (const s of new Set(m.iteration)) {
    const g = new Graph();
    graphs.set(s, m.build(g, s));
    store.declare(g, 0);
  }
  const runners = new Map<string, StepRunner>();
  for (const [s, graph] of graphs) runners.set(s, await StepRunner.create(graph, store, { device: dev }));
  return { store, runners };
}

/** The same feeds for both sides: drawn once per step from a seeded generator. */
function feedsFor(r: StepRunner, rng: Rng): Record<string, Feed> {
  const f: Record<string, Feed> = {};
  for (const inp of r.graph.inputs) {
    if (r.store.specs.has(inp.name) || inp.name === 'step') continue;
    if (inp.shape.length === 0) f[inp.name] = inp.name.startsWith('lr') ? 1e-4 : 0.5;
    else f[inp.name] = rng.fillUniform(new Float32Array(inp.shape.reduce((x, y) => x * y, 1)));
  }
  return f;
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;

async function main(): Promise<void> {
  await probeDevice(device);
  for (const m of MODELS) {
    const gpu = await side(m, device);
    const cpu = await side(m, 'cpu');
    const rng = new Rng(1);
    const ms = { gpu: [] as number[], cpu: [] as number[] };
    for (let i = 0; i < steps; i++) {
      const feeds = m.iteration.map((s) => feedsFor(cpu.runners.get(s)!, rng));
      for (const [label, sd] of [['gpu', gpu], ['cpu', cpu]] as const) {
        const t0 = performance.now();
        for (const [j, s] of m.iteration.entries()) await sd.runners.get(s)!.run(feeds[j]!);
        if (i >= 3) ms[label].push(performance.now() - t0);
      }
    }
    let worst = 0;
    let where = '';
    for (const name of cpu.store.specs.keys()) {
      const x = cpu.store.read(name);
      const y = gpu.store.read(name);
      for (let i = 0; i < x.length; i++) {
        const d = Math.abs(x[i]! - y[i]!);
        if (d > worst || Number.isNaN(d)) [worst, where] = [d, name];
      }
    }
    console.log(`${m.name}: ${device} ${median(ms.gpu).toFixed(1)} ms, cpu ${median(ms.cpu).toFixed(1)} ms per iteration (median); largest parameter difference after ${steps} iterations ${worst.toExponential(2)}${where ? ` (${where})` : ''}`);
    for (const sd of [gpu, cpu]) for (const r of sd.runners.values()) await r.release();
  }
}

main().catch((err: Error) => fail(err.message));
