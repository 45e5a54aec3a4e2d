// The export manifest's rule for which expert serves a task, shared by eval and serve.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeDemoExport } from '../../src/train/demo.js';
import { expertIndexForTask, readExportManifest } from '../../src/train/export.js';

const tmp = mkdtempSync(join(tmpdir(), 'export-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('which expert serves a task', () => {
  it('is the expert whose task list holds it, or none', () => {
    const experts = [{ tasks: ['mnist'] }, { tasks: ['fashion', 'mnist:0-1'] }];
    expect(expertIndexForTask(experts, 'mnist')).toBe(0);
    expect(expertIndexForTask(experts, 'mnist:0-1')).toBe(1);
    expect(expertIndexForTask(experts, 'cifar')).toBeNull();
  });

  it('a manifest that lists a task under two experts is refused, naming the task', () => {
    const dir = join(tmp, 'two');
    writeDemoExport(dir, ['mnist', 'fashion']);
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    expect(readExportManifest(dir).teacher!.experts.length).toBeGreaterThan(0);
    m.teacher.experts.push({ ...m.teacher.experts[0], tasks: [m.teacher.experts[0].tasks[0]] });
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
    expect(() => readExportManifest(dir)).toThrow(/manifest.json is not a valid export manifest: teacher.experts.\d+.tasks: task 'mnist' is listed under experts 0 and \d; each task has one expert/);
  });
});
