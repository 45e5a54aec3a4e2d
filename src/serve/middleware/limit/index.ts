// Concurrency limit: at most `max` requests run at once, up to `queue` more wait their turn
// (first come, first served), and the rest get 503 with Retry-After at once, so a burst
// degrades into short waits and quick refusals instead of a pile of slow requests.

import type { MiddlewareHandler } from 'hono';
import { withDefaults } from '../../defaults.js';
import { jsonError } from '../../errors.js';

export interface ConcurrencyLimitOptions {
  /** Requests running at once. */
  max?: number;
  /** Requests waiting beyond those; 0 refuses as soon as `max` are running. */
  queue?: number;
  /** Seconds a refused client is asked to wait (Retry-After). */
  retryAfterSeconds?: number;
}

export const CONCURRENCY_LIMIT_DEFAULTS: Required<ConcurrencyLimitOptions> = { max: 4, queue: 64, retryAfterSeconds: 1 };

export interface ConcurrencyLimit extends MiddlewareHandler {
  /** Requests running and waiting now. */
  stats(): { active: number; queued: number };
}

export function concurrencyLimit(options: ConcurrencyLimitOptions = {}): ConcurrencyLimit {
  const o = withDefaults(CONCURRENCY_LIMIT_DEFAULTS, options);
  if (!(Number.isInteger(o.max) && o.max >= 1) || !(Number.isInteger(o.queue) && o.queue >= 0)) {
    throw new Error(`concurrencyLimit: max must be an integer >= 1 and queue an integer >= 0, got max=${o.max}, queue=${o.queue}`);
  }
  let active = 0;
  const waiting: Array<() => void> = [];
  const release = () => {
    const wake = waiting.shift();
    if (wake) wake(); // the slot passes straight to the next in line
    else active--;
  };

  const handler: MiddlewareHandler = async (c, next) => {
    if (active < o.max) {
      active++;
    } else if (waiting.length < o.queue) {
      await new Promise<void>((resolve) => waiting.push(resolve));
      // Given up meanwhile (timed out, or the client went away): hand the slot on without running.
      if (c.finalized) {
        release();
        return;
      }
      if (c.req.raw.signal?.aborted) {
        release();
        return jsonError(c, 503, 'the client disconnected while the request waited for its turn');
      }
    } else {
      c.header('Retry-After', String(o.retryAfterSeconds));
      return jsonError(c, 503, `the server is busy (${active} requests running, ${waiting.length} waiting). Retry after ${o.retryAfterSeconds} s, or send fewer requests at once`);
    }
    try {
      await next();
    } finally {
      release();
    }
  };
  return Object.assign(handler, { stats: () => ({ active, queued: waiting.length }) });
}
