import { Hono } from 'hono';
import { expect, test } from 'vitest';
import { concurrencyLimit } from '../../../src/serve/middleware/limit/index.js';
import { requestTimeout } from '../../../src/serve/middleware/timeout/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('answers 503 with Retry-After when the handler is too slow, and passes fast ones through', async () => {
  const app = new Hono();
  app.use('*', requestTimeout({ ms: 30 }));
  app.get('/slow', async (c) => {
    await sleep(200);
    return c.text('late');
  });
  app.get('/fast', (c) => c.text('quick'));
  const slow = await app.request('/slow');
  expect(slow.status).toBe(503);
  expect(slow.headers.get('Retry-After')).toBe('1');
  expect((await slow.json() as any).error).toMatch(/took longer than 30 ms.*smaller n/);
  const fast = await app.request('/fast');
  expect([fast.status, await fast.text()]).toEqual([200, 'quick']);
});

test('a request that times out while queued is not run when its turn comes', async () => {
  let runs = 0;
  const limit = concurrencyLimit({ max: 1, queue: 4 });
  const app = new Hono();
  app.use('*', requestTimeout({ ms: 40 }), limit);
  app.get('/', async (c) => {
    runs++;
    await sleep(100);
    return c.text('ok');
  });
  const [first, second] = await Promise.all([app.request('/'), app.request('/')]);
  expect([first.status, second.status]).toEqual([503, 503]);
  await sleep(120);
  expect(runs).toBe(1);
  expect(limit.stats()).toEqual({ active: 0, queued: 0 });
});

test('refuses a non-positive timeout', () => {
  expect(() => requestTimeout({ ms: 0 })).toThrow(/ms must be > 0, got 0/);
});
