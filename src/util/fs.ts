import { existsSync, mkdirSync, renameSync, writeFileSync, rmSync, openSync, fsyncSync, closeSync, statfsSync, appendFileSync } from 'node:fs';
import { dirname, basename, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * `mkdir -p` that fails instead of hanging: Node 20's `mkdirSync(path, { recursive: true })`
 * loops forever when a missing parent cannot be created (any path under /proc, for one). Creates
 * the missing directories from the top down; an error names the directory that failed.
 */
export function makeDirs(path: string): void {
  const missing: string[] = [];
  for (let p = resolve(path); !existsSync(p); p = dirname(p)) {
    missing.push(p);
    if (dirname(p) === p) break;
  }
  for (const dir of missing.reverse()) {
    try {
      mkdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw new Error(`cannot create directory ${dir}${dir === resolve(path) ? '' : ` (for ${path})`}: ${(err as Error).message}. Choose a writable location.`);
    }
  }
}

/** Writes a file so that readers see either the old or the new content: temp file, fsync, rename. */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  makeDirs(dirname(path));
  // pid and time alone collide across containers (every one is pid 1) writing to a shared volume.
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    writeFileSync(tmp, data);
    const fd = openSync(tmp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw explainWriteError(err, path, typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength);
  }
}

/** Appends to a file; a full disk is reported like writeFileAtomic's. */
export function appendFile(path: string, data: string): void {
  try {
    appendFileSync(path, data);
  } catch (err) {
    throw explainWriteError(err, path, Buffer.byteLength(data));
  }
}

/** A write that failed for lack of space: the file, the bytes it needed and what was free. */
export class DiskFullError extends Error {
  readonly code = 'ENOSPC';
  constructor(
    readonly path: string,
    readonly bytes: number,
    readonly free: number | null,
  ) {
    super(`no space left on the device for ${path}: the write needs ${formatBytes(bytes)}${free === null ? '' : ` and ${formatBytes(free)} are free there`}. Free some space on that file system (or choose another location)`);
  }
}

/** Turns ENOSPC / EDQUOT into a DiskFullError naming the file; other errors pass unchanged. */
export function explainWriteError(err: unknown, path: string, bytes: number): unknown {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return err;
  let free: number | null = null;
  try {
    const s = statfsSync(dirname(path));
    free = Number(s.bavail) * Number(s.bsize);
  } catch {
    // the size is a hint; the error stands without it
  }
  return new DiskFullError(path, bytes, free);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
