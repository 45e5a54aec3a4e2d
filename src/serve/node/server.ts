// The Node server: loads a run, builds the app with onnxruntime-node (or -web) and sharp's PNG
// bytes (nodePngEncoder), listens, and shuts down gracefully (stop accepting, finish what is
// running, release models).

import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import { createApp, type AppOptions } from '../app.js';
import { withDefaults } from '../defaults.js';
import { ortNodeBackend } from '../backend/ort-node.js';
import { ortWebBackend } from '../backend/ort-web.js';
import type { InferenceBackend } from '../backend/types.js';
import { nodePngEncoder } from '../png-sharp.js';
import { ModelRegistry } from '../registry.js';
import { nodeAssets, ortDistDir } from './assets.js';
import { defaultWorkers, SERVER_DEFAULTS, type BackendName } from './defaults.js';
import { loadRun, readTeachInfo } from './run.js';
import { WorkerPool } from './pool.js';
import { probeDevice, type Device } from '../../runtime/device.js';

export { defaultWorkers, SERVER_DEFAULTS, type BackendName } from './defaults.js';

export interface ServerOptions extends Pick<AppOptions, 'concurrency' | 'timeout' | 'corsOrigin'> {
  /** Run folder (results/<id>) or export folder. */
  run: string;
  port?: number;
  host?: string;
  backend?: BackendName;
  /** Execution provider of the node backend: cpu (default), cuda or webgpu; checked before the run is read. */
  device?: Device;
  /** Worker threads that run the models and encode PNGs (node backend; default defaultWorkers(): 1 with 2 or more cores, else 0, on the HTTP thread). */
  workers?: number;
  /** How long shutdown keeps serving with /healthz at 503 before it stops accepting (load balancers take it out meanwhile). */
  drainMs?: number;
  /** How long shutdown then waits for running and queued requests before closing their connections. */
  shutdownGraceMs?: number;
  log?: (line: string) => void;
}


export interface RunningServer {
  url: string;
  port: number;
  app: Hono;
  registry: ModelRegistry;
  exportDir: string;
  /** Graceful stop: /healthz turns 503 and serving goes on for the drain period; then no new connections, running and queued requests finish (up to the grace period). */
  close(): Promise<void>;
}

export function backendFor(name: BackendName, device: Device = 'cpu'): InferenceBackend {
  return name === 'web' ? ortWebBackend({ wasmPaths: `${ortDistDir()}/`, numThreads: 1 }) : ortNodeBackend({ device });
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const o = withDefaults(SERVER_DEFAULTS, options);
  const log = o.log ?? ((line: string) => console.log(line));
  const device = o.device ?? 'cpu';
  if (device !== 'cpu' && o.backend !== 'node') throw new Error(`--device ${device} needs the node backend (onnxruntime-node); --backend web runs on the CPU (WASM)`);
  await probeDevice(device); // a device that cannot run fails before the run is read
  const { dir, manifest, files } = loadRun(o.run);
  const workers = o.backend === 'node' ? (o.workers ?? defaultWorkers()) : 0;
  const pool = workers > 0 ? await WorkerPool.start(workers, { device }) : null;
  const registry = await ModelRegistry.load(manifest, files, pool ? pool.backend() : backendFor(o.backend, device));
  let draining = false;
  const app = createApp({ registry, encoder: nodePngEncoder(), renderer: pool?.renderer(registry), assets: await nodeAssets(), teach: readTeachInfo(dir), draining: () => draining, concurrency: o.concurrency, timeout: o.timeout, corsOrigin: o.corsOrigin });

  // Handlers still running, counted so that shutdown releases the models only after the last one:
  // a request whose client went away keeps running (or waiting in the queue) after its connection
  // has closed, and would otherwise meet a released session.
  let running = 0;
  let settled: (() => void) | null = null;
  const fetch = async (request: Request, env?: unknown): Promise<Response> => {
    running++;
    try {
      return await app.fetch(request, env);
    } finally {
      if (--running === 0) settled?.();
    }
  };

  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve({ fetch, port: o.port, hostname: o.host }, () => resolve(s as Server)) as Server;
    s.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new Error(`port ${o.port} is in use: stop the other server or pass --port (or PORT=) with a free port`) : err),
    );
  });
  const port = (server.address() as AddressInfo).port;
  const shown = o.host === '0.0.0.0' || o.host === '::' ? 'localhost' : o.host.includes(':') ? `[${o.host}]` : o.host;
  log(`serving run ${manifest.run} (${dir}) with ${registry.backendName}${device !== 'cpu' ? ` on ${device}` : ''}${pool ? ` in ${pool.size} worker thread${pool.size > 1 ? 's' : ''}` : ''}: tasks ${registry.taskNames.join(', ')}`);

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      draining = true;
      if (o.drainMs > 0) await new Promise((resolve) => setTimeout(resolve, o.drainMs));
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), o.shutdownGraceMs);
        // Keep-alive connections go as soon as they are idle; busy ones finish their request first.
        const idle = setInterval(() => server.closeIdleConnections(), 50);
        server.close(() => {
          clearTimeout(force);
          clearInterval(idle);
          resolve();
        });
        server.closeIdleConnections();
      });
      if (running > 0) {
        await new Promise<void>((resolve) => {
          const force = setTimeout(resolve, o.shutdownGraceMs);
          settled = () => {
            clearTimeout(force);
            resolve();
          };
        });
      }
      await registry.close();
      await pool?.close();
    })());
  return { url: `http://${shown}:${port}`, port, app, registry, exportDir: dir, close };
}
