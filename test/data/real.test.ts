/** Tests on the real dataset files, where they are present (datasets/ or Debian's package). */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { DATASETS, DEBIAN_FASHION_DIR } from '../../src/data/catalog.ts';
import { checkLocalFile } from '../../src/data/offline.ts';
import { loadTask } from '../../src/data/taskdata.ts';
import { epochBatches, type Batch } from '../../src/data/batches.ts';

const quiet = { progress: null, log: () => undefined, offline: true } as const;
const originalsIn = (dir: string, name: 'mnist' | 'fashion') =>
  DATASETS[name].files.every((f) => existsSync(path.join(dir, f.name)));

describe.skipIf(!existsSync(DEBIAN_FASHION_DIR))('Debian Fashion-MNIST files', () => {
  it('have the canonical content', async () => {
    for (const f of DATASETS.fashion.files) {
      expect(await checkLocalFile(path.join(DEBIAN_FASHION_DIR, f.name), f)).toBe('rawSha256');
    }
  });
});

for (const name of ['mnist', 'fashion'] as const) {
  const dir = path.join('datasets', name);
  describe.skipIf(!originalsIn(dir, name))(`${name} originals in ${dir}/`, () => {
    it('verify against the catalog checksums', async () => {
      for (const f of DATASETS[name].files) expect(await checkLocalFile(path.join(dir, f.name), f)).not.toBe('mismatch');
    });

    it('load as tasks and batch', async () => {
      const task = await loadTask(`${name}:0,2,4`, { ...quiet, root: 'datasets' });
      expect(task.spec.name).toBe(`${name}:0,2,4`);
      expect(new Set(task.train.labels)).toEqual(new Set([0, 2, 4]));
      expect(task.train.images.length).toBe(task.train.n * 784);
      if (name === 'fashion') expect([task.train.n, task.test.n]).toEqual([18000, 3000]);
      const first: Batch = epochBatches(task.train, { batchSize: 64, seed: 1 }).next().value;
      expect(first.x.length).toBe(64 * 784);
      expect(first.x.every((v) => v >= 0 && v <= 1)).toBe(true);
    });
  });
}
