// The teach panel's worker: trains the student in the page with onnxruntime-web, off the main
// thread so the page stays responsive. The step graph is built here with the project's graph
// builder (src/teach/core.ts over graphs/student.ts); the weights come from the run's export/
// (or the visitor's saved student), the replay from the run's teacher experts. Served bundled at
// /teach-worker.js; onnxruntime-web is loaded from the server's /ort/ at run time.

import type * as Ort from 'onnxruntime-web';
import { decodeCheckpoint, encodeCheckpoint, exportDecoder, exportManifest, exportWeights, fitLeaves, buildTeachStep, priorRows, Teacher, timeSteps, type Metrics, type TeachConfig, type TeachRuntime } from '../src/teach/core.js';
import { studentFeeds, toGray8 } from '../src/serve/sampling.js';
import { targetForDevice, type Target } from '../src/graph/onnx.js';
import type { ToWorker, FromWorker, Backend } from './teach-protocol.js';

interface Manifest {
  run: string;
  createdAt: string;
  tasks: { name: string; index: number }[];
  student: { zDim: number; decoder: { file: string; sha256: string }; prior: { mu: number[][]; logvar: number[][] } };
  teacher?: { zDim: number; experts: { file: string; sha256: string; tasks: string[] }[] };
}

const scope = self as unknown as { postMessage(m: FromWorker, transfer?: Transferable[]): void; onmessage: ((e: MessageEvent<ToWorker>) => void) | null; crossOriginIsolated: boolean };
const post = (m: FromWorker, transfer: Transferable[] = []) => scope.postMessage(m, transfer);

/** Where the seeds of the sample grid start; each task's grid is studentFeeds(prior, t, T, n, SEED) as GET /sample draws it. */
const GRID = { n: 16, seed: 7 };

interface Loaded {
  ort: typeof Ort;
  rt: TeachRuntime;
  run: string;
  config: TeachConfig;
  zDim: number;
  experts: { session: Ort.InferenceSession; tasks: string[] }[];
  teacherZ: number;
  backend: Backend;
  threads: number;
}

/** The student as it is now, between teaching sessions. */
let current: { leaves: Map<string, Float32Array>; step: number; tasks: string[] } | null = null;
let loaded: Loaded | null = null;
interface GpuAdapter { isFallbackAdapter?: boolean; info?: { vendor?: string; architecture?: string; description?: string; isFallbackAdapter?: boolean } }
/** The WebGPU adapter in words ('' on WASM), so a software adapter is not taken for a GPU. */
let adapterInfo = '';
let teacher: Teacher | null = null;
const control = { paused: false, stopped: false, wake: null as (() => void) | null };

async function fetchOk(url: string, what: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (err) {
    throw new Error(`cannot reach the server for ${what} (${(err as Error).message}); is npm run serve still running?`);
  }
  if (!res.ok) {
    let detail = '';
    try {
      detail = ((await res.json()) as { error?: string }).error ?? '';
    } catch {
      // not JSON
    }
    throw new Error(`GET ${url} (${what}) answered ${res.status}${detail ? `: ${detail}` : ''}`);
  }
  return res;
}

const bytesOf = async (url: string, what: string) => new Uint8Array(await (await fetchOk(url, what)).arrayBuffer());

async function init(base: string, asked: Backend | 'auto', threads: number, saved: Uint8Array | undefined, lowering: Target | undefined): Promise<void> {
  const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<GpuAdapter | null> } }).gpu;
  const adapter = gpu ? await gpu.requestAdapter() : null;
  const fallback = !!(adapter?.isFallbackAdapter || adapter?.info?.isFallbackAdapter);
  if (adapter) {
    const i = adapter.info;
    adapterInfo = `${fallback ? 'software fallback adapter ' : ''}${[i?.vendor, i?.architecture, i?.description].filter(Boolean).join(' ')}`.trim();
  }
  if (asked === 'webgpu') {
    if (!gpu) throw new Error('WebGPU is not available in this browser (no navigator.gpu); choose WASM, or use a browser with WebGPU enabled');
    if (!adapter) throw new Error('this browser has WebGPU but no GPU adapter (blocked or absent); choose WASM');
  }
  // 'auto' times WebGPU against WASM when there is a hardware adapter (a software one is far slower than WASM).
  const candidate = asked === 'webgpu' || (asked === 'auto' && !!adapter && !fallback);
  let backend: Backend = candidate ? 'webgpu' : 'wasm';
  let choice = asked === 'auto' ? (adapter ? (fallback ? 'WASM: the WebGPU adapter is a software fallback' : '') : 'WASM: no WebGPU adapter') : '';
  const ort = (await import(/* @vite-ignore */ `${base}ort/${backend === 'webgpu' ? 'ort.webgpu.min.mjs' : 'ort.wasm.min.mjs'}`)) as typeof Ort;
  ort.env.wasm.wasmPaths = `${base}ort/`;
  // Threads need SharedArrayBuffer, which only a cross-origin isolated page (COOP + COEP) has.
  const usable = scope.crossOriginIsolated ? threads : 1;
  ort.env.wasm.numThreads = usable;
  const manifest = (await (await fetchOk(`${base}models/manifest.json`, 'the run manifest')).json()) as Manifest;
  const info = (await (await fetchOk(`${base}teach/config.json`, "the run's student configuration")).json()) as { student: TeachConfig; encoder: { url: string }; source: string };
  const decoder = await bytesOf(`${base}models/${manifest.student.decoder.file}?v=${manifest.student.decoder.sha256.slice(0, 16)}`, 'the student decoder');
  const encoder = await bytesOf(new URL(info.encoder.url, base).href, 'the student encoder');
  let stepOn: Backend = backend;
  const rt: TeachRuntime = {
    tensor: (data, dims) => new ort.Tensor('float32', data, dims),
    // Both providers get the plain lowering (standard ONNX ops); the cpu target's forms are tuned to
    // onnxruntime-node's CPU provider. Inference sessions always run on WASM.
    target: (kind) => lowering ?? targetForDevice(kind === 'step' ? stepOn : 'wasm'),
    session: (bytes, kind) =>
      ort.InferenceSession.create(bytes, {
        executionProviders: stepOn === 'webgpu' && kind === 'step' ? ['webgpu', 'wasm'] : ['wasm'],
        // Step graphs take their weights as inputs: 'extended' as src/runtime/step-runner.ts's StepRunner.
        graphOptimizationLevel: kind === 'step' ? 'extended' : 'all',
      }) as unknown as ReturnType<TeachRuntime['session']>,
  };
  const experts = [];
  for (const e of manifest.teacher?.experts ?? []) {
    const bytes = await bytesOf(`${base}models/${e.file}?v=${e.sha256.slice(0, 16)}`, `the teacher expert ${e.file}`);
    experts.push({ session: await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] }), tasks: e.tasks });
  }
  loaded = { ort, rt, run: manifest.run, config: info.student, zDim: manifest.student.zDim, experts, teacherZ: manifest.teacher?.zDim ?? 0, backend, threads: usable };
  const base0 = { leaves: exportWeights(decoder, encoder, manifest.student.prior), step: 0, tasks: manifest.tasks.map((t) => t.name) };
  if (asked === 'auto' && candidate) {
    // Two timed steps on each (after one that compiles the kernels) on a throwaway new task.
    const time = async (on: Backend) => {
      stepOn = on;
      const t = await Teacher.create(rt, { config: info.student, tasks: [...base0.tasks, 'probe'], target: base0.tasks.length, leaves: base0.leaves, step: 0, images: new Float32Array(784).fill(0.5), seed: 1 });
      try {
        await t.train();
        const t0 = performance.now();
        await t.train();
        await t.train();
        return (performance.now() - t0) / 2;
      } finally {
        await t.release();
      }
    };
    const gpuMs = await time('webgpu').catch(() => Infinity);
    const wasmMs = await time('wasm');
    backend = gpuMs < wasmMs ? 'webgpu' : 'wasm';
    stepOn = backend;
    loaded.backend = backend;
    choice = `${backend === 'webgpu' ? 'WebGPU' : 'WASM'}: a step took ${Number.isFinite(gpuMs) ? `${gpuMs.toFixed(0)} ms` : 'failed'} on WebGPU (${adapterInfo || 'adapter'}), ${wasmMs.toFixed(0)} ms on WASM`;
  }
  current = base0;
  let note = '';
  if (saved) {
    try {
      const c = decodeCheckpoint(saved, 'the saved student');
      if (c.run !== manifest.run) note = `the saved student was taught from run ${c.run}, but this server serves ${manifest.run}: starting from the server's student`;
      else if (manifest.tasks.some((t, i) => c.tasks[i] !== t.name)) note = `the saved student's tasks (${c.tasks.join(', ')}) do not start with this run's (${manifest.tasks.map((t) => t.name).join(', ')}): starting from the server's student`;
      else current = { leaves: c.leaves, step: c.step, tasks: c.tasks };
    } catch (err) {
      note = `the saved student could not be read (${(err as Error).message}): starting from the server's student`;
    }
  }
  post({ type: 'ready', run: manifest.run, tasks: current.tasks, step: current.step, fromSaved: current !== base0, note, backend, choice, threads: usable, isolated: scope.crossOriginIsolated, configSource: info.source });
  await postSamples(null);
}

/** The sample grid of every task: the live weights while teaching, else the decoder a download would give. */
async function postSamples(t: Teacher | null): Promise<void> {
  const L = loaded!;
  const tasks = t ? t.o.tasks : current!.tasks;
  const T = tasks.length;
  const prior = t ? { mu: rowsOf(t.read('prior.mu'), T, L.zDim), logvar: rowsOf(t.read('prior.logvar'), T, L.zDim) } : priorRows(current!.leaves, T, L.zDim);
  const gray: Uint8Array[] = [];
  let session: Ort.InferenceSession | null = null;
  try {
    if (!t) session = await L.ort.InferenceSession.create(exportDecoder(L.config, T, current!.leaves, L.rt.target!('inference')).bytes, { executionProviders: ['wasm'] });
    for (let k = 0; k < T; k++) {
      const f = studentFeeds(prior, k, T, GRID.n, GRID.seed);
      const px = t ? await t.samples({ z: f.z.data, task: f.task.data }, GRID.n) : ((await session!.run({ z: new L.ort.Tensor('float32', f.z.data, f.z.dims), task: new L.ort.Tensor('float32', f.task.data, f.task.dims) })).images!.data as Float32Array);
      gray.push(toGray8(px));
    }
  } finally {
    await session?.release();
  }
  post({ type: 'samples', tasks, n: GRID.n, seed: GRID.seed, gray, live: !!t }, gray.map((g) => g.buffer as ArrayBuffer));
}

function rowsOf(x: Float32Array, T: number, zd: number): number[][] {
  return Array.from({ length: T }, (_, t) => Array.from(x.subarray(t * zd, (t + 1) * zd)));
}

/** The current student as a checkpoint (every leaf of its step graph, Adam moments at zero where it has none yet). */
function checkpointNow(): Uint8Array {
  const L = loaded!;
  const c = current!;
  if (teacher) return teacher.checkpoint(L.run);
  const { graph } = buildTeachStep(L.config, c.tasks.length);
  const leaves = fitLeaves(graph, c.leaves, 0);
  const shapes = new Map([...graph.leaves.values()].filter((l) => l.role !== 'input').map((l) => [l.name, l.value.shape] as const));
  return encodeCheckpoint(leaves, shapes, c.step, { run: L.run, tasks: c.tasks });
}

function postState(): void {
  const bytes = checkpointNow();
  post({ type: 'state', checkpoint: bytes, tasks: teacher ? teacher.o.tasks : current!.tasks }, [bytes.buffer as ArrayBuffer]);
}

async function teach(tasks: string[], target: number, images: Float32Array, steps: number, seed: number): Promise<void> {
  const L = loaded!;
  if (teacher) throw new Error('the student is already being taught; stop it first');
  control.paused = false;
  control.stopped = false;
  const holder = (t: number) => L.experts.find((e) => e.tasks.includes(tasks[t]!));
  let t: Teacher;
  try {
    t = await Teacher.create(L.rt, {
      config: L.config, tasks, target, leaves: current!.leaves, step: current!.step, images, seed,
      teacher: (k) => {
        const e = holder(k);
        return e ? { session: e.session as never, zDim: L.teacherZ } : undefined;
      },
    });
  } catch (err) {
    throw new Error(memoryHint(err, 'building the training step'));
  }
  teacher = t;
  post({ type: 'started', total: steps, tasks, target, inputs: t.step.inputs.length, graphBytes: t.step.bytes.length, lowering: t.step.target ?? 'cpu' });
  const t0 = performance.now();
  let timed = 0; // seconds spent stepping (pauses excluded)
  let lastGrid = performance.now();
  let lastSave = performance.now();
  let metrics: Metrics = {};
  let done = 0;
  try {
    for (; done < steps; ) {
      // onnxruntime-web's runs resolve on microtasks: without a macrotask turn here the
      // pause and stop messages would wait until the session ends.
      await nextTask();
      if (control.stopped) break;
      if (control.paused) {
        post({ type: 'paused', step: done });
        postState();
        await new Promise<void>((resolve) => (control.wake = resolve));
        continue;
      }
      const s0 = performance.now();
      try {
        metrics = await t.train();
      } catch (err) {
        throw new Error(memoryHint(err, `training step ${done + 1}`));
      }
      timed += (performance.now() - s0) / 1000;
      done++;
      const sps = done / timed;
      post({ type: 'progress', step: done, total: steps, stepsPerSecond: sps, etaSeconds: (steps - done) / sps, metrics, elapsed: (performance.now() - t0) / 1000 });
      if (performance.now() - lastGrid > 3000) {
        await postSamples(t);
        lastGrid = performance.now();
      }
      if (performance.now() - lastSave > 20000) {
        postState();
        lastSave = performance.now();
      }
    }
    current = { leaves: t.leaves(), step: t.steps, tasks };
  } finally {
    teacher = null;
    await t.release();
  }
  postState();
  await postSamples(null);
  post({ type: 'done', steps: done, stopped: control.stopped, metrics });
}

const channel = new MessageChannel();
const waiting: (() => void)[] = [];
channel.port1.onmessage = () => waiting.shift()?.();
/** Resolves after the event loop has run its pending tasks (messages included); no 4 ms timer clamp. */
function nextTask(): Promise<void> {
  return new Promise((resolve) => {
    waiting.push(resolve);
    channel.port2.postMessage(0);
  });
}

function memoryHint(err: unknown, what: string): string {
  const m = (err as Error)?.message ?? String(err);
  if (/memory|allocation|RangeError/i.test(m)) return `out of memory while ${what} (${m}); close other tabs, or choose fewer threads`;
  return `${what} failed: ${m}`;
}

async function exportNow(): Promise<void> {
  const L = loaded!;
  const c = teacher ? { leaves: teacher.leaves(), tasks: teacher.o.tasks } : current!;
  const decoder = exportDecoder(L.config, c.tasks.length, c.leaves);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', decoder.bytes as Uint8Array<ArrayBuffer>));
  const sha = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
  const manifest = exportManifest({ run: `${L.run}-taught`, tasks: c.tasks, zDim: L.zDim, decoder, sha256: sha, prior: priorRows(c.leaves, c.tasks.length, L.zDim) });
  const checkpoint = checkpointNow();
  post({ type: 'export', decoder: decoder.bytes, checkpoint, manifest: JSON.stringify(manifest, null, 2) + '\n' }, [decoder.bytes.buffer as ArrayBuffer, checkpoint.buffer as ArrayBuffer]);
}

/** Times the teaching step as the page runs it (batch assembly with replay and anchors, then the step). */
async function bench(images: Float32Array, steps: number, warmup: number): Promise<void> {
  const L = loaded!;
  const tasks = [...current!.tasks, 'bench'];
  const t = await Teacher.create(L.rt, {
    config: L.config, tasks, target: tasks.length - 1, leaves: current!.leaves, step: current!.step, images, seed: 1,
    teacher: (k) => {
      const e = L.experts.find((x) => x.tasks.includes(tasks[k]!));
      return e ? { session: e.session as never, zDim: L.teacherZ } : undefined;
    },
  });
  try {
    const ms = await timeSteps(t, warmup, steps);
    post({ type: 'bench', ms, backend: L.backend, threads: L.threads, adapter: adapterInfo });
  } finally {
    await t.release();
  }
}

scope.onmessage = (e) => {
  const m = e.data;
  const fail = (err: unknown) => post({ type: 'error', message: (err as Error)?.message ?? String(err), during: m.type });
  switch (m.type) {
    case 'init':
      init(m.base, m.backend, m.threads, m.saved, m.lowering).catch(fail);
      break;
    case 'start':
      if (!loaded) return fail(new Error('the worker is still loading the model'));
      teach(m.tasks, m.target, m.images, m.steps, m.seed).catch(fail);
      break;
    case 'pause':
      control.paused = true;
      break;
    case 'resume':
      control.paused = false;
      control.wake?.();
      control.wake = null;
      break;
    case 'stop':
      control.stopped = true;
      control.paused = false;
      control.wake?.();
      control.wake = null;
      break;
    case 'export':
      if (!loaded) return fail(new Error('the worker is still loading the model'));
      exportNow().catch(fail);
      break;
    case 'bench':
      if (!loaded) return fail(new Error('the worker is still loading the model'));
      bench(m.images, m.steps, m.warmup).catch(fail);
      break;
  }
};
