// A run folder with untrained demo models (tools/make-demo-export.ts), made once per test file.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readExportManifest, type ExportManifest } from '../../src/train/export.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface DemoRun {
  /** The run folder (results/<id>-like): it holds export/. */
  run: string;
  exportDir: string;
  manifest: ExportManifest;
  remove(): void;
}

export function makeDemoRun(tasks = 'mnist,fashion'): DemoRun {
  const run = mkdtempSync(join(tmpdir(), 'serve-test-'));
  const exportDir = join(run, 'export');
  execFileSync(process.execPath, ['--import', 'tsx', 'tools/make-demo-export.ts', exportDir, '--tasks', tasks], { cwd: ROOT, stdio: 'pipe' });
  return { run, exportDir, manifest: readExportManifest(exportDir), remove: () => rmSync(run, { recursive: true, force: true }) };
}

/** Decodes a PNG to its gray pixels (with sharp, independent of the encoders under test), checking it is 8-bit gray. */
export async function decodeGrayPng(png: Uint8Array): Promise<{ pixels: Uint8Array; width: number; height: number }> {
  const sharp = (await import('sharp')).default;
  const meta = await sharp(png).metadata();
  if (meta.format !== 'png' || meta.channels !== 1 || meta.depth !== 'uchar') throw new Error(`expected an 8-bit gray PNG, got ${meta.format} with ${meta.channels} channels of ${meta.depth}`);
  const { data, info } = await sharp(png).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  return { pixels: new Uint8Array(data), width: info.width, height: info.height };
}

export const fromBase64 = (text: string) => new Uint8Array(Buffer.from(text, 'base64'));
