// Finding a run's export folder on disk, and reading its model files.

import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { readExportManifest, type ExportManifest } from '../../train/export.js';
import { resolveConfig, studentConfigSchema } from '../../train/config.js';
import type { TeachInfo } from '../routes/teach/index.js';
import type { ModelFiles } from '../registry.js';
import { DEFAULT_RUN } from './defaults.js';

export { DEFAULT_RUN } from './defaults.js';

/** The export folder of `run`: results/<id>, results/<id>/export, or any folder with manifest.json. */
export function resolveExportDir(run: string): string {
  const dir = resolve(run);
  if (!existsSync(dir)) {
    throw new Error(
      `no run folder at ${run}${run === DEFAULT_RUN ? ' (results/latest points to the newest training run and appears after the first `npm run train`)' : ''}. Pass --run results/<run-id>, or make an untrained demo with: npx tsx tools/make-demo-export.ts results/demo/export --tasks mnist,fashion && npm run serve -- --run results/demo`,
    );
  }
  for (const candidate of [join(dir, 'export'), dir]) {
    if (existsSync(join(candidate, 'manifest.json'))) return realpathSync(candidate);
  }
  throw new Error(`${run} has no export/manifest.json: the run has not been exported yet (training writes it at the end), or this is not a run folder. Pass --run with a folder that has export/manifest.json`);
}

export function loadRun(run: string): { dir: string; manifest: ExportManifest; files: ModelFiles } {
  const dir = resolveExportDir(run);
  return { dir, manifest: readExportManifest(dir), files: folderFiles(dir) };
}

/** Files of one folder, by plain name only (no paths, so a manifest cannot point outside it). */
export function folderFiles(dir: string): ModelFiles {
  return {
    async read(file: string) {
      if (!/^[\w.-]+$/.test(file) || file.startsWith('.')) throw new Error(`model file name '${file}' in the manifest is not a plain file name`);
      const path = join(dir, file);
      if (!existsSync(path) || !statSync(path).isFile()) throw new Error(`${path} is missing: the export folder is incomplete. Export the run again`);
      const bytes = await readFile(path);
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
    },
  };
}

/**
 * The student configuration the run trained with (its config.json, beside export/), which the
 * teach panel builds its training step from; the defaults when the folder has none.
 */
export function readTeachInfo(exportDir: string): TeachInfo {
  const path = basename(exportDir) === 'export' ? join(dirname(exportDir), 'config.json') : join(exportDir, 'config.json');
  if (!existsSync(path)) return { student: resolveConfig({}, []).student, source: 'the defaults (the run folder has no config.json)' };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as Error).message}. Restore the run's config.json or remove it (the teach panel then uses the default student configuration)`);
  }
  const parsed = studentConfigSchema.safeParse((raw as { student?: unknown } | null)?.student);
  if (!parsed.success) throw new Error(`${path}: its student section is not a valid student configuration (${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')})`);
  return { student: parsed.data, source: 'config.json of the run' };
}
