// The browser side, end to end: the real server on an ephemeral loopback port, Debian's
// chromium driven by playwright-core. The page draws every task, the pixels equal the server's
// for the same task and seed (within 1/255), and the two-line embed works from another origin.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startServer, type RunningServer } from '../../src/serve/node/server.js';
import { gridLayout, tileOrigin } from '../../src/serve/sampling.js';
import { decodeGrayPng, fromBase64, makeDemoRun, type DemoRun } from './fixture.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

if (!existsSync(CHROMIUM)) throw new Error(`the browser tests need chromium at ${CHROMIUM}: install it (apt-get install chromium) or set CHROMIUM_PATH`);

let demo: DemoRun;
let server: RunningServer;
let context: BrowserContext;
let page: Page;
let userDataDir: string;
const pageErrors: string[] = [];

beforeAll(async () => {
  demo = makeDemoRun();
  server = await startServer({ run: demo.run, port: 0, host: '127.0.0.1', drainMs: 0, log: () => undefined });
  userDataDir = mkdtempSync(join(tmpdir(), 'serve-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error') pageErrors.push(`${msg.text()} (${msg.location().url})`);
  });
});

afterAll(async () => {
  await context?.close();
  await server?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  demo?.remove();
});

interface Drawn {
  width: number;
  height: number;
  gray: number[];
}

/** Waits until the <student-sampler> at `selector` shows task/seed/n, and reads its canvas (the red channel; R = G = B). */
async function drawn(p: Page, selector: string, want: { task: string; seed?: number; n: number }): Promise<Drawn> {
  await p.waitForFunction(
    ({ selector, want }) => {
      const el = (globalThis as any).document.querySelector(selector);
      if (el?.getAttribute('state') === 'error') throw new Error(`the sampler failed: ${el.shadowRoot.querySelector('p').textContent}`);
      const s = el?.lastSample;
      return el?.getAttribute('state') === 'ready' && s && s.task === want.task && s.n === want.n && (want.seed === undefined || s.seed === want.seed);
    },
    { selector, want },
    { timeout: 60_000 },
  );
  return p.evaluate((selector) => {
    const canvas = (globalThis as any).document.querySelector(selector).canvas;
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data as Uint8ClampedArray;
    const gray: number[] = [];
    for (let i = 0; i < data.length; i += 4) {
      if (data[i] !== data[i + 1] || data[i] !== data[i + 2] || data[i + 3] !== 255) throw new Error(`pixel ${i / 4} is not opaque gray`);
      gray.push(data[i]!);
    }
    return { width: canvas.width, height: canvas.height, gray };
  }, selector);
}

/** The server's samples for the same query (format=json), decoded. */
async function serverSamples(task: string, seed: number, n: number): Promise<Uint8Array[]> {
  const res = await fetch(`${server.url}/sample?task=${task}&seed=${seed}&n=${n}&format=json`);
  expect(res.status).toBe(200);
  const body = (await res.json()) as { images: string[] };
  return Promise.all(body.images.map(async (b64) => (await decodeGrayPng(fromBase64(b64))).pixels));
}

/** Largest difference (in 1/255 steps) between the canvas tiles and the server's samples. */
function maxDifference(canvas: Drawn, samples: Uint8Array[]): number {
  const layout = gridLayout(samples.length);
  expect([canvas.width, canvas.height]).toEqual([layout.width, layout.height]);
  let worst = 0;
  samples.forEach((tile, i) => {
    const { x, y } = tileOrigin(layout, i);
    for (let r = 0; r < 28; r++) for (let c = 0; c < 28; c++) worst = Math.max(worst, Math.abs(canvas.gray[(y + r) * canvas.width + x + c]! - tile[r * 28 + c]!));
  });
  return worst;
}

describe('the page at /', () => {
  test('draws an image for each task', async () => {
    await page.goto(`${server.url}/`);
    await page.waitForSelector('#task option', { state: 'attached' });
    for (const task of ['mnist', 'fashion']) {
      await page.selectOption('#task', task);
      const canvas = await drawn(page, '#sampler', { task, seed: 7, n: 16 });
      expect([canvas.width, canvas.height]).toEqual([gridLayout(16).width, gridLayout(16).height]);
      const tile = canvas.gray.slice(0, 28); // first row of the first sample
      expect(Math.max(...tile) - Math.min(...tile)).toBeGreaterThan(0); // an image, not a blank
      // the server's picture beside it loaded too
      await page.waitForFunction(() => (globalThis as any).document.querySelector('#server').complete);
      expect(await page.evaluate(() => (globalThis as any).document.querySelector('#server').naturalWidth)).toBe(gridLayout(16).width * 3);
    }
    expect(pageErrors).toEqual([]);
  });

  test('for the same task and seed, the browser pixels equal the server pixels within 1/255', async () => {
    await page.goto(`${server.url}/`);
    await page.waitForSelector('#task option', { state: 'attached' });
    for (const [task, seed, n] of [['mnist', 7, 4], ['fashion', 7, 4], ['fashion', 123456789, 9]] as const) {
      await page.evaluate(({ task, seed, n }) => {
        const el = (globalThis as any).document.querySelector('#sampler');
        el.setAttribute('task', task);
        el.setAttribute('seed', String(seed));
        el.setAttribute('n', String(n));
      }, { task, seed, n });
      const canvas = await drawn(page, '#sampler', { task, seed, n });
      expect(maxDifference(canvas, await serverSamples(task, seed, n)), `${task} seed ${seed}`).toBeLessThanOrEqual(1);
    }
    expect(pageErrors).toEqual([]);
  });
});

describe('embedding', () => {
  let other: Server;
  let otherUrl: string;
  beforeAll(async () => {
    // Another origin (localhost vs 127.0.0.1, another port) whose page has only the two-line snippet.
    const snippet = `<!doctype html><title>embed</title>
<script type="module" src="${server.url}/student-sampler.js"></script>
<student-sampler task="fashion" seed="7" n="4"></student-sampler>`;
    other = createServer((_, res) => res.writeHead(200, { 'Content-Type': 'text/html' }).end(snippet));
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    otherUrl = `http://localhost:${(other.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    other.closeAllConnections();
    await new Promise<void>((resolve) => other.close(() => resolve()));
  });

  test('two lines in a page from another origin draw the same samples as the server', async () => {
    const p = await context.newPage();
    const errors: string[] = [];
    p.on('pageerror', (err) => errors.push(err.message));
    await p.goto(otherUrl);
    const canvas = await drawn(p, 'student-sampler', { task: 'fashion', seed: 7, n: 4 });
    expect(maxDifference(canvas, await serverSamples('fashion', 7, 4))).toBeLessThanOrEqual(1);
    expect(errors).toEqual([]);
    await p.close();
  });
});
