// Exact resume of `npm run train`: killed with SIGKILL at several moments across both stages
// (an expert reused for the second task, so its replay snapshot must survive the crash), then
// resumed, a run ends with the same metric rows, checkpoints, exports and sample grids as the
// uninterrupted run. Also: damaged checkpoints and run states, the run-folder lock.

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig, runId } from '../../src/train/config.js';

const TRAIN = join(process.cwd(), 'tools', 'train.ts');
const OVER = ['teacher.experts.maxExperts=1'];
const argsFor = (out: string, extra: string[] = []) => ['--import', 'tsx', TRAIN, '--preset', 'smoke', '--out', out, ...OVER, ...extra];
const dirOf = (out: string) => join(out, runId(resolveConfig({ preset: 'smoke' }, OVER)));
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Runs the CLI and SIGKILLs it as soon as its stderr matches `pattern` (plus `delayMs`); returns the stderr. */
function runUntil(out: string, extra: string[], pattern: RegExp | null, delayMs = 0): Promise<{ code: number | null; signal: string | null; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, argsFor(out, extra), { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    let armed = false;
    child.stderr.on('data', (d) => {
      err += String(d);
      if (pattern && !armed && pattern.test(err)) {
        armed = true;
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.on('exit', (code, signal) => resolve({ code, signal, err }));
  });
}

/** What must be identical: metric rows without their timings, checkpoint state, exported models, sample grids. */
function outcome(dir: string) {
  const rows = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => {
    const { time: _t, seconds: _s, ...rest } = JSON.parse(l) as Record<string, unknown>;
    return rest;
  });
  const { metricsBytes: _m, ...state } = JSON.parse(readFileSync(join(dir, 'checkpoints', 'state.json'), 'utf8')) as Record<string, unknown>;
  const manifest = JSON.parse(readFileSync(join(dir, 'export', 'manifest.json'), 'utf8'));
  const models = [manifest.student.decoder.sha256, manifest.student.encoder.sha256, ...manifest.teacher.experts.map((e: { sha256: string }) => e.sha256)];
  const grids: Record<string, string> = {};
  for (const k of ['0', '1']) for (const f of readdirSync(join(dir, 'stages', k, 'samples'))) grids[`${k}/${f}`] = sha(join(dir, 'stages', k, 'samples', f));
  return { rows, state, models, grids };
}

describe('npm run train: exact resume', () => {
  it('killed at five moments (both stages, a reused expert) and resumed, ends exactly as the uninterrupted run', { timeout: 600_000 }, async () => {
    const ref = mkdtempSync(join(tmpdir(), 'resume-ref-'));
    const whole = await runUntil(ref, [], null);
    expect(whole.code, whole.err).toBe(0);
    expect(whole.err).toMatch(/expert decision for fashion: cap -> expert0/);
    const expected = outcome(dirOf(ref));

    const out = mkdtempSync(join(tmpdir(), 'resume-'));
    const moments: [RegExp, number][] = [
      [/expert0 on mnist: iteration 6/, 0], // stage 1 teacher, after its first checkpoint
      [/stage 1\/2 mnist student \[/, 300], // stage 1 student
      [/expert0 on fashion: iteration 6/, 0], // stage 2 teacher: expert0 reused, replaying mnist from its snapshot
      [/stage 2\/2 fashion student \[/, 300], // stage 2 student
      [/stage 2\/2 fashion student \[#{20}\]/, 0], // stage 2 evaluation and export
    ];
    let first = true;
    const resumedAt: string[] = [];
    for (const [pattern, delay] of moments) {
      const r = await runUntil(out, first ? [] : ['--resume'], pattern, delay);
      if (r.code === 0) break; // finished before the kill landed: nothing more to interrupt
      expect(r.signal, r.err).toBe('SIGKILL');
      first = false;
      const m = /resumed from checkpoint generation (\d+) \(verified\) at stage (\d) \([^)]*\), (\w+) phase, step (\d+)/.exec(r.err);
      if (m) resumedAt.push(`${m[2]}:${m[3]}:${m[4]}`);
    }
    const last = await runUntil(out, ['--resume'], null);
    expect(last.code, last.err).toBe(0);
    const m = /resumed from checkpoint generation \d+ \(verified\) at stage (\d) \([^)]*\), (\w+) phase, step (\d+)/.exec(last.err);
    if (m) resumedAt.push(`${m[1]}:${m[2]}:${m[3]}`);
    // The kills landed mid-phase in both stages' teacher phases, the reused expert's included.
    expect(resumedAt.some((x) => /^0:teacher:[1-9]/.test(x)), resumedAt.join(' ')).toBe(true);
    expect(resumedAt.some((x) => /^1:teacher:[1-9]/.test(x)), resumedAt.join(' ')).toBe(true);
    const got = outcome(dirOf(out));
    expect(got.rows.length).toBe(expected.rows.length); // each row exactly once
    expect(got.rows).toEqual(expected.rows);
    expect(got.state).toEqual(expected.state);
    expect(got.models).toEqual(expected.models);
    expect(got.grids).toEqual(expected.grids);
    expect(existsSync(join(dirOf(out), 'run.lock'))).toBe(false);

    // A flipped byte in the newest checkpoint is caught, named, and the kept generation offered.
    const dir = dirOf(out);
    const state = JSON.parse(readFileSync(join(dir, 'checkpoints', 'state.json'), 'utf8'));
    const file = join(dir, 'checkpoints', String(state.generation), 'student.safetensors');
    const bytes = readFileSync(file);
    bytes[bytes.length - 100] ^= 0x40;
    writeFileSync(file, bytes);
    const damaged = spawnSync(process.execPath, argsFor(out, ['--resume']), { encoding: 'utf8' });
    expect(damaged.status).toBe(1);
    expect(damaged.stderr).toContain(`checkpoint file ${file} is damaged`);
    const prev = state.generation - 1;
    expect(damaged.stderr).toMatch(new RegExp(`Generation ${prev} \\(stage 2, student phase, step \\d+\\) is intact: continue from it with \`npm run train -- --preset smoke --out \\S+ teacher.experts.maxExperts=1 --resume --generation ${prev}\``));
    // Truncated: the same check names it.
    writeFileSync(file, bytes.subarray(0, 1000));
    const cut = spawnSync(process.execPath, argsFor(out, ['--resume']), { encoding: 'utf8' });
    expect(cut.stderr).toMatch(/student\.safetensors is damaged: .*\(1000 bytes now\)/);
    // The kept generation resumes and finishes the run again, with the same exported models.
    const back = spawnSync(process.execPath, argsFor(out, ['--resume', '--generation', String(prev)]), { encoding: 'utf8' });
    expect(back.status, back.stderr).toBe(0);
    expect(outcome(dir).models).toEqual(expected.models);
    expect(outcome(dir).rows).toEqual(expected.rows);
    rmSync(ref, { recursive: true });
    rmSync(out, { recursive: true });
  });
});

describe('npm run train: run folder errors and the lock', () => {
  const run = (out: string, extra: string[]) => spawnSync(process.execPath, argsFor(out, extra), { encoding: 'utf8' });

  it('a resume with nothing to resume says so; --resume-if-any starts instead', { timeout: 120_000 }, () => {
    const out = mkdtempSync(join(tmpdir(), 'resume-none-'));
    const r = run(out, ['--resume']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/nothing to resume: \S+checkpoints\/state\.json does not exist .* Run the same command without --resume to start it/);
    const s = run(out, ['--resume-if-any', 'teacher.train.iterations=2', 'student.train.steps=2']);
    expect(s.status, s.stderr).toBe(0);
    rmSync(out, { recursive: true });
  });

  it('a corrupt or foreign state.json is named, with what to do', { timeout: 120_000 }, () => {
    const out = mkdtempSync(join(tmpdir(), 'resume-state-'));
    const over = ['teacher.train.iterations=8', 'student.train.steps=2'];
    const dirOver = join(out, runId(resolveConfig({ preset: 'smoke' }, [...OVER, ...over])));
    expect(run(out, over).status).toBe(0);
    const path = join(dirOver, 'checkpoints', 'state.json');
    const good = readFileSync(path, 'utf8');
    writeFileSync(path, good.slice(0, 1) + 'x' + good.slice(1));
    const bad = run(out, [...over, '--resume']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(`the run state ${path} is damaged (not JSON`);
    expect(bad.stderr).toMatch(/Generation \d+ \(stage \d, \w+ phase.*\) is intact: continue from it with `npm run train -- .* --resume --generation \d+`/);
    writeFileSync(path, JSON.stringify({ stage: 0, experts: 3 }));
    const foreign = run(out, [...over, '--resume']);
    expect(foreign.stderr).toContain(`${path} is not a run state this version reads (format missing, expected 'lifelong-gen-run-state/1')`);
    writeFileSync(path, JSON.stringify({ ...JSON.parse(good), experts: 3 }));
    const wrong = run(out, [...over, '--resume']);
    expect(wrong.stderr).toMatch(/is damaged \(experts: .*\)/);
    rmSync(out, { recursive: true });
  });

  it('a second run on a folder in use refuses, naming the holder; a stale lock is taken over', { timeout: 120_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), 'resume-lock-'));
    const over = ['teacher.train.iterations=2', 'student.train.steps=2'];
    const dir = join(out, runId(resolveConfig({ preset: 'smoke' }, [...OVER, ...over])));
    const child = spawn(process.execPath, argsFor(out, over), { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += String(d)));
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (/^run /m.test(err)) {
          clearInterval(t);
          resolve();
        }
      }, 50);
    });
    const second = run(out, over);
    expect(second.status).toBe(1);
    expect(second.stderr).toMatch(new RegExp(`${dir} is in use by another run \\(pid ${child.pid} on \\S+, started \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z; lock file ${dir}/run\\.lock\\)`));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('exit', resolve));
    // The dead holder's lock is left behind; the next run takes it over and says so.
    expect(existsSync(join(dir, 'run.lock'))).toBe(true);
    const third = run(out, [...over, '--fresh']);
    expect(third.status, third.stderr).toBe(0);
    expect(third.stderr).toMatch(new RegExp(`taking over the stale lock ${dir}/run\\.lock \\(pid ${child.pid} on \\S+, started \\S+: no such process\\)`));
    rmSync(out, { recursive: true });
  });
});
