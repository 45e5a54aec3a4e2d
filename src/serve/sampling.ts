// Noise, pixels and grid layout for sampling the exported models. Pure (no Node, no DOM):
// the server and the browser bundle (web/student-sampler.ts) both import this module, so the
// same seed gives the same latent codes, and the same pixels, on both sides.

import { Rng } from '../util/rng.js';

export const IMAGE_SIZE = 28;
export const PIXELS = IMAGE_SIZE * IMAGE_SIZE;
/** Pixels between grid tiles, and their value (white lines between the dark tiles). */
export const GRID_GAP = 2;
export const GRID_GAP_VALUE = 255;

export interface Feed {
  data: Float32Array;
  dims: number[];
}

export interface Prior {
  mu: number[][];
  logvar: number[][];
}

/** Standard normal noise [n, zDim], drawn row by row from `new Rng(seed)`: sample i of n is sample i of any larger n. */
export function normalNoise(seed: number, n: number, zDim: number): Float32Array {
  const rng = new Rng(seed);
  const eps = new Float32Array(n * zDim);
  for (let i = 0; i < eps.length; i++) eps[i] = rng.normal();
  return eps;
}

/** Inputs of the student decoder for task `taskIndex`: z = mu[t] + exp(logvar[t] / 2) * eps, and the task one-hot. */
export function studentFeeds(prior: Prior, taskIndex: number, numTasks: number, n: number, seed: number): { z: Feed; task: Feed } {
  const mu = prior.mu[taskIndex];
  const logvar = prior.logvar[taskIndex];
  if (!mu || !logvar) throw new Error(`the prior has no row for task index ${taskIndex} (it has ${prior.mu.length})`);
  const zDim = mu.length;
  const z = normalNoise(seed, n, zDim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < zDim; j++) z[i * zDim + j] = mu[j]! + Math.exp(0.5 * logvar[j]!) * z[i * zDim + j]!;
  }
  const task = new Float32Array(n * numTasks);
  for (let i = 0; i < n; i++) task[i * numTasks + taskIndex] = 1;
  return { z: { data: z, dims: [n, zDim] }, task: { data: task, dims: [n, numTasks] } };
}

/** Input of a teacher expert: z ~ N(0, I). */
export function teacherFeeds(zDim: number, n: number, seed: number): { z: Feed } {
  return { z: { data: normalNoise(seed, n, zDim), dims: [n, zDim] } };
}

/** Images in [0, 1] to 8-bit gray: round(clamp(v) * 255); NaN becomes 0. */
export function toGray8(images: Float32Array): Uint8Array {
  const out = new Uint8Array(images.length);
  for (let i = 0; i < images.length; i++) {
    const v = images[i]!;
    out[i] = v > 0 ? (v < 1 ? Math.round(v * 255) : 255) : 0;
  }
  return out;
}

export interface GridLayout {
  cols: number;
  rows: number;
  width: number;
  height: number;
}

/** A near-square grid: ceil(sqrt(n)) columns, tiles separated by GRID_GAP pixels. */
export function gridLayout(n: number): GridLayout {
  const cols = Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  return { cols, rows, width: cols * IMAGE_SIZE + (cols - 1) * GRID_GAP, height: rows * IMAGE_SIZE + (rows - 1) * GRID_GAP };
}

/** Top-left corner of tile i. */
export function tileOrigin(layout: GridLayout, i: number): { x: number; y: number } {
  return { x: (i % layout.cols) * (IMAGE_SIZE + GRID_GAP), y: Math.floor(i / layout.cols) * (IMAGE_SIZE + GRID_GAP) };
}

/** Lays out n gray 28x28 images (n * 784 bytes) as one gray image of `gridLayout(n)`'s size. */
export function composeGrid(gray: Uint8Array, n: number): { pixels: Uint8Array; width: number; height: number } {
  const layout = gridLayout(n);
  const pixels = new Uint8Array(layout.width * layout.height).fill(GRID_GAP_VALUE);
  for (let i = 0; i < n; i++) {
    const { x, y } = tileOrigin(layout, i);
    for (let r = 0; r < IMAGE_SIZE; r++) {
      const src = i * PIXELS + r * IMAGE_SIZE;
      pixels.set(gray.subarray(src, src + IMAGE_SIZE), (y + r) * layout.width + x);
    }
  }
  return { pixels, width: layout.width, height: layout.height };
}

/** Nearest-neighbour integer upscaling of a gray image. */
export function upscale(pixels: Uint8Array, width: number, height: number, scale: number): Uint8Array {
  if (scale === 1) return pixels;
  const w = width * scale;
  const out = new Uint8Array(w * height * scale);
  for (let y = 0; y < height; y++) {
    const row = out.subarray(y * scale * w, (y * scale + 1) * w);
    for (let x = 0; x < width; x++) row.fill(pixels[y * width + x]!, x * scale, (x + 1) * scale);
    for (let k = 1; k < scale; k++) out.copyWithin((y * scale + k) * w, y * scale * w, (y * scale + 1) * w);
  }
  return out;
}

/** Seeds in URLs and HTML attributes: a whole number of at most 15 digits, optionally negative. */
export const SEED_PATTERN = /^-?\d{1,15}$/;

export function parseSeed(text: string): number | undefined {
  return SEED_PATTERN.test(text) ? Number(text) : undefined;
}

// Random words drawn 256 at a time: getRandomValues costs about the same for 4 bytes as for
// 1 KiB, and the server draws a seed for every request without one.
const seedWords = new Uint32Array(256);
let seedNext = seedWords.length;

/** A random seed for requests that give none (31 bits, so it prints and parses back the same). */
export function randomSeed(): number {
  if (seedNext === seedWords.length) {
    globalThis.crypto.getRandomValues(seedWords);
    seedNext = 0;
  }
  return seedWords[seedNext++]! >>> 1;
}
