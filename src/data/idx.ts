/**
 * IDX file format (LeCun's MNIST format), optionally gzip-compressed.
 *
 * Header: two zero bytes, a dtype byte, the number of dimensions, then one
 * big-endian uint32 per dimension; then the data, row-major. Only unsigned
 * bytes (dtype 0x08) are accepted: MNIST and Fashion-MNIST use nothing else.
 */
import { gunzipSync, gzipSync } from 'node:zlib';

export interface IdxArray {
  /** Dimensions, e.g. [60000, 28, 28] for images or [60000] for labels. */
  dims: number[];
  data: Uint8Array;
}

export interface IdxImages {
  count: number;
  rows: number;
  cols: number;
  /** count × rows × cols bytes, row-major. */
  pixels: Uint8Array;
}

const DTYPE_NAMES: Record<number, string> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'int16',
  0x0c: 'int32',
  0x0d: 'float32',
  0x0e: 'float64',
};

const FIX_HINT = 'Delete the file and run `npm run download` to fetch a fresh copy.';

export class IdxError extends Error {
  constructor(
    readonly fileName: string,
    readonly problem: string,
    hint = FIX_HINT,
  ) {
    super(`${fileName}: ${problem}. ${hint}`);
    this.name = 'IdxError';
  }
}

export function isGzip(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;
}

/** Decompresses `buf` if it is gzip data; otherwise returns it unchanged. */
export function maybeGunzip(buf: Uint8Array, fileName: string): Uint8Array {
  if (!isGzip(buf)) return buf;
  try {
    return new Uint8Array(gunzipSync(buf));
  } catch (e) {
    throw new IdxError(fileName, `gzip error (${(e as Error).message}); the file is corrupt or truncated`);
  }
}

/** Parses an IDX file (raw or gzip-compressed). Throws `IdxError` naming the file and the problem. */
export function parseIdx(input: Uint8Array, fileName: string): IdxArray {
  const buf = maybeGunzip(input, fileName);
  if (buf.length < 4) {
    throw new IdxError(fileName, `truncated header: ${buf.length} bytes, an IDX header needs at least 4`);
  }
  const magic = ((buf[0] << 24) | (buf[1] << 16) | (buf[2] << 8) | buf[3]) >>> 0;
  if (buf[0] !== 0 || buf[1] !== 0) {
    throw new IdxError(
      fileName,
      `wrong magic number 0x${magic.toString(16).padStart(8, '0')}: an IDX file starts with two zero bytes (e.g. 0x00000803 for images, 0x00000801 for labels)`,
    );
  }
  const dtype = buf[2];
  const ndims = buf[3];
  if (dtype !== 0x08) {
    const name = DTYPE_NAMES[dtype] ?? 'unknown';
    throw new IdxError(fileName, `unsupported dtype 0x${hex2(dtype)} (${name}); only unsigned byte (0x08) is supported`);
  }
  if (ndims < 1 || ndims > 4) {
    throw new IdxError(fileName, `unsupported number of dimensions ${ndims} in magic number; expected 1 to 4`);
  }
  const headerLen = 4 + 4 * ndims;
  if (buf.length < headerLen) {
    throw new IdxError(fileName, `truncated header: ${buf.length} bytes, expected ${headerLen} for ${ndims} dimensions`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const expected = dims.reduce((a, b) => a * b, 1);
  const actual = buf.length - headerLen;
  if (actual < expected) {
    throw new IdxError(
      fileName,
      `truncated data: header declares ${dims.join('×')} = ${expected} bytes, file has ${actual}`,
    );
  }
  if (actual > expected) {
    throw new IdxError(
      fileName,
      `${actual - expected} unexpected trailing bytes after the ${dims.join('×')} data the header declares`,
    );
  }
  // Own the memory: a subarray would keep a larger decompressed buffer alive.
  const data = buf.slice(headerLen);
  return { dims, data };
}

/** Parses an IDX images file: 3 dimensions (count, rows, cols). */
export function parseIdxImages(input: Uint8Array, fileName: string): IdxImages {
  const { dims, data } = parseIdx(input, fileName);
  if (dims.length !== 3) {
    throw new IdxError(fileName, `expected an images file with 3 dimensions (count, rows, cols), got ${dims.length} (${dims.join('×')})`);
  }
  const [count, rows, cols] = dims as [number, number, number];
  return { count, rows, cols, pixels: data };
}

/** Parses an IDX labels file: 1 dimension, every label below `numClasses`. */
export function parseIdxLabels(input: Uint8Array, fileName: string, numClasses = 10): Uint8Array {
  const { dims, data } = parseIdx(input, fileName);
  if (dims.length !== 1) {
    throw new IdxError(fileName, `expected a labels file with 1 dimension, got ${dims.length} (${dims.join('×')})`);
  }
  for (let i = 0; i < data.length; i++) {
    if (data[i] >= numClasses) {
      throw new IdxError(fileName, `label ${data[i]} at index ${i} is out of range 0..${numClasses - 1}`);
    }
  }
  return data;
}

/** Throws if images and labels disagree in count. */
export function checkPair(images: IdxImages, labels: Uint8Array, imagesFile: string, labelsFile: string): void {
  if (images.count !== labels.length) {
    throw new IdxError(
      `${imagesFile} + ${labelsFile}`,
      `image and label counts disagree: ${images.count} images, ${labels.length} labels`,
      'The two files belong to different sets or one is damaged; delete both and run `npm run download`.',
    );
  }
}

/** Encodes an uint8 array as IDX; gzip-compressed unless `gzip` is false. */
export function encodeIdx(data: Uint8Array, dims: readonly number[], gzip = true): Uint8Array {
  const expected = dims.reduce((a, b) => a * b, 1);
  if (expected !== data.length) {
    throw new Error(`encodeIdx: dims ${dims.join('×')} = ${expected} but data has ${data.length} bytes`);
  }
  const header = new Uint8Array(4 + 4 * dims.length);
  const view = new DataView(header.buffer);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  const raw = new Uint8Array(header.length + data.length);
  raw.set(header, 0);
  raw.set(data, header.length);
  return gzip ? new Uint8Array(gzipSync(raw, { level: 9 })) : raw;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}
