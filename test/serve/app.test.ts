// One conformance suite, two executors: the same app through app.request() on
// onnxruntime-node + nodePngEncoder (the Node server) and onnxruntime-web (WASM) + the
// JavaScript PNG encoder (what an edge runtime without native addons would use).

import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Hono } from 'hono';
import { createApp } from '../../src/serve/app.js';
import { ortNodeBackend } from '../../src/serve/backend/ort-node.js';
import { ortWebBackend } from '../../src/serve/backend/ort-web.js';
import { ortDistDir } from '../../src/serve/node/assets.js';
import { folderFiles } from '../../src/serve/node/run.js';
import { pngEncoder } from '../../src/serve/png.js';
import { nodePngEncoder } from '../../src/serve/png-sharp.js';
import { ModelRegistry } from '../../src/serve/registry.js';
import { gridLayout, PIXELS, tileOrigin } from '../../src/serve/sampling.js';
import { Rng } from '../../src/util/rng.js';
import { decodeGrayPng, fromBase64, makeDemoRun, type DemoRun } from './fixture.js';

let demo: DemoRun;
beforeAll(() => {
  demo = makeDemoRun();
});
afterAll(() => demo.remove());

const executors = [
  { name: 'onnxruntime-node + Node PNG', backend: () => ortNodeBackend(), encoder: nodePngEncoder },
  { name: 'onnxruntime-web (WASM) + JavaScript PNG', backend: () => ortWebBackend({ wasmPaths: `${ortDistDir()}/`, numThreads: 1 }), encoder: pngEncoder },
];

/** Pixels of each sample of a format=json response, per executor, for the cross-check at the end. */
const jsonPixels = new Map<string, Uint8Array[]>();

async function sampleJson(app: Hono, query: string): Promise<{ body: { task: string; model: string; seed: number; images: string[] }; pixels: Uint8Array[] }> {
  const res = await app.request(`/sample?${query}&format=json`);
  expect(res.status).toBe(200);
  const body = await res.json() as any;
  const pixels: Uint8Array[] = [];
  for (const image of body.images) {
    const png = await decodeGrayPng(fromBase64(image));
    expect([png.width, png.height]).toEqual([28, 28]);
    pixels.push(png.pixels);
  }
  return { body, pixels };
}

describe.each(executors)('app on $name', (executor) => {
  let app: Hono;
  let registry: ModelRegistry;
  beforeAll(async () => {
    registry = await ModelRegistry.load(demo.manifest, folderFiles(demo.exportDir), executor.backend());
    app = createApp({ registry, encoder: executor.encoder(), onError: () => undefined });
  });
  afterAll(() => registry.close());

  test('GET /sample?task=fashion: a PNG grid of 16 student samples, 8-bit gray', async () => {
    const res = await app.request('/sample?task=fashion');
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Type')).toBe('image/png');
    expect(res.headers.get('X-Model')).toBe('student');
    expect(res.headers.get('X-Seed')).toMatch(/^\d+$/);
    expect(res.headers.get('Cache-Control')).toBe('no-store');
    const png = await decodeGrayPng(new Uint8Array(await res.arrayBuffer()));
    expect([png.width, png.height]).toEqual([gridLayout(16).width, gridLayout(16).height]);
  });

  test('same seed, same bytes; another seed, other bytes; the ETag answers 304 without drawing', async () => {
    const get = async (q: string) => new Uint8Array(await (await app.request(`/sample?task=mnist&n=4&${q}`)).arrayBuffer());
    const a = await get('seed=7');
    expect(await get('seed=7')).toEqual(a);
    expect(await get('seed=8')).not.toEqual(a);
    const first = await app.request('/sample?task=mnist&n=4&seed=7');
    const etag = first.headers.get('ETag')!;
    expect(etag).toMatch(/^"[0-9a-f]{32}"$/);
    expect(first.headers.get('Cache-Control')).toBe('public, max-age=3600');
    const again = await app.request('/sample?task=mnist&n=4&seed=7', { headers: { 'If-None-Match': etag } });
    expect(again.status).toBe(304);
    expect((await app.request('/sample?task=mnist&n=5&seed=7')).headers.get('ETag')).not.toBe(etag);
  });

  test('format=json: task, model, seed and one 28x28 gray PNG per sample, equal to the tiles of the grid', async () => {
    const { body, pixels } = await sampleJson(app, 'task=fashion&n=5&seed=7');
    expect(body).toMatchObject({ task: 'fashion', model: 'student', seed: 7, n: 5, run: 'demo-untrained' });
    expect(pixels).toHaveLength(5);
    jsonPixels.set(executor.name, pixels);
    const grid = await decodeGrayPng(new Uint8Array(await (await app.request('/sample?task=fashion&n=5&seed=7')).arrayBuffer()));
    const layout = gridLayout(5);
    pixels.forEach((tile, i) => {
      const { x, y } = tileOrigin(layout, i);
      for (let r = 0; r < 28; r++) expect(grid.pixels.subarray((y + r) * grid.width + x, (y + r) * grid.width + x + 28)).toEqual(tile.subarray(r * 28, r * 28 + 28));
    });
    // sample i does not depend on n
    expect((await sampleJson(app, 'task=fashion&n=2&seed=7')).pixels).toEqual(pixels.slice(0, 2));
  });

  test('the student draws z = mu[t] + exp(logvar[t] / 2) * eps with eps from Rng(seed)', async () => {
    const { pixels } = await sampleJson(app, 'task=mnist&n=1&seed=3');
    const t = 0;
    const rng = new Rng(3);
    const { mu, logvar } = demo.manifest.student.prior;
    const z = Float32Array.from(mu[t]!, (m, j) => m + Math.exp(0.5 * logvar[t]![j]!) * rng.normal());
    const direct = await ortNodeBackend().load(registry.modelFile('student_decoder.onnx')!.bytes);
    const out = await direct.run({ z: { data: z, dims: [1, 32] }, task: { data: Float32Array.from([1, 0]), dims: [1, 2] } });
    const expected = Array.from(out.images!.data, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255));
    pixels[0]!.forEach((v, i) => expect(Math.abs(v - expected[i]!)).toBeLessThanOrEqual(1));
    await direct.release();
  });

  test('scale upscales each sample by an integer factor', async () => {
    const png = await decodeGrayPng(new Uint8Array(await (await app.request('/sample?task=mnist&n=2&seed=1&scale=3')).arrayBuffer()));
    expect([png.width, png.height]).toEqual([gridLayout(2).width * 3, gridLayout(2).height * 3]);
    const res = await app.request('/sample?task=mnist&n=1&seed=1&scale=2&format=json');
    const one = await decodeGrayPng(fromBase64((await res.json() as any).images[0]));
    expect([one.width, one.height]).toEqual([56, 56]);
  });

  test('model=teacher samples the expert holding the task', async () => {
    const { body, pixels } = await sampleJson(app, 'task=mnist&n=2&seed=5&model=teacher');
    expect(body.model).toBe('teacher');
    expect(pixels[0]).not.toEqual((await sampleJson(app, 'task=mnist&n=2&seed=5')).pixels[0]);
  });

  test('unknown task: 404 listing the known tasks', async () => {
    const res = await app.request('/sample?task=cifar');
    expect(res.status).toBe(404);
    expect(await res.json() as any).toMatchObject({ error: expect.stringMatching(/unknown task 'cifar'.*knows: mnist, fashion/), tasks: ['mnist', 'fashion'] });
  });

  test.each([
    ['', /task is required: one of mnist, fashion/],
    ['task=', /task is empty/],
    ['task=mnist&n=0', /n must be a whole number from 1 to 256, got '0'/],
    ['task=mnist&n=257', /n must be a whole number from 1 to 256/],
    ['task=mnist&n=2.5', /n must be a whole number/],
    ['task=mnist&n=-1', /n must be a whole number/],
    ['task=mnist&seed=abc', /seed must be a whole number of at most 15 digits, got 'abc'/],
    ['task=mnist&seed=1e3', /seed must be a whole number/],
    ['task=mnist&model=gan', /model must be student or teacher, got 'gan'/],
    ['task=mnist&format=gif', /format must be png or json, got 'gif'/],
    ['task=mnist&scale=0', /scale must be a whole number from 1 to 8/],
    ['task=mnist&scale=9', /scale must be a whole number from 1 to 8/],
    ['task=mnist&sed=7', /unknown parameter 'sed'; the parameters are task, n, seed, model, format, scale/],
    ['task=mnist&n=1&n=2', /parameter n given more than once/],
  ])('bad query %j: 400 with the validation message and the usage', async (query, message) => {
    const res = await app.request(`/sample?${query}`);
    expect(res.status).toBe(400);
    const body = await res.json() as any;
    expect(body.error).toMatch(message);
    expect(body.error).toContain('Usage: /sample?task=mnist');
  });

  test('no query string gives a 5xx (fuzzed)', async () => {
    const rng = new Rng('fuzz');
    const alphabet = ['task', 'n', 'seed', 'model', 'format', 'scale', 'mnist', 'fashion', 'teacher', 'json', '=', '&', '%', '%zz', '%00', '%E0%A4%A', '-', '1', '256', '9'.repeat(30), '.', ' ', '+', '?', '#', '[]', 'é', '\u{1F600}', '__proto__', 'constructor', 'toString'];
    for (let i = 0; i < 200; i++) {
      let q = '';
      const parts = 1 + rng.int(10);
      for (let k = 0; k < parts; k++) q += alphabet[rng.int(alphabet.length)];
      const res = await app.request(`/sample?${encodeURI(q).replace(/%25/g, '%')}`);
      expect(res.status, q).toBeLessThan(500);
      await res.arrayBuffer();
    }
    for (const q of ['task=mnist&n=256&scale=8&seed=1', 'task=fashion&n=256&format=json&seed=2', 'task=mnist&__proto__=1', 'task=mnist&constructor=x', 'task=%ZZ', '%']) {
      const res = await app.request(`/sample?${q}`);
      expect(res.status, q).toBeLessThan(500);
      await res.arrayBuffer();
    }
  });

  test('GET /v1/models: tasks, models, shapes, hashes and the training run', async () => {
    const res = await app.request('/v1/models');
    expect(res.status).toBe(200);
    const body = await res.json() as any;
    const decoder = demo.manifest.student.decoder;
    expect(body).toMatchObject({
      run: 'demo-untrained',
      format: 'lifelong-gen-export/1',
      tasks: [
        { name: 'mnist', index: 0, models: ['student', 'teacher'] },
        { name: 'fashion', index: 1, models: ['student', 'teacher'] },
      ],
      models: { student: { zDim: 32, decoder: { file: decoder.file, sha256: decoder.sha256, bytes: decoder.bytes, inputs: decoder.inputs, outputs: decoder.outputs } }, teacher: { zDim: demo.manifest.teacher!.zDim } },
    });
    expect(body.models.teacher.experts[0]).toMatchObject({ file: 'teacher_expert0.onnx', tasks: ['mnist', 'fashion'] });
  });

  test('GET /healthz', async () => {
    const res = await app.request('/healthz');
    expect(res.status).toBe(200);
    expect(await res.json() as any).toMatchObject({ status: 'ok', run: 'demo-untrained', backend: registry.backendName, sampling: { active: 0, queued: 0 } });
  });

  test('GET /models/<file>.onnx: the exact bytes, with ETag and cache headers', async () => {
    const res = await app.request('/models/student_decoder.onnx');
    expect(res.status).toBe(200);
    expect(res.headers.get('ETag')).toBe(`"${demo.manifest.student.decoder.sha256}"`);
    expect(res.headers.get('Cache-Control')).toMatch(/max-age=\d+/);
    expect(Buffer.from(await res.arrayBuffer()).equals(registry.modelFile('student_decoder.onnx')!.bytes)).toBe(true);
  });

  test('CORS: any origin may embed; preflight answered', async () => {
    const res = await app.request('/models/student_decoder.onnx', { headers: { Origin: 'https://example.org' } });
    expect(res.headers.get('Access-Control-Allow-Origin')).toBe('*');
    expect(res.headers.get('Cross-Origin-Resource-Policy')).toBe('cross-origin');
    const pre = await app.request('/sample?task=mnist', { method: 'OPTIONS', headers: { Origin: 'https://example.org', 'Access-Control-Request-Method': 'GET' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('Access-Control-Allow-Methods')).toContain('GET');
    expect((await app.request('/sample?task=mnist&seed=1', { headers: { Origin: 'https://example.org' } })).headers.get('Access-Control-Expose-Headers')).toContain('X-Seed');
  });

  test('unknown routes: 404 listing the endpoints; without assets / lists them too', async () => {
    const res = await app.request('/nope');
    expect(res.status).toBe(404);
    expect((await res.json() as any).error).toMatch(/no route GET \/nope; the endpoints are: GET \/sample/);
    expect((await (await app.request('/')).json() as any).endpoints).toContain('GET /v1/models');
  });

  test('another method on a served path: 405 with Allow; on an unknown path still 404', async () => {
    for (const [method, path] of [['POST', '/sample?task=mnist'], ['DELETE', '/models/manifest.json'], ['PUT', '/healthz'], ['PATCH', '/']]) {
      const res = await app.request(path!, { method });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get('Allow')).toBe('GET, HEAD, OPTIONS');
      expect((await res.json() as any).error).toContain(`${method} is not allowed on ${path!.split('?')[0]}: it answers GET, HEAD, OPTIONS`);
    }
    expect((await app.request('/nope', { method: 'POST' })).status).toBe(404);
    expect((await app.request('/healthz', { method: 'HEAD' })).status).toBe(200);
  });

  test('a failing model answers 500 with what happened, never a crash', async () => {
    const broken = createApp({ registry: Object.assign(Object.create(registry), { sample: () => Promise.reject(new Error('out of memory')) }), onError: () => undefined });
    const res = await broken.request('/sample?task=mnist&seed=1');
    expect(res.status).toBe(500);
    expect((await res.json() as any).error).toMatch(/internal error while serving GET \/sample: out of memory/);
  });
});

test('both executors draw the same pixels (within 1/255)', () => {
  const [a, b] = executors.map((e) => jsonPixels.get(e.name)!);
  expect(a).toHaveLength(5);
  expect(b).toHaveLength(5);
  a!.forEach((tile, i) => tile.forEach((v, k) => expect(Math.abs(v - b![i]![k]!)).toBeLessThanOrEqual(1)));
  expect(a!.reduce((s, t) => s + t.length, 0)).toBe(5 * PIXELS);
});
