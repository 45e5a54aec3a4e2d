// The PNG encoder for Node: sharp (libvips, libspng) for encoding and integer upscaling.

import sharp from 'sharp';
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
