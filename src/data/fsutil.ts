/** Small file helpers: hashing and atomic writes (temp file in the same folder, then rename). */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/fs.ts';

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A unique temp path next to `target`, so that the final rename stays on one file system. */
export function tempPathFor(target: string): string {
  const dir = path.dirname(target);
  const base = path.basename(target);
  return path.join(dir, `.${base}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Writes `data` to `target` atomically (the project's one writer: temp file, fsync, rename). */
export async function atomicWriteFile(target: string, data: Uint8Array | string): Promise<void> {
  writeFileAtomic(target, data);
}

export async function atomicWriteJson(target: string, value: unknown): Promise<void> {
  await atomicWriteFile(target, JSON.stringify(value, null, 2) + '\n');
}

export async function removeQuietly(p: string): Promise<void> {
  await fs.rm(p, { force: true }).catch(() => undefined);
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}

/** Reads a file, or returns null when it does not exist. */
export async function readIfExists(p: string): Promise<Uint8Array | null> {
  try {
    return new Uint8Array(await fs.readFile(p));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** Parses a JSON file, or returns null when it is missing or not valid JSON. */
export async function readJsonIfExists(p: string): Promise<unknown> {
  const buf = await readIfExists(p);
  if (!buf) return null;
  try {
    return JSON.parse(new TextDecoder().decode(buf));
  } catch {
    return null;
  }
}
