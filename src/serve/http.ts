// Conditional GET: ETag + Cache-Control, and 304 when the client already has the bytes.

import type { Context } from 'hono';

export function matchesETag(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  const strong = etag.replace(/^W\//, '');
  return ifNoneMatch.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag.replace(/^W\//, '') === strong;
  });
}

/** Sets ETag and Cache-Control; answers 304 when If-None-Match matches, else calls `send`. */
export function conditional(c: Context, etag: string, cacheControl: string, send: () => Response | Promise<Response>): Response | Promise<Response> {
  c.header('ETag', etag);
  c.header('Cache-Control', cacheControl);
  if (matchesETag(c.req.header('If-None-Match'), etag)) return c.body(null, 304);
  return send();
}

export interface Asset {
  body: Uint8Array | string;
  type: string;
  etag: string;
  cacheControl: string;
}

/** Static files of the web front end, by name: 'index.html', 'student-sampler.js', 'ort/<file>'. */
export interface AssetSource {
  get(name: string): Promise<Asset | undefined>;
}
