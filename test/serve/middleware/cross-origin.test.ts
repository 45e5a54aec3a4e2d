// crossOrigin() gives every response the headers hono/cors (with Cross-Origin-Resource-Policy
// added after the route, as the app did before) gives, for each kind of origin setting,
// request origin, method and response.

import { Hono, type MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { expect, test } from 'vitest';
import { jsonError } from '../../../src/serve/errors.js';
import { crossOrigin, EXPOSE_HEADERS } from '../../../src/serve/middleware/cross-origin/index.js';

function withRoutes(middleware: MiddlewareHandler[]): Hono {
  const app = new Hono();
  for (const m of middleware) app.use('*', m);
  app.get('/bytes', (c) => {
    c.header('X-Seed', '7');
    return c.body(new Uint8Array([1, 2, 3]), 200, { 'Content-Type': 'image/png' });
  });
  app.get('/json', (c) => c.json({ ok: true }));
  app.get('/empty', (c) => c.body(null, 304));
  app.get('/missing', (c) => jsonError(c, 404, 'no such thing'));
  app.get('/throws', () => {
    throw new Error('broken');
  });
  app.onError((err, c) => jsonError(c, 500, err.message));
  return app;
}

function reference(origin: string | string[]): Hono {
  return withRoutes([
    cors({ origin, allowMethods: ['GET', 'HEAD', 'OPTIONS'], exposeHeaders: EXPOSE_HEADERS, maxAge: 86400 }),
    async (c, next) => {
      await next();
      c.header('Cross-Origin-Resource-Policy', 'cross-origin');
    },
  ]);
}

const headersOf = (res: Response) => [...res.headers.entries()];

test('the same status, headers and body as hono/cors with Cross-Origin-Resource-Policy after the route', async () => {
  const origins: Array<string | string[]> = ['*', 'https://a.example', ['https://a.example', 'https://b.example']];
  const requestOrigins = [undefined, 'https://a.example', 'https://b.example', 'https://c.example'];
  const paths = ['/bytes', '/json', '/empty', '/missing', '/throws', '/nowhere'];
  let compared = 0;
  for (const origin of origins) {
    const want = reference(origin);
    const got = withRoutes([crossOrigin({ origin })]);
    for (const from of requestOrigins) {
      for (const path of paths) {
        for (const method of ['GET', 'HEAD', 'OPTIONS']) {
          const headers: Record<string, string> = from ? { Origin: from } : {};
          if (method === 'OPTIONS') Object.assign(headers, { 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'x-a, x-b' });
          const a = await want.request(path, { method, headers });
          const b = await got.request(path, { method, headers });
          const what = `${JSON.stringify(origin)} ${method} ${path} from ${from}`;
          expect(b.status, what).toBe(a.status);
          expect(headersOf(b), what).toEqual(headersOf(a));
          expect(Buffer.from(await b.arrayBuffer()).toString('hex'), what).toBe(Buffer.from(await a.arrayBuffer()).toString('hex'));
          compared++;
        }
      }
    }
  }
  expect(compared).toBe(3 * 4 * 6 * 3);
});

test('a list of origins: an allowed origin is echoed with Vary: Origin, another gets no Allow-Origin', async () => {
  const app = withRoutes([crossOrigin({ origin: ['https://a.example', 'https://b.example'] })]);
  const ok = await app.request('/json', { headers: { Origin: 'https://b.example' } });
  expect(ok.headers.get('Access-Control-Allow-Origin')).toBe('https://b.example');
  expect(ok.headers.get('Vary')).toBe('Origin');
  expect(ok.headers.get('Cross-Origin-Resource-Policy')).toBe('cross-origin');
  const other = await app.request('/json', { headers: { Origin: 'https://c.example' } });
  expect(other.headers.get('Access-Control-Allow-Origin')).toBeNull();
  expect(other.headers.get('Access-Control-Expose-Headers')).toBe(EXPOSE_HEADERS.join(','));
});
