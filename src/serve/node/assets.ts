// The browser front end for Node: web/index.html, web/student-sampler.ts bundled with esbuild
// at startup (with src/serve/sampling.ts and src/util/rng.ts, so the browser draws the same
// noise), and onnxruntime-web's dist files from node_modules.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Asset, AssetSource } from '../http.js';

/**
 * The page's folder: dist/web/ beside the built server (npm run build puts the sampler there
 * bundled), else web/ of the source tree.
 */
export const WEB_DIR = [new URL('./web/', import.meta.url), new URL('../../../web/', import.meta.url)].map((u) => fileURLToPath(u)).find((d) => existsSync(join(d, 'index.html'))) ?? fileURLToPath(new URL('../../../web/', import.meta.url));

/** node_modules/onnxruntime-web/dist. */
export function ortDistDir(): string {
  return dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
}

const etagOf = (bytes: Uint8Array | string) => `"${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}"`;

/** Bundles web/student-sampler.ts into one ES module (onnxruntime-web stays outside: it is loaded from /ort/ at run time). */
export function bundleSampler(webDir = WEB_DIR): Promise<string> {
  return bundleWeb('student-sampler.ts', webDir);
}

/**
 * The page's scripts bundled from web/: the sampler, the teach panel and its worker (which
 * carries the graph builder, graphs/student.ts and src/graph/, to build training steps in the page).
 */
export const WEB_BUNDLES = ['student-sampler', 'teach-panel', 'teach-worker'] as const;

export async function bundleWeb(entry: string, webDir = WEB_DIR): Promise<string> {
  const result = await build({
    entryPoints: [join(webDir, entry)],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    logLevel: 'silent',
    legalComments: 'none',
  });
  return result.outputFiles[0]!.text;
}

const ORT_TYPES: Record<string, string> = { '.mjs': 'text/javascript; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.wasm': 'application/wasm', '.map': 'application/json' };

export async function nodeAssets(options: { webDir?: string; ortDir?: string } = {}): Promise<AssetSource> {
  const webDir = options.webDir ?? WEB_DIR;
  const ortDir = options.ortDir ?? ortDistDir();
  const text = (body: string, type: string): Asset => ({ body, type, etag: etagOf(body), cacheControl: 'no-cache' });
  const fixed = new Map<string, Asset>([['index.html', text(readFileSync(join(webDir, 'index.html'), 'utf8'), 'text/html; charset=utf-8')]]);
  // Built (dist/web/<name>.js) or bundled from web/<name>.ts at startup.
  for (const name of WEB_BUNDLES) {
    const built = join(webDir, `${name}.js`);
    fixed.set(`${name}.js`, text(existsSync(built) ? readFileSync(built, 'utf8') : await bundleWeb(`${name}.ts`, webDir), 'text/javascript; charset=utf-8'));
  }
  const ort = new Map<string, Promise<Asset | undefined>>();
  const readOrt = async (file: string): Promise<Asset | undefined> => {
    const ext = file.slice(file.lastIndexOf('.'));
    const path = join(ortDir, file);
    if (!/^ort[\w.-]*$/.test(file) || !ORT_TYPES[ext] || !existsSync(path) || !statSync(path).isFile()) return undefined;
    const bytes = new Uint8Array(readFileSync(path));
    return { body: bytes, type: ORT_TYPES[ext]!, etag: etagOf(bytes), cacheControl: 'public, max-age=86400' };
  };
  return {
    async get(name) {
      if (!name.startsWith('ort/')) return fixed.get(name);
      const file = name.slice(4);
      if (!ort.has(file)) ort.set(file, readOrt(file));
      const asset = await ort.get(file)!;
      if (!asset) ort.delete(file); // do not remember misses: the map would grow with every bad name
      return asset;
    },
  };
}
