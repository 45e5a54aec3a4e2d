import { beforeAll, expect, test } from 'vitest';
import type { Hono } from 'hono';
import { nodeAssets } from '../../../src/serve/node/assets.js';
import { webRoutes } from '../../../src/serve/routes/web/index.js';

let app: Hono;
beforeAll(async () => {
  app = webRoutes({ assets: await nodeAssets() });
});

test('the page at / loads the sampler module', async () => {
  const res = await app.request('/');
  expect(res.headers.get('Content-Type')).toBe('text/html; charset=utf-8');
  const html = await res.text();
  expect(html).toContain("import './student-sampler.js'");
  expect(html).toContain('<student-sampler');
});

test('/student-sampler.js: one ES module (sampling and RNG bundled in, onnxruntime-web loaded from /ort/), revalidated by ETag', async () => {
  const res = await app.request('/student-sampler.js');
  expect(res.headers.get('Content-Type')).toBe('text/javascript; charset=utf-8');
  const js = await res.text();
  expect(js).toContain('student-sampler');
  expect(js).toContain('ort/ort.wasm.min.mjs');
  expect(js).not.toMatch(/from\s*["'](\.\.?\/|onnxruntime)/); // no imports left to resolve
  expect((await app.request('/student-sampler.js', { headers: { 'If-None-Match': res.headers.get('ETag')! } })).status).toBe(304);
});

test('/ort/: onnxruntime-web files from the installed package, and nothing else', async () => {
  const mjs = await app.request('/ort/ort.wasm.min.mjs');
  expect([mjs.status, mjs.headers.get('Content-Type')]).toEqual([200, 'text/javascript; charset=utf-8']);
  const wasm = await app.request('/ort/ort-wasm-simd-threaded.wasm');
  expect([wasm.status, wasm.headers.get('Content-Type')]).toEqual([200, 'application/wasm']);
  expect(wasm.headers.get('Cache-Control')).toBe('public, max-age=86400');
  expect([...new Uint8Array(await wasm.arrayBuffer()).subarray(0, 4)]).toEqual([0, 0x61, 0x73, 0x6d]);
  for (const bad of ['/ort/nope.mjs', '/ort/..%2Fpackage.json', '/ort/README.md']) {
    const res = await app.request(bad);
    expect(res.status, bad).toBe(404);
    expect((await res.json() as any).error).toMatch(/the page is at \//);
  }
});
