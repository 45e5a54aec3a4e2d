// The continual driver behind `npm run train`: for each task of the sequence a teacher phase
// (choose or add an expert, train it) and a student phase (real data + replay + distillation),
// then the evaluation callback, a stage export and a checkpoint. Reads top to bottom.

import { existsSync, readFileSync, rmSync, symlinkSync, appendFileSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadSequence, parseSequence, type TaskData, type Split } from '../data/index.js';
import { Rng } from '../util/rng.js';
import { makeDirs, writeFileAtomic } from '../util/fs.js';
import { gridPng } from '../eval/images.js';
import { renderFigure, trainingCurves, type MetricRecord } from '../eval/plots.js';
import { type RunConfig, runId, canonicalJson } from './config.js';
import { Expert, trainExpert, chooseExpert, calibrateCritic, IMAGE, type SampleJudge, type ExpertDecision } from './teacher.js';
import { Student, studentFeeds, Temperature, type ReplaySource } from './student.js';
import { phaseBar } from './progress.js';
import { writeModel, writeExportManifest, EXPORT_FORMAT, type ExportManifest } from './export.js';
import type { RuntimeOptions } from './session.js';
import { leafInfos, writeArtifacts } from './artifacts.js';

export interface RunState {
  stage: number;
  phase: 'teacher' | 'student' | 'done';
  /** Progress within the phase (generator iterations or student steps). */
  progress: number;
  /** Expert id per learned task (index = task). */
  expertOfTask: number[];
  experts: { id: number; tasks: string[]; fid: Record<string, number>; scoreStats: { mean: number; std: number } }[];
  decisions: ExpertDecision[];
  rng: number[];
  generation: number;
}

export interface StageEval {
  stage: number;
  task: string;
  model: string;
  fid: number;
  accuracy: number;
  samples: number;
}

export interface DriverOptions {
  resume: boolean;
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
  const stop = o.stop ?? { requested: false };
  // Training takes turns between sessions (critic and generator steps, samplers, the critic
  // inference behind distillation, the student step); threads that kept spinning after their
  // session's run would take the cores from the next session. Measured on 2 cores: a student
  // step with replay and distillation 169 -> 92 ms, a teacher iteration 627 -> 592 ms.
  const runtime: RuntimeOptions = { device: cfg.device, threads: cfg.threads || undefined, spin: 'run' };
  const dir = resolve(cfg.out, runId(cfg));
  const ckptDir = join(dir, 'checkpoints');
  const statePath = join(ckptDir, 'state.json');
  if (existsSync(statePath) && !o.resume) {
    throw new Error(`${dir} already holds a run with this configuration. Continue it with --resume, or start over with --fresh (deletes it), or change --seed/--out.`);
  }
  // A wrong --teacher-from fails here, before anything is written or loaded.
  const source = cfg.teacherFrom ? readTeacherSource(cfg, cfg.joint ? 1 : parseSequence(cfg.tasks).length) : null;
  makeDirs(dir);
  writeFileAtomic(join(dir, 'config.json'), JSON.stringify({ ...cfg, runId: runId(cfg) }, null, 2) + '\n');
  const metrics = (row: Record<string, unknown>) => appendFileSync(join(dir, 'metrics.jsonl'), JSON.stringify({ time: new Date().toISOString(), ...row }) + '\n');

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
  const experts: Expert[] = [];
  const rng = new Rng(cfg.seed);
  let state: RunState = { stage: 0, phase: 'teacher', progress: 0, expertOfTask: [], experts: [], decisions: [], rng: rng.getState(), generation: 0 };

  if (o.resume && existsSync(statePath)) {
    state = JSON.parse(readFileSync(statePath, 'utf8')) as RunState;
    const gen = join(ckptDir, String(state.generation));
    for (const s of state.experts) {
      const e = await Expert.create(s.id, cfg.teacher, cfg.seed, runtime);
      e.store.load(join(gen, `${e.name}.safetensors`));
      e.tasks.push(...s.tasks);
      for (const [k, v] of Object.entries(s.fid)) e.fid.set(k, v);
      e.scoreStats = s.scoreStats;
      experts.push(e);
    }
    student.store.load(join(gen, 'student.safetensors'));
    rng.setState(state.rng);
    log(`resumed at stage ${state.stage} (${stages[state.stage]?.name ?? 'done'}), ${state.phase} phase, step ${state.progress}`);
  }

  const save = async () => {
    state.rng = rng.getState();
    state.experts = experts.map((e) => ({ id: e.id, tasks: [...e.tasks], fid: Object.fromEntries(e.fid), scoreStats: e.scoreStats }));
    const generation = state.generation + 1;
    const gen = join(ckptDir, String(generation));
    for (const e of experts) e.store.save(join(gen, `${e.name}.safetensors`));
    student.store.save(join(gen, 'student.safetensors'));
    const previous = state.generation;
    state.generation = generation;
    writeFileAtomic(statePath, JSON.stringify(state, null, 2) + '\n'); // the commit point
    rmSync(join(ckptDir, String(previous)), { recursive: true, force: true });
  };

  const expertFor = (t: number) => experts.find((e) => e.id === state.expertOfTask[t]) ?? null;

  for (; state.stage < stages.length; ) {
    const k = state.stage;
    const stage = stages[k]!;
    const name = stage.name;
    // The task slot the stage trains (the last of its tasks); earlier slots are replayed.
    const slot = stage.tasks.at(-1)!;

    // ---- teacher phase, taken from another run
    if (state.phase === 'teacher' && source) {
      const id = source.state.expertOfTask[slot]!;
      const from = source.state.experts.find((x) => x.id === id)!;
      let e = experts.find((x) => x.id === id);
      if (!e) {
        e = await Expert.create(id, cfg.teacher, cfg.seed, runtime);
        e.store.load(join(source.gen, `${e.name}.safetensors`));
        e.scoreStats = from.scoreStats;
        experts.push(e);
      }
      for (const t of stage.tasks) {
        state.expertOfTask[t] = id;
        const n = tasks[t]!.spec.name;
        if (!e.tasks.includes(n)) e.tasks.push(n);
        if (from.fid[n] !== undefined) e.fid.set(n, from.fid[n]!);
      }
      const d = source.state.decisions[k]!;
      state.decisions.push(d);
      metrics({ type: 'decision', stage: k, ...d, from: source.dir });
      log(`teacher for ${name}: ${e.name} of ${source.dir} as it ended (${d.action} there)`);
      state.phase = 'student';
      state.progress = 0;
      await save();
    }

    // ---- teacher phase
    if (state.phase === 'teacher') {
      if (state.expertOfTask[slot] === undefined) {
        const d = await chooseExpert(experts, name, cfg.teacher, judge, `${name}/train`, rng);
        state.decisions.push(d);
        const fids = Object.entries(d.fids).map(([e, f]) => `${e} ${f.toFixed(1)}`).join(', ') || 'no experts yet';
        log(`expert decision for ${name}: ${d.action} -> expert${d.expert} (FID on ${d.samples} samples: ${fids}; threshold ${d.threshold.toFixed(1)})`);
        metrics({ type: 'decision', stage: k, ...d });
        if (d.action === 'new' || d.action === 'first') experts.push(await Expert.create(d.expert, cfg.teacher, cfg.seed, runtime));
        for (const t of stage.tasks) state.expertOfTask[t] = d.expert;
      }
      const e = expertFor(slot)!;
      const held = e.tasks.filter((t) => t !== name);
      const snapshot = held.length ? await Expert.create(1000 + e.id, cfg.teacher, cfg.seed, runtime) : null;
      if (snapshot) for (const [n, t] of e.store.tensors) snapshot.store.tensors.set(n, t);
      const total = cfg.teacher.train.iterations * stage.tasks.length; // joint: the whole sequence's budget in its one stage
      const bar = phaseBar(`stage ${k + 1}/${stages.length} ${name} teacher ${e.name}`, total, process.stderr, state.progress);
      const t0 = performance.now();
      const done = await trainExpert(e, cfg.teacher, {
        iterations: total,
        start: state.progress,
        rng,
        realBatch: (n) => randomStageImages(stage, n, rng, '-1,1').images,
        // Replay of the expert's own earlier tasks, from a snapshot taken before this task.
        replay: snapshot ? { fraction: held.length / (held.length + 1), batch: async (n) => Float32Array.from(await snapshot.sample(n, rng), (v) => v * 2 - 1) } : undefined,
        fidProbe: async () => judge.fid(await e.sample(cfg.teacher.experts.fidSamples, rng), cfg.teacher.experts.fidSamples, `${name}/train`),
        onStep: (l) => {
          bar.tick(l.iteration, { W: l.wasserstein, gp: l.gp, fid: l.fid });
          if (l.fid !== undefined || l.iteration % 10 === 0) metrics({ type: 'teacher', stage: k, task: name, expert: e.id, ...l });
          if (l.fid !== undefined) log(`  ${e.name} on ${name}: iteration ${l.iteration}, FID ${l.fid.toFixed(1)} (${cfg.teacher.experts.fidSamples} samples)`);
        },
        shouldStop: () => stop.requested,
        onCheckpoint: async (it) => {
          state.progress = it;
          await save();
        },
        checkpointEvery: 100,
      });
      bar.end();
      state.progress = done;
      if (done < total) {
        await save();
        log(`stopped: saved at stage ${k + 1} teacher iteration ${done}; continue with --resume`);
        return dir;
      }
      for (const t of stage.tasks.map((i) => tasks[i]!.spec.name)) if (!e.tasks.includes(t)) e.tasks.push(t);
      for (const t of e.tasks) {
        const fid = await judge.fid(await e.sample(cfg.teacher.experts.fidSamples, rng), cfg.teacher.experts.fidSamples, `${t}/train`);
        e.fid.set(t, fid);
      }
      await calibrateCritic(e, rng);
      metrics({ type: 'phase', stage: k, task: name, phase: 'teacher', expert: e.id, seconds: (performance.now() - t0) / 1000, fid: Object.fromEntries(e.fid) });
      state.phase = 'student';
      state.progress = 0;
      await save();
    }

    // ---- student phase
    if (state.phase === 'student') {
      const c = cfg.student;
      const b = c.train.batch;
      const replay: ReplaySource[] = [];
      const earlier = stage.tasks[0]!; // tasks before the stage's first are replayed
      // 'auto': each of the t tasks seen gets 1/t of the batch (van de Ven et al.'s brain-inspired replay).
      const ratio = c.replay.ratio === 'auto' ? earlier / (earlier + 1) : c.replay.ratio;
      if (ratio > 0) {
        for (let t = 0; t < earlier; t++) {
          const e = expertFor(t)!;
          const fid = e.fid.get(tasks[t]!.spec.name) ?? Infinity;
          replay.push({ task: t, expert: e, weight: c.distill.adaptiveWeights ? Math.min(1, c.distill.fidReference / fid) : 1 });
        }
      }
      const realCount = replay.length ? b - Math.round(b * ratio) : b;
      const known = tasks.map((_, t) => (t <= slot ? expertFor(t) : null));
      // The frozen copy: the student as it left the previous stage (taken again on a resume at step 0, where nothing has changed since).
      if (student.anchored && state.progress === 0) student.freeze();
      const temp = new Temperature(c.distill.temperature);
      const total = c.train.steps * stage.tasks.length;
      const bar = phaseBar(`stage ${k + 1}/${stages.length} ${name} student`, total, process.stderr, state.progress);
      const t0 = performance.now();
      // Steps go to onnxruntime in batches of the runner's steps per run (their feeds do not depend
      // on the student, so assembling them ahead changes nothing), cut at checkpoints; the adaptive
      // temperature reads each step's result before the next step's targets, so it goes one by one.
      const perRun = c.distill.temperature.kind === 'adaptive' ? 1 : student.step.stepsPerRun;
      while (state.progress < total && !stop.requested) {
        const n = Math.min(perRun, total - state.progress, 250 - (state.progress % 250));
        const batch: Record<string, Float32Array | number>[] = [];
        const temps: number[] = [];
        for (let i = 0; i < n; i++) {
          temps.push(temp.value((state.progress + i) / total));
          const real = randomStageImages(stage, realCount, rng, '0,1');
          batch.push(await studentFeeds(student, c, {
            real: real.images, realCount, realTasks: cfg.joint ? real.tasks : undefined, currentTask: earlier, replay, experts: known, step: state.progress + i,
          }, temps[i]!, rng));
        }
        const results = await student.step.runSteps(batch);
        student.restoreFrozenPrior(earlier);
        results.forEach((m, i) => {
          temp.observe(m.kd_posterior);
          state.progress++;
          bar.tick(state.progress, { loss: m.loss, rec: m.recon, kl: m.kl, nce: m.infonce, kd: m.kd_posterior, al: m.align, T: temps[i]! });
          if (state.progress % 10 === 0) metrics({ type: 'student', stage: k, task: name, step: state.progress, temperature: temps[i]!, ...m });
        });
        if (state.progress % 250 === 0 && state.progress < total) await save();
      }
      bar.end();
      if (state.progress < total) {
        await save();
        log(`stopped: saved at stage ${k + 1} student step ${state.progress}; continue with --resume`);
        return dir;
      }
      metrics({ type: 'phase', stage: k, task: name, phase: 'student', seconds: (performance.now() - t0) / 1000 });

      // ---- evaluation callback and stage export
      const rows = await evaluateStage(k, slot, tasks, student, expertFor, judge, cfg, rng, dir);
      for (const r of rows) metrics({ type: 'eval', ...r });
      await exportModels(join(dir, 'stages', String(k), 'export'), runId(cfg), tasks, student, experts);
      writeModelArtifacts(join(dir, 'artifacts'), cfg, student, experts);
      await writeCurves(dir);
      await o.onStage?.(k, rows);
      state.stage++;
      state.phase = state.stage < stages.length ? 'teacher' : 'done';
      state.progress = 0;
      await save();
    }
  }
  await exportModels(join(dir, 'export'), runId(cfg), tasks, student, experts);
  pointLatest(cfg.out, dir);
  log(`done: ${dir} (export/ holds the student decoder, encoder and teacher experts)`);
  return dir;
}

/** A finished run to take the teacher from, checked to hold the same tasks and teacher, each expert from one stage. */
function readTeacherSource(cfg: RunConfig, stages: number): { dir: string; state: RunState; gen: string } {
  const dir = resolve(cfg.teacherFrom!);
  const statePath = join(dir, 'checkpoints', 'state.json');
  const configPath = join(dir, 'config.json');
  if (!existsSync(statePath) || !existsSync(configPath)) throw new Error(`teacherFrom: ${dir} is not a run folder (no config.json or checkpoints/state.json); give a finished run of npm run train`);
  const state = JSON.parse(readFileSync(statePath, 'utf8')) as RunState;
  const other = JSON.parse(readFileSync(configPath, 'utf8')) as RunConfig;
  if (state.phase !== 'done') throw new Error(`teacherFrom: the run in ${dir} has not finished (stage ${state.stage}, ${state.phase} phase); finish it with --resume first`);
  if (other.tasks !== cfg.tasks || other.joint !== cfg.joint || other.seed !== cfg.seed) throw new Error(`teacherFrom: ${dir} learned tasks '${other.tasks}'${other.joint ? ' jointly' : ''} with seed ${other.seed}; this run needs '${cfg.tasks}'${cfg.joint ? ' jointly' : ''} with seed ${cfg.seed}`);
  if (canonicalJson(other.teacher) !== canonicalJson(cfg.teacher)) throw new Error(`teacherFrom: ${dir} trained its teacher with another configuration (its config.json's teacher section differs); use the same teacher.* settings`);
  const shared = state.experts.find((e) => e.tasks.length > 1 && stages > 1);
  if (shared) throw new Error(`teacherFrom: ${dir}'s expert${shared.id} learned ${shared.tasks.join(', ')} in several stages, so its final weights are not what the earlier stages' students saw; train the teacher in this run instead`);
  return { dir, state, gen: join(dir, 'checkpoints', String(state.generation)) };
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
  const tmp = join(out, `.latest.${process.pid}`);
  rmSync(tmp, { force: true });
  symlinkSync(resolve(dir), tmp);
  renameSync(tmp, link);
}


