// One shape for every error body: {"error": "<what was wrong>. <what to do>"}.

import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

export function jsonError(c: Context, status: ContentfulStatusCode, error: string, extra: Record<string, unknown> = {}): Response {
  c.header('Cache-Control', 'no-store');
  return c.json({ error, ...extra }, status);
}
