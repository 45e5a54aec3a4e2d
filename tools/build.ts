// npm run build: compiles the commands to JavaScript in dist/, so that `npm start` (and a
// container) runs the server with plain node, no TypeScript loader: dist/serve.js, train.js,
// eval.js and download.js (dependencies stay in node_modules), and dist/web/ with the page and
// its sampler, teach panel and teach worker already bundled.

import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { bundleWeb, WEB_BUNDLES, WEB_DIR } from '../src/serve/node/assets.js';
import { writeFileAtomic } from '../src/util/fs.js';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log('usage: npm run build\n\nCompiles the server and the train, eval and download commands to dist/ (run them with node dist/<name>.js; npm start runs dist/serve.js).');
  process.exit(0);
}

const root = new URL('../', import.meta.url).pathname;
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
const entries = { serve: 'src/serve/main.ts', 'serve-worker': 'src/serve/node/worker.ts', train: 'tools/train.ts', eval: 'tools/eval.ts', download: 'tools/download.ts' };
await build({
  entryPoints: Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, join(root, v)])),
  outdir: dist,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  logLevel: 'warning',
  legalComments: 'none',
});
cpSync(join(WEB_DIR, 'index.html'), join(dist, 'web', 'index.html'));
for (const name of WEB_BUNDLES) writeFileAtomic(join(dist, 'web', `${name}.js`), await bundleWeb(`${name}.ts`));
console.log(`built ${Object.keys(entries).map((k) => `dist/${k}.js`).join(', ')} and dist/web/`);
