import { Hono } from 'hono';
import { expect, test } from 'vitest';
import { concurrencyLimit } from '../../../src/serve/middleware/limit/index.js';

/** An app whose handler waits until released, to hold requests in flight. */
function gatedApp(options: Parameters<typeof concurrencyLimit>[0]) {
  const gates: Array<() => void> = [];
  let started = 0;
  const limit = concurrencyLimit(options);
  const app = new Hono();
  app.use('*', limit);
  app.get('/', async (c) => {
    started++;
    await new Promise<void>((resolve) => gates.push(resolve));
    return c.text('done');
  });
  const tick = () => new Promise((resolve) => setTimeout(resolve, 5));
  return { app, limit, gates, started: () => started, tick };
}

test('runs up to max at once, queues up to queue, refuses the rest with 503 and Retry-After', async () => {
  const { app, limit, gates, started, tick } = gatedApp({ max: 2, queue: 1, retryAfterSeconds: 3 });
  const pending = [app.request('/'), app.request('/'), app.request('/')];
  await tick();
  expect(started()).toBe(2);
  expect(limit.stats()).toEqual({ active: 2, queued: 1 });

  const refused = await app.request('/');
  expect(refused.status).toBe(503);
  expect(refused.headers.get('Retry-After')).toBe('3');
  expect((await refused.json() as any).error).toMatch(/busy \(2 requests running, 1 waiting\)\. Retry after 3 s/);

  gates.shift()!(); // the first finishes: the queued one takes its slot
  await tick();
  expect(started()).toBe(3);
  expect(limit.stats()).toEqual({ active: 2, queued: 0 });
  while (gates.length) gates.shift()!();
  for (const res of await Promise.all(pending)) expect(await res.text()).toBe('done');
  expect(limit.stats()).toEqual({ active: 0, queued: 0 });
});

test('a queued request whose client went away is answered without running, and its slot passes on', async () => {
  const { app, limit, gates, started, tick } = gatedApp({ max: 1, queue: 2 });
  const first = app.request('/');
  const controller = new AbortController();
  const gone = app.request(new Request('http://x/', { signal: controller.signal }));
  const third = app.request('/');
  await tick();
  controller.abort();
  gates.shift()!();
  expect((await gone).status).toBe(503);
  await tick();
  expect(started()).toBe(2); // the first and the third, not the one that went away
  gates.shift()!();
  expect([(await first).status, (await third).status]).toEqual([200, 200]);
  expect(limit.stats()).toEqual({ active: 0, queued: 0 });
});

test('a slot is released when the handler throws', async () => {
  const limit = concurrencyLimit({ max: 1, queue: 0 });
  const app = new Hono();
  app.use('*', limit);
  app.get('/', () => {
    throw new Error('boom');
  });
  app.onError((_, c) => c.text('failed', 500));
  expect((await app.request('/')).status).toBe(500);
  expect(limit.stats()).toEqual({ active: 0, queued: 0 });
});

test('defaults apply once; bad options are refused with the values given', () => {
  expect(() => concurrencyLimit({ max: 0 })).toThrow(/max must be an integer >= 1 and queue an integer >= 0, got max=0, queue=64/);
  expect(() => concurrencyLimit({ max: undefined })).not.toThrow();
});
