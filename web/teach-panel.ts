// <teach-panel>: the page's "teach" panel. The visitor picks a task of the run to keep training,
// or names a new one, gives it images (drawn on the canvas or dropped as PNG/JPEG files of any
// size, made 28x28 gray as the eval reads images), and the student learns it in the page
// (web/teach-worker.ts) while replaying the other tasks. Progress, losses and sample grids come
// back from the worker; the taught student and the visitor's images are kept in IndexedDB, so a
// reload goes on from them; "Download" saves the decoder, its manifest and the checkpoint.
//
// Sets state="loading" | "ready" | "training" | "paused" | "error" for scripts and tests.

import { composeGrid } from '../src/serve/sampling.js';
import { toTaskImage } from '../src/teach/images.js';
import type { Backend, FromWorker, ToWorker } from './teach-protocol.js';

const BASE = new URL('./', import.meta.url).href;
const DB = 'lifelong-gen-teach';
const STORE = 'students';

interface Saved {
  run: string;
  checkpoint?: Uint8Array;
  tasks?: string[];
  /** The visitor's images by task name, [n, 784] each. */
  images: Record<string, Float32Array>;
}

function openDb(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'run' });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(new Error(`IndexedDB is not available (${req.error?.message}); what you teach will not survive a reload`));
  });
}

function idb<T>(db: IDBDatabase, mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = f(db.transaction(STORE, mode).objectStore(STORE));
    req.onsuccess = () => resolve(req.result as T);
    req.onerror = () => reject(new Error(`IndexedDB: ${req.error?.message}${req.error?.name === 'QuotaExceededError' ? ' (the browser has no room left for this site: free some, or download the student and start over)' : ''}`));
  });
}

const HTML = `
<p id="teach-status">Loading the student…</p>
<div class="teach-row">
  <label>task <select id="teach-target"></select></label>
  <label id="teach-name-label">new task name <input id="teach-name" maxlength="40" placeholder="e.g. my-letters"></label>
  <label>steps <input id="teach-steps" type="number" value="200" min="1" max="100000" step="1"></label>
  <label>backend <select id="teach-backend"><option value="auto">auto (WebGPU where faster)</option><option value="wasm">WASM</option><option value="webgpu">WebGPU</option></select></label>
  <label>threads <select id="teach-threads"><option value="auto">auto</option><option value="1">1</option></select></label>
</div>
<div class="teach-row">
  <div>
    <canvas id="teach-canvas" width="168" height="168" title="draw here"></canvas>
    <div><button type="button" id="teach-add">Add drawing</button> <button type="button" id="teach-clear">Clear</button></div>
  </div>
  <div id="teach-drop">Drop PNG or JPEG files here, or <input id="teach-files" type="file" accept="image/png,image/jpeg" multiple></div>
  <div><p id="teach-count">No images yet.</p><div id="teach-images"></div><button type="button" id="teach-forget">Remove this task's images</button></div>
</div>
<div class="teach-row">
  <button type="button" id="teach-train">Train</button>
  <button type="button" id="teach-pause" disabled>Pause</button>
  <button type="button" id="teach-resume" disabled>Resume</button>
  <button type="button" id="teach-stop" disabled>Stop</button>
  <button type="button" id="teach-download">Download</button>
  <button type="button" id="teach-reset">Start over</button>
  <label>continue from a downloaded checkpoint <input id="teach-load" type="file" accept=".safetensors"></label>
</div>
<progress id="teach-progress" max="1" value="0"></progress> <span id="teach-rate"></span>
<p id="teach-losses"></p>
<p id="teach-error" role="alert"></p>
<div id="teach-grids"></div>
<div id="teach-links"></div>`;

const STYLE = `teach-panel{display:block}
teach-panel .teach-row{display:flex;gap:1rem;flex-wrap:wrap;align-items:end;margin:.75rem 0}
teach-panel label{display:flex;flex-direction:column;font-size:13px;color:#555}
teach-panel #teach-canvas{background:#000;touch-action:none;cursor:crosshair}
teach-panel #teach-drop{border:2px dashed #aaa;padding:1rem;min-width:12rem;font-size:13px}
teach-panel #teach-drop.over{border-color:#06c}
teach-panel #teach-images canvas{width:28px;height:28px;margin:1px;image-rendering:pixelated}
teach-panel progress{width:20rem}
teach-panel #teach-error{color:#b00}
teach-panel #teach-grids{display:flex;gap:1.5rem;flex-wrap:wrap}
teach-panel #teach-grids canvas{image-rendering:pixelated;background:#000;width:232px}
teach-panel #teach-grids h3{font-size:13px;margin:0 0 4px}`;

const $ = <T extends HTMLElement>(root: ParentNode, id: string) => root.querySelector(`#${id}`) as T;

export class TeachPanel extends HTMLElement {
  private worker: Worker | null = null;
  private db: IDBDatabase | null = null;
  private saved: Saved = { run: '', images: {} };
  private tasks: string[] = [];
  private run = '';
  /** The task being taught (its name), while training. */
  private teaching: string | null = null;
  /** A checkpoint file the visitor loaded: kept (saved) once the worker has accepted it. */
  private pending: Uint8Array | null = null;
  /** A message for the error line once the restarted worker is ready. */
  private notice = '';
  /** Steps the student has been taught in this browser (seeds each session's draws, so a session is reproducible). */
  private taught = 0;
  /** The latest progress, samples and download, for scripts and tests. */
  lastProgress: Extract<FromWorker, { type: 'progress' }> | null = null;
  lastStarted: Extract<FromWorker, { type: 'started' }> | null = null;
  lastSamples: Extract<FromWorker, { type: 'samples' }> | null = null;
  lastExport: Extract<FromWorker, { type: 'export' }> | null = null;
  lastDone: Extract<FromWorker, { type: 'done' }> | null = null;
  /** The loss of every step of the current (or last) session. */
  losses: number[] = [];

  connectedCallback(): void {
    if (this.childElementCount) return;
    const style = document.createElement('style');
    style.textContent = STYLE;
    this.append(style);
    this.insertAdjacentHTML('beforeend', HTML);
    this.wire();
    void this.boot();
  }

  private el<T extends HTMLElement>(id: string): T {
    return $<T>(this, id);
  }

  private set state(s: string) {
    this.setAttribute('state', s);
    const training = s === 'training' || s === 'paused';
    this.el<HTMLButtonElement>('teach-train').disabled = training || s === 'loading';
    this.el<HTMLButtonElement>('teach-pause').disabled = s !== 'training';
    this.el<HTMLButtonElement>('teach-resume').disabled = s !== 'paused';
    this.el<HTMLButtonElement>('teach-stop').disabled = !training;
    for (const id of ['teach-target', 'teach-backend', 'teach-threads', 'teach-reset', 'teach-load']) this.el<HTMLInputElement>(id).disabled = training;
  }

  private error(message: string): void {
    this.el('teach-error').textContent = message;
  }

  private async boot(): Promise<void> {
    this.state = 'loading';
    try {
      const res = await fetch(`${BASE}v1/models`);
      if (!res.ok) throw new Error(`GET /v1/models answered ${res.status}`);
      this.run = ((await res.json()) as { run: string }).run;
      try {
        this.db = await openDb();
        this.saved = (await idb<Saved | undefined>(this.db, 'readonly', (s) => s.get(this.run))) ?? { run: this.run, images: {} };
      } catch (err) {
        this.error((err as Error).message);
      }
      this.startWorker();
    } catch (err) {
      this.state = 'error';
      this.error(`cannot load the teach panel: ${(err as Error).message}; is npm run serve running?`);
    }
  }

  private startWorker(): void {
    this.worker?.terminate();
    this.state = 'loading';
    const backend = this.el<HTMLSelectElement>('teach-backend').value as Backend | 'auto';
    const pick = this.el<HTMLSelectElement>('teach-threads').value;
    const threads = pick === 'auto' ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : Number(pick);
    const w = new Worker(`${BASE}teach-worker.js`, { type: 'module' });
    w.onmessage = (e: MessageEvent<FromWorker>) => this.onMessage(e.data);
    w.onerror = (e) => {
      this.state = 'error';
      this.error(`the training worker failed to start: ${e.message || 'the script did not load'}`);
    };
    this.worker = w;
    this.send({ type: 'init', base: BASE, backend, threads, saved: this.pending ?? this.saved.checkpoint });
  }

  private send(m: ToWorker): void {
    this.worker?.postMessage(m);
  }

  private onMessage(m: FromWorker): void {
    switch (m.type) {
      case 'ready': {
        this.tasks = m.tasks;
        this.taught = m.step;
        this.fillTargets();
        const where = (m.backend === 'webgpu' ? 'WebGPU' : `WASM, ${m.threads} thread${m.threads > 1 ? 's' : ''}${m.isolated ? '' : ' (the page is not cross-origin isolated, so no threads)'}`) + (m.choice ? ` (auto: ${m.choice})` : '');
        this.el('teach-status').textContent = `Student of run ${m.run}: tasks ${m.tasks.join(', ')}${m.fromSaved ? ` (your saved student, ${m.step} steps taught)` : ''}. Trains here on ${where}; configuration from ${m.configSource}.`;
        this.error([m.note, this.notice].filter(Boolean).join('; '));
        this.notice = '';
        this.state = 'ready';
        if (this.pending) {
          const accepted = m.fromSaved;
          if (accepted) {
            this.saved.checkpoint = this.pending;
            this.saved.tasks = m.tasks;
            void this.persist();
          }
          this.pending = null;
          // Refused: the worker fell back to the server's student; go back to what was saved before.
          if (!accepted && this.saved.checkpoint) {
            this.notice = `${m.note.replace(/: starting from the server's student$/, '')}; the checkpoint was not loaded, your saved student is back`;
            this.startWorker();
          }
        }
        break;
      }
      case 'samples':
        this.lastSamples = m;
        this.drawGrids(m);
        break;
      case 'started':
        this.lastStarted = m;
        this.losses = [];
        this.lastDone = null;
        this.state = 'training';
        this.el<HTMLProgressElement>('teach-progress').max = m.total;
        this.el('teach-rate').textContent = `building done (${m.inputs} inputs, ${(m.graphBytes / 1e6).toFixed(2)} MB graph, ${m.lowering} lowering); first step…`;
        break;
      case 'progress': {
        this.lastProgress = m;
        this.losses.push(m.metrics.loss ?? Number.NaN);
        this.el<HTMLProgressElement>('teach-progress').value = m.step;
        const eta = m.etaSeconds < 90 ? `${Math.round(m.etaSeconds)} s` : `${Math.round(m.etaSeconds / 60)} min`;
        this.el('teach-rate').textContent = `${m.step}/${m.total} steps, ${m.stepsPerSecond.toFixed(2)} steps/s, ETA ${eta}`;
        this.el('teach-losses').textContent = Object.entries(m.metrics).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(' · ');
        break;
      }
      case 'paused':
        this.state = 'paused';
        break;
      case 'state':
        this.saved.checkpoint = m.checkpoint;
        this.saved.tasks = m.tasks;
        void this.persist();
        break;
      case 'done':
        this.lastDone = m;
        this.taught += m.steps;
        if (this.teaching && !this.tasks.includes(this.teaching)) this.tasks = [...this.tasks, this.teaching];
        if (this.teaching) this.el<HTMLSelectElement>('teach-target').value = this.teaching;
        this.teaching = null;
        this.fillTargets();
        this.state = 'ready';
        this.el('teach-rate').textContent += m.stopped ? ' (stopped)' : ' (done)';
        break;
      case 'export':
        this.lastExport = m;
        this.offer(m);
        break;
      case 'error':
        this.error(m.message);
        this.teaching = null;
        this.state = m.during === 'init' ? 'error' : 'ready';
        break;
    }
  }

  private async persist(): Promise<void> {
    if (!this.db) return;
    try {
      await idb(this.db, 'readwrite', (s) => s.put(this.saved));
    } catch (err) {
      this.error((err as Error).message);
    }
  }

  private fillTargets(): void {
    const sel = this.el<HTMLSelectElement>('teach-target');
    const keep = sel.value;
    sel.replaceChildren(...this.tasks.map((t) => new Option(t, t)), new Option('new task…', ''));
    sel.value = this.tasks.includes(keep) || keep === '' ? keep : '';
    this.showImages();
  }

  /** The name of the task the controls point at ('' while a new one has no name yet). */
  private targetName(): string {
    const v = this.el<HTMLSelectElement>('teach-target').value;
    return v || this.el<HTMLInputElement>('teach-name').value.trim();
  }

  private showImages(): void {
    const isNew = this.el<HTMLSelectElement>('teach-target').value === '';
    this.el('teach-name-label').style.display = isNew ? '' : 'none';
    const name = this.targetName();
    const imgs = this.saved.images[name];
    const n = imgs ? imgs.length / 784 : 0;
    this.el('teach-count').textContent = n ? `${n} image${n > 1 ? 's' : ''} of '${name}'` : name ? `No images of '${name}' yet.` : 'Name the new task, then add images.';
    const box = this.el('teach-images');
    box.replaceChildren();
    for (let i = 0; i < Math.min(n, 64); i++) {
      const c = document.createElement('canvas');
      c.width = c.height = 28;
      const rgba = new Uint8ClampedArray(784 * 4);
      for (let p = 0; p < 784; p++) rgba.fill(Math.round(imgs![i * 784 + p]! * 255), p * 4, p * 4 + 3), (rgba[p * 4 + 3] = 255);
      c.getContext('2d')!.putImageData(new ImageData(rgba, 28, 28), 0, 0);
      box.append(c);
    }
  }

  private addImages(images: Float32Array[]): void {
    const name = this.targetName();
    if (!name) return this.error('Name the new task first (the box "new task name").');
    if (!/^[\w][\w .-]{0,39}$/.test(name)) return this.error(`'${name}' is not a task name: use letters, digits, spaces, dots and dashes (up to 40)`);
    const old = this.saved.images[name] ?? new Float32Array(0);
    const all = new Float32Array(old.length + images.length * 784);
    all.set(old);
    images.forEach((im, i) => all.set(im, old.length + i * 784));
    this.saved.images[name] = all;
    void this.persist();
    this.error('');
    this.showImages();
  }

  private async addFiles(files: FileList | File[]): Promise<void> {
    const out: Float32Array[] = [];
    const bad: string[] = [];
    let inverted = 0;
    for (const f of files) {
      try {
        const bitmap = await createImageBitmap(f);
        const c = new OffscreenCanvas(bitmap.width, bitmap.height);
        const ctx = c.getContext('2d')!;
        ctx.fillStyle = '#000';
        ctx.fillRect(0, 0, c.width, c.height); // transparent parts count as black, as the eval flattens them
        ctx.drawImage(bitmap, 0, 0);
        const r = toTaskImage(ctx.getImageData(0, 0, c.width, c.height).data, c.width, c.height);
        if (r.inverted) inverted++;
        out.push(r.image);
      } catch {
        bad.push(f.name);
      }
    }
    if (out.length) this.addImages(out);
    const notes = [];
    if (bad.length) notes.push(`${bad.join(', ')} ${bad.length > 1 ? 'are not images' : 'is not an image'} this browser can decode: drop PNG or JPEG files`);
    if (inverted) notes.push(`${inverted} picture${inverted > 1 ? 's had' : ' had'} a light background and ${inverted > 1 ? 'were' : 'was'} inverted to light-on-dark, as the datasets are`);
    if (notes.length) this.error(notes.join('; '));
  }

  private wire(): void {
    const canvas = this.el<HTMLCanvasElement>('teach-canvas');
    const ctx = canvas.getContext('2d')!;
    const clear = () => {
      ctx.fillStyle = '#000';
      ctx.fillRect(0, 0, canvas.width, canvas.height);
    };
    clear();
    let last: { x: number; y: number } | null = null;
    const at = (e: PointerEvent) => {
      const r = canvas.getBoundingClientRect();
      return { x: ((e.clientX - r.left) * canvas.width) / r.width, y: ((e.clientY - r.top) * canvas.height) / r.height };
    };
    canvas.addEventListener('pointerdown', (e) => {
      canvas.setPointerCapture(e.pointerId);
      last = at(e);
    });
    canvas.addEventListener('pointermove', (e) => {
      if (!last) return;
      const p = at(e);
      ctx.strokeStyle = '#fff';
      ctx.lineWidth = 14;
      ctx.lineCap = 'round';
      ctx.beginPath();
      ctx.moveTo(last.x, last.y);
      ctx.lineTo(p.x, p.y);
      ctx.stroke();
      last = p;
    });
    canvas.addEventListener('pointerup', () => (last = null));
    this.el('teach-clear').addEventListener('click', clear);
    this.el('teach-add').addEventListener('click', () => {
      const r = toTaskImage(ctx.getImageData(0, 0, canvas.width, canvas.height).data, canvas.width, canvas.height);
      if (r.image.every((v) => v === 0)) return this.error('The canvas is empty: draw something first.');
      this.addImages([r.image]);
      clear();
    });
    const drop = this.el('teach-drop');
    drop.addEventListener('dragover', (e) => {
      e.preventDefault();
      drop.classList.add('over');
    });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (e) => {
      e.preventDefault();
      drop.classList.remove('over');
      if (e.dataTransfer?.files.length) void this.addFiles(e.dataTransfer.files);
    });
    const files = this.el<HTMLInputElement>('teach-files');
    files.addEventListener('change', () => {
      if (files.files?.length) void this.addFiles(files.files).then(() => (files.value = ''));
    });
    this.el('teach-target').addEventListener('change', () => this.showImages());
    this.el('teach-name').addEventListener('input', () => this.showImages());
    this.el('teach-forget').addEventListener('click', () => {
      delete this.saved.images[this.targetName()];
      void this.persist();
      this.showImages();
    });
    const load = this.el<HTMLInputElement>('teach-load');
    load.addEventListener('change', () => {
      const f = load.files?.[0];
      if (!f) return;
      void f.arrayBuffer().then((b) => {
        load.value = '';
        this.pending = new Uint8Array(b);
        this.startWorker();
      });
    });
    this.el('teach-backend').addEventListener('change', () => this.startWorker());
    this.el('teach-threads').addEventListener('change', () => this.startWorker());
    this.el('teach-train').addEventListener('click', () => this.train());
    this.el('teach-pause').addEventListener('click', () => this.send({ type: 'pause' }));
    this.el('teach-resume').addEventListener('click', () => {
      this.send({ type: 'resume' });
      this.state = 'training';
    });
    this.el('teach-stop').addEventListener('click', () => this.send({ type: 'stop' }));
    this.el('teach-download').addEventListener('click', () => this.send({ type: 'export' }));
    this.el('teach-reset').addEventListener('click', () => {
      if (!confirm('Forget the student taught in this browser and your images, and start from the server\'s student?')) return;
      this.saved = { run: this.run, images: {} };
      void (this.db ? idb(this.db, 'readwrite', (s) => s.delete(this.run)) : Promise.resolve()).then(() => this.startWorker());
    });
  }

  private train(): void {
    const name = this.targetName();
    const isNew = this.el<HTMLSelectElement>('teach-target').value === '';
    if (!name) return this.error('Name the new task first.');
    if (isNew && this.tasks.includes(name)) return this.error(`the run already has a task '${name}': pick it in the task list to keep training it`);
    const images = this.saved.images[name];
    if (!images?.length) return this.error(`Add at least one image of '${name}' (draw one and press "Add drawing", or drop PNG/JPEG files).`);
    const steps = Number(this.el<HTMLInputElement>('teach-steps').value);
    if (!(Number.isInteger(steps) && steps >= 1 && steps <= 100000)) return this.error('steps: a whole number from 1 to 100000');
    const tasks = isNew ? [...this.tasks, name] : this.tasks;
    this.teaching = name;
    this.error('');
    this.send({ type: 'start', tasks, target: tasks.indexOf(name), images: images.slice(), steps, seed: this.taught + 1 });
  }

  private drawGrids(m: Extract<FromWorker, { type: 'samples' }>): void {
    const box = this.el('teach-grids');
    box.replaceChildren(
      ...m.tasks.map((task, k) => {
        const fig = document.createElement('figure');
        fig.dataset.task = task;
        fig.style.margin = '0';
        const h = document.createElement('h3');
        h.textContent = `${task}${m.live ? ' (training)' : ''}`;
        const grid = composeGrid(m.gray[k]!, m.n);
        const c = document.createElement('canvas');
        c.width = grid.width;
        c.height = grid.height;
        const rgba = new Uint8ClampedArray(grid.pixels.length * 4);
        grid.pixels.forEach((v, i) => rgba.set([v, v, v, 255], i * 4));
        c.getContext('2d')!.putImageData(new ImageData(rgba, grid.width, grid.height), 0, 0);
        fig.append(h, c);
        return fig;
      }),
    );
  }

  /** Saves the three files (each a download) and lists them as links too. */
  private offer(m: Extract<FromWorker, { type: 'export' }>): void {
    const links = this.el('teach-links');
    for (const a of links.querySelectorAll('a')) URL.revokeObjectURL(a.href);
    links.replaceChildren();
    const files: [string, BlobPart, string][] = [
      ['student_decoder.onnx', m.decoder as Uint8Array<ArrayBuffer>, 'application/octet-stream'],
      ['manifest.json', m.manifest, 'application/json'],
      ['checkpoint.safetensors', m.checkpoint as Uint8Array<ArrayBuffer>, 'application/octet-stream'],
    ];
    for (const [name, body, type] of files) {
      const a = document.createElement('a');
      a.href = URL.createObjectURL(new Blob([body], { type }));
      a.download = name;
      a.textContent = name;
      links.append(a, ' ');
      a.click();
    }
  }
}

if (!customElements.get('teach-panel')) customElements.define('teach-panel', TeachPanel);
