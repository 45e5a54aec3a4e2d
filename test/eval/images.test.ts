import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { gridPixels, gridPng, readSamples } from '../../src/eval/images.js';
import { encodeIdx } from '../../src/data/idx.js';
import { Rng } from '../../src/util/rng.js';

const dir = mkdtempSync(join(tmpdir(), 'eval-images-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** n images whose pixels are multiples of 1/255 (so PNG round trips are exact), none all-black. */
function images(n: number, seed = 1): Float32Array {
  const rng = new Rng(seed);
  const x = new Float32Array(n * 784);
  for (let i = 0; i < x.length; i++) x[i] = rng.int(256) / 255;
  for (let k = 0; k < n; k++) x[k * 784] = 1;
  return x;
}

function npy(descr: string, shape: number[], data: Uint8Array): Uint8Array {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(data, 10 + header.length);
  return out;
}

const close = (a: Float32Array, b: Float32Array) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  expect(m).toBeLessThan(1e-6);
};

describe('sample grids', () => {
  it('lays images out in rows with scale and padding', () => {
    const x = new Float32Array(2 * 784);
    x[0] = 1; // image 0, pixel (0, 0)
    x[784 + 27] = 0.5; // image 1, pixel (0, 27)
    const g = gridPixels(x, 2, { cols: 2, scale: 2, pad: 1, padValue: 255 });
    expect([g.width, g.height]).toEqual([2 * 56 + 3, 56 + 2]);
    expect(g.data[0]).toBe(255); // border
    expect(g.data[1 * g.width + 1]).toBe(255); // image 0 pixel (0,0), upscaled 2x2
    expect(g.data[2 * g.width + 2]).toBe(255);
    expect(g.data[1 * g.width + 3]).toBe(0);
    const x1 = 1 + 56 + 1 + 27 * 2; // image 1 pixel (0, 27)
    expect(g.data[1 * g.width + x1]).toBe(128);
  });

  it('gridPng round-trips through readSamples, and trailing empty cells are dropped', async () => {
    const x = images(10);
    const file = join(dir, 'grid.png');
    writeFileSync(file, await gridPng(x, 10, { cols: 4 }));
    const meta = await sharp(file).metadata();
    expect([meta.width, meta.height, meta.channels]).toEqual([4 * 28, 3 * 28, 1]);
    const back = await readSamples(file);
    expect(back.n).toBe(10);
    close(back.images, x);
    const scaled = join(dir, 'grid-scaled.png');
    writeFileSync(scaled, await gridPng(x, 10, { cols: 5, scale: 3, pad: 2 }));
    const back2 = await readSamples(scaled, { gridScale: 3, gridPad: 2 });
    expect(back2.n).toBe(10);
    close(back2.images, x);
    await expect(readSamples(scaled)).rejects.toThrow(/--grid-scale and --grid-pad/);
  });

  it('reads a folder of PNGs in natural order', async () => {
    const folder = join(dir, 'pngs');
    mkdirSync(folder);
    const x = images(3, 2);
    for (let k = 0; k < 3; k++) writeFileSync(join(folder, `img${[2, 10, 1][k]}.png`), await gridPng(x.subarray(k * 784, (k + 1) * 784), 1));
    writeFileSync(join(folder, 'notes.txt'), 'ignored');
    const back = await readSamples(folder);
    expect(back.n).toBe(3);
    // Natural order: img1, img2, img10 = images 2, 0, 1.
    close(back.images.subarray(0, 784), x.subarray(2 * 784, 3 * 784));
    close(back.images.subarray(784, 1568), x.subarray(0, 784));
    expect(back.source).toMatch(/3 image files/);
    const bad = join(dir, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'a.png'), await sharp({ create: { width: 30, height: 28, channels: 3, background: '#000000' } }).png().toBuffer());
    await expect(readSamples(bad)).rejects.toThrow(/30x28; expected 28x28 images or a grid/);
  });

  it('reads .npy (uint8 and float32), raw float32 and IDX files', async () => {
    const x = images(4, 3);
    const u8 = Uint8Array.from(x, (v) => Math.round(v * 255));
    writeFileSync(join(dir, 'a.npy'), npy('|u1', [4, 28, 28], u8));
    close((await readSamples(join(dir, 'a.npy'))).images, x);
    const f32 = new Uint8Array(x.buffer.slice(0));
    writeFileSync(join(dir, 'b.npy'), npy('<f4', [4, 784], f32));
    close((await readSamples(join(dir, 'b.npy'))).images, x);
    writeFileSync(join(dir, 'c.f32'), f32);
    const raw = await readSamples(join(dir, 'c.f32'), { limit: 2 });
    expect(raw.n).toBe(2);
    close(raw.images, x.subarray(0, 2 * 784));
    const symmetric = Float32Array.from(x, (v) => v * 2 - 1);
    writeFileSync(join(dir, 'd.f32'), new Uint8Array(symmetric.buffer));
    await expect(readSamples(join(dir, 'd.f32'))).rejects.toThrow(/outside the range 0\.\.1; pass --range/);
    close((await readSamples(join(dir, 'd.f32'), { range: '-1,1' })).images, x);
    writeFileSync(join(dir, 'e-idx3-ubyte'), encodeIdx(u8, [4, 28, 28], true));
    close((await readSamples(join(dir, 'e-idx3-ubyte'))).images, x);
    writeFileSync(join(dir, 'f.npy'), npy('<f4', [4, 10], new Uint8Array(160)));
    await expect(readSamples(join(dir, 'f.npy'))).rejects.toThrow(/shape \(4, 10\)/);
    writeFileSync(join(dir, 'g.csv'), '1,2,3');
    await expect(readSamples(join(dir, 'g.csv'))).rejects.toThrow(/do not know how to read/);
    await expect(readSamples(join(dir, 'missing'))).rejects.toThrow(/does not exist/);
  });
});
