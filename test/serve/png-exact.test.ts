// The exact encoder must write sharp's bytes, every one, for everything the sample route
// encodes (else responses and ETags would change with the encoder). tools/png-exact-fuzz.ts
// runs the same comparison on many more cases.

import { describe, expect, test } from 'vitest';
import { encodeGrayPngExact, exactPngEncoder } from '../../src/serve/png-exact.js';
import { EXACT_MAX_PIXELS, nodePngEncoder, sharpPngEncoder } from '../../src/serve/png-sharp.js';
import { SAMPLE_DEFAULTS } from '../../src/serve/routes/sample/index.js';
import { IMAGE_SIZE, upscale } from '../../src/serve/sampling.js';
import { Rng } from '../../src/util/rng.js';
import { firstDifference, gridCase, KINDS, makeImage, sharpPng, someDigits, type Case } from './png-cases.js';

const { maxN, maxScale } = SAMPLE_DEFAULTS;

async function expectSharpBytes(c: Case): Promise<void> {
  const want = await sharpPng(c);
  const got = encodeGrayPngExact(upscale(c.pixels, c.width, c.height, c.scale), c.width * c.scale, c.height * c.scale);
  // The offset says where to look; comparing whole arrays would print megabytes.
  expect({ case: c.label, firstDifference: firstDifference(got, want) }).toEqual({ case: c.label, firstDifference: -1 });
}

describe('byte for byte what sharp writes', () => {
  test('real digits as single tiles, at every scale', async () => {
    const rng = new Rng('tiles');
    for (let scale = 1; scale <= maxScale; scale++) {
      for (let k = 0; k < 6; k++) await expectSharpBytes({ label: `digit ${k} scale=${scale}`, pixels: someDigits(rng, 1), width: IMAGE_SIZE, height: IMAGE_SIZE, scale });
    }
  });

  test(`grids of every n from 1 to ${maxN}`, async () => {
    const rng = new Rng('grids');
    for (let n = 1; n <= maxN; n++) await expectSharpBytes(gridCase(rng, n, 1));
  });

  test('grids at every scale, the largest at the largest', async () => {
    const rng = new Rng('scaled grids');
    for (let scale = 2; scale <= maxScale; scale++) {
      for (const n of [1 + rng.int(8), 9 + rng.int(40), 50 + rng.int(maxN - 49)]) await expectSharpBytes(gridCase(rng, n, scale));
    }
    await expectSharpBytes(gridCase(rng, maxN, maxScale));
  });

  test.each(KINDS)('%s images of many sizes and scales', async (kind) => {
    const rng = new Rng(kind);
    const sizes: [number, number][] = [[1, 1], [1, 300], [300, 1], [5, 3], [28, 28], [58, 28], [127, 129], [600, 40]];
    for (const [width, height] of sizes) {
      const scale = 1 + rng.int(width * height > 10_000 ? 3 : maxScale);
      await expectSharpBytes({ label: `${kind} ${width}x${height} scale=${scale}`, pixels: makeImage(kind, width, height, rng), width, height, scale });
    }
  });

  test("the server's encoder on both sides of EXACT_MAX_PIXELS", async () => {
    const rng = new Rng('node encoder');
    const node = nodePngEncoder();
    expect(node.name).toBe(sharpPngEncoder().name);
    for (const [n, scale] of [[1, 1], [16, 1], [16, 2], [64, 1]] as const) {
      const c = gridCase(rng, n, scale);
      expect(c.width * c.height * scale * scale <= EXACT_MAX_PIXELS).toBe(n === 1 || (n === 16 && scale === 1));
      const got = await node.gray(c.pixels, c.width, c.height, scale);
      expect({ case: c.label, firstDifference: firstDifference(got, await sharpPng(c)) }).toEqual({ case: c.label, firstDifference: -1 });
    }
  });

  test('as a PngEncoder, under the name in the ETags', async () => {
    const pixels = someDigits(new Rng('encoder'), 1);
    const exact = exactPngEncoder();
    expect(exact.name).toBe(sharpPngEncoder().name);
    for (const scale of [1, 3]) expect(await exact.gray(pixels, IMAGE_SIZE, IMAGE_SIZE, scale)).toEqual(await sharpPngEncoder().gray(pixels, IMAGE_SIZE, IMAGE_SIZE, scale));
  });
});

test('rejects pixels that do not fit the size', () => {
  expect(() => encodeGrayPngExact(new Uint8Array(10), 3, 3)).toThrow(/10 pixels for a 3x3 image/);
  expect(() => encodeGrayPngExact(new Uint8Array(0), 0, 0)).toThrow(/empty image/);
});
