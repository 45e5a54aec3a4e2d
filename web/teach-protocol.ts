// Messages between the teach panel (web/teach-panel.ts) and its worker (web/teach-worker.ts).

import type { Metrics } from '../src/teach/core.js';

export type Backend = 'wasm' | 'webgpu';

export type ToWorker =
  /** `lowering` overrides the graphs' lowering target (tools/bench-browser-train.ts compares them); default: targetForDevice of the provider. */
  | { type: 'init'; base: string; backend: Backend | 'auto'; threads: number; saved?: Uint8Array; lowering?: 'cpu' | 'plain' }
  /** Teach slot `target` of `tasks` (a new task is the last) from `images` ([n, 784] in [0, 1]). */
  | { type: 'start'; tasks: string[]; target: number; images: Float32Array; steps: number; seed: number }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'stop' }
  | { type: 'export' }
  /** tools/bench-browser-train.ts: `warmup` untimed then `steps` timed steps on a new task from `images` (nothing is kept). */
  | { type: 'bench'; images: Float32Array; steps: number; warmup: number };

export type FromWorker =
  | { type: 'ready'; run: string; tasks: string[]; step: number; fromSaved: boolean; note: string; backend: Backend; /** How 'auto' chose ('' when the visitor chose). */ choice: string; threads: number; isolated: boolean; configSource: string }
  | { type: 'samples'; tasks: string[]; n: number; seed: number; gray: Uint8Array[]; live: boolean }
  /** `lowering`: the target the step graph was lowered for ('plain' on both providers). */
  | { type: 'started'; total: number; tasks: string[]; target: number; inputs: number; graphBytes: number; lowering: 'cpu' | 'plain' }
  | { type: 'progress'; step: number; total: number; stepsPerSecond: number; etaSeconds: number; metrics: Metrics; elapsed: number }
  | { type: 'paused'; step: number }
  | { type: 'state'; checkpoint: Uint8Array; tasks: string[] }
  | { type: 'done'; steps: number; stopped: boolean; metrics: Metrics }
  | { type: 'export'; decoder: Uint8Array; checkpoint: Uint8Array; manifest: string }
  | { type: 'bench'; ms: number[]; backend: Backend; threads: number; adapter: string }
  | { type: 'error'; message: string; during: string };
