// A real run of the smoke preset (about 20 s on two cores with the feature net cached), made once
// per test file: the teaching tests need trained export/ models with an encoder and experts.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readExportManifest, type ExportManifest } from '../../src/train/export.js';
import { studentConfigSchema, type StudentConfig } from '../../src/train/config.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface SmokeRun {
  out: string;
  /** results/<run-id> */
  run: string;
  exportDir: string;
  manifest: ExportManifest;
  student: StudentConfig;
  remove(): void;
}

export function makeSmokeRun(tasks = 'mnist,fashion'): SmokeRun {
  const out = mkdtempSync(join(tmpdir(), 'teach-run-'));
  execFileSync(process.execPath, ['--import', 'tsx', 'tools/train.ts', '--preset', 'smoke', '--tasks', tasks, '--out', out], { cwd: ROOT, stdio: 'pipe' });
  const id = readdirSync(out).find((f) => f.startsWith('smoke-'))!;
  const run = join(out, id);
  const student = studentConfigSchema.parse(JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')).student);
  return { out, run, exportDir: join(run, 'export'), manifest: readExportManifest(join(run, 'export')), student, remove: () => rmSync(out, { recursive: true, force: true }) };
}
