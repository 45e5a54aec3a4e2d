// PNG encoders for Node. sharpPngEncoder() is sharp itself (libvips, libpng, zlib-ng) with
// integer upscaling; nodePngEncoder(), what the server uses, writes the same bytes with the
// exact JavaScript port (png-exact.ts) for small images and with sharp for large ones.

import sharp from 'sharp';
import { exactPngEncoder } from './png-exact.js';
import type { PngEncoder } from './png.js';

export function sharpPngEncoder(): PngEncoder {
  // Each request encodes a different small image: libvips' operation cache only costs (hashing
  // and storing every operation), and one libvips thread per pipeline is enough for 28x28 tiles
  // (concurrent requests already use the other cores). Same bytes either way.
  sharp.cache(false);
  sharp.concurrency(1);
  return {
    name: 'sharp',
    async gray(pixels, width, height, scale) {
      let image = sharp(pixels, { raw: { width, height, channels: 1 } });
      if (scale !== 1) image = image.resize(width * scale, height * scale, { kernel: 'nearest' });
      const png = await image.toColourspace('b-w').png({ compressionLevel: 6, palette: false }).toBuffer();
      return new Uint8Array(png.buffer, png.byteOffset, png.length);
    },
  };
}

/**
 * Images of at most this many pixels (after upscaling) go to the exact encoder: below it,
 * sharp's fixed cost per pipeline dominates; above it, libvips' native deflate is faster and
 * runs on libuv's thread pool, where a large grid does not hold up the event loop.
 */
export const EXACT_MAX_PIXELS = 128 * 128;

/** sharp's bytes, from whichever of the two encoders is cheaper for the image's size. */
export function nodePngEncoder(): PngEncoder {
  const exact = exactPngEncoder();
  const native = sharpPngEncoder();
  return {
    name: 'sharp', // both write sharp's bytes, so the ETags (which include the name) are unchanged
    gray: (pixels, width, height, scale) => (width * height * scale * scale <= EXACT_MAX_PIXELS ? exact : native).gray(pixels, width, height, scale),
  };
}
