// The learning-quality levers are wired: the teacher's learning rates and weight average, the
// relative expert threshold, the student's anchors to its frozen copy, and the joint mode.

import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import * as ort from 'onnxruntime-node';
import { readExportManifest } from '../../src/train/export.js';
import { resolveConfig, runId } from '../../src/train/config.js';
import { chooseExpert, teacherArch, teacherLearningRates, EMA_PREFIX, type Expert, type SampleJudge } from '../../src/train/teacher.js';
import { ANCHOR_PREFIX, studentLr } from '../../src/train/student.js';
import { decodeSafetensors } from '../../src/graph/safetensors.js';
import * as teacher from '../../graphs/teacher.js';

const cli = (args: string[]) => [process.execPath, ['--import', 'tsx', join(process.cwd(), 'tools', 'train.ts'), ...args]] as const;

function train(args: string[], over: string[]): { dir: string; out: string; rows: Record<string, any>[] } {
  const out = mkdtempSync(join(tmpdir(), 'quality-'));
  const [node, a] = cli([...args, '--out', out, ...over]);
  const r = spawnSync(node, a, { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  const base: Record<string, unknown> = { preset: 'smoke' };
  const t = args.indexOf('--tasks');
  if (t >= 0) base.tasks = args[t + 1];
  if (args.includes('--joint')) base.joint = true;
  const dir = join(out, runId(resolveConfig(base, over)));
  const rows = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  return { dir, out, rows };
}

function checkpoint(dir: string, file: string) {
  const ck = join(dir, 'checkpoints');
  const gen = readdirSync(ck).filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(b) - Number(a))[0]!;
  return decodeSafetensors(readFileSync(join(ck, gen, file))).tensors;
}

describe('teacher learning rates', () => {
  const c = resolveConfig({}, ['teacher.train.lr=1e-4', 'teacher.train.criticLr=3e-4', 'teacher.train.lrDecay=linear']).teacher;
  it('gives the critic its own rate (TTUR) and decays both linearly to zero', () => {
    expect(teacherLearningRates(c, 0, 100)).toEqual({ generator: 1e-4, critic: 3e-4 });
    const half = teacherLearningRates(c, 50, 100);
    expect(half.generator).toBeCloseTo(5e-5, 12);
    expect(half.critic).toBeCloseTo(1.5e-4, 12);
    expect(teacherLearningRates(c, 99, 100).generator).toBeCloseTo(1e-6, 12);
    const flat = resolveConfig({}, ['teacher.train.lr=1e-4', 'teacher.train.criticLr=null', 'teacher.train.lrDecay=none']).teacher;
    expect(teacherLearningRates(flat, 99, 100)).toEqual({ generator: 1e-4, critic: 1e-4 });
  });
});

describe('student learning rate', () => {
  it('decays linearly to zero over the stage when lrDecay=linear, and is constant otherwise', () => {
    const c = resolveConfig({}, ['student.train.lr=2e-3', 'student.train.lrDecay=linear']).student;
    expect(studentLr(c, 0, 200)).toBe(2e-3);
    expect(studentLr(c, 100, 200)).toBeCloseTo(1e-3, 12);
    expect(studentLr(c, 199, 200)).toBeCloseTo(1e-5, 12);
    const flat = resolveConfig({}, ['student.train.lr=2e-3', 'student.train.lrDecay=none']).student;
    expect(studentLr(flat, 199, 200)).toBe(2e-3);
  });
});

describe('relative expert threshold', () => {
  // Two experts that fit their own tasks at FID 100 and 300; the judge scores each expert's
  // samples on the new task at the FID its first sample value names.
  const fake = (id: number, own: number, onNew: number) =>
    ({ id, name: `expert${id}`, tasks: [`t${id}`], fid: new Map([[`t${id}`, own]]), sample: async (n: number) => new Float32Array(n).fill(onNew) }) as unknown as Expert;
  const judge = { fid: async (images: Float32Array) => images[0]! } as unknown as SampleJudge;
  const cfg = (factor: number) => resolveConfig({}, ['teacher.experts.threshold=relative', `teacher.experts.relativeFactor=${factor}`, 'teacher.experts.fidSamples=4']).teacher;
  const rng = { normal: () => 0 } as never;

  it('compares each expert with its own-task FID', async () => {
    // expert0: 250 on the new task = 2.5x its own; expert1: 450 = 1.5x its own -> expert1 is the closer fit.
    const d = await chooseExpert([fake(0, 100, 250), fake(1, 300, 450)], 'new', cfg(2), judge, 'new/train', rng);
    expect(d).toMatchObject({ action: 'reuse', expert: 1, threshold: 600, ownFids: { expert0: 100, expert1: 300 } });
  });

  it('adds an expert when every expert is over its own threshold', async () => {
    const d = await chooseExpert([fake(0, 100, 250), fake(1, 300, 450)], 'new', cfg(1.2), judge, 'new/train', rng);
    expect(d.action).toBe('new');
    expect(d.expert).toBe(2);
    expect(d.threshold).toBeCloseTo(360, 9);
  });
});

describe('npm run train with the anchors, the weight average and auto replay (smoke)', () => {
  it('aligns with the frozen copy in stage 2 only, keeps earlier priors, and exports the averaged generator', { timeout: 300_000 }, async () => {
    const over = [
      'student.anchor.decoder=true', 'student.anchor.encoder=true', 'student.anchor.freezePrior=true', 'student.replay.ratio=auto',
      'student.loss.klWarmup=10', 'student.loss.beta=1', 'teacher.train.emaKimg=1', 'teacher.train.criticLr=4e-4', 'teacher.train.lrDecay=linear',
    ];
    const { dir, out, rows } = train(['--preset', 'smoke'], over);
    const student = rows.filter((r) => r.type === 'student');
    const s0 = student.filter((r) => r.stage === 0);
    const s1 = student.filter((r) => r.stage === 1);
    expect(s0.length).toBeGreaterThan(0);
    expect(s1.length).toBeGreaterThan(0);
    for (const r of s0) expect([r.align, r.anchor]).toEqual([0, 0]);
    for (const r of s1) {
      expect(r.align).toBeGreaterThan(0);
      expect(r.anchor).toBeGreaterThan(0);
    }

    // The earlier task's prior row is the one the student had after stage 1.
    const stage0 = readExportManifest(join(dir, 'stages', '0', 'export'));
    const final = readExportManifest(join(dir, 'export'));
    expect(final.student.prior.mu[0]).toEqual(stage0.student.prior.mu[0]);
    expect(final.student.prior.logvar[0]).toEqual(stage0.student.prior.logvar[0]);
    expect(final.student.prior.mu[1]).not.toEqual(stage0.student.prior.mu[1]);
    const st = checkpoint(dir, 'student.safetensors');
    expect(Array.from(st.get(ANCHOR_PREFIX + 'prior.mu')!.data as Float32Array).slice(0, 32)).toEqual(Array.from(Float32Array.from(stage0.student.prior.mu[0]!)));

    // The average differs from the trained weights, and the export is the average.
    const ex = checkpoint(dir, 'expert0.safetensors');
    const raw = ex.get('G.fc.weight')!.data as Float32Array;
    const ema = ex.get(EMA_PREFIX + 'G.fc.weight')!.data as Float32Array;
    expect(raw.length).toBe(ema.length);
    expect(raw.some((v, i) => v !== ema[i])).toBe(true);
    const arch = teacherArch(resolveConfig({ preset: 'smoke' }, over).teacher);
    const weights = (prefix: string) => new Map([...ex].filter(([k]) => k.startsWith(prefix + 'G.')).map(([k, t]) => [k.slice(prefix.length), t.data as Float32Array]));
    const z = new ort.Tensor('float32', Float32Array.from({ length: 4 * arch.zDim }, (_, i) => Math.sin(i)), [4, arch.zDim]);
    const run = async (bytes: Uint8Array) => (await (await ort.InferenceSession.create(bytes)).run({ z })).images!.data as Float32Array;
    const exported = await run(readFileSync(join(dir, 'export', final.teacher!.experts[0]!.file)));
    const fromEma = await run(teacher.emitGeneratorInference(arch, 4, weights(EMA_PREFIX), true).bytes);
    const fromRaw = await run(teacher.emitGeneratorInference(arch, 4, weights(''), true).bytes);
    for (let i = 0; i < exported.length; i++) expect(exported[i]).toBeCloseTo(fromEma[i]!, 5);
    expect(fromRaw.some((v, i) => Math.abs(v - exported[i]!) > 1e-4)).toBe(true);
    rmSync(out, { recursive: true });
  });
});

describe('npm run train --joint (smoke)', () => {
  it('learns every task in one stage with the sequence budget and evaluates each task', { timeout: 300_000 }, () => {
    const { dir, out, rows } = train(['--preset', 'smoke', '--joint'], []);
    expect(dir).toMatch(/smoke-joint-mnist_fashion-s0-/);
    expect(rows.filter((r) => r.type === 'decision').map((r) => r.action)).toEqual(['first']);
    const evals = rows.filter((r) => r.type === 'eval');
    expect(evals.map((e) => `${e.stage}:${e.task}:${e.model.split('/')[0]}`)).toEqual(['0:mnist:student', '0:mnist:teacher', '0:fashion:student', '0:fashion:teacher']);
    const c = resolveConfig({ preset: 'smoke' }, []);
    const phases = rows.filter((r) => r.type === 'teacher');
    expect(Math.max(...phases.map((r) => r.iteration))).toBe(2 * c.teacher.train.iterations);
    expect(Math.max(...rows.filter((r) => r.type === 'student').map((r) => r.step))).toBe(2 * c.student.train.steps);
    const m = readExportManifest(join(dir, 'export'));
    expect(m.teacher!.experts.map((e) => e.tasks)).toEqual([['mnist', 'fashion']]);
    rmSync(out, { recursive: true });
  });
});

describe('npm run train --teacher-from (smoke)', () => {
  it("trains only the student on a finished run's teacher, and refuses another teacher configuration", { timeout: 300_000 }, () => {
    const first = train(['--preset', 'smoke'], ['student.train.steps=10']);
    const [node, a] = cli(['--preset', 'smoke', '--out', first.out, '--teacher-from', first.dir, 'student.train.steps=10', 'student.loss.beta=1']);
    const r = spawnSync(node, a, { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/teacher for mnist: expert0 of .* as it ended \(first there\)/);
    expect(r.stderr).not.toMatch(/mnist teacher expert0 \[/);
    const dir = join(first.out, runId(resolveConfig({ preset: 'smoke', teacherFrom: first.dir }, ['student.train.steps=10', 'student.loss.beta=1'])));
    const mA = readExportManifest(join(first.dir, 'export'));
    const mB = readExportManifest(join(dir, 'export'));
    expect(mB.teacher!.experts.map((e) => [e.tasks, e.sha256])).toEqual(mA.teacher!.experts.map((e) => [e.tasks, e.sha256]));
    expect(mB.student.decoder.sha256).not.toBe(mA.student.decoder.sha256);
    const bad = spawnSync(node, cli(['--preset', 'smoke', '--out', first.out, '--teacher-from', first.dir, 'teacher.train.lr=1e-3'])[1], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/another configuration .* teacher section differs/);
    const none = spawnSync(node, cli(['--preset', 'smoke', '--out', first.out, '--teacher-from', join(first.out, 'nothing-here')])[1], { encoding: 'utf8' });
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/nothing-here is not a run folder/);
    expect(none.stderr).not.toMatch(/feature net/); // refused before any data is loaded
    rmSync(first.out, { recursive: true });
  });
});
