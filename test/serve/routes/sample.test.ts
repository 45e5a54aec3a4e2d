import { afterAll, beforeAll, expect, test } from 'vitest';
import { ortNodeBackend } from '../../../src/serve/backend/ort-node.js';
import { folderFiles } from '../../../src/serve/node/run.js';
import { pngEncoder } from '../../../src/serve/png.js';
import { ModelRegistry } from '../../../src/serve/registry.js';
import { SAMPLE_DEFAULTS, sampleQuerySchema, sampleRoutes } from '../../../src/serve/routes/sample/index.js';
import { makeDemoRun, type DemoRun } from '../fixture.js';

let demo: DemoRun;
let registry: ModelRegistry;
beforeAll(async () => {
  demo = makeDemoRun();
  const { teacher: _, ...studentOnly } = demo.manifest;
  registry = await ModelRegistry.load(studentOnly, folderFiles(demo.exportDir), ortNodeBackend());
});
afterAll(async () => {
  await registry.close();
  demo.remove();
});

test('the query schema applies the defaults once and parses numbers', () => {
  const schema = sampleQuerySchema(['mnist'], SAMPLE_DEFAULTS);
  expect(schema.parse({ task: 'mnist' })).toEqual({ task: 'mnist', n: 16, model: 'student', format: 'png', scale: 1 });
  expect(schema.parse({ task: 'mnist', n: '256', seed: '-5', model: 'teacher', format: 'json', scale: '8' })).toEqual({ task: 'mnist', n: 256, seed: -5, model: 'teacher', format: 'json', scale: 8 });
});

test('options change the limits; a run without a teacher answers model=teacher with 404 and what to use', async () => {
  const app = sampleRoutes({ registry, encoder: pngEncoder(), defaultN: 4, maxN: 8, maxScale: 2 });
  expect((await app.request('/sample?task=mnist&n=9')).status).toBe(400);
  expect((await (await app.request('/sample?task=mnist&scale=3')).json() as any).error).toMatch(/scale must be a whole number from 1 to 2/);
  const ok = await app.request('/sample?task=mnist&format=json&seed=1');
  expect((await ok.json() as any).images).toHaveLength(4);
  const teacher = await app.request('/sample?task=mnist&model=teacher');
  expect(teacher.status).toBe(404);
  expect(await teacher.json() as any).toMatchObject({ error: expect.stringMatching(/has no teacher model for task 'mnist'; use model=student/), models: ['student'] });
});
