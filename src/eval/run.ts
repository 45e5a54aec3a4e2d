// Evaluation of a training run folder:
//   results/<run>/config.json, metrics.jsonl, stages/<k>/export/manifest.json, export/
// For every stage k, model (student, teacher) and task learned by then: samples, FID / KID
// against the task's test set (with the real-vs-real floor), fitting capacity; then the
// matrices R[stage][task], forgetting and BWT, figures and report.html.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { Rng } from '../util/rng.js';
import { writeFileAtomic } from '../util/fs.js';
import { parseSequence, parseTask, type EnsureOptions } from '../data/index.js';
import type { KidResult } from './fid.js';
import type { FeatureExtractor } from './features.js';
import { describeAccuracy, loadFeatureExtractor, type FeatureNetOptions, type LeNetExtractor } from './featnet.js';
import { ExportSampler, type ModelKind } from './generate.js';
import { forgetting, type Direction, type ForgettingSummary, type Matrix } from './forgetting.js';
import { DEFAULT_FIT_STEPS, type FittingResult } from './fitting.js';
import { gridPng } from './images.js';
import { byStage, heatmap, renderFigure, trainingCurves, type Figure, type MatrixCell, type MetricRecord, type RenderedFigure, type StagePoint } from './plots.js';
import type { Floor } from './reference.js';
import { Scorer, formatKid, formatScore, kidDigits, type Score, type ScoreOptions } from './score.js';
import { subsample } from './reference.js';
import { renderReport } from './report.js';

export interface RunStage {
  index: number;
  dir: string;
}

export interface RunInfo {
  dir: string;
  id: string;
  config: Record<string, unknown> | null;
  tasks: string[];
  stages: RunStage[];
  /** Stage that learned each task (tasks[j] at stage learnedAt[j]). */
  learnedAt: number[];
  metrics: MetricRecord[];
  /** Lines of metrics.jsonl that were not JSON objects. */
  badMetricLines: number;
  finalExport: string | null;
}

/** Reads a run folder's layout; throws a clear error when there is nothing to evaluate. */
export function readRun(dir: string): RunInfo {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`run folder ${dir} does not exist (expected results/<run-id> as written by npm run train)`);
  const configPath = join(dir, 'config.json');
  let config: Record<string, unknown> | null = null;
  if (existsSync(configPath)) {
    try {
      config = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new Error(`${configPath} is not valid JSON: ${(err as Error).message}`);
    }
  }
  const stagesDir = join(dir, 'stages');
  const finalExport = existsSync(join(dir, 'export', 'manifest.json')) ? join(dir, 'export') : null;
  const found = existsSync(stagesDir)
    ? readdirSync(stagesDir)
        .filter((d) => /^\d+$/.test(d))
        .map(Number)
        .sort((a, b) => a - b)
    : [];
  const stages = found.filter((k) => existsSync(join(stagesDir, String(k), 'export', 'manifest.json'))).map((k) => ({ index: k, dir: join(stagesDir, String(k), 'export') }));
  if (!stages.length) {
    throw new Error(
      `run folder ${dir} has no stages/<k>/export/manifest.json: the evaluation needs the models saved at the end of each stage ` +
        `(the training driver writes them when a stage ends)${finalExport ? `; it only has the final models in ${finalExport}` : ''}. ` +
        `Was training stopped before the end of stage 0? To score any images, use --samples DIR --task TASK.`,
    );
  }
  stages.forEach((s, i) => {
    if (s.index !== i) throw new Error(`run folder ${dir}: stage ${i} is missing (stages found: ${stages.map((x) => x.index).join(', ')}); stages/<k>/export/manifest.json must exist for k = 0, 1, ...`);
  });
  const manifestTasks = (d: string): string[] => (JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8')) as { tasks?: { name: string }[] }).tasks?.map((t) => t.name) ?? [];
  // config.tasks: a list of task names, or a sequence spec as `npm run train --tasks` takes it.
  const configTasks =
    Array.isArray(config?.tasks) && config.tasks.every((t) => typeof t === 'string')
      ? (config.tasks as string[]).map((t) => parseTask(t).name)
      : typeof config?.tasks === 'string'
        ? parseSequence(config.tasks).map((t) => t.name)
        : null;
  const tasks = configTasks ?? [...new Set(stages.flatMap((s) => manifestTasks(s.dir)))];
  if (!tasks.length) throw new Error(`run folder ${dir}: no tasks in config.json or in the stage manifests`);
  for (const t of tasks) parseTask(t);
  // Stage j learned task j when the config lists the tasks; otherwise a task counts as learned
  // at the first stage whose models know it.
  // A joint run (config.joint) learns every task in its one stage.
  const learnedAt = tasks.map((t, j) => (config?.joint === true ? 0 : configTasks && stages.length <= tasks.length ? j : stages.findIndex((s) => manifestTasks(s.dir).includes(t))));
  const metrics: MetricRecord[] = [];
  let badMetricLines = 0;
  const metricsPath = join(dir, 'metrics.jsonl');
  if (existsSync(metricsPath)) {
    for (const line of readFileSync(metricsPath, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        const v = JSON.parse(line) as unknown;
        if (v && typeof v === 'object' && !Array.isArray(v)) metrics.push(v as MetricRecord);
        else badMetricLines++;
      } catch {
        badMetricLines++;
      }
    }
  }
  return { dir, id: basename(resolve(dir)), config, tasks, stages, learnedAt, metrics, badMetricLines, finalExport };
}

export interface RunEvalOptions extends ScoreOptions {
  /** Generated samples per (stage, model, task); default 2000. */
  n?: number;
  /** Samples in each grid figure (default 64). */
  gridSamples?: number;
  /** Output folder (default: the run folder). */
  out?: string;
  /** An external feature extractor for FID / KID (the LeNet still labels samples). */
  features?: FeatureExtractor;
  /** Options for the LeNet feature net (cache, training budget). */
  featureNet?: FeatureNetOptions;
  /** An already loaded LeNet (skips loadFeatureExtractor). */
  labeler?: LeNetExtractor;
  data?: EnsureOptions;
  log?: (line: string) => void;
}

export interface CellResult extends Score {
  model: ModelKind;
  stage: number;
  /** The sample grid, relative to the output folder. */
  grid: string | null;
}

export interface MetricMatrix extends ForgettingSummary {
  R: Matrix;
}

export interface FidReport {
  format: 'lifelong-gen-fid/1';
  run: string;
  createdAt: string;
  featureExtractor: { name: string; dim: number; description: string };
  labeler: { description: string; testAccuracy: LeNetExtractor['info']['testAccuracy'] };
  samplesPerCell: number;
  kid: { subsets: number; subsetSizeMax: number };
  fittingSteps: number;
  floors: Record<string, Floor>;
  results: CellResult[];
}

export interface ForgettingReport {
  format: 'lifelong-gen-forgetting/1';
  run: string;
  tasks: string[];
  stages: number;
  learnedAt: number[];
  definition: string;
  models: Partial<Record<ModelKind, Record<'fid' | 'kid' | 'fitting', MetricMatrix>>>;
}

export interface RunEvaluation {
  run: RunInfo;
  fid: FidReport;
  forgetting: ForgettingReport;
  outDir: string;
  files: string[];
}

const METRICS: { key: 'fid' | 'kid' | 'fitting'; direction: Direction; title: string; legend: string; digits: number; value: (c: CellResult) => number | null }[] = [
  { key: 'fid', direction: 'lower', title: 'FID', legend: 'FID', digits: 1, value: (c) => c.fid },
  { key: 'kid', direction: 'lower', title: 'KID', legend: 'KID', digits: 3, value: (c) => c.kid?.mean ?? null },
  { key: 'fitting', direction: 'higher', title: 'Fitting capacity', legend: 'accuracy', digits: 2, value: (c) => c.fitting?.accuracy ?? null },
];

export const FORGETTING_DEFINITION =
  'R[stage][task] is the metric for task with the models saved at the end of stage. Forgetting of a task = its value right after the stage that learned it minus its value after the last stage, ' +
  'sign-adjusted so that positive means worse (FID, KID: final - initial; fitting capacity: initial - final). Average forgetting is the mean over the tasks learned before the last stage; BWT = -average forgetting (Avalanche).';

/** The checksums of an export folder's models, to tell whether two folders hold the same ones. */
function modelHashes(dir: string): string {
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { student?: { decoder?: { sha256?: string } }; teacher?: { experts?: { sha256?: string }[] } };
  return [m.student?.decoder?.sha256, ...(m.teacher?.experts ?? []).map((e) => e.sha256)].join(',');
}

const slug = (s: string) => s.replace(/[^A-Za-z0-9-]+/g, '_');

export async function evaluateRun(dir: string, opts: RunEvalOptions = {}): Promise<RunEvaluation> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const run = readRun(dir);
  const outDir = opts.out ?? dir;
  const n = opts.n ?? 2000;
  const seed = opts.seed ?? 0;
  const started = performance.now();
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)} s`;
  log(`eval: run ${run.id}: ${run.stages.length} stage(s), tasks ${run.tasks.join(', ')}; ${n} samples per model, stage and task`);
  if (run.badMetricLines) log(`eval: skipped ${run.badMetricLines} line(s) of metrics.jsonl that are not JSON objects`);
  if (run.finalExport && modelHashes(run.finalExport) !== modelHashes(run.stages.at(-1)!.dir)) {
    log(`eval: note: ${run.finalExport} holds other models than the last stage (${run.stages.at(-1)!.dir}); the matrices use the stages`);
  }

  const labeler = opts.labeler ?? (await loadFeatureExtractor({ log, threads: opts.threads, device: opts.device, dataRoot: opts.data?.root, offline: opts.data?.offline, ...opts.featureNet }));
  const fx = opts.features ?? labeler;
  if (opts.features) log(`eval: FID/KID features from ${fx.description}`);
  const scorer = new Scorer(fx, labeler, opts, opts.data ?? {});

  const floors: Record<string, Floor> = {};
  for (const task of run.tasks) {
    const ref = await scorer.reference(task);
    const floor = await scorer.floor(task, Math.min(n, ref.train.n));
    floors[task] = floor;
    const pseudo = floor.fittingPseudo ? ` (${(100 * floor.fittingPseudo.accuracy).toFixed(1)}% with the feature net's labels, as generated sets are labelled)` : '';
    const fit = floor.fitting ? `, fitting capacity of the real images ${(100 * floor.fitting.accuracy).toFixed(1)}%${pseudo} at ${floor.fitting.steps} classifier steps` : '';
    log(`eval: ${task}: real-vs-real floor FID ${floor.fid.toFixed(2)}, KID ${formatKid(floor.kid)}${fit} (${floor.nTrain} train vs ${floor.nTest} test images) [${elapsed()}]`);
  }

  const files: string[] = [];
  const write = (rel: string, data: Uint8Array | string) => {
    writeFileAtomic(join(outDir, rel), data);
    files.push(rel);
  };
  const gridCount = opts.gridSamples ?? 64;
  const realGrids: Record<string, string> = {};
  for (const task of run.tasks) {
    const ref = await scorer.reference(task);
    const s = subsample(ref.train, gridCount, seed);
    const rel = `figures/samples/real_${slug(task)}.png`;
    write(rel, await gridPng(s.images, s.n, { cols: 8 }));
    realGrids[task] = rel;
  }

  const results: CellResult[] = [];
  const models = new Set<ModelKind>();
  for (const stage of run.stages) {
    const sampler = ExportSampler.open(stage.dir, { threads: opts.threads, device: opts.device });
    try {
      for (const model of sampler.models()) {
        models.add(model);
        for (const [j, task] of run.tasks.entries()) {
          if (run.learnedAt[j]! > stage.index || run.learnedAt[j]! < 0) continue;
          if (!sampler.canSample(model, task)) {
            log(`eval: stage ${stage.index} ${model} has no generator for ${task}; leaving it out`);
            continue;
          }
          const t0 = performance.now();
          const rng = new Rng(Rng.derive(seed, 'samples', model, stage.index, task));
          const gen = await sampler.sample(model, task, n, rng, labeler);
          const score = await scorer.score(task, gen.images, gen.n, gen.note);
          let grid: string | null = null;
          if (gen.n > 0) {
            grid = `figures/samples/${model}_stage${stage.index}_${slug(task)}.png`;
            write(grid, await gridPng(gen.images, Math.min(gridCount, gen.n), { cols: 8 }));
          }
          results.push({ ...score, model, stage: stage.index, grid });
          log(`eval: stage ${stage.index} ${model} ${task}: ${formatScore(score)} [${((performance.now() - t0) / 1000).toFixed(1)} s, ${elapsed()}]`);
        }
      }
    } finally {
      await sampler.close();
    }
  }

  const modelList = (['student', 'teacher'] as const).filter((m) => models.has(m));
  const forgettingReport: ForgettingReport = {
    format: 'lifelong-gen-forgetting/1',
    run: run.id,
    tasks: run.tasks,
    stages: run.stages.length,
    learnedAt: run.learnedAt,
    definition: FORGETTING_DEFINITION,
    models: {},
  };
  for (const model of modelList) {
    const entry = {} as Record<'fid' | 'kid' | 'fitting', MetricMatrix>;
    for (const m of METRICS) {
      const R: Matrix = run.stages.map((s) =>
        run.tasks.map((task) => {
          const c = results.find((r) => r.model === model && r.stage === s.index && r.task === task);
          return c ? m.value(c) : null;
        }),
      );
      entry[m.key] = { R, ...forgetting(R, m.direction, run.learnedAt) };
    }
    forgettingReport.models[model] = entry;
  }

  const fidReport: FidReport = {
    format: 'lifelong-gen-fid/1',
    run: run.id,
    createdAt: new Date().toISOString(),
    featureExtractor: { name: fx.name, dim: fx.dim, description: fx.description },
    labeler: { description: labeler.description, testAccuracy: labeler.info.testAccuracy },
    samplesPerCell: n,
    kid: { subsets: opts.kidSubsets ?? 10, subsetSizeMax: opts.kidSubsetSize ?? 1000 },
    fittingSteps: opts.fitSteps ?? DEFAULT_FIT_STEPS,
    floors,
    results,
  };
  write('fid.json', JSON.stringify(fidReport, null, 2) + '\n');
  write('forgetting.json', JSON.stringify(forgettingReport, null, 2) + '\n');

  log(`eval: rendering figures [${elapsed()}]`);
  const figs: Figure[] = [];
  const curves = trainingCurves(run.metrics);
  if (curves) figs.push(curves);
  for (const m of METRICS) {
    if (m.key === 'fitting' && !results.some((r) => r.fitting)) continue;
    const cells: MatrixCell[] = [];
    for (const model of modelList) {
      const R = forgettingReport.models[model]![m.key].R;
      run.stages.forEach((s, k) => run.tasks.forEach((task, j) => cells.push({ model, stage: s.index, task, value: R[k]![j]! })));
    }
    const digits = m.key === 'kid' ? kidDigits(...cells.map((c) => c.value ?? 0)) : m.digits;
    figs.push(heatmap(`heatmap_${m.key}`, `${m.title}: R[stage][task] per model`, m.legend, cells, m.direction, digits));
  }
  const points: StagePoint[] = [];
  for (const r of results) if (r.fid !== null) points.push({ model: r.model, task: r.task, stage: r.stage, value: r.fid, kind: 'generated' });
  for (const model of modelList) {
    for (const [task, f] of Object.entries(floors)) for (const s of run.stages) if (run.learnedAt[run.tasks.indexOf(task)]! <= s.index) points.push({ model, task, stage: s.index, value: f.fid, kind: 'real-vs-real floor' });
  }
  if (points.length) figs.push(byStage('fid_by_stage', 'FID after each stage', 'FID', points));
  const rendered: RenderedFigure[] = [];
  for (const f of figs) {
    const r = await renderFigure(f);
    write(`figures/${f.name}.png`, r.png);
    rendered.push(r);
  }

  const readImage = (rel: string) => readFileSync(join(outDir, rel));
  const html = renderReport({ run, fid: fidReport, forgetting: forgettingReport, figures: rendered, realGrids, readImage, labelerSummary: describeAccuracy(labeler.info) });
  write('report.html', html);
  log(`eval: wrote ${join(outDir, 'report.html')}, fid.json, forgetting.json and ${files.filter((f) => f.endsWith('.png')).length} PNG figures [${elapsed()}]`);
  if (!opts.labeler) await labeler.close();
  return { run, fid: fidReport, forgetting: forgettingReport, outDir, files };
}

export type { KidResult, FittingResult };
