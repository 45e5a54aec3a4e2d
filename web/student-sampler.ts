// <student-sampler task="fashion" seed="7"></student-sampler>: the student decoder running in
// the page with onnxruntime-web (WASM), drawing a grid of samples on a canvas. Served as one ES
// module at /student-sampler.js (bundled by the server at startup); any page embeds it with
//   <script type="module" src="http://HOST:3000/student-sampler.js"></script>
//   <student-sampler task="fashion" seed="7"></student-sampler>
// The noise comes from src/serve/sampling.ts, the module the server uses, so the pixels equal
// the server's GET /sample?task=fashion&seed=7 (within 1/255).
//
// Attributes: task (default: the first task), seed (integer; default random), n (1..256,
// default 16), scale (display zoom, default 4), src (server URL; default where this module
// came from). Sets state="loading" | "ready" | "error" and fires 'sampled' (detail: the Sample) or
// 'sampler-error' (detail: the Error).

import type * as Ort from 'onnxruntime-web';
import { composeGrid, parseSeed, randomSeed, studentFeeds, toGray8 } from '../src/serve/sampling.js';

interface ModelEntry {
  file: string;
  sha256: string;
  outputs: { name: string }[];
}

interface Manifest {
  run: string;
  tasks: { name: string; index: number }[];
  student: { zDim: number; decoder: ModelEntry; prior: { mu: number[][]; logvar: number[][] } };
}

interface Runtime {
  ort: typeof Ort;
  manifest: Manifest;
  session: Ort.InferenceSession;
  /** One WASM instance runs one call at a time. */
  queue: Promise<unknown>;
}

export interface Sample {
  task: string;
  seed: number;
  n: number;
  run: string;
  /** n gray 28x28 images, row-major, 784 bytes each. */
  gray: Uint8Array;
}

const DEFAULT_BASE = new URL('./', import.meta.url).href;
const runtimes = new Map<string, Promise<Runtime>>();

async function fetchOk(url: string): Promise<Response> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url} answered ${res.status}; is the sampling server (npm run serve) running there?`);
  return res;
}

/** onnxruntime-web, the manifest and the student decoder from the server at `base` (loaded once per page). */
export function loadRuntime(base = DEFAULT_BASE): Promise<Runtime> {
  const root = new URL('./', base).href;
  let runtime = runtimes.get(root);
  if (!runtime) {
    runtime = (async () => {
      const ort = (await import(/* @vite-ignore */ `${root}ort/ort.wasm.min.mjs`)) as typeof Ort;
      ort.env.wasm.wasmPaths = `${root}ort/`;
      ort.env.wasm.numThreads = 1;
      const manifest = (await (await fetchOk(`${root}models/manifest.json`)).json()) as Manifest;
      const decoder = manifest.student.decoder;
      const model = new Uint8Array(await (await fetchOk(`${root}models/${decoder.file}?v=${decoder.sha256.slice(0, 16)}`)).arrayBuffer());
      const session = await ort.InferenceSession.create(model, { executionProviders: ['wasm'] });
      return { ort, manifest, session, queue: Promise.resolve() };
    })();
    runtimes.set(root, runtime);
    runtime.catch(() => runtimes.delete(root)); // let a later call retry
  }
  return runtime;
}

/** n samples of the student for `task`, as the server's GET /sample would draw them. */
export async function sample(options: { task?: string; seed: number; n: number; base?: string }): Promise<Sample> {
  const rt = await loadRuntime(options.base);
  const { manifest, ort } = rt;
  const task = options.task ?? manifest.tasks[0]!.name;
  const t = manifest.tasks.find((x) => x.name === task);
  if (!t) throw new Error(`unknown task '${task}'; this model knows ${manifest.tasks.map((x) => x.name).join(', ')}`);
  const { n, seed } = options;
  const feeds = studentFeeds(manifest.student.prior, t.index, manifest.tasks.length, n, seed);
  const run = rt.queue.then(() =>
    rt.session.run({ z: new ort.Tensor('float32', feeds.z.data, feeds.z.dims), task: new ort.Tensor('float32', feeds.task.data, feeds.task.dims) }),
  );
  rt.queue = run.catch(() => undefined);
  const outputs = await run;
  const images = outputs[manifest.student.decoder.outputs[0]?.name ?? rt.session.outputNames[0]!]!;
  return { task, seed, n, run: manifest.run, gray: toGray8(images.data as Float32Array) };
}

function intAttr(el: HTMLElement, name: string, fallback: number, min: number, max: number): number {
  const text = el.getAttribute(name);
  if (text === null || text === '') return fallback;
  const v = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(v >= min && v <= max)) throw new Error(`${name}="${text}": expected a whole number from ${min} to ${max}`);
  return v;
}

const STYLE = `:host{display:inline-block;font:12px system-ui,sans-serif;color:#555}
canvas{display:block;image-rendering:pixelated;background:#000}
p{margin:4px 0 0}:host([state=error]) p{color:#b00}`;

export class StudentSampler extends HTMLElement {
  static observedAttributes = ['task', 'seed', 'n', 'scale', 'src'];
  /** The canvas holds the grid at 1:1 (one canvas pixel per image pixel); CSS scales it up. */
  readonly canvas: HTMLCanvasElement;
  /** What the canvas shows now. */
  lastSample: Sample | undefined;
  private readonly status: HTMLParagraphElement;
  private generation = 0;
  private scheduled = false;

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    const style = document.createElement('style');
    style.textContent = STYLE;
    this.canvas = document.createElement('canvas');
    this.canvas.setAttribute('part', 'canvas');
    this.status = document.createElement('p');
    this.status.setAttribute('part', 'status');
    root.append(style, this.canvas, this.status);
  }

  connectedCallback(): void {
    this.schedule();
  }

  attributeChangedCallback(): void {
    if (this.isConnected) this.schedule();
  }

  /** Draws again on the next microtask, once for any number of attribute changes. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      void this.draw();
    });
  }

  private async draw(): Promise<void> {
    const generation = ++this.generation;
    this.setAttribute('state', 'loading');
    this.status.textContent = 'loading…';
    try {
      const n = intAttr(this, 'n', 16, 1, 256);
      const scale = intAttr(this, 'scale', 4, 1, 32);
      const seedText = this.getAttribute('seed');
      const seed = seedText === null || seedText === '' ? randomSeed() : parseSeed(seedText);
      if (seed === undefined) throw new Error(`seed="${seedText}": expected a whole number`);
      const result = await sample({ task: this.getAttribute('task') || undefined, seed, n, base: this.getAttribute('src') || undefined });
      if (generation !== this.generation) return; // attributes changed meanwhile; a newer draw is on its way
      const grid = composeGrid(result.gray, n);
      const rgba = new Uint8ClampedArray(grid.width * grid.height * 4);
      for (let i = 0; i < grid.pixels.length; i++) {
        const v = grid.pixels[i]!;
        rgba[4 * i] = v;
        rgba[4 * i + 1] = v;
        rgba[4 * i + 2] = v;
        rgba[4 * i + 3] = 255;
      }
      this.canvas.width = grid.width;
      this.canvas.height = grid.height;
      this.canvas.style.width = `${grid.width * scale}px`;
      this.canvas.style.height = `${grid.height * scale}px`;
      this.canvas.getContext('2d')!.putImageData(new ImageData(rgba, grid.width, grid.height), 0, 0);
      this.lastSample = result;
      this.status.textContent = `${result.task}, seed ${seed}, run ${result.run}`;
      this.setAttribute('state', 'ready');
      this.dispatchEvent(new CustomEvent('sampled', { detail: result, bubbles: true, composed: true }));
    } catch (err) {
      if (generation !== this.generation) return;
      this.status.textContent = (err as Error).message;
      this.setAttribute('state', 'error');
      this.dispatchEvent(new CustomEvent('sampler-error', { detail: err, bubbles: true, composed: true }));
    }
  }
}

if (!customElements.get('student-sampler')) customElements.define('student-sampler', StudentSampler);
