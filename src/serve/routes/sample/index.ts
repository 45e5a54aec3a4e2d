// GET /sample?task=fashion[&n=16&seed=7&model=student|teacher&format=png|json&scale=1]
// A PNG grid of n samples, or JSON with one base64 PNG per sample. Same query and seed, same
// bytes: the noise comes from the seeded generator in sampling.ts, and the ETag lets caches
// and clients skip the inference altogether.

import { Hono } from 'hono';
import { z } from 'zod';
import { withDefaults } from '../../defaults.js';
import { jsonError } from '../../errors.js';
import { conditional } from '../../http.js';
import type { PngEncoder } from '../../png.js';
import { MODEL_KINDS, sha256Hex, type ModelRegistry } from '../../registry.js';
import { localRenderer, SAMPLE_FORMATS as FORMATS, type Renderer } from '../../render.js';
import { randomSeed, SEED_PATTERN } from '../../sampling.js';

export interface SampleRoutesOptions {
  registry: ModelRegistry;
  encoder: PngEncoder;
  /** Where the samples are drawn and encoded (a worker pool); default here, with `encoder`. */
  renderer?: Renderer;
  defaultN?: number;
  maxN?: number;
  maxScale?: number;
}

export const SAMPLE_DEFAULTS = { defaultN: 16, maxN: 256, maxScale: 8 };

const clip = (s: string) => (s.length > 40 ? `${s.slice(0, 40)}...` : s);

function wholeNumber(name: string, min: number, max: number) {
  return z.string().transform((s, ctx) => {
    const v = /^\d{1,9}$/.test(s) ? Number(s) : Number.NaN;
    if (v >= min && v <= max) return v;
    ctx.issues.push({ code: 'custom', input: s, message: `${name} must be a whole number from ${min} to ${max}, got '${clip(s)}'` });
    return z.NEVER;
  });
}

export function sampleQuerySchema(tasks: string[], o: typeof SAMPLE_DEFAULTS) {
  return z.strictObject(
    {
      task: z.string({ error: `task is required: one of ${tasks.join(', ')}` }).min(1, { error: `task is empty: give one of ${tasks.join(', ')}` }),
      n: wholeNumber('n', 1, o.maxN).default(o.defaultN),
      seed: z
        .string()
        .regex(SEED_PATTERN, { error: (iss) => `seed must be a whole number of at most 15 digits, got '${clip(String(iss.input))}'` })
        .transform(Number)
        .optional(),
      model: z.enum(MODEL_KINDS, { error: (iss) => `model must be ${MODEL_KINDS.join(' or ')}, got '${clip(String(iss.input))}'` }).default('student'),
      format: z.enum(FORMATS, { error: (iss) => `format must be ${FORMATS.join(' or ')}, got '${clip(String(iss.input))}'` }).default('png'),
      scale: wholeNumber('scale', 1, o.maxScale).default(1),
    },
    { error: (iss) => (iss.code === 'unrecognized_keys' ? `unknown parameter${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `'${clip(k)}'`).join(', ')}; the parameters are task, n, seed, model, format, scale` : undefined) },
  );
}

export function sampleRoutes(options: SampleRoutesOptions): Hono {
  const o = withDefaults(SAMPLE_DEFAULTS, options);
  const { registry } = o;
  const renderer = o.renderer ?? localRenderer(registry, o.encoder);
  const tasks = registry.taskNames;
  const schema = sampleQuerySchema(tasks, o);
  const usage = `/sample?task=${tasks[0]}&n=${o.defaultN}&seed=7 (task: ${tasks.join(' | ')}; n: 1..${o.maxN}; seed: integer; model: ${MODEL_KINDS.join(' | ')}; format: ${FORMATS.join(' | ')}; scale: 1..${o.maxScale})`;

  const app = new Hono();
  app.get('/sample', async (c) => {
    const repeated = Object.entries(c.req.queries()).filter(([, values]) => values.length > 1).map(([k]) => clip(k));
    if (repeated.length > 0) return jsonError(c, 400, `parameter ${repeated.join(', ')} given more than once; give each parameter once. Usage: ${usage}`, { usage });
    const parsed = schema.safeParse(c.req.query());
    if (!parsed.success) return jsonError(c, 400, `${parsed.error.issues.map((i) => i.message).join('; ')}. Usage: ${usage}`, { usage });
    const q = parsed.data;
    if (!registry.hasTask(q.task)) return jsonError(c, 404, `unknown task '${clip(q.task)}'; this run (${registry.run}) knows: ${tasks.join(', ')}. Ask for one of those`, { tasks });
    if (!registry.modelsFor(q.task).includes(q.model)) {
      return jsonError(c, 404, `this run (${registry.run}) has no ${q.model} model for task '${q.task}'; use model=student`, { models: registry.modelsFor(q.task) });
    }
    const seed = q.seed ?? randomSeed();
    c.header('X-Seed', String(seed));
    c.header('X-Run', registry.run);
    c.header('X-Model', q.model);
    const draw = async () => {
      const out = await renderer.render({ model: q.model, task: q.task, n: q.n, seed, format: q.format, scale: q.scale });
      if ('images' in out) return c.json({ task: q.task, model: q.model, seed, n: q.n, scale: q.scale, run: registry.run, images: out.images });
      return c.body(out.png as Uint8Array<ArrayBuffer>, 200, { 'Content-Type': 'image/png' });
    };
    if (q.seed === undefined) {
      c.header('Cache-Control', 'no-store');
      return draw();
    }
    // Deterministic: the bytes depend only on the model file, the query and the encoder.
    const model = registry.modelEntry(q.model, q.task)!;
    const etag = `"${(await sha256Hex(new TextEncoder().encode([model.sha256, renderer.encoderName, q.task, q.n, seed, q.format, q.scale].join('\n')))).slice(0, 32)}"`;
    return conditional(c, etag, 'public, max-age=3600', draw);
  });
  return app;
}
