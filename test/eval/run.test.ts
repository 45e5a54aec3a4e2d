import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import sharp from 'sharp';
import { readRun } from '../../src/eval/run.js';
import type { FidReport, ForgettingReport } from '../../src/eval/run.js';
import { writeDemoRun } from './fixture.js';

const root = join(import.meta.dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'eval-run-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** `npm run eval -- ...args` (npm: false runs the same tools/eval.ts without npm's start-up). */
function evalCli(args: string[], npm = true) {
  const [cmd, pre] = npm ? ['npm', ['run', '--silent', 'eval', '--']] : [process.execPath, ['--import', 'tsx', 'tools/eval.ts']];
  return spawnSync(cmd, [...pre, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
}

describe('run folder reading', () => {
  it('reads config, stages, metrics and the stage that learned each task', () => {
    const dir = join(tmp, 'layout');
    writeDemoRun(dir, ['mnist', 'fashion'], 5);
    const run = readRun(dir);
    expect(run.tasks).toEqual(['mnist', 'fashion']);
    expect(run.stages.map((s) => s.index)).toEqual([0, 1]);
    expect(run.learnedAt).toEqual([0, 1]);
    expect(run.metrics).toHaveLength(2 * (1 + 5 + 1 + 5 + 1));
    expect(run.badMetricLines).toBe(1);
    expect(run.finalExport).toBe(join(dir, 'export'));
    // config.tasks may also be a list of task names, in any spelling of them.
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ tasks: ['mnist:0-4', 'fashion:4,3,2,1,0'] }));
    expect(readRun(dir).tasks).toEqual(['mnist:0-4', 'fashion:0-4']);
  });

  it('gives clear errors for a missing folder, a run without stages and a gap in the stages', () => {
    expect(() => readRun(join(tmp, 'nope'))).toThrow(/run folder .*nope does not exist/);
    const empty = join(tmp, 'no-stages');
    mkdirSync(join(empty, 'export'), { recursive: true });
    expect(() => readRun(empty)).toThrow(/has no stages\/<k>\/export\/manifest\.json.*--samples/);
    const gap = join(tmp, 'gap');
    writeDemoRun(gap, ['mnist', 'fashion'], 2);
    rmSync(join(gap, 'stages', '0'), { recursive: true });
    expect(() => readRun(gap)).toThrow(/stage 0 is missing/);
  });
});

describe('npm run eval on a tiny run (2 stages of untrained demo exports, fake metrics.jsonl)', () => {
  it('writes report.html, fid.json, forgetting.json and PNG figures with matrices of the right shapes', async () => {
    const dir = join(tmp, 'tiny-run');
    writeDemoRun(dir, ['mnist', 'fashion'], 30);
    const r = evalCli(['--run', dir, '--n', '120', '--fit-steps', '8', '--kid-subsets', '3', '--feature-steps', '30', '--feature-cache', join(tmp, 'features'), '--threads', '2']);
    expect(r.status, r.stderr).toBe(0);
    // Progress on stderr, results on stdout; every FID comes with its sample counts and floor.
    expect(r.stderr).toMatch(/feature net: trained in .* test accuracy mnist .*fashion/);
    expect(r.stderr).toMatch(/eval: mnist: real-vs-real floor FID [\d.]+/);
    expect(r.stdout).toMatch(/stage 0 student mnist +FID [\d.]+ \(n=120 samples vs 10000 test; real-vs-real floor [\d.]+: 120 train vs 10000 test\)/);
    expect(r.stdout).toMatch(/stage 1 student fashion +FID [\d.]+ \(n=120 samples vs 10000 test/);

    for (const f of ['report.html', 'fid.json', 'forgetting.json', 'figures/training_curves.png', 'figures/heatmap_fid.png', 'figures/heatmap_kid.png', 'figures/fid_by_stage.png', 'figures/samples/student_stage0_mnist.png', 'figures/samples/real_fashion.png']) {
      expect(existsSync(join(dir, f)), f).toBe(true);
    }
    const fid = JSON.parse(readFileSync(join(dir, 'fid.json'), 'utf8')) as FidReport;
    expect(fid.samplesPerCell).toBe(120);
    expect(fid.fittingSteps).toBe(8);
    expect(Object.keys(fid.floors)).toEqual(['mnist', 'fashion']);
    // The ceiling of fitting capacity: the same classifier on as many real images with their labels, well above chance.
    for (const f of Object.values(fid.floors)) {
      expect(f.fitting!.nTrain).toBe(120);
      expect(f.fitting!.accuracy).toBeGreaterThan(0.2);
      // The same images with the feature net's labels (the generated sets' labelling) are trained too.
      expect(f.fittingPseudo!.nTrain).toBe(120);
      expect(f.fittingPseudo!.accuracy).toBeGreaterThan(0.2);
    }
    expect(r.stderr).toMatch(/eval: mnist: real-vs-real floor FID [\d.]+, KID .*, fitting capacity of the real images [\d.]+% \([\d.]+% with the feature net's labels, as generated sets are labelled\) at 8 classifier steps/);
    // Stage 0: mnist for both models; stage 1: both tasks for both models.
    expect(fid.results.map((c) => `${c.stage}:${c.model}:${c.task}`)).toEqual(['0:student:mnist', '0:teacher:mnist', '1:student:mnist', '1:student:fashion', '1:teacher:mnist', '1:teacher:fashion']);
    const student = fid.results.filter((c) => c.model === 'student');
    for (const c of student) {
      expect(c.n).toBe(120);
      expect(c.fid!).toBeGreaterThan(c.floor!.fid);
      expect(c.kid!.subsets).toBe(3);
      expect(c.fitting!.nTrain).toBe(120);
      // the feature net's labels of the generated set, one count per class of the task
      expect(c.fitting!.labelCounts).toHaveLength(10);
      expect(c.fitting!.labelCounts.reduce((a, b) => a + b, 0)).toBe(120);
    }

    const forgetting = JSON.parse(readFileSync(join(dir, 'forgetting.json'), 'utf8')) as ForgettingReport;
    expect(forgetting.tasks).toEqual(['mnist', 'fashion']);
    expect(Object.keys(forgetting.models).sort()).toEqual(['student', 'teacher']);
    for (const model of ['student', 'teacher'] as const) {
      for (const key of ['fid', 'kid', 'fitting'] as const) {
        const m = forgetting.models[model]![key];
        expect(m.R).toHaveLength(2);
        for (const row of m.R) expect(row).toHaveLength(2);
        expect(m.R[0]![1]).toBeNull(); // fashion not learned at stage 0
        expect(m.forgetting).toHaveLength(2);
        expect(m.forgetting[1]).toBeNull(); // the last task has no forgetting
      }
    }
    const sf = forgetting.models.student!.fid;
    expect(sf.forgetting[0]).toBeCloseTo(sf.R[1]![0]! - sf.R[0]![0]!, 6);
    expect(sf.bwt).toBeCloseTo(-sf.averageForgetting!, 9);

    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html).toMatch(/<svg/);
    expect(html).toMatch(/data:image\/png;base64,/);
    expect(html).not.toMatch(/src="(?!data:)/); // self-contained: no external images
    expect(html).toMatch(/real-vs-real floor/);
    expect(html).toMatch(/<td class="num">\d+\.\d%–\d+\.\d%<\/td>/); // each cell's class share
    const meta = await sharp(join(dir, 'figures', 'heatmap_fid.png')).metadata();
    expect(meta.format).toBe('png');
    expect(meta.width!).toBeGreaterThan(100);
  });

  it('exits with a clear message for a run folder without stages, and prints usage with --help', () => {
    const empty = join(tmp, 'empty-run');
    mkdirSync(empty, { recursive: true });
    const r = evalCli(['--run', empty], false);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/eval: run folder .* has no stages/);
    const h = evalCli(['--help'], false);
    expect(h.status).toBe(0);
    expect(h.stdout).toMatch(/--samples DIR\|FILE --task TASK/);
    const bad = evalCli(['--samples', empty], false);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/--samples needs --task/);
  });
});
