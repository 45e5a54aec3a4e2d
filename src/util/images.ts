// 28x28 grayscale images (pixels in [0, 1], row-major, one after another) to PNG grids.

import sharp from 'sharp';

export const SIDE = 28;

/** Tiles n images into a grid (cols per row, 2-pixel gutters) and encodes it as an 8-bit gray PNG. */
export async function gridPng(images: Float32Array, n: number, o: { cols?: number; scale?: number; side?: number } = {}): Promise<Buffer> {
  const side = o.side ?? SIDE;
  const cols = Math.min(o.cols ?? Math.ceil(Math.sqrt(n)), n);
  const rows = Math.ceil(n / cols);
  const gap = 2;
  const w = cols * side + (cols + 1) * gap;
  const h = rows * side + (rows + 1) * gap;
  const px = new Uint8Array(w * h).fill(255);
  for (let i = 0; i < n; i++) {
    const r0 = gap + Math.floor(i / cols) * (side + gap);
    const c0 = gap + (i % cols) * (side + gap);
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) px[(r0 + y) * w + c0 + x] = toByte(images[i * side * side + y * side + x]!);
    }
  }
  const scale = o.scale ?? 1;
  let img = sharp(px, { raw: { width: w, height: h, channels: 1 } });
  if (scale !== 1) img = img.resize(w * scale, h * scale, { kernel: 'nearest' });
  return img.png().toBuffer();
}

export function toByte(v: number): number {
  return Math.max(0, Math.min(255, Math.round(v * 255)));
}
