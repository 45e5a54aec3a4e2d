// Request timeout: answers 503 (with Retry-After) when the rest of the chain takes longer
// than `ms`. Work already running (an inference) finishes in the background and its result
// is dropped; put this before the concurrency limit so time spent queueing counts too.

import type { MiddlewareHandler } from 'hono';
import { withDefaults } from '../../defaults.js';
import { jsonError } from '../../errors.js';

export interface RequestTimeoutOptions {
  ms?: number;
  retryAfterSeconds?: number;
}

export const REQUEST_TIMEOUT_DEFAULTS: Required<RequestTimeoutOptions> = { ms: 10_000, retryAfterSeconds: 1 };

export function requestTimeout(options: RequestTimeoutOptions = {}): MiddlewareHandler {
  const o = withDefaults(REQUEST_TIMEOUT_DEFAULTS, options);
  if (!(o.ms > 0)) throw new Error(`requestTimeout: ms must be > 0, got ${o.ms}`);
  return async (c, next) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<true>((resolve) => {
      timer = setTimeout(() => resolve(true), o.ms);
    });
    try {
      const timedOut = await Promise.race([next().then(() => false), expired]);
      if (timedOut) {
        c.header('Retry-After', String(o.retryAfterSeconds));
        return jsonError(c, 503, `the request took longer than ${o.ms} ms and was abandoned. Retry later, or ask for fewer samples (smaller n or scale)`);
      }
    } finally {
      clearTimeout(timer);
    }
  };
}
