// The safetensors format (an 8-byte little-endian header length, a JSON header, raw
// little-endian data), so checkpoints are readable by other ecosystems' loaders.

import type { TensorData } from './ir.js';

export interface NamedTensor {
  dtype: 'float32' | 'int64';
  shape: number[];
  data: Float32Array | BigInt64Array;
}

const code = { float32: 'F32', int64: 'I64' } as const;

export function encodeSafetensors(tensors: ReadonlyMap<string, NamedTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  const names = [...tensors.keys()].sort();
  for (const name of names) {
    const t = tensors.get(name)!;
    const n = t.data.byteLength;
    header[name] = { dtype: code[t.dtype], shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8);
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const name of names) {
    const d = tensors.get(name)!.data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    at += d.byteLength;
  }
  return out;
}

export function decodeSafetensors(bytes: Uint8Array, file = 'checkpoint'): { tensors: Map<string, NamedTensor>; metadata: Record<string, string> } {
  if (bytes.length < 8) throw new Error(`${file}: not a safetensors file (shorter than its 8-byte header length)`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + n > bytes.length) throw new Error(`${file}: truncated safetensors header (${n} bytes declared, ${bytes.length - 8} present)`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch {
    throw new Error(`${file}: the safetensors header is not valid JSON; the file is damaged`);
  }
  const base = 8 + n;
  const tensors = new Map<string, NamedTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, h] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = h as unknown as Record<string, string>;
      continue;
    }
    const [b, e] = h.data_offsets;
    if (base + e > bytes.length) throw new Error(`${file}: tensor '${name}' runs past the end of the file (truncated checkpoint)`);
    const raw = bytes.slice(base + b, base + e);
    let data: TensorData;
    if (h.dtype === 'F32') data = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    else if (h.dtype === 'I64') data = new BigInt64Array(raw.buffer, raw.byteOffset, raw.byteLength / 8);
    else throw new Error(`${file}: tensor '${name}' has unsupported dtype ${h.dtype} (F32 and I64 are supported)`);
    tensors.set(name, { dtype: h.dtype === 'F32' ? 'float32' : 'int64', shape: h.shape, data });
  }
  return { tensors, metadata };
}
