// Shutdown as a service manager does it: SIGTERM to the npm process of `npm run serve` and of
// `npm start` (the built server, plain node). /healthz turns 503 at once while serving goes on
// for the drain period; requests sent before the signal, running or queued, all complete; then
// the listener closes and the server process exits 0 (no orphan left holding the port).

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGrayPng, makeDemoRun, ROOT, type DemoRun } from './fixture.js';

let demo: DemoRun;
beforeAll(() => {
  demo = makeDemoRun();
  execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'pipe' }); // for npm start
});
afterAll(() => demo.remove());

function listening(child: ChildProcess, log: () => string): Promise<{ url: string; pid: number }> {
  return new Promise((resolve, reject) => {
    const t = setInterval(() => {
      const m = /listening on (http:\/\/\S+)\s+\(pid (\d+);/.exec(log());
      if (m) {
        clearInterval(t);
        resolve({ url: m[1]!, pid: Number(m[2]) });
      }
    }, 20);
    child.once('exit', (code) => {
      clearInterval(t);
      reject(new Error(`exited (${code}) before listening:\n${log()}`));
    });
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe.each([
  ['npm run serve', ['run', 'serve']],
  ['npm start', ['start']],
])('SIGTERM to the npm process of %s', (_name, npmArgs) => {
  it('drains (503 on /healthz, still serving), finishes every request sent before it, then exits 0', { timeout: 120_000 }, async () => {
    const drainMs = 1500;
    const child = spawn('npm', [...npmArgs, '--', '--run', demo.run, '--port', '0', '--host', '127.0.0.1', '--concurrency', '1', '--queue', '64', '--drain-ms', String(drainMs)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PORT: '' },
    });
    let log = '';
    child.stdout!.on('data', (d: Buffer) => (log += d));
    child.stderr!.on('data', (d: Buffer) => (log += d));
    const { url, pid } = await listening(child, () => log);
    expect(pid).not.toBe(child.pid); // the server runs under npm: the signal has to get through

    // Twelve slow requests, one running and the rest queued, sent 0.3 s before the signal.
    const requests = Array.from({ length: 12 }, async (_, i) => {
      const res = await fetch(`${url}/sample?task=fashion&n=256&scale=4&seed=${i}`);
      return { status: res.status, body: new Uint8Array(await res.arrayBuffer()) };
    });
    for (;;) {
      const { sampling } = (await (await fetch(`${url}/healthz`)).json()) as { sampling: { active: number; queued: number } };
      if (sampling.active + sampling.queued >= 12) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const signalled = Date.now();
    child.kill('SIGTERM'); // to npm, as a container runtime sends it to its main process

    await new Promise((resolve) => setTimeout(resolve, 200));
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(503);
    expect(((await health.json()) as { status: string }).status).toBe('draining');
    const during = await fetch(`${url}/v1/models`); // new requests are still served while draining
    expect(during.status).toBe(200);
    expect(during.headers.get('connection')).toBe('close');
    expect(Date.now() - signalled).toBeLessThan(drainMs);

    const results = await Promise.all(requests);
    for (const r of results) {
      expect(r.status).toBe(200);
      expect((await decodeGrayPng(r.body)).width).toBe(478 * 4);
    }
    expect(await exited).toBe(0);
    expect(Date.now() - signalled).toBeGreaterThanOrEqual(drainMs);
    expect(log).toContain(`SIGTERM: draining for ${drainMs} ms (/healthz answers 503)`);
    expect(alive(pid)).toBe(false);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });
});
