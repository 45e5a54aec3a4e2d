// --workers: inference and PNG encoding in worker threads give the same bytes, headers and ETags
// as on the HTTP thread, and the workers stop with the server.

import { afterAll, beforeAll, expect, test } from 'vitest';
import { startServer, type RunningServer } from '../../src/serve/node/server.js';
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
