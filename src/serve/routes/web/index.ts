// The browser front end: the page at /, the embeddable module /student-sampler.js, and
// onnxruntime-web's own files under /ort/ (served from the installed package, no CDN).

import { Hono, type Context } from 'hono';
import { jsonError } from '../../errors.js';
import { conditional, type Asset, type AssetSource } from '../../http.js';

export interface WebRoutesOptions {
  assets: AssetSource;
}

export function webRoutes(options: WebRoutesOptions): Hono {
  const { assets } = options;
  const send = (name: string) => async (c: Context) => {
    const asset: Asset | undefined = await assets.get(name);
    if (!asset) return jsonError(c, 404, `no file '${name.slice(0, 80)}' here; the page is at /, the embeddable module at /student-sampler.js`);
    return conditional(c, asset.etag, asset.cacheControl, () => c.body(asset.body as string, 200, { 'Content-Type': asset.type }));
  };
  const app = new Hono();
  app.get('/', send('index.html'));
  app.get('/index.html', send('index.html'));
  app.get('/student-sampler.js', send('student-sampler.js'));
  app.get('/ort/:file', (c) => send(`ort/${c.req.param('file')}`)(c));
  app.get('/favicon.ico', (c) => c.body(null, 204, { 'Cache-Control': 'public, max-age=86400' }));
  return app;
}
