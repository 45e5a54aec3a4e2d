// The app factory, the registry and the onnxruntime-web backend bundle for a browser-like
// platform with no Node built-ins and no native addons: what an edge runtime needs.

import { build } from 'esbuild';
import { expect, test } from 'vitest';
import { ROOT } from './fixture.js';

test('src/serve/app.ts + registry + onnxruntime-web backend bundle without node: modules, sharp or onnxruntime-node', async () => {
  const entry = `export { createApp } from './src/serve/app.ts';
export { ModelRegistry } from './src/serve/registry.ts';
export { pngEncoder } from './src/serve/png.ts';
export { ortWebBackend } from './src/serve/backend/ort-web.ts';`;
  const result = await build({
    stdin: { contents: entry, resolveDir: ROOT, loader: 'ts' },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    metafile: true,
    logLevel: 'silent',
    external: ['onnxruntime-web'], // provided by the edge platform's own build of onnxruntime-web
  });
  const inputs = Object.keys(result.metafile.inputs);
  expect(inputs.filter((p) => /sharp|onnxruntime-node|src\/serve\/node\/|png-sharp|src\/train\//.test(p))).toEqual([]);
  expect(inputs.some((p) => p.includes('src/serve/app.ts'))).toBe(true);
  expect(result.outputFiles[0]!.text).not.toMatch(/from\s*["']node:/);
});
