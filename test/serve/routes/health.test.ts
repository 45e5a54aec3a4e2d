import { expect, test } from 'vitest';
import type { ModelRegistry } from '../../../src/serve/registry.js';
import { healthRoutes } from '../../../src/serve/routes/health/index.js';

const registry = { run: 'r1', backendName: 'fake', taskNames: ['mnist'] } as unknown as ModelRegistry;

test('200 while serving, 503 once draining', async () => {
  let draining = false;
  const app = healthRoutes({ registry, draining: () => draining, load: () => ({ active: 1, queued: 2 }) });
  const ok = await app.request('/healthz');
  expect(ok.status).toBe(200);
  expect(await ok.json() as any).toMatchObject({ status: 'ok', run: 'r1', backend: 'fake', tasks: ['mnist'], sampling: { active: 1, queued: 2 } });
  expect(ok.headers.get('Cache-Control')).toBe('no-store');
  draining = true;
  const down = await app.request('/healthz');
  expect(down.status).toBe(503);
  expect((await down.json() as any).status).toBe('draining');
});
