// GET /teach/config.json: what the page's teach panel needs beyond export/ to build the
// student's training step: the run's student configuration (architecture, losses, batch,
// learning rate, replay and anchors) and where it came from.

import { Hono } from 'hono';
import { jsonError } from '../../errors.js';
import type { ModelRegistry } from '../../registry.js';
import type { StudentConfig } from '../../../train/config.js';

export interface TeachInfo {
  student: StudentConfig;
  /** 'config.json of the run' or 'the defaults (the run folder has no config.json)'. */
  source: string;
}

export function teachRoutes(options: { registry: ModelRegistry; teach?: TeachInfo }): Hono {
  const { registry, teach } = options;
  const app = new Hono();
  app.get('/teach/config.json', (c) => {
    if (!teach) return jsonError(c, 404, 'this server was started without the run\'s student configuration, so the page cannot train; start it with npm run serve');
    const encoder = registry.manifest.student.encoder;
    if (!encoder) return jsonError(c, 404, `run ${registry.run} has no student encoder in export/ (an untrained demo export?); train a run with npm run train to teach the student in the page`);
    c.header('Cache-Control', 'no-cache');
    return c.json({ run: registry.run, createdAt: registry.manifest.createdAt, source: teach.source, student: teach.student, encoder: { file: encoder.file, url: `/models/${encoder.file}?v=${encoder.sha256.slice(0, 16)}` } });
  });
  return app;
}
