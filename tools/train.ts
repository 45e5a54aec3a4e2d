// npm run train: learns a task sequence with the teacher (WGAN-GP experts) and the student
// (beta-VAE with task priors, replay and distillation). See --help.

import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { configKeys, resolveConfig, runId } from '../src/train/config.js';
import { runContinual } from '../src/train/driver.js';
import { makeJudge } from '../src/train/judge.js';
import { probeDevice } from '../src/runtime/index.js';
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
  --device D        cpu | cuda | webgpu (default cpu)
  --threads N       onnxruntime intra-op threads (default: all cores)
  --out DIR         output folder (default results)
  --teacher-from DIR  take the teacher experts of a finished run (same tasks, seed and teacher
                    settings) and train only the student: student ablations without retraining
                    the teacher
  --resume          continue the run with this configuration from its last checkpoint (its
                    files are checked against the SHA-256 recorded when it was written)
  --generation G    with --resume: continue from kept checkpoint generation G (the one before
                    the newest is kept, for when the newest is damaged)
  --resume-if-any   resume when there is a checkpoint, else start (for jobs that restart)
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
      threads: { type: 'string' }, out: { type: 'string' }, resume: { type: 'boolean' }, fresh: { type: 'boolean' }, generation: { type: 'string' }, 'resume-if-any': { type: 'boolean' },
      'print-config': { type: 'boolean' }, joint: { type: 'boolean' }, 'teacher-from': { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (a.help) {
    process.stdout.write(HELP);
    return;
  }
  const known = new Set(['preset', 'tasks', 'seed', 'device', 'threads', 'out', 'resume', 'fresh', 'generation', 'resume-if-any', 'print-config', 'joint', 'teacher-from', 'help', 'h']);
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
  await probeDevice(cfg.device); // and a device that cannot run (no CUDA provider, no WebGPU adapter), before any data is loaded
  if (a['print-config']) {
    console.log(JSON.stringify({ runId: runId(cfg), ...cfg }, null, 2));
    return;
  }
  const generation = num(a.generation, 'generation');
  if (generation !== undefined && !a.resume) throw new Error('--generation G picks the checkpoint generation --resume continues from: give --resume too');
  if (a.fresh && (a.resume || a['resume-if-any'])) throw new Error('--fresh starts over and --resume continues: give one of them');
  // The options that name the run, for the messages that say how to continue it.
  const skip = new Set(['--resume', '--fresh', '--resume-if-any']);
  const argv = process.argv.slice(2).filter((x, i, all) => !skip.has(x) && x !== '--generation' && all[i - 1] !== '--generation' && !x.startsWith('--generation='));
  const command = ['npm run train --', ...argv.map((x) => (/^[\w./:=,+-]+$/.test(x) ? x : `'${x.replace(/'/g, "'\\''")}'`))].join(' ');
  const stop = { requested: false };
  let stoppedBy = 0;
  const onSignal = (signal: string, code: number) => {
    if (stop.requested) process.exit(code);
    stop.requested = true;
    stoppedBy = code;
    process.stderr.write(`\n${signal}: saving a checkpoint after this step (${signal === 'SIGINT' ? 'Ctrl-C' : signal} again quits without saving)\n`);
  };
  process.on('SIGINT', () => onSignal('SIGINT', 130));
  process.on('SIGTERM', () => onSignal('SIGTERM', 143));
  const t0 = performance.now();
  const dir = await runContinual(cfg, {
    resume: a.resume ? true : a['resume-if-any'] ? 'if-any' : false, fresh: !!a.fresh, generation, command,
    judge: () => makeJudge({ threads: cfg.threads || undefined, steps: cfg.eval.featureNetSteps }), stop,
  });
  process.stderr.write(`wall time ${((performance.now() - t0) / 60000).toFixed(1)} min\n`);
  if (stop.requested) process.exitCode = stoppedBy;
  console.log(dir);
}

main().catch((err: Error) => {
  process.stderr.write(`error: ${err.message}\n`);
  process.exit(1);
});
