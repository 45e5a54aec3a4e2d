// GET /healthz: 200 while serving, 503 once shutdown has begun (so load balancers stop
// sending traffic before the server stops accepting it).

import { Hono } from 'hono';
import type { ModelRegistry } from '../../registry.js';

export interface HealthRoutesOptions {
  registry: ModelRegistry;
  /** True once the server is draining for shutdown. */
  draining?: () => boolean;
  /** Requests running and queued, for the body. */
  load?: () => { active: number; queued: number };
}

export function healthRoutes(options: HealthRoutesOptions): Hono {
  const { registry, draining = () => false, load } = options;
  const started = Date.now();
  const app = new Hono();
  app.get('/healthz', (c) => {
    c.header('Cache-Control', 'no-store');
    const body = { status: draining() ? 'draining' : 'ok', run: registry.run, backend: registry.backendName, tasks: registry.taskNames, uptimeSeconds: Math.round((Date.now() - started) / 1000), ...(load ? { sampling: load() } : {}) };
    return c.json(body, draining() ? 503 : 200);
  });
  return app;
}
