// Defaults of the Node server, in a module of their own so `--help` needs no heavy imports.

export type BackendName = 'node' | 'web';

export const DEFAULT_RUN = 'results/latest';

export const SERVER_DEFAULTS = { port: 3000, host: '0.0.0.0', backend: 'node' as BackendName, drainMs: 3000, shutdownGraceMs: 10_000 };
