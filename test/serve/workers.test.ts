// --workers: inference and PNG encoding in worker threads give the same bytes, headers and ETags
// as on the HTTP thread, in one job per request, and the workers stop with the server.

import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { ortNodeBackend } from '../../src/serve/backend/ort-node.js';
import { WorkerPool } from '../../src/serve/node/pool.js';
import { folderFiles } from '../../src/serve/node/run.js';
import { defaultWorkers, startServer, type RunningServer } from '../../src/serve/node/server.js';
import { nodePngEncoder } from '../../src/serve/png-sharp.js';
import { ModelRegistry } from '../../src/serve/registry.js';
import { localRenderer } from '../../src/serve/render.js';
import { makeDemoRun, type DemoRun } from './fixture.js';

let demo: DemoRun;
let inline: RunningServer;
let pooled: RunningServer;
beforeAll(async () => {
  demo = makeDemoRun();
  inline = await startServer({ run: demo.run, port: 0, host: '127.0.0.1', drainMs: 0, workers: 0, log: () => undefined });
  pooled = await startServer({ run: demo.run, port: 0, host: '127.0.0.1', drainMs: 0, workers: 2, log: () => undefined });
});
afterAll(async () => {
  await inline?.close();
  await pooled?.close();
  demo.remove();
});

test('worker threads answer byte for byte as the HTTP thread does', async () => {
  const queries = ['task=mnist&seed=1&n=1', 'task=fashion&seed=7&n=16&scale=2', 'task=mnist&seed=3&n=5&format=json', 'task=fashion&model=teacher&seed=9&n=64', 'task=mnist&seed=11&n=2&scale=4&format=json'];
  for (const q of queries) {
    // Several at once, so that both workers take some.
    const [a, ...b] = await Promise.all([fetch(`${inline.url}/sample?${q}`), ...[0, 1, 2].map(() => fetch(`${pooled.url}/sample?${q}`))]);
    const want = new Uint8Array(await a!.arrayBuffer());
    for (const r of b) {
      expect(r.status).toBe(200);
      expect(r.headers.get('etag')).toBe(a!.headers.get('etag'));
      expect(r.headers.get('content-type')).toBe(a!.headers.get('content-type'));
      expect(Buffer.compare(Buffer.from(await r.arrayBuffer()), Buffer.from(want)), q).toBe(0);
    }
  }
  const health = (await (await fetch(`${pooled.url}/healthz`)).json()) as { backend: string };
  expect(health.backend).toBe('onnxruntime-node');
});

test('a /sample request is one message to a worker and one back, for png and json', async () => {
  const { Worker } = await import('node:worker_threads');
  const sent = vi.spyOn(Worker.prototype, 'postMessage');
  try {
    for (const q of ['task=mnist&n=1', 'task=fashion&n=16&format=json&seed=4']) {
      sent.mockClear();
      const res = await fetch(`${pooled.url}/sample?${q}`);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      expect(sent.mock.calls.map(([m]) => (m as { kind: string }).kind), q).toEqual(['draw']);
    }
  } finally {
    sent.mockRestore();
  }
});

describe('WorkerPool.renderer', () => {
  let pool: WorkerPool;
  let inWorkers: ModelRegistry;
  let here: ModelRegistry;
  beforeAll(async () => {
    pool = await WorkerPool.start(1);
    inWorkers = await ModelRegistry.load(demo.manifest, folderFiles(demo.exportDir), pool.backend());
    here = await ModelRegistry.load(demo.manifest, folderFiles(demo.exportDir), ortNodeBackend());
  });
  afterAll(async () => {
    await here?.close();
    await pool?.close();
  });

  test('renders the bytes the in-process renderer does (n 1 and 16, png and json, scale 1 and 3, both models)', async () => {
    const local = localRenderer(here, nodePngEncoder());
    const remote = pool.renderer(inWorkers);
    expect(remote.encoderName).toBe(local.encoderName);
    let compared = 0;
    for (const model of ['student', 'teacher'] as const) {
      for (const n of [1, 16]) {
        for (const format of ['png', 'json'] as const) {
          for (const scale of [1, 3]) {
            const request = { model, task: 'fashion', n, seed: 1000 + n + scale, format, scale };
            const [want, got] = await Promise.all([local.render(request), remote.render(request)]);
            expect(got, JSON.stringify(request)).toEqual(want);
            if ('png' in want) expect(want.png.length).toBeGreaterThan(0);
            else expect(want.images).toHaveLength(n);
            compared++;
          }
        }
      }
    }
    expect(compared).toBe(16);
  });

  test('refuses a registry whose models were not loaded by the pool', async () => {
    await expect(pool.renderer(here).render({ model: 'student', task: 'mnist', n: 1, seed: 1, format: 'png', scale: 1 })).rejects.toThrow(/not loaded with this pool's backend/);
  });
});

test('without --workers: one worker thread where there are 2 or more cores, none on one core', async () => {
  expect([1, 2, 16].map((cores) => defaultWorkers(cores))).toEqual([0, 1, 1]);
  const lines: string[] = [];
  const server = await startServer({ run: demo.run, port: 0, host: '127.0.0.1', drainMs: 0, log: (line) => lines.push(line) });
  try {
    expect((await fetch(`${server.url}/sample?task=mnist&n=1&seed=1`)).status).toBe(200);
  } finally {
    await server.close();
  }
  const workers = defaultWorkers();
  expect(lines.join('\n')).toMatch(workers > 0 ? / in 1 worker thread: / : /with onnxruntime-node: tasks/);
});

test('shutdown releases the workers only after requests whose clients went away have finished', async () => {
  const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  try {
    for (let round = 0; round < 4; round++) {
      const server = await startServer({ run: demo.run, port: 0, host: '127.0.0.1', drainMs: 0, workers: 1, log: () => undefined });
      // Abandoned at staggered moments: their handlers outlive their connections.
      const aborts = Array.from({ length: 48 }, () => new AbortController());
      const requests = aborts.map((a, i) => fetch(`${server.url}/sample?task=fashion&n=64&seed=${i}`, { signal: a.signal }).catch(() => null));
      aborts.forEach((a, i) => setTimeout(() => a.abort(), 2 + i));
      await new Promise((resolve) => setTimeout(resolve, 10 + round * 10));
      await server.close();
      await Promise.all(requests);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(errors.mock.calls.map((c) => c.map(String).join(' ').slice(0, 200))).toEqual([]);
  } finally {
    errors.mockRestore();
  }
});
