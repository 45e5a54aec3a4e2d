import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ortNodeBackend } from '../../src/serve/backend/ort-node.js';
import { folderFiles, resolveExportDir } from '../../src/serve/node/run.js';
import { ModelRegistry } from '../../src/serve/registry.js';
import { makeDemoRun, type DemoRun } from './fixture.js';

let demo: DemoRun;
beforeAll(() => {
  demo = makeDemoRun('mnist,fashion,kmnist');
});
afterAll(() => demo.remove());

test('loads every model, knows which can draw each task, samples [n, 1, 28, 28] in [0, 1]', async () => {
  const registry = await ModelRegistry.load(demo.manifest, folderFiles(demo.exportDir), ortNodeBackend());
  expect(registry.taskNames).toEqual(['mnist', 'fashion', 'kmnist']);
  expect(registry.modelsFor('kmnist')).toEqual(['student', 'teacher']);
  expect(registry.modelsFor('cifar')).toEqual([]);
  const images = await registry.sample('student', 'kmnist', 3, 1);
  expect(images).toHaveLength(3 * 784);
  expect(images.every((v) => v >= 0 && v <= 1)).toBe(true);
  await expect(registry.sample('student', 'cifar', 1, 1)).rejects.toThrow(/unknown task 'cifar'; known tasks: mnist, fashion, kmnist/);
  await registry.close();
});

test('a model file that does not match the manifest is refused, saying what to do', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'serve-broken-'));
  copyFileSync(join(demo.exportDir, 'teacher_expert0.onnx'), join(dir, 'teacher_expert0.onnx'));
  writeFileSync(join(dir, 'student_decoder.onnx'), 'not a model');
  await expect(ModelRegistry.load(demo.manifest, folderFiles(dir), ortNodeBackend())).rejects.toThrow(/student_decoder.onnx does not match the manifest \(11 bytes.*Export the run again/);
  await expect(folderFiles(dir).read('../etc/passwd')).rejects.toThrow(/not a plain file name/);
  await expect(folderFiles(dir).read('missing.onnx')).rejects.toThrow(/missing: the export folder is incomplete/);
});

test('run folders: results/<id>, results/<id>/export, or a missing one with advice', () => {
  expect(resolveExportDir(demo.run)).toBe(demo.exportDir);
  expect(resolveExportDir(demo.exportDir)).toBe(demo.exportDir);
  expect(() => resolveExportDir(join(demo.run, 'nope'))).toThrow(/no run folder at .*Pass --run results\/<run-id>, or make an untrained demo with: npx tsx tools\/make-demo-export.ts/);
  expect(() => resolveExportDir(tmpdir())).toThrow(/has no export\/manifest.json/);
});
