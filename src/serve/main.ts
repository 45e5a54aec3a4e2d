// npm run serve [-- --run results/<id>] [--port 3000]: the sampling server (see --help).

import { parseArgs } from 'node:util';
import { DEFAULT_RUN, defaultWorkers, SERVER_DEFAULTS, type BackendName } from './node/defaults.js';
import { CONCURRENCY_LIMIT_DEFAULTS } from './middleware/limit/index.js';
import { REQUEST_TIMEOUT_DEFAULTS } from './middleware/timeout/index.js';

const HELP = `usage: npm run serve -- [--run results/<run-id>] [--port N] [options]

Serves a trained run's exported models over HTTP:
  GET /sample?task=fashion     PNG grid of samples (n, seed, model, format, scale; see /v1/models)
  GET /v1/models               tasks, models, shapes, hashes, training run
  GET /healthz                 200 while serving, 503 while shutting down
  GET /models/<file>.onnx      model files (ETag, cache headers, CORS)
  GET /                        in-browser sampler (onnxruntime-web); embed with /student-sampler.js

options:
  --run DIR           run folder with export/manifest.json (default ${DEFAULT_RUN})
  --port N            port (default $PORT or ${SERVER_DEFAULTS.port}; 0 picks a free one)
  --host ADDR         address to listen on (default ${SERVER_DEFAULTS.host})
  --backend B         node (onnxruntime-node, default) or web (onnxruntime-web, WASM)
  --device D          cpu (default), cuda or webgpu: onnxruntime-node's execution provider
                      (cuda: after npm run install:cuda; webgpu: needs a Vulkan driver)
  --concurrency N     /sample requests running at once (default ${CONCURRENCY_LIMIT_DEFAULTS.max})
  --queue N           /sample requests waiting beyond those, then 503 (default ${CONCURRENCY_LIMIT_DEFAULTS.queue})
  --timeout-ms MS     /sample request timeout (default ${REQUEST_TIMEOUT_DEFAULTS.ms})
  --workers N         worker threads for inference and PNG encoding (node backend; default 1
                      on machines with 2 or more cores, else 0: on the HTTP thread; here ${defaultWorkers()})
  --drain-ms MS       on SIGTERM, keep serving this long with /healthz at 503 before closing the
                      listener, so load balancers stop sending first (default ${SERVER_DEFAULTS.drainMs})
  -h, --help          this text

SIGTERM or Ctrl-C stops gracefully: /healthz turns 503, serving goes on for the drain period,
then the listener closes, running and queued requests finish, and the process exits 0.`;

function fail(message: string): never {
  console.error(`error: ${message}\n(npm run serve -- --help shows the options)`);
  process.exit(2);
}

function whole(name: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  const v = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(v >= min && v <= 2 ** 31)) fail(`${name} must be a whole number >= ${min}, got '${text}'`);
  return v;
}

let args;
try {
  args = parseArgs({
    options: {
      run: { type: 'string', default: DEFAULT_RUN },
      port: { type: 'string' },
      host: { type: 'string', default: SERVER_DEFAULTS.host },
      backend: { type: 'string', default: SERVER_DEFAULTS.backend },
      concurrency: { type: 'string' },
      queue: { type: 'string' },
      'timeout-ms': { type: 'string' },
      'drain-ms': { type: 'string' },
      workers: { type: 'string' },
      device: { type: 'string', default: 'cpu' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
} catch (err) {
  fail((err as Error).message);
}
if (args.help) {
  console.log(HELP);
  process.exit(0);
}
if (args.backend !== 'node' && args.backend !== 'web') fail(`--backend must be node or web, got '${args.backend}'`);
if (!['cpu', 'cuda', 'webgpu'].includes(args.device!)) fail(`--device must be cpu, cuda or webgpu, got '${args.device}'`);

try {
  const { startServer } = await import('./node/server.js'); // after --help: it loads the runtimes
  const server = await startServer({
    run: args.run!,
    port: whole(args.port !== undefined ? '--port' : 'PORT', args.port ?? (process.env.PORT || undefined), 0) ?? SERVER_DEFAULTS.port,
    host: args.host,
    backend: args.backend as BackendName,
    device: args.device as 'cpu' | 'cuda' | 'webgpu',
    concurrency: { max: whole('--concurrency', args.concurrency, 1), queue: whole('--queue', args.queue, 0) },
    timeout: { ms: whole('--timeout-ms', args['timeout-ms'], 1) },
    drainMs: whole('--drain-ms', args['drain-ms'], 0),
    workers: whole('--workers', args.workers, 0),
  });
  console.log(`listening on ${server.url}  (pid ${process.pid}; try ${server.url}/sample?task=${server.registry.taskNames[0]}&seed=7, or open ${server.url}/ in a browser)`);
  const drainMs = whole('--drain-ms', args['drain-ms'], 0) ?? SERVER_DEFAULTS.drainMs;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      console.log(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    console.log(`${signal}: draining for ${drainMs} ms (/healthz answers 503), then finishing running requests and exiting`);
    server.close().then(
      () => process.exit(0),
      (err: Error) => {
        console.error(`error while shutting down: ${err.message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
} catch (err) {
  fail((err as Error).message);
}
