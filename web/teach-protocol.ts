// Messages between the teach panel (web/teach-panel.ts) and its worker (web/teach-worker.ts).

import type { Metrics } from '../src/teach/core.js';

export type Backend = 'wasm' | 'webgpu';

export type ToWorker =
  | { type: 'init'; base: string; backend: Backend; threads: number; saved?: Uint8Array }
  /** Teach slot `target` of `tasks` (a new task is the last) from `images` ([n, 784] in [0, 1]). */
  | { type: 'start'; tasks: string[]; target: number; images: Float32Array; steps: number; seed: number }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'stop' }
  | { type: 'export' };

export type FromWorker =
  | { type: 'ready'; run: string; tasks: string[]; step: number; fromSaved: boolean; note: string; backend: Backend; threads: number; isolated: boolean; configSource: string }
  | { type: 'samples'; tasks: string[]; n: number; seed: number; gray: Uint8Array[]; live: boolean }
  | { type: 'started'; total: number; tasks: string[]; target: number; inputs: number; graphBytes: number }
  | { type: 'progress'; step: number; total: number; stepsPerSecond: number; etaSeconds: number; metrics: Metrics; elapsed: number }
  | { type: 'paused'; step: number }
  | { type: 'state'; checkpoint: Uint8Array; tasks: string[] }
  | { type: 'done'; steps: number; stopped: boolean; metrics: Metrics }
  | { type: 'export'; decoder: Uint8Array; checkpoint: Uint8Array; manifest: string }
  | { type: 'error'; message: string; during: string };
