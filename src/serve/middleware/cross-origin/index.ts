// CORS and Cross-Origin-Resource-Policy for every response: the headers hono/cors sets, plus
// CORP, so that pages with Cross-Origin-Embedder-Policy can load the models and the module.
// Preflights go to hono/cors itself. Other requests get their headers with c.header() before
// the route runs: hono/cors sets them on c.res, and a Response that exists before the route's
// makes Hono copy the route's Response into a new one, which turns @hono/node-server's
// lightweight Response (status, headers and bytes, written straight to the socket) into a full
// web Response whose body the server then reads back through a stream.

import type { MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';

export interface CrossOriginOptions {
  /** Origins allowed to embed: '*' (any), one origin, or a list. */
  origin: string | string[];
  /** Response headers scripts of other origins may read. */
  exposeHeaders?: string[];
}

export const EXPOSE_HEADERS = ['ETag', 'X-Seed', 'X-Run', 'X-Model', 'Retry-After'];

export function crossOrigin(options: CrossOriginOptions): MiddlewareHandler {
  const { origin } = options;
  const exposeHeaders = options.exposeHeaders ?? EXPOSE_HEADERS;
  const preflight = cors({ origin, allowMethods: ['GET', 'HEAD', 'OPTIONS'], exposeHeaders, maxAge: 86400 });
  const expose = exposeHeaders.join(',');
  return async (c, next) => {
    if (c.req.method === 'OPTIONS') return preflight(c, next);
    if (origin === '*') c.header('Access-Control-Allow-Origin', '*');
    else {
      const from = c.req.header('origin') || '';
      if (from && (typeof origin === 'string' ? origin === from : origin.includes(from))) c.header('Access-Control-Allow-Origin', from);
    }
    if (expose) c.header('Access-Control-Expose-Headers', expose);
    if (origin !== '*') c.header('Vary', 'Origin', { append: true });
    c.header('Cross-Origin-Resource-Policy', 'cross-origin');
    await next();
  };
}
