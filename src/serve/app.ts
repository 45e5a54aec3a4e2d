// The Hono app, runtime-agnostic: everything platform-specific comes in through the options
// (the inference backend inside the registry, the PNG encoder, the static assets), so the same
// app runs on Node with onnxruntime-node and sharp's PNG bytes (nodePngEncoder), or on an edge
// runtime with onnxruntime-web and the JavaScript PNG encoder.

import { Hono } from 'hono';
import { jsonError } from './errors.js';
import type { AssetSource } from './http.js';
import { crossOrigin } from './middleware/cross-origin/index.js';
import { concurrencyLimit, type ConcurrencyLimitOptions } from './middleware/limit/index.js';
import { requestTimeout, type RequestTimeoutOptions } from './middleware/timeout/index.js';
import { pngEncoder, type PngEncoder } from './png.js';
import type { ModelRegistry } from './registry.js';
import type { Renderer } from './render.js';
import { healthRoutes } from './routes/health/index.js';
import { modelRoutes } from './routes/models/index.js';
import { sampleRoutes, type SampleRoutesOptions } from './routes/sample/index.js';
import { webRoutes } from './routes/web/index.js';
import { teachRoutes, type TeachInfo } from './routes/teach/index.js';

export interface AppOptions {
  registry: ModelRegistry;
  /** Default: the JavaScript encoder (works everywhere); Node passes nodePngEncoder(). */
  encoder?: PngEncoder;
  /** Where /sample draws and encodes (a worker pool, node/pool.ts); default in-process, with `encoder`. */
  renderer?: Renderer;
  /** The page, the embeddable module and onnxruntime-web's files; without them / lists the endpoints. */
  assets?: AssetSource;
  /** Limits on /sample. */
  concurrency?: ConcurrencyLimitOptions;
  timeout?: RequestTimeoutOptions;
  sample?: Pick<SampleRoutesOptions, 'defaultN' | 'maxN' | 'maxScale'>;
  /** Origins allowed to embed (CORS); default any. */
  corsOrigin?: string | string[];
  /** True once shutdown has begun (/healthz answers 503). */
  draining?: () => boolean;
  /** The run's student configuration, for the page's teach panel (GET /teach/config.json); absent: the route answers 404. */
  teach?: TeachInfo;
  /** Called with unexpected errors (default console.error). */
  onError?: (err: Error, request: Request) => void;
}

/** Paths the app serves (all with GET, HEAD and OPTIONS): another method on them is a 405, not a 404. */
const KNOWN_PATHS = [/^\/$/, /^\/index\.html$/, /^\/sample$/, /^\/v1\/models$/, /^\/healthz$/, /^\/models\/[^/]+$/, /^\/student-sampler\.js$/, /^\/teach-(panel|worker)\.js$/, /^\/teach\/config\.json$/, /^\/ort\/[^/]+$/, /^\/favicon\.ico$/];
const ALLOW = 'GET, HEAD, OPTIONS';

const ENDPOINTS = ['GET /sample?task=<task>', 'GET /v1/models', 'GET /healthz', 'GET /models/<file>.onnx', 'GET /models/manifest.json', 'GET /', 'GET /student-sampler.js', 'GET /teach/config.json'];

export function createApp(options: AppOptions): Hono {
  const { registry, assets, draining } = options;
  const encoder = options.encoder ?? pngEncoder();
  const report = options.onError ?? ((err: Error, req: Request) => console.error(`${req.method} ${req.url}:`, err));
  const limit = concurrencyLimit(options.concurrency);

  const app = new Hono();
  app.use('*', crossOrigin({ origin: options.corsOrigin ?? '*' }));
  app.use('*', async (c, next) => {
    await next();
    // While draining, each response closes its connection, so keep-alive clients reconnect
    // (to another replica) instead of sending more requests to a server that is about to close.
    if (draining?.()) c.header('Connection', 'close');
  });
  app.use('/sample', requestTimeout(options.timeout), limit);

  app.route('/', sampleRoutes({ registry, encoder, renderer: options.renderer, ...options.sample }));
  app.route('/', modelRoutes({ registry }));
  app.route('/', healthRoutes({ registry, draining, load: limit.stats }));
  app.route('/', teachRoutes({ registry, teach: options.teach }));
  if (assets) app.route('/', webRoutes({ assets }));
  else app.get('/', (c) => c.json({ run: registry.run, tasks: registry.taskNames, endpoints: ENDPOINTS }));

  app.notFound((c) => {
    const path = new URL(c.req.url).pathname;
    if (!['GET', 'HEAD', 'OPTIONS'].includes(c.req.method) && KNOWN_PATHS.some((p) => p.test(path))) {
      c.header('Allow', ALLOW);
      return jsonError(c, 405, `${c.req.method} is not allowed on ${path.slice(0, 100)}: it answers ${ALLOW}`, { allow: ALLOW.split(', ') });
    }
    return jsonError(c, 404, `no route ${c.req.method} ${new URL(c.req.url).pathname.slice(0, 100)}; the endpoints are: ${ENDPOINTS.join(', ')}`, { endpoints: ENDPOINTS });
  });
  app.onError((err, c) => {
    report(err, c.req.raw);
    return jsonError(c, 500, `internal error while serving ${c.req.method} ${new URL(c.req.url).pathname.slice(0, 100)}: ${err.message}. This is a bug or a broken model file; the server log has the details`);
  });
  return app;
}
