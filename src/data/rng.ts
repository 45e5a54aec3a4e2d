// The project's seeded generator lives in src/util so that the graph compiler can use it too.
export * from '../util/rng.js';
