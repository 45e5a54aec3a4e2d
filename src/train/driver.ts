// The continual driver behind `npm run train`: for each task of the sequence a teacher phase
// (choose or add an expert, train it) and a student phase (real data + replay + distillation),
// then the evaluation callback, a stage export and a checkpoint. Reads top to bottom.

import { existsSync, readFileSync, readdirSync, rmSync, symlinkSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadSequence, parseSequence, type TaskData, type Split } from '../data/index.js';
import { Rng } from '../util/rng.js';
import { makeDirs, writeFileAtomic } from '../util/fs.js';
import { gridPng } from '../eval/images.js';
import { renderFigure, trainingCurves, type MetricRecord } from '../eval/plots.js';
import { type RunConfig, runId, canonicalJson, teacherConfigSchema } from './config.js';
import { Expert, trainExpert, chooseExpert, calibrateCritic, IMAGE, type SampleJudge, type ExpertDecision } from './teacher.js';
import { Student, studentFeeds, Temperature, type ReplaySource } from './student.js';
import { phaseBar } from '../util/progress.js';
import { writeModel, writeExportManifest, EXPORT_FORMAT, type ExportManifest } from './export.js';
import type { RuntimeOptions } from '../runtime/index.js';
import { leafInfos, writeArtifacts } from './artifacts.js';
import { Checkpoints, MetricsLog, RunLock, initialState, type RunState } from './runfiles.js';

export type { RunState } from './runfiles.js';

export interface StageEval {
  stage: number;
  task: string;
  model: string;
  fid: number;
  accuracy: number;
  samples: number;
}

export interface DriverOptions {
  /** Continue from the last checkpoint; 'if-any': resume when there is one, else start. */
  resume: boolean | 'if-any';
  /** Delete the run folder's earlier contents first (under the lock). */
  fresh?: boolean;
  /** Resume from this kept checkpoint generation instead of the newest. */
  generation?: number;
  /** The command that started the run, for the messages that say how to continue it. */
  command?: string;
  judge: () => Promise<SampleJudge>;
  /** Called after each stage with the evaluation rows (the evaluation callback). */
  onStage?: (stage: number, rows: StageEval[]) => void | Promise<void>;
  log?: (line: string) => void;
  /** Set by the Ctrl-C handler: the loops stop at the next step, save and return. */
  stop?: { requested: boolean };
}

/** Classes of task `t` in the 20-class space of the feature network (Fashion shifted by 10). */
function classSet(task: TaskData): Set<number> {
  const off = task.spec.dataset === 'fashion' ? 10 : 0;
  return new Set(task.spec.classes.map((c) => c + off));
}

/**
 * What one stage learns: a task of the sequence, or (joint mode) the union of all tasks' training
 * data with each image's own task, the continual run's upper bound.
 */
interface StageData {
  /** Index of the task whose slot the stage's teacher expert and FID probe are named after. */
  name: string;
  tasks: number[];
  train: Split;
  /** Task index of each training image. */
  taskOf: Uint8Array;
}

function stagesOf(tasks: TaskData[], joint: boolean): StageData[] {
  if (!joint) return tasks.map((t, k) => ({ name: t.spec.name, tasks: [k], train: t.train, taskOf: new Uint8Array(t.train.n).fill(k) }));
  const n = tasks.reduce((a, t) => a + t.train.n, 0);
  const images = new Uint8Array(n * IMAGE);
  const labels = new Uint8Array(n);
  const taskOf = new Uint8Array(n);
  let at = 0;
  tasks.forEach((t, k) => {
    images.set(t.train.images, at * IMAGE);
    labels.set(t.train.labels, at);
    taskOf.fill(k, at, at + t.train.n);
    at += t.train.n;
  });
  return [{ name: tasks.map((t) => t.spec.name).join('+'), tasks: tasks.map((_, k) => k), train: { images, labels, n, rows: 28, cols: 28 }, taskOf }];
}

/** k random training images of a stage and the task of each. */
function randomStageImages(stage: StageData, k: number, rng: Rng, range: '0,1' | '-1,1'): { images: Float32Array; tasks: Int32Array } {
  const images = new Float32Array(k * IMAGE);
  const tasks = new Int32Array(k);
  for (let i = 0; i < k; i++) {
    const j = rng.int(stage.train.n);
    tasks[i] = stage.taskOf[j]!;
    for (let p = 0; p < IMAGE; p++) {
      const v = stage.train.images[j * IMAGE + p]! / 255;
      images[i * IMAGE + p] = range === '0,1' ? v : v * 2 - 1;
    }
  }
  return { images, tasks };
}

function firstImages(split: Split, k: number): Float32Array {
  const n = Math.min(k, split.n);
  return Float32Array.from(split.images.subarray(0, n * IMAGE), (v) => v / 255);
}

export async function runContinual(cfg: RunConfig, o: DriverOptions): Promise<string> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const dir = resolve(cfg.out, runId(cfg));
  const command = o.command ?? 'npm run train --';
  makeDirs(dir);
  const lock = RunLock.acquire(dir, log);
  try {
    return await runLocked(cfg, o, dir, command, log);
  } catch (err) {
    // A full disk: the error names the file and the space; the run goes on from its last checkpoint.
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC') {
      const next = existsSync(join(dir, 'checkpoints', 'state.json')) ? `\`${command} --resume\` continues from the last checkpoint` : `run \`${command}\` again (no checkpoint had been written yet)`;
      throw new Error(`${(err as Error).message}; then ${next}.`);
    }
    throw err;
  } finally {
    lock.release();
  }
}

/** What the phases share: the run's configuration, data, models, state, and how to save and log. */
interface Run {
  cfg: RunConfig;
  o: DriverOptions;
  dir: string;
  log: (l: string) => void;
  runtime: RuntimeOptions;
  ckpts: Checkpoints;
  source: TeacherSource | null;
  tasks: TaskData[];
  stages: StageData[];
  judge: SampleJudge;
  student: Student;
  experts: Expert[];
  rng: Rng;
  state: RunState;
  stop: { requested: boolean };
  metrics: (row: Record<string, unknown>) => void;
  metricsLog: MetricsLog;
  /** Mid-phase parts of the state: the teacher's replay snapshot, the adaptive temperature. */
  snapshot: Expert | null;
  temperature: Temperature | null;
}

/** A phase either ran to its end or stopped (Ctrl-C, SIGTERM) after saving. */
type PhaseEnd = 'done' | 'stopped';

async function runLocked(cfg: RunConfig, o: DriverOptions, dir: string, command: string, log: (l: string) => void): Promise<string> {
  const stop = o.stop ?? { requested: false };
  // Training takes turns between sessions (critic and generator steps, samplers, the critic
  // inference behind distillation, the student step); threads that kept spinning after their
  // session's run would take the cores from the next session. Measured on 2 cores: a student
  // step with replay and distillation 169 -> 92 ms, a teacher iteration 627 -> 592 ms.
  const runtime: RuntimeOptions = { device: cfg.device, threads: cfg.threads || undefined, spin: 'run' };
  if (o.fresh) for (const f of readdirSync(dir)) if (f !== 'run.lock') rmSync(join(dir, f), { recursive: true, force: true });
  const ckpts = new Checkpoints(join(dir, 'checkpoints'), command);
  if (ckpts.exists && !o.resume) {
    throw new Error(`${dir} already holds a run with this configuration. Continue it with --resume, or start over with --fresh (deletes it), or change --seed/--out.`);
  }
  // Validated and verified before any data is loaded: a damaged checkpoint fails here.
  const resumed: RunState | null = o.resume === true || (o.resume === 'if-any' && ckpts.exists) || o.generation !== undefined ? ckpts.open(o.generation) : null;
  // A wrong --teacher-from fails here, before anything is written or loaded.
  const source = cfg.teacherFrom ? readTeacherSource(cfg, cfg.joint ? 1 : parseSequence(cfg.tasks).length) : null;
  writeFileAtomic(join(dir, 'config.json'), JSON.stringify({ ...cfg, runId: runId(cfg) }, null, 2) + '\n');
  const metricsLog = new MetricsLog(join(dir, 'metrics.jsonl'));
  // Rows logged after the last checkpoint are logged again by the resumed run: cut them here.
  metricsLog.reset(resumed?.metricsBytes ?? 0);

  log(`run ${runId(cfg)} -> ${dir}`);
  const tasks = await loadSequence(cfg.tasks, { log });
  const judge = await o.judge();
  for (const t of tasks) await judge.realStats(`${t.spec.name}/test`, firstImages(t.test, cfg.eval.samples), Math.min(cfg.eval.samples, t.test.n));
  for (const t of tasks) {
    const n = Math.min(cfg.teacher.experts.fidSamples, t.train.n);
    await judge.realStats(`${t.spec.name}/train`, firstImages(t.train, n), n);
  }
  const stages = stagesOf(tasks, cfg.joint);
  if (cfg.joint) {
    // The union's statistics for the joint expert's FID probe, from a fixed draw of its images.
    const n = cfg.teacher.experts.fidSamples;
    await judge.realStats(`${stages[0]!.name}/train`, randomStageImages(stages[0]!, n, new Rng(cfg.seed + 1), '0,1').images, n);
  }

  const featureDim = 2 * cfg.teacher.arch.criticWidth;
  const student = await Student.create(cfg.student, tasks.length, featureDim, cfg.seed, runtime);
  const rng = new Rng(cfg.seed);
  const run: Run = {
    cfg, o, dir, log, runtime, ckpts, source, tasks, stages, judge, student, experts: [], rng, state: initialState(rng.getState()), stop,
    metrics: (row) => metricsLog.append(row), metricsLog, snapshot: null, temperature: null,
  };

  if (resumed) {
    run.state = resumed;
    for (const s of resumed.experts) {
      const e = await Expert.create(s.id, cfg.teacher, cfg.seed, runtime);
      e.store.load(ckpts.path(resumed, `${e.name}.safetensors`));
      e.tasks.push(...s.tasks);
      for (const [k, v] of Object.entries(s.fid)) e.fid.set(k, v);
      e.scoreStats = s.scoreStats;
      run.experts.push(e);
    }
    student.store.load(ckpts.path(resumed, 'student.safetensors'));
    rng.setState(resumed.rng as number[]);
    log(`resumed from checkpoint generation ${resumed.generation} (verified) at stage ${resumed.stage} (${stages[resumed.stage]?.name ?? 'done'}), ${resumed.phase} phase, step ${resumed.progress}`);
  }

  // Each stage: the teacher phase (trained, or taken from another run), the student phase, then
  // the stage's evaluation and export; each phase resumes from the state's progress.
  while (run.state.stage < stages.length) {
    const k = run.state.stage;
    if (run.state.phase === 'teacher' && source) await takeTeacherFromSource(run, k);
    if (run.state.phase === 'teacher' && (await teacherPhase(run, k)) === 'stopped') return dir;
    if (run.state.phase === 'student') {
      if ((await studentPhase(run, k)) === 'stopped') return dir;
      await finishStage(run, k);
    }
  }
  await exportModels(join(dir, 'export'), runId(cfg), tasks, student, run.experts);
  pointLatest(cfg.out, dir);
  log(`done: ${dir} (export/ holds the student decoder, encoder and teacher experts)`);
  return dir;
}

/** Commits a checkpoint generation of the run as it stands. */
async function save(run: Run): Promise<void> {
  const { state, experts, student } = run;
  state.rng = run.rng.getState();
  state.experts = experts.map((e) => ({ id: e.id, tasks: [...e.tasks], fid: Object.fromEntries(e.fid), scoreStats: e.scoreStats }));
  state.metricsBytes = run.metricsLog.bytes;
  if (run.temperature && state.phase === 'student') state.temperature = run.temperature.getState();
  else delete state.temperature;
  const files = new Map<string, Uint8Array>();
  for (const e of experts) files.set(`${e.name}.safetensors`, e.store.toSafetensors());
  files.set('student.safetensors', student.store.toSafetensors());
  if (run.snapshot && state.phase === 'teacher') files.set('snapshot.safetensors', run.snapshot.store.toSafetensors());
  run.ckpts.commit(state, files);
}

/** The expert that task slot `t` was assigned to, once it has one. */
function expertFor(run: Run, t: number): Expert | null {
  return run.experts.find((e) => e.id === run.state.expertOfTask[t]) ?? null;
}

/** The task slot a stage trains (the last of its tasks); earlier slots are replayed. */
const slotOf = (stage: StageData): number => stage.tasks.at(-1)!;

/** The teacher phase with --teacher-from: the source run's expert for the stage, as it ended. */
async function takeTeacherFromSource(run: Run, k: number): Promise<void> {
  const { cfg, state, tasks, source } = run;
  const stage = run.stages[k]!;
  const id = source!.state.expertOfTask[slotOf(stage)]!;
  const from = source!.state.experts.find((x) => x.id === id)!;
  let e = run.experts.find((x) => x.id === id);
  if (!e) {
    e = await Expert.create(id, cfg.teacher, cfg.seed, run.runtime);
    e.store.load(join(source!.gen, `${e.name}.safetensors`));
    e.scoreStats = from.scoreStats;
    run.experts.push(e);
  }
  for (const t of stage.tasks) {
    state.expertOfTask[t] = id;
    const n = tasks[t]!.spec.name;
    if (!e.tasks.includes(n)) e.tasks.push(n);
    if (from.fid[n] !== undefined) e.fid.set(n, from.fid[n]!);
  }
  const d = source!.state.decisions[k]!;
  state.decisions.push(d);
  run.metrics({ type: 'decision', stage: k, ...d, from: source!.dir });
  run.log(`teacher for ${stage.name}: ${e.name} of ${source!.dir} as it ended (${d.action} there)`);
  state.phase = 'student';
  state.progress = 0;
  await save(run);
}

/** The teacher phase: the expert decision (once per stage), then the expert's training with replay of its earlier tasks. */
async function teacherPhase(run: Run, k: number): Promise<PhaseEnd> {
  const { cfg, state, tasks, judge, rng, experts } = run;
  const stage = run.stages[k]!;
  const name = stage.name;
  const slot = slotOf(stage);
  if (state.expertOfTask[slot] === undefined) {
    const d = await chooseExpert(experts, name, cfg.teacher, judge, `${name}/train`, rng);
    state.decisions.push(d);
    const fids = Object.entries(d.fids).map(([e, f]) => `${e} ${f.toFixed(1)}`).join(', ') || 'no experts yet';
    run.log(`expert decision for ${name}: ${d.action} -> expert${d.expert} (FID on ${d.samples} samples: ${fids}; threshold ${d.threshold.toFixed(1)})`);
    run.metrics({ type: 'decision', stage: k, ...d });
    if (d.action === 'new' || d.action === 'first') experts.push(await Expert.create(d.expert, cfg.teacher, cfg.seed, run.runtime));
    for (const t of stage.tasks) state.expertOfTask[t] = d.expert;
  }
  const e = expertFor(run, slot)!;
  const held = e.tasks.filter((t) => t !== name);
  run.snapshot = null;
  if (held.length) {
    // The expert as it was before this task, replayed for its earlier tasks. Mid-phase the
    // expert has moved on, so a resumed phase takes the snapshot its checkpoint kept.
    const snap = await Expert.create(1000 + e.id, cfg.teacher, cfg.seed, run.runtime);
    if (state.progress > 0) snap.store.load(run.ckpts.path(state, 'snapshot.safetensors'));
    else for (const [n, t] of e.store.tensors) snap.store.tensors.set(n, t);
    run.snapshot = snap;
  }
  const replaySnapshot = run.snapshot;
  const total = cfg.teacher.train.iterations * stage.tasks.length; // joint: the whole sequence's budget in its one stage
  const bar = phaseBar(`stage ${k + 1}/${run.stages.length} ${name} teacher ${e.name}`, total, process.stderr, state.progress);
  const t0 = performance.now();
  const done = await trainExpert(e, cfg.teacher, {
    iterations: total,
    start: state.progress,
    rng,
    realBatch: (n) => randomStageImages(stage, n, rng, '-1,1').images,
    // Replay of the expert's own earlier tasks, from a snapshot taken before this task.
    replay: replaySnapshot ? { fraction: held.length / (held.length + 1), batch: async (n) => Float32Array.from(await replaySnapshot.sample(n, rng), (v) => v * 2 - 1) } : undefined,
    fidProbe: async () => judge.fid(await e.sample(cfg.teacher.experts.fidSamples, rng), cfg.teacher.experts.fidSamples, `${name}/train`),
    onStep: (l) => {
      bar.tick(l.iteration, { W: l.wasserstein, gp: l.gp, fid: l.fid });
      if (l.fid !== undefined || l.iteration % 10 === 0) run.metrics({ type: 'teacher', stage: k, task: name, expert: e.id, ...l });
      if (l.fid !== undefined) run.log(`  ${e.name} on ${name}: iteration ${l.iteration}, FID ${l.fid.toFixed(1)} (${cfg.teacher.experts.fidSamples} samples)`);
    },
    shouldStop: () => run.stop.requested,
    onCheckpoint: async (it) => {
      state.progress = it;
      await save(run);
    },
    checkpointEvery: cfg.checkpoint.teacherEvery,
  });
  bar.end();
  state.progress = done;
  if (done < total) {
    await save(run);
    run.log(`stopped: saved at stage ${k + 1} teacher iteration ${done}; continue with --resume`);
    return 'stopped';
  }
  for (const t of stage.tasks.map((i) => tasks[i]!.spec.name)) if (!e.tasks.includes(t)) e.tasks.push(t);
  for (const t of e.tasks) {
    const fid = await judge.fid(await e.sample(cfg.teacher.experts.fidSamples, rng), cfg.teacher.experts.fidSamples, `${t}/train`);
    e.fid.set(t, fid);
  }
  await calibrateCritic(e, rng);
  run.snapshot = null;
  run.metrics({ type: 'phase', stage: k, task: name, phase: 'teacher', expert: e.id, seconds: (performance.now() - t0) / 1000, fid: Object.fromEntries(e.fid) });
  state.phase = 'student';
  state.progress = 0;
  await save(run);
  return 'done';
}

/** The student phase: real data of the stage, the teacher's replay of earlier tasks, distillation and the anchors. */
async function studentPhase(run: Run, k: number): Promise<PhaseEnd> {
  const { cfg, state, tasks, rng, student } = run;
  const stage = run.stages[k]!;
  const name = stage.name;
  const slot = slotOf(stage);
  const c = cfg.student;
  const b = c.train.batch;
  const replay: ReplaySource[] = [];
  const earlier = stage.tasks[0]!; // tasks before the stage's first are replayed
  // 'auto': each of the t tasks seen gets 1/t of the batch (van de Ven et al.'s brain-inspired replay).
  const ratio = c.replay.ratio === 'auto' ? earlier / (earlier + 1) : c.replay.ratio;
  if (ratio > 0) {
    for (let t = 0; t < earlier; t++) {
      const e = expertFor(run, t)!;
      const fid = e.fid.get(tasks[t]!.spec.name) ?? Infinity;
      replay.push({ task: t, expert: e, weight: c.distill.adaptiveWeights ? Math.min(1, c.distill.fidReference / fid) : 1 });
    }
  }
  const realCount = replay.length ? b - Math.round(b * ratio) : b;
  const known = tasks.map((_, t) => (t <= slot ? expertFor(run, t) : null));
  // The frozen copy: the student as it left the previous stage (taken again on a resume at step 0, where nothing has changed since).
  if (student.anchored && state.progress === 0) student.freeze();
  const temp = new Temperature(c.distill.temperature);
  if (state.progress > 0 && state.temperature) temp.setState(state.temperature);
  run.temperature = temp;
  const total = c.train.steps * stage.tasks.length;
  const bar = phaseBar(`stage ${k + 1}/${run.stages.length} ${name} student`, total, process.stderr, state.progress);
  const t0 = performance.now();
  // Steps go to onnxruntime in batches of the runner's steps per run (their feeds do not depend
  // on the student, so assembling them ahead changes nothing), cut at checkpoints; the adaptive
  // temperature reads each step's result before the next step's targets, so it goes one by one.
  const perRun = c.distill.temperature.kind === 'adaptive' ? 1 : student.step.stepsPerRun;
  while (state.progress < total && !run.stop.requested) {
    const every = cfg.checkpoint.studentEvery;
    const n = Math.min(perRun, total - state.progress, every - (state.progress % every));
    const batch: Record<string, Float32Array | number>[] = [];
    const temps: number[] = [];
    for (let i = 0; i < n; i++) {
      temps.push(temp.value((state.progress + i) / total));
      const real = randomStageImages(stage, realCount, rng, '0,1');
      batch.push(await studentFeeds(student, c, {
        real: real.images, realCount, realTasks: cfg.joint ? real.tasks : undefined, currentTask: earlier, replay, experts: known, step: state.progress + i, total,
      }, temps[i]!, rng));
    }
    const results = await student.step.runSteps(batch);
    student.restoreFrozenPrior(earlier);
    results.forEach((m, i) => {
      temp.observe(m.kd_posterior);
      state.progress++;
      bar.tick(state.progress, { loss: m.loss, rec: m.recon, kl: m.kl, nce: m.infonce, kd: m.kd_posterior, al: m.align, T: temps[i]! });
      if (state.progress % 10 === 0) run.metrics({ type: 'student', stage: k, task: name, step: state.progress, temperature: temps[i]!, ...m });
    });
    if (state.progress % every === 0 && state.progress < total) await save(run);
  }
  bar.end();
  if (state.progress < total) {
    await save(run);
    run.log(`stopped: saved at stage ${k + 1} student step ${state.progress}; continue with --resume`);
    return 'stopped';
  }
  run.metrics({ type: 'phase', stage: k, task: name, phase: 'student', seconds: (performance.now() - t0) / 1000 });
  run.temperature = null;
  return 'done';
}

/** After the student phase: the stage's evaluation callback and export, then on to the next stage. */
async function finishStage(run: Run, k: number): Promise<void> {
  const { cfg, state, tasks, student, experts, dir } = run;
  const rows = await evaluateStage(k, slotOf(run.stages[k]!), tasks, student, (t) => expertFor(run, t), run.judge, cfg, run.rng, dir);
  for (const r of rows) run.metrics({ type: 'eval', ...r });
  await exportModels(join(dir, 'stages', String(k), 'export'), runId(cfg), tasks, student, experts);
  writeModelArtifacts(join(dir, 'artifacts'), cfg, student, experts);
  await writeCurves(dir);
  await run.o.onStage?.(k, rows);
  state.stage++;
  state.phase = state.stage < run.stages.length ? 'teacher' : 'done';
  state.progress = 0;
  await save(run);
}

/** A finished run to take the teacher from, checked to hold the same tasks and teacher, each expert from one stage. */
interface TeacherSource {
  dir: string;
  state: RunState;
  /** Its verified checkpoint generation's folder. */
  gen: string;
}

function readTeacherSource(cfg: RunConfig, stages: number): TeacherSource {
  const dir = resolve(cfg.teacherFrom!);
  const ckpts = new Checkpoints(join(dir, 'checkpoints'), `npm run train -- (the command of the run in ${dir})`);
  const configPath = join(dir, 'config.json');
  if (!ckpts.exists || !existsSync(configPath)) throw new Error(`teacherFrom: ${dir} is not a run folder (no config.json or checkpoints/state.json); give a finished run of npm run train`);
  // Its experts' weights are read only from a generation whose files match their recorded hashes.
  const state = ckpts.open();
  const other = JSON.parse(readFileSync(configPath, 'utf8')) as RunConfig;
  if (state.phase !== 'done') throw new Error(`teacherFrom: the run in ${dir} has not finished (stage ${state.stage}, ${state.phase} phase); finish it with --resume first`);
  if (other.tasks !== cfg.tasks || other.joint !== cfg.joint || other.seed !== cfg.seed) throw new Error(`teacherFrom: ${dir} learned tasks '${other.tasks}'${other.joint ? ' jointly' : ''} with seed ${other.seed}; this run needs '${cfg.tasks}'${cfg.joint ? ' jointly' : ''} with seed ${cfg.seed}`);
  // Through the schema: a run written before a teacher key existed has that key's default.
  const parsedOther = teacherConfigSchema.safeParse(other.teacher);
  if (!parsedOther.success || canonicalJson(parsedOther.data) !== canonicalJson(cfg.teacher)) throw new Error(`teacherFrom: ${dir} trained its teacher with another configuration (its config.json's teacher section differs); use the same teacher.* settings`);
  const shared = state.experts.find((e) => e.tasks.length > 1 && stages > 1);
  if (shared) throw new Error(`teacherFrom: ${dir}'s expert${shared.id} learned ${shared.tasks.join(', ')} in several stages, so its final weights are not what the earlier stages' students saw; train the teacher in this run instead`);
  return { dir, state, gen: ckpts.genDir(state.generation) };
}

/** FID and classifier accuracy of student and teacher samples for every task learned so far; sample grids. */
async function evaluateStage(k: number, lastTask: number, tasks: TaskData[], student: Student, expertFor: (t: number) => Expert | null, judge: SampleJudge, cfg: RunConfig, rng: Rng, dir: string): Promise<StageEval[]> {
  const rows: StageEval[] = [];
  const n = cfg.eval.samples;
  const samplesDir = join(dir, 'stages', String(k), 'samples');
  for (let t = 0; t <= lastTask; t++) {
    const name = tasks[t]!.spec.name;
    const classes = classSet(tasks[t]!);
    const models: [string, Float32Array][] = [['student', await student.sample(t, n, rng)]];
    const e = expertFor(t);
    if (e) models.push([`teacher/${e.name}`, await e.sample(n, rng)]);
    for (const [model, images] of models) {
      const fid = await judge.fid(images, n, `${name}/test`);
      const pred = await judge.classify(images, n);
      const accuracy = pred.reduce((a, p) => a + (classes.has(p) ? 1 : 0), 0) / n;
      rows.push({ stage: k, task: name, model, fid, accuracy, samples: n });
      const file = `${model.startsWith('teacher') ? 'teacher' : 'student'}_${name.replace(/[^a-zA-Z0-9-]/g, '_')}.png`;
      writeFileAtomic(join(samplesDir, file), await gridPng(images, 64, { cols: 8, scale: 2, pad: 2, padValue: 255 }));
    }
  }
  return rows;
}

export async function exportModels(dir: string, run: string, tasks: TaskData[], student: Student, experts: Expert[]): Promise<ExportManifest> {
  const B = 64;
  const decoder = writeModel(dir, 'student_decoder.onnx', student.exportDecoder(B), B);
  const encoder = writeModel(dir, 'student_encoder.onnx', student.exportEncoder(B), B);
  const teacherModels = experts.map((e) => ({ ...writeModel(dir, `teacher_${e.name}.onnx`, e.exportGenerator(), B), tasks: [...e.tasks] }));
  const manifest: ExportManifest = {
    format: EXPORT_FORMAT,
    run,
    createdAt: new Date().toISOString(),
    tasks: tasks.map((t, index) => ({ name: t.spec.name, index })),
    student: { zDim: student.arch.zDim, decoder, encoder, prior: student.prior() },
    teacher: experts.length ? { zDim: experts[0]!.arch.zDim, experts: teacherModels } : undefined,
  };
  writeExportManifest(dir, manifest);
  return manifest;
}

/** Training curves (losses, the critic's estimate, FID) as an image, redrawn after every stage. */
async function writeCurves(dir: string): Promise<void> {
  const records = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as MetricRecord);
  const fig = trainingCurves(records);
  if (fig) writeFileAtomic(join(dir, 'curves.png'), (await renderFigure(fig)).png);
}

/** One artifact directory per model: manifest, train-step graphs, inference graph, checkpoint. */
function writeModelArtifacts(root: string, cfg: RunConfig, student: Student, experts: Expert[]): void {
  for (const e of experts) {
    writeArtifacts(join(root, e.name), {
      model: `teacher/${e.name}`, leaves: leafInfos(e.store), steps: [e.criticStep.graph, e.generatorStep.graph],
      inference: { infer: e.exportGenerator() }, checkpoint: e.store.toSafetensors(), hyperParameters: cfg.teacher.train, config: cfg.teacher,
    });
  }
  writeArtifacts(join(root, 'student'), {
    model: 'student', leaves: leafInfos(student.store), steps: [student.step.graph],
    inference: { infer: student.exportDecoder(), encoder: student.exportEncoder() }, checkpoint: student.store.toSafetensors(), hyperParameters: cfg.student.train, config: cfg.student,
  });
}

/** results/latest -> the newest run (replaced atomically). */
function pointLatest(out: string, dir: string): void {
  const link = join(out, 'latest');
  const tmp = join(out, `.latest.${process.pid}.${randomBytes(6).toString('hex')}`);
  rmSync(tmp, { force: true });
  symlinkSync(resolve(dir), tmp);
  renameSync(tmp, link);
}


