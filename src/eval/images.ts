// Image grids (PNG through sharp) and reading sets of 28x28 grayscale images from disk:
// a folder of images, a grid image, a .npy array, raw float32 / uint8 files or IDX files.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import sharp from 'sharp';
import { parseIdxImages } from '../data/idx.js';
import { PIXELS } from './features.js';

const SIDE = 28;

export interface GridOptions {
  /** Images per row (default: ceil(sqrt(n))). */
  cols?: number;
  /** Integer upscaling of each pixel (nearest neighbour; default 1). */
  scale?: number;
  /** Pixels between cells and around the border (default 0), filled with `padValue` (0..255, default 0). */
  pad?: number;
  padValue?: number;
}

/** Raw 8-bit pixels of a grid of n 28x28 images (values in [0, 1]); missing cells are black. */
export function gridPixels(images: Float32Array, n: number, opts: GridOptions = {}): { data: Uint8Array; width: number; height: number } {
  if (images.length < n * PIXELS) throw new Error(`gridPixels: ${images.length} values hold fewer than ${n} images of 28x28`);
  if (n < 1) throw new Error('gridPixels: no images');
  const cols = opts.cols ?? Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  const s = opts.scale ?? 1;
  const pad = opts.pad ?? 0;
  if (!Number.isInteger(cols) || cols < 1 || !Number.isInteger(s) || s < 1 || !Number.isInteger(pad) || pad < 0) {
    throw new Error(`gridPixels: cols, scale and pad must be integers (cols >= 1, scale >= 1, pad >= 0), got ${cols}, ${s}, ${pad}`);
  }
  const cell = SIDE * s;
  const width = cols * cell + (cols + 1) * pad;
  const height = rows * cell + (rows + 1) * pad;
  const data = new Uint8Array(width * height).fill(opts.padValue ?? 0);
  for (let k = 0; k < rows * cols; k++) {
    const x0 = pad + (k % cols) * (cell + pad);
    const y0 = pad + Math.floor(k / cols) * (cell + pad);
    for (let y = 0; y < cell; y++) {
      for (let x = 0; x < cell; x++) {
        const v = k < n ? images[k * PIXELS + Math.floor(y / s) * SIDE + Math.floor(x / s)]! : 0;
        data[(y0 + y) * width + x0 + x] = Math.round(Math.min(1, Math.max(0, Number.isFinite(v) ? v : 0)) * 255);
      }
    }
  }
  return { data, width, height };
}

/** A PNG (grayscale) of a grid of n 28x28 images with values in [0, 1]. */
export async function gridPng(images: Float32Array, n: number, opts: GridOptions = {}): Promise<Buffer> {
  const { data, width, height } = gridPixels(images, n, opts);
  return sharp(data, { raw: { width, height, channels: 1 } }).toColourspace('b-w').png().toBuffer();
}

export interface ImageSet {
  images: Float32Array;
  n: number;
  /** What was read, for reports. */
  source: string;
}

export interface ReadOptions {
  /** Value range of float arrays (.npy float, .f32): '0,1' (default), '-1,1' or '0,255'. */
  range?: '0,1' | '-1,1' | '0,255';
  /** Grid images: integer scale of the cells and padding (default 1 and 0, as gridPng writes by default). */
  gridScale?: number;
  gridPad?: number;
  /** Read at most this many images. */
  limit?: number;
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff', '.bmp', '.avif']);

/** Reads a set of 28x28 grayscale images from a folder of images, one grid image or an array file. */
export async function readSamples(path: string, opts: ReadOptions = {}): Promise<ImageSet> {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new Error(`samples: ${path} does not exist`);
  }
  let set: ImageSet;
  if (st.isDirectory()) {
    const files = readdirSync(path)
      .filter((f) => IMAGE_EXT.has(extname(f).toLowerCase()))
      .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    if (files.length === 0) throw new Error(`samples: the folder ${path} has no image files (${[...IMAGE_EXT].join(' ')})`);
    const parts: Float32Array[] = [];
    for (const f of files) parts.push((await readImageFile(join(path, f), opts)).images);
    set = { images: concat(parts), n: 0, source: `${files.length} image files in ${path}` };
    set.n = set.images.length / PIXELS;
  } else {
    const ext = extname(path).toLowerCase();
    if (IMAGE_EXT.has(ext)) set = await readImageFile(path, opts);
    else set = readArrayFile(path, opts);
  }
  if (set.n === 0) throw new Error(`samples: no images in ${path}`);
  if (opts.limit !== undefined && set.n > opts.limit) set = { images: set.images.slice(0, opts.limit * PIXELS), n: opts.limit, source: `${set.source}, first ${opts.limit}` };
  return set;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** One image file: a single 28x28 image, or a grid of them (trailing all-black cells are dropped). */
async function readImageFile(file: string, opts: ReadOptions): Promise<ImageSet> {
  const { data, info } = await sharp(readFileSync(file)).flatten({ background: '#000000' }).grayscale().raw().toBuffer({ resolveWithObject: true });
  const gray = info.channels === 1 ? data : Uint8Array.from({ length: info.width * info.height }, (_, i) => data[i * info.channels]!);
  const s = opts.gridScale ?? 1;
  const pad = opts.gridPad ?? 0;
  const cell = SIDE * s;
  const fits = (len: number) => (len - pad) % (cell + pad) === 0 && len > pad;
  if (!fits(info.width) || !fits(info.height)) {
    throw new Error(
      `samples: ${file} is ${info.width}x${info.height}; expected 28x28 images or a grid of 28x28 cells` +
        (s !== 1 || pad ? ` at scale ${s} with padding ${pad}` : ' (for a grid drawn with upscaling or padding, pass --grid-scale and --grid-pad)'),
    );
  }
  const cols = (info.width - pad) / (cell + pad);
  const rows = (info.height - pad) / (cell + pad);
  const cells: Float32Array[] = [];
  for (let k = 0; k < rows * cols; k++) {
    const x0 = pad + (k % cols) * (cell + pad);
    const y0 = pad + Math.floor(k / cols) * (cell + pad);
    const img = new Float32Array(PIXELS);
    for (let y = 0; y < SIDE; y++) {
      for (let x = 0; x < SIDE; x++) {
        // The mean over the s x s block (exact for a nearest-neighbour upscaled grid).
        let sum = 0;
        for (let dy = 0; dy < s; dy++) for (let dx = 0; dx < s; dx++) sum += gray[(y0 + y * s + dy) * info.width + x0 + x * s + dx]!;
        img[y * SIDE + x] = sum / (s * s * 255);
      }
    }
    cells.push(img);
  }
  let count = cells.length;
  if (count > 1) while (count > 0 && cells[count - 1]!.every((v) => v === 0)) count--;
  const images = concat(cells.slice(0, count));
  return { images, n: count, source: count > 1 || rows * cols > 1 ? `grid ${file} (${cols}x${rows} cells, ${count} images)` : file };
}

function bytesToUnit(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i]! / 255;
  return out;
}

function fromRange(values: ArrayLike<number>, range: ReadOptions['range'], file: string): Float32Array {
  const out = new Float32Array(values.length);
  const [lo, hi] = range === '-1,1' ? [-1, 1] : range === '0,255' ? [0, 255] : [0, 1];
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) throw new Error(`samples: ${file} has a non-finite value at index ${i}`);
    if (v < min) min = v;
    if (v > max) max = v;
    out[i] = (v - lo) / (hi - lo);
  }
  const tol = 1e-3 * (hi - lo);
  if (min < lo - tol || max > hi + tol) {
    throw new Error(`samples: ${file} has values from ${min} to ${max}, outside the range ${lo}..${hi}; pass --range 0,1, -1,1 or 0,255 to say how its pixels are scaled`);
  }
  for (let i = 0; i < out.length; i++) out[i] = Math.min(1, Math.max(0, out[i]!));
  return out;
}

function imagesOf(values: Float32Array, file: string, what: string): ImageSet {
  if (values.length % PIXELS !== 0) throw new Error(`samples: ${file} holds ${values.length} values, not a whole number of 28x28 images (${PIXELS} values each)`);
  return { images: values, n: values.length / PIXELS, source: `${what} ${file}` };
}

/** .npy (uint8, float32 or float64; shape [N, 784], [N, 28, 28] or [N, 1, 28, 28]), raw .f32/.bin/.u8, IDX (optionally gzipped). */
function readArrayFile(file: string, opts: ReadOptions): ImageSet {
  const bytes = new Uint8Array(readFileSync(file));
  const lower = file.toLowerCase();
  if (lower.endsWith('.npy')) return readNpy(bytes, file, opts);
  if (lower.endsWith('.f32') || lower.endsWith('.bin') || lower.endsWith('.raw')) {
    if (bytes.length % 4) throw new Error(`samples: ${file} is ${bytes.length} bytes, not a whole number of float32 values`);
    const f = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    return imagesOf(fromRange(f, opts.range, file), file, 'float32 array');
  }
  if (lower.endsWith('.u8')) return imagesOf(bytesToUnit(bytes), file, 'uint8 array');
  if (/(idx\d?-ubyte|\.idx\d?)(\.gz)?$/.test(lower)) {
    const idx = parseIdxImages(bytes, file);
    if (idx.rows !== SIDE || idx.cols !== SIDE) throw new Error(`samples: ${file} holds ${idx.rows}x${idx.cols} images, not 28x28`);
    return imagesOf(bytesToUnit(idx.pixels), file, 'IDX file');
  }
  throw new Error(`samples: do not know how to read ${file}; give a folder of images, an image (single or grid), a .npy array, raw float32 (.f32/.bin/.raw), raw uint8 (.u8) or an IDX file`);
}

function readNpy(bytes: Uint8Array, file: string, opts: ReadOptions): ImageSet {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || !magic.every((b, i) => bytes[i] === b)) throw new Error(`samples: ${file} is not a .npy file (bad magic)`);
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder('latin1').decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '').split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (fortran) throw new Error(`samples: ${file} is in Fortran order; save it with C order (np.ascontiguousarray)`);
  const count = shape.reduce((a, b) => a * b, 1);
  const ok = (shape.length === 2 && shape[1] === PIXELS) || (shape.length === 3 && shape[1] === SIDE && shape[2] === SIDE) || (shape.length === 4 && shape[1] === 1 && shape[2] === SIDE && shape[3] === SIDE);
  if (!ok) throw new Error(`samples: ${file} has shape (${shape.join(', ')}); expected (N, 784), (N, 28, 28) or (N, 1, 28, 28)`);
  const data = bytes.slice(start + headerLen);
  const itemSize = descr === '<f8' ? 8 : descr === '<f4' ? 4 : 1;
  if (data.length < count * itemSize) throw new Error(`samples: ${file} is truncated: shape (${shape.join(', ')}) needs ${count * itemSize} data bytes, the file has ${data.length}`);
  let values: Float32Array;
  if (descr === '|u1' || descr === 'u1') values = bytesToUnit(data.subarray(0, count));
  else if (descr === '<f4') values = fromRange(new Float32Array(data.buffer, 0, count), opts.range, file);
  else if (descr === '<f8') values = fromRange(new Float64Array(data.buffer, 0, count), opts.range, file);
  else throw new Error(`samples: ${file} has dtype '${descr}'; use uint8, float32 or float64 (little-endian)`);
  return imagesOf(values, file, `.npy array ${descr}`);
}
