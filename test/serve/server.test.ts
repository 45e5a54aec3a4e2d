// The Node entry (npm run serve) as a process: --help, errors that say what to do, and a
// graceful SIGTERM (running requests finish, then exit 0).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { decodeGrayPng, makeDemoRun, ROOT, type DemoRun } from './fixture.js';

const MAIN = ['--import', 'tsx', 'src/serve/main.ts'];
const runMain = (...args: string[]) => spawnSync(process.execPath, [...MAIN, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, PORT: '' } });

let demo: DemoRun;
beforeAll(() => {
  demo = makeDemoRun();
});
afterAll(() => demo.remove());

test('--help prints the usage and the endpoints', () => {
  const r = runMain('--help');
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/usage: npm run serve -- \[--run results\/<run-id>\] \[--port N\]/);
  expect(r.stdout).toContain('GET /sample?task=fashion');
  expect(r.stdout).toContain('--run DIR');
});

test.each([
  [['--run', '/nonexistent/run'], /no run folder at \/nonexistent\/run.*make-demo-export/],
  [['--port', 'http'], /--port must be a whole number >= 0, got 'http'/],
  [['--backend', 'gpu'], /--backend must be node or web, got 'gpu'/],
  [['--bogus'], /Unknown option '--bogus'/],
])('%j: exit 2 with what was wrong', (args, message) => {
  const r = runMain(...args);
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).toContain('--help');
});

function listening(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`the server exited (${code}) before listening:\n${out}`)));
  });
}

test('SIGTERM: requests already running finish, then the process exits 0', async () => {
  const child = spawn(process.execPath, [...MAIN, '--run', demo.run, '--port', '0', '--host', '127.0.0.1', '--concurrency', '2', '--drain-ms', '0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d));
  child.stderr!.on('data', (d: Buffer) => (log += d));
  const url = await listening(child);
  expect((await fetch(`${url}/healthz`)).status).toBe(200);

  let signalled = 0;
  const finished: number[] = [];
  const requests = Array.from({ length: 6 }, async (_, i) => {
    const res = await fetch(`${url}/sample?task=fashion&n=256&scale=8&seed=${i}`);
    const body = new Uint8Array(await res.arrayBuffer());
    finished.push(Date.now());
    return { status: res.status, body };
  });
  // Wait until all have reached the server (running or queued): a connection that has sent
  // nothing yet when SIGTERM comes counts as idle and is closed.
  for (;;) {
    const { sampling } = (await (await fetch(`${url}/healthz`)).json()) as { sampling: { active: number; queued: number } };
    if (sampling.active + sampling.queued + finished.length >= 6) break;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  signalled = Date.now();
  child.kill('SIGTERM');

  const results = await Promise.all(requests);
  for (const r of results) {
    expect(r.status).toBe(200);
    expect((await decodeGrayPng(r.body)).width).toBe(478 * 8);
  }
  expect(Math.max(...finished)).toBeGreaterThan(signalled); // some were still running when SIGTERM came
  expect(await exited).toBe(0);
  expect(log).toContain('SIGTERM: draining for 0 ms (/healthz answers 503), then finishing running requests and exiting');
  await expect(fetch(`${url}/healthz`)).rejects.toThrow();
});
