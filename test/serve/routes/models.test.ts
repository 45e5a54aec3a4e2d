import { afterAll, beforeAll, expect, test } from 'vitest';
import { ortNodeBackend } from '../../../src/serve/backend/ort-node.js';
import { folderFiles } from '../../../src/serve/node/run.js';
import { ModelRegistry } from '../../../src/serve/registry.js';
import { modelRoutes } from '../../../src/serve/routes/models/index.js';
import { makeDemoRun, type DemoRun } from '../fixture.js';

let demo: DemoRun;
let registry: ModelRegistry;
beforeAll(async () => {
  demo = makeDemoRun();
  registry = await ModelRegistry.load(demo.manifest, folderFiles(demo.exportDir), ortNodeBackend());
});
afterAll(async () => {
  await registry.close();
  demo.remove();
});

test('model files: ETag from the sha256, 304 on a match, immutable caching when the URL pins the hash', async () => {
  const app = modelRoutes({ registry, cacheControl: 'public, max-age=60' });
  const sha = demo.manifest.teacher!.experts[0]!.sha256;
  const res = await app.request('/models/teacher_expert0.onnx');
  expect(res.status).toBe(200);
  expect(res.headers.get('Content-Type')).toBe('application/octet-stream');
  expect(res.headers.get('Content-Length')).toBe(String(demo.manifest.teacher!.experts[0]!.bytes));
  expect(res.headers.get('Cache-Control')).toBe('public, max-age=60');
  expect((await app.request('/models/teacher_expert0.onnx', { headers: { 'If-None-Match': `W/"x", "${sha}"` } })).status).toBe(304);
  expect((await app.request(`/models/teacher_expert0.onnx?v=${sha.slice(0, 16)}`)).headers.get('Cache-Control')).toBe('public, max-age=31536000, immutable');
  expect((await app.request('/models/teacher_expert0.onnx?v=0000000000000000')).headers.get('Cache-Control')).toBe('public, max-age=60');
  const head = await app.request('/models/teacher_expert0.onnx', { method: 'HEAD' });
  expect([head.status, (await head.arrayBuffer()).byteLength]).toEqual([200, 0]);
});

test('an unknown file: 404 naming the files there are', async () => {
  const res = await modelRoutes({ registry }).request('/models/other.onnx');
  expect(res.status).toBe(404);
  expect(await res.json()).toMatchObject({ error: expect.stringMatching(/no model file 'other.onnx'; this run serves student_decoder.onnx, teacher_expert0.onnx/), files: ['student_decoder.onnx', 'teacher_expert0.onnx'] });
});

test('manifest.json: the export manifest as is, revalidated by ETag', async () => {
  const app = modelRoutes({ registry });
  const res = await app.request('/models/manifest.json');
  expect(await res.json()).toEqual(demo.manifest);
  expect(res.headers.get('Cache-Control')).toBe('no-cache');
  expect((await app.request('/models/manifest.json', { headers: { 'If-None-Match': res.headers.get('ETag')! } })).status).toBe(304);
});
