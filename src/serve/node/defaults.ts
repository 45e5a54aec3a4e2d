// Defaults of the Node server, in a module of their own so `--help` needs no heavy imports.

import { availableParallelism } from 'node:os';

export type BackendName = 'node' | 'web';

export const DEFAULT_RUN = 'results/latest';

export const SERVER_DEFAULTS = { port: 3000, host: '0.0.0.0', backend: 'node' as BackendName, drainMs: 3000, shutdownGraceMs: 10_000 };

/**
 * Worker threads for inference and PNG encoding when --workers is not given: one where there
 * is a second core (the HTTP thread then only parses, routes and writes, and the model runs
 * beside it), none on a single core, where handing each request to another thread only adds
 * the messages.
 */
export function defaultWorkers(cores = availableParallelism()): number {
  return cores >= 2 ? 1 : 0;
}
