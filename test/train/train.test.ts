// npm run train end to end on the smoke preset: outputs, exported models, Ctrl-C and --resume.

import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as ort from 'onnxruntime-node';
import { readExportManifest } from '../../src/train/export.js';
import { resolveConfig, runId } from '../../src/train/config.js';
import { writeFileAtomic } from '../../src/util/fs.js';
import { cpuModel, GOLDEN_FILE } from '../golden/cases.js';

/** Collects the child's stderr and sends it `signal` once `pattern` appears; resolves to a reader of all stderr so far. */
async function signalOnStderr(child: ChildProcess, pattern: RegExp, signal: NodeJS.Signals): Promise<() => string> {
  let err = '';
  child.stderr!.on('data', (d) => (err += String(d)));
  await new Promise<void>((resolve) => {
    const t = setInterval(() => {
      if (pattern.test(err)) {
        clearInterval(t);
        child.kill(signal);
        resolve();
      }
    }, 100);
  });
  return () => err;
}

/**
 * The smoke run's metric rows without their timings, against test/golden/golden.json (the
 * compiler's safety net, with test/golden/golden.test.ts): bit for bit on the CPU that wrote them,
 * within float rounding elsewhere. GOLDEN_UPDATE=1 rewrites them, on purpose only.
 */
function checkGoldenSmokeMetrics(rows: Record<string, unknown>[]): void {
  const untimed = rows.map(({ time: _t, seconds: _s, ...rest }) => rest);
  const golden = JSON.parse(readFileSync(GOLDEN_FILE, 'utf8'));
  if (process.env.GOLDEN_UPDATE === '1') {
    writeFileAtomic(GOLDEN_FILE, `${JSON.stringify({ ...golden, smokeMetrics: untimed }, null, 1)}\n`);
    return;
  }
  expect(golden.smokeMetrics, 'test/golden/golden.json has no smokeMetrics: GOLDEN_UPDATE=1 npx vitest run test/train/train.test.ts').toBeDefined();
  if (golden.cpu === cpuModel()) expect(untimed).toEqual(golden.smokeMetrics);
  else expect(untimed).toEqual(roughly(golden.smokeMetrics));
}

/** `x` with every number replaced by a matcher within 1e-3 relative (other CPU models run other kernels). */
function roughly(x: unknown): unknown {
  if (typeof x === 'number') return expect.closeTo(x, -Math.log10(Math.max(2e-3 * Math.abs(x), 1e-6)));
  if (Array.isArray(x)) return x.map(roughly);
  if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, roughly(v)]));
  return x;
}

const cli = (args: string[]) => [process.execPath, ['--import', 'tsx', join(process.cwd(), 'tools', 'train.ts'), ...args]] as const;

describe('npm run train --preset smoke', () => {
  it('learns mnist,fashion and writes config, metrics, stage samples, checkpoints and exports', { timeout: 300_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), 'train-'));
    // Two threads on any machine: the golden metric rows depend on how onnxruntime splits its work.
    const [node, args] = cli(['--preset', 'smoke', '--out', out, '--threads', '2']);
    const r = spawnSync(node, args, { encoding: 'utf8' });
    expect(r.stderr).toMatch(/expert decision for fashion: new -> expert1/);
    expect(r.status, r.stderr).toBe(0);
    const dir = join(out, runId(resolveConfig({ preset: 'smoke' }, [])));
    expect(readlinkSync(join(out, 'latest'))).toBe(dir);
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(cfg.tasks).toBe('mnist,fashion');
    const rows = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    checkGoldenSmokeMetrics(rows);
    const evals = rows.filter((x) => x.type === 'eval');
    // stage 0: mnist (student + teacher); stage 1: mnist and fashion (student + teacher each)
    expect(evals.map((e) => `${e.stage}:${e.task}:${e.model.split('/')[0]}`)).toEqual(['0:mnist:student', '0:mnist:teacher', '1:mnist:student', '1:mnist:teacher', '1:fashion:student', '1:fashion:teacher']);
    for (const e of evals) expect(Number.isFinite(e.fid) && e.samples === 256).toBe(true);
    expect(rows.filter((x) => x.type === 'decision').map((x) => x.action)).toEqual(['first', 'new']);
    for (const f of ['stages/0/samples/student_mnist.png', 'stages/1/samples/student_fashion.png', 'stages/1/samples/teacher_fashion.png', 'stages/0/export/manifest.json', 'checkpoints/state.json', 'curves.png', 'artifacts/expert0/manifest.json', 'artifacts/student/infer.onnx']) {
      expect(existsSync(join(dir, f)), f).toBe(true);
    }
    const m = readExportManifest(join(dir, 'export'));
    expect(m.tasks.map((t) => t.name)).toEqual(['mnist', 'fashion']);
    expect(m.teacher!.experts.map((e) => e.tasks)).toEqual([['mnist'], ['fashion']]);
    const s = await ort.InferenceSession.create(join(dir, 'export', m.student.decoder.file));
    const n = 3;
    const out3 = await s.run({ z: new ort.Tensor('float32', new Float32Array(n * 32), [n, 32]), task: new ort.Tensor('float32', Float32Array.from([1, 0, 0, 1, 1, 0]), [n, 2]) });
    const px = out3.images!.data as Float32Array;
    expect(out3.images!.dims).toEqual([3, 1, 28, 28]);
    expect(px.every((v) => v >= 0 && v <= 1)).toBe(true);
    rmSync(out, { recursive: true });
  });

  it('Ctrl-C saves and exits; --resume finishes the run', { timeout: 300_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), 'train-'));
    const extra = ['--preset', 'smoke', '--out', out, 'student.train.steps=150'];
    const dir = join(out, runId(resolveConfig({ preset: 'smoke' }, ['student.train.steps=150'])));
    const [node, args] = cli(extra);
    const child = spawn(node, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    // Interrupt once the first student phase is under way.
    const stderr = await signalOnStderr(child, /stage 1\/2 mnist student/, 'SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, stderr()).toBe(130);
    expect(stderr()).toMatch(/saved at stage 1 student step \d+; continue with --resume/);
    const state = JSON.parse(readFileSync(join(dir, 'checkpoints', 'state.json'), 'utf8'));
    expect(state.stage).toBe(0);
    expect(state.phase).toBe('student');
    expect(existsSync(join(dir, 'export', 'manifest.json'))).toBe(false);
    // Without --resume the run refuses to overwrite.
    const again = spawnSync(node, args, { encoding: 'utf8' });
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/--resume/);
    const resumed = spawnSync(node, [...args, '--resume'], { encoding: 'utf8' });
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resumed from checkpoint generation \d+ \(verified\) at stage 0 \(mnist\), student phase, step \d+/);
    expect(existsSync(join(dir, 'export', 'manifest.json'))).toBe(true);
    rmSync(out, { recursive: true });
  });

  it('SIGTERM to the npm process of npm run train saves a checkpoint and exits 143', { timeout: 300_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), 'train-'));
    const child = spawn('npm', ['run', 'train', '--', '--preset', 'smoke', '--out', out, 'student.train.steps=150'], { stdio: ['ignore', 'pipe', 'pipe'] });
    // To npm, as a container runtime or a process manager sends it.
    const stderr = await signalOnStderr(child, /stage 1\/2 mnist student/, 'SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve)); // 'close': stderr read to its end
    expect(code, stderr()).toBe(143);
    expect(stderr().slice(-1500)).toMatch(/SIGTERM: saving a checkpoint after this step/);
    expect(stderr()).toMatch(/saved at stage 1 student step \d+; continue with --resume/);
    const dir = join(out, runId(resolveConfig({ preset: 'smoke' }, ['student.train.steps=150'])));
    const state = JSON.parse(readFileSync(join(dir, 'checkpoints', 'state.json'), 'utf8'));
    expect([state.stage, state.phase]).toEqual([0, 'student']);
    expect(state.progress).toBeGreaterThan(0);
    expect(existsSync(join(dir, 'run.lock'))).toBe(false);
    rmSync(out, { recursive: true });
  });

  it('reuses the closest expert, with replay of its earlier tasks, when it fits a new task', { timeout: 300_000 }, () => {
    const out = mkdtempSync(join(tmpdir(), 'train-'));
    const over = ['teacher.experts.fidThreshold=1e9', 'teacher.train.iterations=4', 'student.train.steps=5'];
    const [node, args] = cli(['--preset', 'smoke', '--tasks', 'mnist:0-4,mnist:5-9', '--out', out, ...over]);
    const r = spawnSync(node, args, { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/expert decision for mnist:5-9: reuse -> expert0 \(FID on 256 samples: expert0 \d+\.\d; threshold 1000000000\.0\)/);
    const dir = join(out, runId(resolveConfig({ preset: 'smoke', tasks: 'mnist:0-4,mnist:5-9' }, over)));
    const m = readExportManifest(join(dir, 'export'));
    expect(m.teacher!.experts.map((e) => e.tasks)).toEqual([['mnist:0-4', 'mnist:5-9']]);
    rmSync(out, { recursive: true });
  });

  it('rejects bad input with a clear message', () => {
    const [node, args] = cli(['--preset', 'smoke', 'teacher.train.iteration=5']);
    const r = spawnSync(node, args, { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unknown config key 'teacher.train.iteration'/);
    const t = spawnSync(node, cli(['--tasks', 'mnist,cifar'])[1], { encoding: 'utf8' });
    expect(t.status).toBe(1);
    expect(t.stderr).toMatch(/cifar/);
    const h = spawnSync(node, cli(['--help'])[1], { encoding: 'utf8' });
    expect(h.stdout).toMatch(/--preset NAME/);
    expect(h.stdout).toMatch(/teacher\.experts\.fidThreshold/);
  });
});
