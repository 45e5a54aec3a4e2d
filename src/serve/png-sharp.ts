// The PNG encoder for Node: sharp (libvips, libspng) for encoding and integer upscaling.

import sharp from 'sharp';
import type { PngEncoder } from './png.js';

export function sharpPngEncoder(): PngEncoder {
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
