import { describe, expect, test } from 'vitest';
import { encodeGrayPng, pngEncoder, toBase64 } from '../../src/serve/png.js';
import { exactPngEncoder } from '../../src/serve/png-exact.js';
import { nodePngEncoder, sharpPngEncoder } from '../../src/serve/png-sharp.js';
import { upscale } from '../../src/serve/sampling.js';
import { decodeGrayPng } from './fixture.js';

const width = 37;
const height = 23;
const pixels = Uint8Array.from({ length: width * height }, (_, i) => (i * 97 + (i >> 3)) & 255);

test('encodeGrayPng writes a lossless 8-bit gray PNG (colour type 0)', async () => {
  const png = await encodeGrayPng(pixels, width, height);
  expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  expect([png[24], png[25]]).toEqual([8, 0]); // IHDR bit depth, colour type
  const back = await decodeGrayPng(png);
  expect([back.width, back.height]).toEqual([width, height]);
  expect(back.pixels).toEqual(pixels);
  await expect(encodeGrayPng(pixels, width, height + 1)).rejects.toThrow(/pixels for a 37x24 image/);
});

describe.each([
  { label: 'JavaScript', encoder: pngEncoder() },
  { label: 'sharp', encoder: sharpPngEncoder() },
  { label: 'exact', encoder: exactPngEncoder() },
  { label: 'Node', encoder: nodePngEncoder() },
])('$label encoder', ({ encoder }) => {
  test.each([1, 2, 3])('scale %i: gray, lossless, nearest-neighbour upscaled, deterministic', async (scale) => {
    const png = await encoder.gray(pixels, width, height, scale);
    expect([png[24], png[25]]).toEqual([8, 0]);
    const back = await decodeGrayPng(png);
    expect([back.width, back.height]).toEqual([width * scale, height * scale]);
    expect(back.pixels).toEqual(upscale(pixels, width, height, scale));
    expect(await encoder.gray(pixels, width, height, scale)).toEqual(png);
  });
});

test('toBase64 matches Buffer', () => {
  const bytes = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 31) & 255);
  expect(toBase64(bytes)).toBe(Buffer.from(bytes).toString('base64'));
  expect(toBase64(new Uint8Array(0))).toBe('');
});
