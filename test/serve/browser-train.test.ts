// The teach panel in real Chromium (playwright-core, Debian's chromium, headless): a new task
// from a handful of dropped images is learned in the page on onnxruntime-web, while the run's
// earlier tasks are replayed; the download loads in onnxruntime-node and reproduces the page's
// pixels; a reload continues from IndexedDB. The fixture is a real smoke run (tools/train.ts).

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startServer, type RunningServer } from '../../src/serve/node/server.js';
import { studentFeeds, toGray8, gridLayout, tileOrigin } from '../../src/serve/sampling.js';
import { bakedWeights } from '../../src/teach/core.js';
import { loadFeatureExtractor } from '../../src/eval/featnet.js';
import { fid } from '../../src/eval/fid.js';
import { execFileSync } from 'node:child_process';
import { readExportManifest } from '../../src/train/export.js';
import { makeSmokeRun, ROOT, type SmokeRun } from '../teach/fixture.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
if (!existsSync(CHROMIUM)) throw new Error(`the browser tests need chromium at ${CHROMIUM}: install it (apt-get install chromium) or set CHROMIUM_PATH`);

/** Steps of the teaching session: enough for the new slot to draw bars on the smoke run's student. */
const STEPS = 60;

let run: SmokeRun;
let server: RunningServer;
let context: BrowserContext;
let page: Page;
let dir: string;
const pageErrors: string[] = [];

beforeAll(async () => {
  run = makeSmokeRun();
  server = await startServer({ run: run.run, port: 0, host: '127.0.0.1', drainMs: 0, log: () => undefined });
  dir = mkdtempSync(join(tmpdir(), 'teach-chromium-'));
  context = await chromium.launchPersistentContext(join(dir, 'profile'), { executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, acceptDownloads: true });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (err) => pageErrors.push(err.message));
}, 300_000);

afterAll(async () => {
  await context?.close();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  run?.remove();
});

/** n pictures of a vertical bar as PNG/JPEG files of several sizes (dark on white for some, as on paper). */
async function barFiles(n: number): Promise<{ name: string; mimeType: string; buffer: Buffer }[]> {
  const out = [];
  for (let i = 0; i < n; i++) {
    const side = [28, 56, 140][i % 3]!;
    const s = side / 28;
    const paper = i % 4 === 3;
    const px = Buffer.alloc(side * side, paper ? 255 : 0);
    for (let y = 4 * s; y < 24 * s; y++) for (let x = (12 + (i % 3)) * s; x < (16 + (i % 3)) * s; x++) px[y * side + x] = paper ? 0 : 255;
    const img = sharp(px, { raw: { width: side, height: side, channels: 1 } });
    const jpeg = i % 2 === 1;
    out.push({ name: `bar${i}.${jpeg ? 'jpg' : 'png'}`, mimeType: jpeg ? 'image/jpeg' : 'image/png', buffer: jpeg ? await img.jpeg({ quality: 95 }).toBuffer() : await img.png().toBuffer() });
  }
  return out;
}

const panel = (p: Page, expr: string) => p.evaluate((e) => new Function('el', `return ${e}`)((globalThis as any).document.querySelector('teach-panel')), expr);

async function waitState(p: Page, state: string, timeout = 120_000): Promise<void> {
  await p.waitForFunction(
    (s) => {
      const el = (globalThis as any).document.querySelector('teach-panel');
      if (el?.getAttribute('state') === 'error') throw new Error(`the teach panel failed: ${el.querySelector('#teach-error').textContent}`);
      return el?.getAttribute('state') === s;
    },
    state,
    { timeout },
  );
}

/** The gray pixels of the sample grid of `task` in the panel. */
async function gridOf(p: Page, task: string): Promise<{ width: number; height: number; gray: number[] }> {
  return p.evaluate((task) => {
    const c = (globalThis as any).document.querySelector(`teach-panel figure[data-task="${task}"] canvas`);
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data as Uint8ClampedArray;
    const gray: number[] = [];
    for (let i = 0; i < d.length; i += 4) gray.push(d[i]!);
    return { width: c.width, height: c.height, gray };
  }, task);
}

async function decodeWith(model: Uint8Array | string, prior: { mu: number[][]; logvar: number[][] }, t: number, T: number, n: number, seed: number): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(model as Uint8Array);
  const f = studentFeeds(prior, t, T, n, seed);
  const r = await s.run({ z: new ort.Tensor('float32', f.z.data, f.z.dims), task: new ort.Tensor('float32', f.task.data, f.task.dims) });
  await s.release();
  return r.images!.data as Float32Array;
}

let downloaded: string;
let losses: number[];

describe('the teach panel', () => {
  test('the page is cross-origin isolated and the worker trains on WASM threads', async () => {
    const res = await fetch(`${server.url}/`);
    expect(res.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(res.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    await page.goto(`${server.url}/`);
    await waitState(page, 'ready');
    expect(await page.evaluate(() => (globalThis as any).crossOriginIsolated)).toBe(true);
    expect(await page.textContent('#teach-status')).toMatch(/WASM, \d+ threads?/);
  });

  test('files that are not images say so; WebGPU says it is unavailable here', async () => {
    await page.selectOption('#teach-target', '');
    await page.fill('#teach-name', 'bars');
    await page.setInputFiles('#teach-files', [{ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not a picture') }]);
    await page.waitForFunction(() => /notes\.txt is not an image/.test((globalThis as any).document.querySelector('#teach-error').textContent));
    await page.selectOption('#teach-backend', 'webgpu');
    await page.waitForFunction(() => (globalThis as any).document.querySelector('teach-panel').getAttribute('state') === 'error');
    expect(await page.textContent('#teach-error')).toMatch(/WebGPU is not available in this browser|no GPU adapter/);
    await page.selectOption('#teach-backend', 'wasm');
    await waitState(page, 'ready');
  });

  test('a new task from 8 dropped images: the loss falls, the weights change, it gets its own prior and samples', async () => {
    await page.selectOption('#teach-target', '');
    await page.fill('#teach-name', 'bars');
    await page.setInputFiles('#teach-files', await barFiles(8));
    await page.waitForFunction(() => /8 images of 'bars'/.test((globalThis as any).document.querySelector('#teach-count').textContent));
    expect(await page.textContent('#teach-error')).toMatch(/light background and (was|were) inverted/);
    await page.fill('#teach-steps', String(STEPS));
    await page.click('#teach-train');
    await waitState(page, 'training');
    // The page stays responsive while the worker trains: timers fire without waiting for steps.
    const lag = await page.evaluate(async () => {
      let worst = 0;
      for (let i = 0; i < 20; i++) {
        const t0 = performance.now();
        await new Promise((r) => setTimeout(r, 10));
        worst = Math.max(worst, performance.now() - t0 - 10);
      }
      return worst;
    });
    expect(lag).toBeLessThan(100);
    // The step the page built is the plain (standard ONNX) lowering, as every provider but onnxruntime's CPU one gets it.
    expect(await panel(page, 'el.lastStarted.lowering')).toBe('plain');
    await page.waitForFunction(() => (globalThis as any).document.querySelector('teach-panel').lastDone, undefined, { timeout: 600_000 });
    await waitState(page, 'ready');
    losses = (await panel(page, 'el.losses')) as number[];
    expect(losses).toHaveLength(STEPS);
    const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
    expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)));
    expect(await page.textContent('#teach-rate')).toMatch(new RegExp(`${STEPS}/${STEPS} steps, [\\d.]+ steps/s, ETA`));
    // the task list has it now, with a grid of its own
    expect(await page.$$eval('#teach-target option', (os) => os.map((o) => (o as any).value))).toEqual(['mnist', 'fashion', 'bars', '']);
    // download: decoder, manifest, checkpoint
    const got = new Map<string, string>();
    const downloads = new Promise<void>((resolve) => {
      page.on('download', async (d) => {
        const path = join(dir, 'download', d.suggestedFilename());
        await d.saveAs(path);
        got.set(d.suggestedFilename(), path);
        if (got.size === 3) resolve();
      });
    });
    await page.click('#teach-download');
    await downloads;
    downloaded = join(dir, 'download');
    const m = readExportManifest(downloaded);
    expect(m.tasks.map((t) => t.name)).toEqual(['mnist', 'fashion', 'bars']);
    expect(m.student.decoder.inputs).toEqual([{ name: 'z', shape: ['N', 32], dtype: 'float32' }, { name: 'task', shape: ['N', 3], dtype: 'float32' }]);
    expect(m.student.decoder.outputs).toEqual([{ name: 'images', shape: ['N', 1, 28, 28], dtype: 'float32' }]);
    const before = bakedWeights(readFileSync(join(run.exportDir, run.manifest.student.decoder.file)), ['dec.']);
    const after = bakedWeights(readFileSync(join(downloaded, 'student_decoder.onnx')), ['dec.']);
    expect(after.get('dec.fc2.weight')).not.toEqual(before.get('dec.fc2.weight'));
    // its own prior row, and samples that look like its images more than the mnist slot's do
    expect(m.student.prior.mu).toHaveLength(3);
    expect(m.student.prior.mu.slice(0, 2)).toEqual(run.manifest.student.prior.mu);
    const bars = await decodeWith(readFileSync(join(downloaded, 'student_decoder.onnx')), m.student.prior, 2, 3, 64, 1);
    const digits = await decodeWith(readFileSync(join(downloaded, 'student_decoder.onnx')), m.student.prior, 0, 3, 64, 1);
    const template = new Float64Array(784);
    for (const f of await barFiles(8)) {
      const { data } = await sharp(f.buffer).grayscale().resize(28, 28, { kernel: 'cubic' }).raw().toBuffer({ resolveWithObject: true });
      const paper = data[0]! > 127;
      data.forEach((v, i) => (template[i]! += (paper ? 255 - v : v) / 255 / 8));
    }
    expect(correlation(meanImage(bars), template)).toBeGreaterThan(0.8);
    expect(correlation(meanImage(bars), template)).toBeGreaterThan(correlation(meanImage(digits), template));
    expect(pageErrors).toEqual([]);
  });

  test("the earlier tasks' samples stay within FID 40 of before (the LeNet FID on 256 samples)", async () => {
    // Measured on the smoke run: after 60 steps the drift is about 4 (mnist) and 2 (fashion), after
    // 30 steps in Node 22 and 6; with replay and anchors off it is above 200 (test/teach/core.test.ts),
    // and mnist's samples are about 40 from fashion's.
    const fx = await loadFeatureExtractor({ log: () => undefined });
    const m = readExportManifest(downloaded);
    try {
      for (const [t, task] of [[0, 'mnist'], [1, 'fashion']] as const) {
        const a = await fx.features(await decodeWith(join(run.exportDir, run.manifest.student.decoder.file), run.manifest.student.prior, t, 2, 256, 11), 256);
        const b = await fx.features(await decodeWith(join(downloaded, 'student_decoder.onnx'), m.student.prior, t, 3, 256, 11), 256);
        expect(fid(a, b, fx.dim), task).toBeLessThan(40);
      }
    } finally {
      await fx.close();
    }
  });

  test("the downloaded decoder loads in onnxruntime-node, reproduces the page's pixels, and the eval scores its samples", async () => {
    const m = readExportManifest(downloaded);
    for (const [t, task] of m.tasks.map((x) => [x.index, x.name] as const)) {
      const grid = await gridOf(page, task);
      const gray = toGray8(await decodeWith(join(downloaded, 'student_decoder.onnx'), m.student.prior, t, 3, 16, 7));
      const layout = gridLayout(16);
      expect([grid.width, grid.height]).toEqual([layout.width, layout.height]);
      let worst = 0;
      for (let i = 0; i < 16; i++) {
        const { x, y } = tileOrigin(layout, i);
        for (let r = 0; r < 28; r++) for (let c = 0; c < 28; c++) worst = Math.max(worst, Math.abs(grid.gray[(y + r) * grid.width + x + c]! - gray[i * 784 + r * 28 + c]!));
      }
      expect(worst, task).toBeLessThanOrEqual(1);
    }
    // npm run samples writes the downloaded decoder's samples; npm run eval -- --samples scores them.
    const f32 = join(dir, 'mnist.f32');
    const out = join(dir, 'score.json');
    execFileSync(process.execPath, ['--import', 'tsx', 'tools/samples.ts', '--run', downloaded, '--task', 'mnist', '--n', '256', '--out', f32], { cwd: ROOT, stdio: 'pipe' });
    execFileSync(process.execPath, ['--import', 'tsx', 'tools/eval.ts', '--samples', f32, '--task', 'mnist', '--fit-steps', '50', '--out', out], { cwd: ROOT, stdio: 'pipe' });
    const score = JSON.parse(readFileSync(out, 'utf8'));
    expect(Number.isFinite(score.fid ?? score.score?.fid)).toBe(true);
  });

  test('a reload continues from IndexedDB: the taught task, its images and the step count are back', async () => {
    await page.reload();
    await waitState(page, 'ready');
    expect(await page.textContent('#teach-status')).toMatch(new RegExp(`tasks mnist, fashion, bars \\(your saved student, ${STEPS} steps taught\\)`));
    await page.selectOption('#teach-target', 'bars');
    expect(await page.textContent('#teach-count')).toMatch(/8 images of 'bars'/);
    // the grid drawn after the reload is the same student
    await page.waitForSelector('teach-panel figure[data-task="bars"] canvas');
    const m = readExportManifest(downloaded);
    const grid = await gridOf(page, 'bars');
    const gray = toGray8(await decodeWith(join(downloaded, 'student_decoder.onnx'), m.student.prior, 2, 3, 16, 7));
    expect(Math.max(...gray.slice(0, 28).map((v, c) => Math.abs(v - grid.gray[c]!)))).toBeLessThanOrEqual(1);
  });

  test('pause holds the step count, resume goes on, stop ends the session and keeps what was learned', async () => {
    await page.selectOption('#teach-target', 'bars');
    await page.fill('#teach-steps', '1000');
    await page.click('#teach-train');
    await page.waitForFunction(() => ((globalThis as any).document.querySelector('teach-panel').lastProgress?.step ?? 0) >= 2, undefined, { timeout: 120_000 });
    await page.click('#teach-pause');
    await waitState(page, 'paused');
    const held = (await panel(page, 'el.lastProgress.step')) as number;
    await page.waitForTimeout(1500);
    expect(await panel(page, 'el.lastProgress.step')).toBe(held);
    await page.click('#teach-resume');
    await page.waitForFunction((h) => (globalThis as any).document.querySelector('teach-panel').lastProgress.step > h, held, { timeout: 60_000 });
    await page.click('#teach-stop');
    await waitState(page, 'ready');
    const done = (await panel(page, 'el.lastDone')) as { steps: number; stopped: boolean };
    expect(done.stopped).toBe(true);
    expect(done.steps).toBeGreaterThan(held);
    expect(done.steps).toBeLessThan(1000);
    expect(pageErrors).toEqual([]);
  });

  test('start over forgets the saved student; a downloaded checkpoint brings it back, and a file that is not one is refused', async () => {
    page.once('dialog', (d) => void d.accept());
    await page.click('#teach-reset');
    await page.waitForFunction(() => /tasks mnist, fashion\./.test((globalThis as any).document.querySelector('#teach-status').textContent));
    await waitState(page, 'ready');
    await page.setInputFiles('#teach-load', join(downloaded, 'checkpoint.safetensors'));
    await page.waitForFunction((steps) => (globalThis as any).document.querySelector('#teach-status').textContent.includes(`tasks mnist, fashion, bars (your saved student, ${steps} steps taught)`), STEPS, { timeout: 120_000 });
    await page.setInputFiles('#teach-load', { name: 'other.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from('not a checkpoint at all') });
    await page.waitForFunction(() => /the checkpoint was not loaded/.test((globalThis as any).document.querySelector('#teach-error').textContent), undefined, { timeout: 120_000 });
    await waitState(page, 'ready');
    expect(await page.textContent('#teach-status')).toMatch(/tasks mnist, fashion, bars \(your saved student/);
    expect(pageErrors).toEqual([]);
  });
});

function meanImage(x: Float32Array): Float64Array {
  const n = x.length / 784;
  const m = new Float64Array(784);
  for (let i = 0; i < x.length; i++) m[i % 784]! += x[i]! / n;
  return m;
}

function correlation(a: Float64Array, b: Float64Array): number {
  const ma = a.reduce((s, v) => s + v, 0) / a.length;
  const mb = b.reduce((s, v) => s + v, 0) / b.length;
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += (a[i]! - ma) * (b[i]! - mb);
    aa += (a[i]! - ma) ** 2;
    bb += (b[i]! - mb) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}
