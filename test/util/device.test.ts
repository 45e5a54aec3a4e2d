// --device webgpu: onnxruntime-node's WebGPU provider, checked before any data is loaded.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { probeDevice } from '../../src/runtime/index.js';

const CLEAR = /device 'webgpu' was asked for, but onnxruntime-node's WebGPU provider cannot run here \(.+\)\. It needs a Vulkan loader \(Debian: apt-get install libvulkan1\) and a GPU with a Vulkan driver; or run with --device cpu\./;

/** Whether this machine has a WebGPU adapter (CI and the 2-core machine have none). */
async function webgpuWorks(): Promise<boolean> {
  try {
    await probeDevice('webgpu');
    return true;
  } catch (err) {
    expect((err as Error).message).toMatch(CLEAR);
    return false;
  }
}

describe('--device webgpu', () => {
  it('the probe runs a graph on the provider, or says what is missing', async () => {
    await webgpuWorks();
  });

  it('npm run train and npm run eval stop with that message before writing or loading anything', { timeout: 60_000 }, async () => {
    if (await webgpuWorks()) return; // a GPU: nothing to refuse
    const out = mkdtempSync(join(tmpdir(), 'webgpu-'));
    const train = spawnSync(process.execPath, ['--import', 'tsx', 'tools/train.ts', '--preset', 'smoke', '--device', 'webgpu', '--out', out], { encoding: 'utf8' });
    expect(train.status).toBe(1);
    expect(train.stderr).toMatch(CLEAR);
    expect(train.stderr).not.toMatch(/dataset|feature net/);
    expect(readdirSync(out)).toEqual([]);
    const evalRun = spawnSync(process.execPath, ['--import', 'tsx', 'tools/eval.ts', '--run', join(out, 'none'), '--device', 'webgpu'], { encoding: 'utf8' });
    expect(evalRun.status).toBe(1);
    expect(evalRun.stderr).toMatch(CLEAR);
    expect(existsSync(join(out, 'none'))).toBe(false);
    rmSync(out, { recursive: true });
  });

  it('npm run serve stops with that message before reading the run; --device with --backend web is refused', { timeout: 60_000 }, async () => {
    if (await webgpuWorks()) return; // a GPU: nothing to refuse
    const missing = join(tmpdir(), 'webgpu-no-such-run');
    const serve = spawnSync(process.execPath, ['--import', 'tsx', 'src/serve/main.ts', '--run', missing, '--port', '0', '--device', 'webgpu'], { encoding: 'utf8' });
    expect(serve.status).toBe(2);
    expect(serve.stderr).toMatch(CLEAR);
    expect(serve.stderr).not.toContain(missing);
    const web = spawnSync(process.execPath, ['--import', 'tsx', 'src/serve/main.ts', '--run', missing, '--port', '0', '--device', 'webgpu', '--backend', 'web'], { encoding: 'utf8' });
    expect(web.status).toBe(2);
    expect(web.stderr).toMatch(/--device webgpu needs the node backend/);
    const bad = spawnSync(process.execPath, ['--import', 'tsx', 'src/serve/main.ts', '--device', 'tpu'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--device must be cpu, cuda or webgpu, got 'tpu'/);
  });

  it('tools/gpu-check.ts compares a device with the CPU from the same seed (the CPU against itself: no difference)', { timeout: 180_000 }, () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'tools/gpu-check.ts', '--device', 'cpu', '--steps', '4'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^teacher iteration \(2 critic steps \+ 1 generator step\): cpu [\d.]+ ms, cpu [\d.]+ ms per iteration \(median\); largest parameter difference after 4 iterations 0\.00e\+0$/m);
    expect(r.stdout).toMatch(/^student step: cpu [\d.]+ ms, cpu [\d.]+ ms per iteration \(median\); largest parameter difference after 4 iterations 0\.00e\+0$/m);
  });
});
