// onnxruntime sessions: the device check and the session options every model runs with.

import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import * as ort from 'onnxruntime-node';
import { Graph } from '../graph/ir.js';
import { emitModel } from '../graph/onnx.js';
import { add } from '../graph/ops.js';

export type Device = 'cpu' | 'cuda' | 'webgpu';
export const DEVICES: readonly Device[] = ['cpu', 'cuda', 'webgpu'];

export interface RuntimeOptions {
  device?: Device;
  /** Intra-op threads; default: all cores. */
  threads?: number;
  /** Write onnxruntime's per-op profile (a JSON trace) with this file prefix. */
  profilePrefix?: string;
  /**
   * Whether the session's worker threads keep spinning after a run ('always', onnxruntime's
   * default: fastest when one session runs back to back) or stop when the run ends ('run':
   * fastest when several sessions take turns, as in training, where one session's spinning
   * threads would otherwise take the cores from the next). Default 'always'.
   */
  spin?: 'always' | 'run';
  /** onnxruntime's graph optimisation level; default 'all' (StepRunner: 'extended', see there). */
  optimization?: 'extended' | 'all';
}

const CUDA_INSTALL = 'npm run install:cuda';

/**
 * Throws a clear error when the device cannot run: CUDA without its provider libraries; WebGPU
 * without an adapter (probeDevice checks that, since it needs a session).
 */
export function checkDevice(device: Device): void {
  if (device === 'cpu' || device === 'webgpu') return;
  if (device !== 'cuda') throw new Error(`unknown device '${String(device)}': use ${DEVICES.join(', ')}`);
  const req = createRequire(import.meta.url);
  const binding = req.resolve('onnxruntime-node/package.json');
  const dir = join(dirname(binding), 'bin', 'napi-v6', process.platform, process.arch);
  if (!existsSync(join(dir, 'libonnxruntime_providers_cuda.so'))) {
    throw new Error(
      `device 'cuda' was asked for, but onnxruntime-node's CUDA provider libraries are not installed (no libonnxruntime_providers_cuda.so in ${dir}). ` +
        `Install them with \`${CUDA_INSTALL}\` on a machine with CUDA 12 and cuDNN 9, or run with --device cpu.`,
    );
  }
}

export async function createSession(bytes: Uint8Array, opts: RuntimeOptions = {}): Promise<ort.InferenceSession> {
  const device = opts.device ?? 'cpu';
  checkDevice(device);
  return ort.InferenceSession.create(bytes, {
    executionProviders: [device],
    // Not onnxruntime's own default (0): on some VMs it counts one physical core where the OS gives two, and runs one thread.
    intraOpNumThreads: opts.threads ?? availableParallelism(),
    interOpNumThreads: 1,
    graphOptimizationLevel: opts.optimization ?? 'all',
    enableProfiling: !!opts.profilePrefix,
    profileFilePrefix: opts.profilePrefix,
    ...(opts.spin === 'run' ? { extra: { session: { force_spinning_stop: '1' } } } : {}),
  });
}


/** One Add on a two-element tensor, to see whether a provider can run at all. */
function tinyModel(): Uint8Array {
  const g = new Graph();
  const x = g.input('x', [2]);
  return emitModel(g, { outputs: { y: add(x, x) } }).bytes;
}

/**
 * Checks that `device` runs a graph, before any data is loaded: for WebGPU, onnxruntime-node's
 * provider needs a Vulkan loader and a GPU driver, and without them fails only when a session
 * is created.
 */
export async function probeDevice(device: Device): Promise<void> {
  checkDevice(device);
  if (device !== 'webgpu') return;
  try {
    const s = await ort.InferenceSession.create(tinyModel(), { executionProviders: ['webgpu'] });
    await s.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2]), [2]) });
    await s.release();
  } catch (err) {
    const why = String((err as Error).message).split('\n')[0]!.replace(/^.*?(Failed to get a WebGPU adapter)/, '$1');
    throw new Error(
      `device 'webgpu' was asked for, but onnxruntime-node's WebGPU provider cannot run here (${why}). ` +
        'It needs a Vulkan loader (Debian: apt-get install libvulkan1) and a GPU with a Vulkan driver; or run with --device cpu.',
    );
  }
}
