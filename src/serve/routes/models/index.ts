// GET /v1/models: what this server serves (tasks, models, shapes, hashes, the training run).
// GET /models/manifest.json: the run's export manifest as is (the browser sampler reads it).
// GET /models/<file>.onnx: the model files, with ETag and cache headers, for onnxruntime-web.

import { Hono } from 'hono';
import { withDefaults } from '../../defaults.js';
import { jsonError } from '../../errors.js';
import { conditional } from '../../http.js';
import { sha256Hex, type ModelRegistry } from '../../registry.js';
import type { ExportedModel } from '../../../train/export.js';

export interface ModelRoutesOptions {
  registry: ModelRegistry;
  /** Cache-Control of /models/* when the URL does not pin the version (?v=<sha256 prefix>). */
  cacheControl?: string;
}

export const MODEL_ROUTES_DEFAULTS = { cacheControl: 'public, max-age=300, must-revalidate' };
const IMMUTABLE = 'public, max-age=31536000, immutable';

const describe = (m: ExportedModel) => ({ file: m.file, url: `/models/${m.file}?v=${m.sha256.slice(0, 16)}`, sha256: m.sha256, bytes: m.bytes, inputs: m.inputs, outputs: m.outputs });

export function modelRoutes(options: ModelRoutesOptions): Hono {
  const o = withDefaults(MODEL_ROUTES_DEFAULTS, options);
  const { registry } = o;
  const m = registry.manifest;
  const info = {
    run: m.run,
    createdAt: m.createdAt,
    format: m.format,
    backend: registry.backendName,
    tasks: m.tasks.map((t) => ({ name: t.name, index: t.index, models: registry.modelsFor(t.name) })),
    models: {
      student: { zDim: m.student.zDim, decoder: describe(m.student.decoder) },
      teacher: m.teacher ? { zDim: m.teacher.zDim, experts: m.teacher.experts.map((e) => ({ ...describe(e), tasks: e.tasks })) } : null,
    },
    endpoints: { sample: '/sample?task=<task>&n=16&seed=7&model=student&format=png&scale=1', manifest: '/models/manifest.json', page: '/', embed: '/student-sampler.js' },
  };
  const manifestJson = JSON.stringify(m);
  const manifestETag = sha256Hex(new TextEncoder().encode(manifestJson)).then((h) => `"${h.slice(0, 32)}"`);

  const app = new Hono();
  app.get('/v1/models', (c) => c.json(info));
  app.get('/models/manifest.json', async (c) =>
    conditional(c, await manifestETag, 'no-cache', () => c.body(manifestJson, 200, { 'Content-Type': 'application/json; charset=utf-8' })),
  );
  app.get('/models/:file', (c) => {
    const name = c.req.param('file');
    const file = registry.modelFile(name);
    if (!file) {
      const files = [m.student.decoder.file, ...(m.student.encoder ? [m.student.encoder.file] : []), ...(m.teacher?.experts.map((e) => e.file) ?? [])];
      return jsonError(c, 404, `no model file '${name.slice(0, 80)}'; this run serves ${files.join(', ')} and manifest.json (see /v1/models)`, { files });
    }
    const pinned = c.req.query('v');
    const cache = pinned !== undefined && pinned.length >= 8 && file.sha256.startsWith(pinned) ? IMMUTABLE : o.cacheControl;
    return conditional(c, `"${file.sha256}"`, cache, () =>
      c.body(file.bytes as Uint8Array<ArrayBuffer>, 200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(file.bytes.length) }),
    );
  });
  return app;
}
