// npm run bench:browser-train [-- --run results/<id>] [--steps 30] [--warmup 5] [--threads 4]
// Steps per second of the teaching step (a new task from 8 images, the run's other tasks replayed
// and anchored: what the page's teach panel runs) in Chromium on onnxruntime-web (WASM 1 thread,
// WASM with threads, WebGPU where the browser has it) against onnxruntime-node in this process
// (1 thread and the same threads), plus the page's memory while training.

import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { chromium, type Page } from 'playwright-core';
import { startServer } from '../src/serve/node/server.js';
import { readTeachInfo } from '../src/serve/node/run.js';
import { exportWeights, Teacher, timeSteps } from '../src/teach/core.js';
import { nodeTeachRuntime } from '../src/teach/node.js';
import { DEFAULT_RUN } from '../src/serve/node/defaults.js';
import { wholeNumberFlag } from './args.js';

const HELP = `usage: npm run bench:browser-train -- [--run results/<run-id>] [--steps N] [--warmup N] [--threads N] [--skip-webgpu] [--json FILE]
Times the teach panel's training step (batch assembly with replay and anchors, then the step) in
headless Chromium (CHROMIUM_PATH, default /usr/bin/chromium) on WASM with 1 thread, WASM with
--threads (default min(4, cores)), and WebGPU (reported unavailable where the browser has no
adapter), and the same step in onnxruntime-node with 1 and --threads threads. The page lowers its graphs for the plain target
(standard ONNX); the two 'cpu lowering' rows run the cpu target's forms on WASM for comparison. The run needs an
export with the student encoder (any run of npm run train). Median ms per step over --steps
(default 30) after --warmup (default 5) untimed steps; memory from
performance.measureUserAgentSpecificMemory() (page + worker) and the resident memory of the
browser's processes, read while the WASM-threads cases train. --skip-webgpu leaves out the WebGPU
case (on a software adapter a step takes seconds).`;

const { values: a } = parseArgs({ options: { run: { type: 'string', default: DEFAULT_RUN }, steps: { type: 'string', default: '30' }, warmup: { type: 'string', default: '5' }, threads: { type: 'string' }, json: { type: 'string' }, 'skip-webgpu': { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } } });
if (a.help) {
  console.log(HELP);
  process.exit(0);
}
const steps = wholeNumberFlag('steps', a.steps, 1);
const warmup = wholeNumberFlag('warmup', a.warmup, 0);
const cores = (await import('node:os')).availableParallelism();
const threads = a.threads === undefined ? Math.max(2, Math.min(4, cores)) : wholeNumberFlag('threads', a.threads, 2);
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
if (!existsSync(chromiumPath)) throw new Error(`no chromium at ${chromiumPath}: install it (apt-get install chromium) or set CHROMIUM_PATH`);

/** 8 images of a vertical bar: the new task. */
const images = new Float32Array(8 * 784);
for (let i = 0; i < 8; i++) for (let r = 4; r < 24; r++) for (let c = 12 + (i % 3); c < 16 + (i % 3); c++) images[i * 784 + r * 28 + c] = 1;

const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)]!;
interface Row { where: string; msPerStep: number | null; stepsPerSecond: number | null; note?: string; memory?: Record<string, number> }
const rows: Row[] = [];
const row = (where: string, ms: number[] | null, note?: string, memory?: Record<string, number>) => {
  const m = ms ? median(ms) : null;
  rows.push({ where, msPerStep: m, stepsPerSecond: m ? 1000 / m : null, note, memory });
  console.log(`${where.padEnd(40)} ${m ? `${m.toFixed(1).padStart(7)} ms/step  ${(1000 / m).toFixed(2).padStart(6)} steps/s` : 'unavailable'}${note ? `  (${note})` : ''}`);
};

const server = await startServer({ run: a.run!, port: 0, host: '127.0.0.1', drainMs: 0, log: () => undefined });
const profile = mkdtempSync(join(tmpdir(), 'bench-browser-train-'));
console.log(`run ${server.registry.run}; ${steps} timed steps after ${warmup} warm-up; ${cores} cores\n`);
try {
  // ---- Node
  const info = readTeachInfo(server.exportDir);
  const m = server.registry.manifest;
  if (!m.student.encoder) throw new Error(`${server.exportDir} has no student encoder: give a run of npm run train (--run results/<id>)`);
  const file = (f: string) => new Uint8Array(readFileSync(join(server.exportDir, f)));
  const experts = await Promise.all((m.teacher?.experts ?? []).map(async (e) => ({ tasks: e.tasks, session: await ort.InferenceSession.create(file(e.file)) })));
  const tasks = [...m.tasks.map((t) => t.name), 'bench'];
  for (const n of [1, threads]) {
    const t = await Teacher.create(nodeTeachRuntime(n), {
      config: info.student, tasks, target: tasks.length - 1, leaves: exportWeights(file(m.student.decoder.file), file(m.student.encoder.file), m.student.prior), step: 0, images, seed: 1,
      teacher: (k) => {
        const e = experts.find((x) => x.tasks.includes(tasks[k]!));
        return e ? { session: e.session, zDim: m.teacher!.zDim } : undefined;
      },
    });
    const ms = await timeSteps(t, warmup, steps);
    await t.release();
    row(`node, ${n} thread${n > 1 ? 's' : ''}`, ms);
  }
  for (const e of experts) await e.session.release();

  // ---- Chromium
  const context = await chromium.launchPersistentContext(profile, { executablePath: chromiumPath, headless: true, args: ['--headless', '--no-sandbox', '--enable-unsafe-webgpu', '--no-first-run', '--disable-background-networking'] });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    // The page itself (cross-origin isolated); its own panel loads and then idles, as a visitor's would.
    await page.goto(`${server.url}/`);
    await page.waitForFunction(() => (globalThis as any).document.querySelector('teach-panel')?.getAttribute('state') === 'ready', undefined, { timeout: 120_000 });
    // The page's lowering (plain) on each provider, and the cpu target's on WASM: what the CPU-tuned forms would give there.
    const cases = [
      ['chromium wasm, 1 thread', 'wasm', 1, undefined],
      [`chromium wasm, ${threads} threads`, 'wasm', threads, undefined],
      ['chromium webgpu', 'webgpu', 1, undefined],
      ['chromium wasm, 1 thread, cpu lowering', 'wasm', 1, 'cpu'],
      [`chromium wasm, ${threads} threads, cpu lowering`, 'wasm', threads, 'cpu'],
    ] as const;
    for (const [where, backend, n, lowering] of cases) {
      if (backend === 'webgpu' && a['skip-webgpu']) continue;
      // Memory is read on both threaded cases, so that the reading costs each the same.
      const sampling = n > 1 ? sampleMemory(page, profile) : null;
      const r = (await page.evaluate(runInWorker, { base: `${server.url}/`, backend, threads: n, lowering, steps, warmup, images: Array.from(images) })) as { ms?: number[]; error?: string; threads?: number; adapter?: string };
      const memory = sampling ? await sampling.stop() : undefined;
      if (r.error) row(where, null, r.error);
      else row(where, r.ms!, backend === 'webgpu' && r.adapter ? `adapter: ${r.adapter}` : r.threads !== n ? `ran with ${r.threads} thread(s)` : undefined, memory);
      if (sampling && !memory) console.log(`${''.padEnd(40)} memory: not measured (the case ended within 3 s; give more --steps)`);
      if (memory) console.log(`${''.padEnd(40)} memory while training: ${Object.entries(memory).map(([k, v]) => `${k} ${(v / 2 ** 20).toFixed(0)} MiB`).join(', ')}`);
    }
  } finally {
    await context.close();
  }
} finally {
  await server.close();
  rmSync(profile, { recursive: true, force: true });
}
if (a.json) (await import('../src/util/fs.js')).writeFileAtomic(a.json, JSON.stringify({ run: a.run, steps, warmup, threads, cores, rows, at: new Date().toISOString() }, null, 2) + '\n');

/** In the page: a teach worker of its own, initialised for `backend`, timing the step. */
function runInWorker(o: { base: string; backend: string; threads: number; lowering?: string; steps: number; warmup: number; images: number[] }): Promise<unknown> {
  return new Promise((resolve) => {
    // Runs in the page (this file is compiled for Node, so the DOM's Worker is reached through globalThis).
    const w = new (globalThis as any).Worker(`${o.base}teach-worker.js`, { type: 'module' });
    w.onmessage = (e: { data: any }) => {
      const m = e.data;
      if (m.type === 'ready') w.postMessage({ type: 'bench', images: Float32Array.from(o.images), steps: o.steps, warmup: o.warmup });
      else if (m.type === 'bench') resolve({ ms: m.ms, threads: m.threads, adapter: m.adapter });
      else if (m.type === 'error') resolve({ error: m.message });
      if (m.type === 'bench' || m.type === 'error') w.terminate();
    };
    w.postMessage({ type: 'init', base: o.base, backend: o.backend, threads: o.threads, lowering: o.lowering });
  });
}

/** Peak memory while the case runs: the page's (measureUserAgentSpecificMemory: page and workers) and the resident memory of every process of this browser profile. */
function sampleMemory(page: Page, profileDir: string): { stop(): Promise<Record<string, number> | undefined> } {
  let peakRss = 0;
  let peakPage = 0;
  let on = true;
  const loop = (async () => {
    await new Promise((r) => setTimeout(r, 3000)); // past loading, into training
    while (on) {
      peakRss = Math.max(peakRss, browserRss(profileDir));
      const bytes = (await page.evaluate(async () => ((performance as any).measureUserAgentSpecificMemory ? (await (performance as any).measureUserAgentSpecificMemory()).bytes : 0)).catch(() => 0)) as number;
      peakPage = Math.max(peakPage, bytes);
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  return {
    async stop() {
      on = false;
      await loop;
      if (!peakRss && !peakPage) return undefined; // the case ended before the first reading
      return { 'page+worker (measureUserAgentSpecificMemory)': peakPage, 'browser processes RSS': peakRss };
    },
  };
}

/** Resident memory of the processes whose command line names this profile's folder (the browser and its children). */
function browserRss(profileDir: string): number {
  let total = 0;
  const ours = new Set<string>();
  const parent = new Map<string, string>();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.includes(profileDir)) ours.add(pid);
      parent.set(pid, /PPid:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '');
    } catch {
      // gone meanwhile
    }
  }
  for (const [pid] of parent) {
    let p: string | undefined = pid;
    for (let i = 0; p && i < 6; i++, p = parent.get(p)) {
      if (ours.has(p)) {
        try {
          total += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
        } catch {
          // gone meanwhile
        }
        break;
      }
    }
  }
  return total;
}
