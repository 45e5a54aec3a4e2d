import { existsSync, mkdirSync, renameSync, writeFileSync, rmSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { dirname, basename, join, resolve } from 'node:path';

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
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
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
    throw err;
  }
}
