// What GET /sample sends for n images in [0, 1]: one PNG grid, or one base64 PNG per image.
// A Renderer draws and encodes them; localRenderer() does both on the calling thread, the
// worker pool (node/pool.ts) in a worker thread with one message each way, with the same
// functions, so the same bytes.

import { toBase64, type PngEncoder } from './png.js';
import type { ModelKind, ModelRegistry } from './registry.js';
import { composeGrid, IMAGE_SIZE, PIXELS, toGray8 } from './sampling.js';

export const SAMPLE_FORMATS = ['png', 'json'] as const;
export type SampleFormat = (typeof SAMPLE_FORMATS)[number];

export interface RenderOptions {
  n: number;
  format: SampleFormat;
  scale: number;
}

export type Rendered = { png: Uint8Array } | { images: string[] };

export interface SampleRequest extends RenderOptions {
  model: ModelKind;
  task: string;
  seed: number;
}

export interface Renderer {
  /** The PNG encoder's name (part of the sample route's ETags). */
  readonly encoderName: string;
  render(request: SampleRequest): Promise<Rendered>;
}

/** n images in [0, 1] to 8-bit gray, then a grid PNG (format png) or a base64 PNG each (json). */
export async function renderSamples(images: Float32Array, o: RenderOptions, encoder: PngEncoder): Promise<Rendered> {
  const gray = toGray8(images);
  if (o.format === 'json') {
    const encoded: string[] = [];
    for (let i = 0; i < o.n; i++) encoded.push(toBase64(await encoder.gray(gray.subarray(i * PIXELS, (i + 1) * PIXELS), IMAGE_SIZE, IMAGE_SIZE, o.scale)));
    return { images: encoded };
  }
  const grid = composeGrid(gray, o.n);
  return { png: await encoder.gray(grid.pixels, grid.width, grid.height, o.scale) };
}

/** Runs the registry's model and encodes with `encoder`, here. */
export function localRenderer(registry: ModelRegistry, encoder: PngEncoder): Renderer {
  return {
    encoderName: encoder.name,
    render: async (r) => renderSamples(await registry.sample(r.model, r.task, r.n, r.seed), r, encoder),
  };
}
