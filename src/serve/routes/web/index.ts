// The browser front end: the page at /, the embeddable module /student-sampler.js, the teach
// panel's module and worker, and
// onnxruntime-web's own files under /ort/ (served from the installed package, no CDN).

import { Hono, type Context } from 'hono';
import { jsonError } from '../../errors.js';
import { conditional, type Asset, type AssetSource } from '../../http.js';

export interface WebRoutesOptions {
  assets: AssetSource;
}

export function webRoutes(options: WebRoutesOptions): Hono {
  const { assets } = options;
  const send = (name: string, isolate = false) => async (c: Context) => {
    // Cross-origin isolation (SharedArrayBuffer, so onnxruntime-web's WASM can use threads) for the
    // page and the workers (ignored on other responses): other origins embed the sampler without it, and every response
    // carries Cross-Origin-Resource-Policy: cross-origin, so the page may load them under COEP.
    if (isolate) {
      c.header('Cross-Origin-Opener-Policy', 'same-origin');
      c.header('Cross-Origin-Embedder-Policy', 'require-corp');
    }
    const asset: Asset | undefined = await assets.get(name);
    if (!asset) return jsonError(c, 404, `no file '${name.slice(0, 80)}' here; the page is at /, the embeddable module at /student-sampler.js`);
    return conditional(c, asset.etag, asset.cacheControl, () => c.body(asset.body as string, 200, { 'Content-Type': asset.type }));
  };
  const app = new Hono();
  app.get('/', send('index.html', true));
  app.get('/index.html', send('index.html', true));
  app.get('/student-sampler.js', send('student-sampler.js'));
  app.get('/teach-panel.js', send('teach-panel.js'));
  app.get('/teach-worker.js', send('teach-worker.js', true));
  // onnxruntime-web's threaded WASM starts its own workers from /ort/: they need COEP as well.
  app.get('/ort/:file', (c) => send(`ort/${c.req.param('file')}`, true)(c));
  app.get('/favicon.ico', (c) => c.body(null, 204, { 'Cache-Control': 'public, max-age=86400' }));
  return app;
}
