// npm run train: learns a task sequence with the teacher (WGAN-GP experts) and the student
// (beta-VAE with task priors, replay and distillation). See --help.

import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { configKeys, resolveConfig, runId } from '../src/train/config.js';
import { runContinual } from '../src/train/driver.js';
import { makeJudge } from '../src/train/judge.js';
import { checkDevice } from '../src/train/session.js';
import { TASK_HELP, parseSequence } from '../src/data/index.js';

const HELP = `npm run train -- [options] [key=value ...]

Learns a sequence of tasks, one after another, without forgetting: for each task a teacher
phase (a WGAN-GP expert, a new one when the existing experts fit the task badly) and a student
phase (a beta-VAE with a task-conditional prior, trained on the task's data mixed with the
teacher's samples of earlier tasks and distilled from the teacher). Writes results/<run-id>/
and points results/latest at it.

Options:
  --preset NAME     smoke (under 2 minutes), default (2-core CPU, under 20 minutes), paper (GPU)
  --tasks SPEC      task sequence (default mnist,fashion)
  --joint           the joint upper bound: the same models trained on every task's data at once
                    (one stage, each task's images under its own task), for comparison with the
                    continual run; its run id starts with <preset>-joint-
  --seed N          random seed (default 0)
  --device D        cpu | cuda (default cpu)
  --threads N       onnxruntime intra-op threads (default: all cores)
  --out DIR         output folder (default results)
  --teacher-from DIR  take the teacher experts of a finished run (same tasks, seed and teacher
                    settings) and train only the student: student ablations without retraining
                    the teacher
  --resume          continue the run with this configuration from its last checkpoint
  --fresh           delete an earlier run with this configuration and start over
  --print-config    print the resolved configuration and exit
  -h, --help        this text

Any configuration key can be set as key=value (or --key=value), e.g.
  teacher.train.iterations=200 student.replay.ratio=0 student.distill.posterior=false

${TASK_HELP}

Configuration keys:
  ${configKeys().join('\n  ')}
`;

async function main(): Promise<void> {
  const { values: a, positionals, tokens } = parseArgs({
    allowPositionals: true,
    strict: false,
    tokens: true,
    options: {
      preset: { type: 'string' }, tasks: { type: 'string' }, seed: { type: 'string' }, device: { type: 'string' },
      threads: { type: 'string' }, out: { type: 'string' }, resume: { type: 'boolean' }, fresh: { type: 'boolean' },
      'print-config': { type: 'boolean' }, joint: { type: 'boolean' }, 'teacher-from': { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (a.help) {
    process.stdout.write(HELP);
    return;
  }
  const known = new Set(['preset', 'tasks', 'seed', 'device', 'threads', 'out', 'resume', 'fresh', 'print-config', 'joint', 'teacher-from', 'help', 'h']);
  const overrides = [...positionals];
  for (const t of tokens ?? []) {
    if (t.kind === 'option' && !known.has(t.name)) {
      if (t.value === undefined) throw new Error(`unknown option --${t.name}; see --help (config keys take a value: --${t.name}=VALUE)`);
      overrides.push(`${t.name}=${t.value}`);
    }
  }
  const num = (v: unknown, name: string) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got '${String(v)}'`);
    return n;
  };
  const base: Record<string, unknown> = {};
  if (a.preset !== undefined) base.preset = a.preset;
  if (a.tasks !== undefined) base.tasks = a.tasks;
  if (a.seed !== undefined) base.seed = num(a.seed, 'seed');
  if (a.device !== undefined) base.device = a.device;
  if (a.threads !== undefined) base.threads = num(a.threads, 'threads');
  if (a.out !== undefined) base.out = a.out;
  if (a.joint) base.joint = true;
  if (a['teacher-from'] !== undefined) base.teacherFrom = resolve(String(a['teacher-from']));
  const cfg = resolveConfig(base, overrides);
  parseSequence(cfg.tasks); // unknown task names fail here, before anything is written
  checkDevice(cfg.device); // and a missing CUDA provider, before any data is loaded
  if (a['print-config']) {
    console.log(JSON.stringify({ runId: runId(cfg), ...cfg }, null, 2));
    return;
  }
  if (a.fresh) rmSync(resolve(cfg.out, runId(cfg)), { recursive: true, force: true });
  const stop = { requested: false };
  process.on('SIGINT', () => {
    if (stop.requested) process.exit(130);
    stop.requested = true;
    process.stderr.write('\ninterrupt: saving a checkpoint after this step (Ctrl-C again to quit without saving)\n');
  });
  process.on('SIGTERM', () => (stop.requested = true));
  const t0 = performance.now();
  const dir = await runContinual(cfg, { resume: !!a.resume, judge: () => makeJudge({ threads: cfg.threads || undefined, steps: cfg.eval.featureNetSteps }), stop });
  process.stderr.write(`wall time ${((performance.now() - t0) / 60000).toFixed(1)} min\n`);
  if (stop.requested) process.exitCode = 130;
  console.log(dir);
}

main().catch((err: Error) => {
  process.stderr.write(`error: ${err.message}\n`);
  process.exit(1);
});
