// report.html: one self-contained page (figures inline as SVG, sample grids as data: URIs), so
// it opens from disk and can be mailed around.

import type { FidReport, ForgettingReport, RunInfo } from './run.js';
import type { RenderedFigure } from './plots.js';
import { formatKid, kidDigits } from './score.js';

export interface ReportInput {
  run: RunInfo;
  fid: FidReport;
  forgetting: ForgettingReport;
  figures: RenderedFigure[];
  realGrids: Record<string, string>;
  readImage: (rel: string) => Uint8Array;
  labelerSummary: string;
}

const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const num = (x: number | null | undefined, d: number) => (x === null || x === undefined ? '–' : x.toFixed(d));
const pct = (x: number | null | undefined) => (x === null || x === undefined ? '–' : `${(100 * x).toFixed(1)}%`);

function img(input: ReportInput, rel: string | null | undefined, alt: string): string {
  if (!rel) return '<span class="muted">no samples</span>';
  const b64 = Buffer.from(input.readImage(rel)).toString('base64');
  return `<img class="grid" alt="${esc(alt)}" title="${esc(alt)}" src="data:image/png;base64,${b64}">`;
}

function figure(input: ReportInput, name: string): string {
  const f = input.figures.find((x) => x.name === name);
  if (!f) return '';
  return `<figure><div class="svg">${f.svg}</div><figcaption>${esc(f.title)} (also <code>figures/${esc(f.name)}.png</code>)</figcaption></figure>`;
}

/** The smallest and largest share of one class among a generated set's labels: a set far from balanced teaches the classifier less. */
function classShare(counts: readonly number[] | undefined): string {
  if (!counts?.length) return '–';
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return '–';
  const p = (c: number) => `${((100 * c) / total).toFixed(1)}%`;
  return `${p(Math.min(...counts))}–${p(Math.max(...counts))}`;
}

export function renderReport(input: ReportInput): string {
  const { run, fid, forgetting } = input;
  const modelNames = Object.keys(forgetting.models) as (keyof ForgettingReport['models'])[];
  const rows = fid.results
    .map(
      (r) => `<tr><td>${esc(r.model)}</td><td>${r.stage}</td><td>${esc(r.task)}</td><td class="num">${num(r.fid, 2)}</td><td class="num">${num(r.floor?.fid, 2)}</td>` +
        `<td class="num">${r.n} / ${r.nReal}</td><td class="num">${r.kid ? formatKid(r.kid) : '–'}</td><td class="num">${r.kid ? `${r.kid.subsets}×${r.kid.subsetSize}` : '–'}</td>` +
        `<td class="num">${r.floor ? formatKid(r.floor.kid) : '–'}</td><td class="num">${pct(r.fitting?.accuracy)}</td><td class="num">${classShare(r.fitting?.labelCounts)}</td><td>${esc(r.note ?? '')}</td></tr>`,
    )
    .join('\n');
  const floorRows = Object.entries(fid.floors)
    .map(([task, f]) => `<tr><td>${esc(task)}</td><td class="num">${f.fid.toFixed(2)}</td><td class="num">${formatKid(f.kid)}</td><td class="num">${pct(f.fitting?.accuracy)}</td><td class="num">${pct(f.fittingPseudo?.accuracy)}</td><td class="num">${f.nTrain} train vs ${f.nTest} test</td></tr>`)
    .join('\n');
  const forgetRows = modelNames
    .flatMap((model) =>
      (['fid', 'kid', 'fitting'] as const).map((key) => {
        const m = forgetting.models[model]![key];
        const d = key === 'fid' ? 2 : key === 'kid' ? kidDigits(...m.R.flat().filter((v): v is number => v !== null), 0) : 3;
        const per = forgetting.tasks.map((t, j) => `${esc(t)}: ${num(m.forgetting[j], d)}`).join(', ');
        return `<tr><td>${esc(model)}</td><td>${key}</td><td>${m.direction} is better</td><td class="num">${num(m.averageForgetting, d)}</td><td class="num">${num(m.bwt, d)}</td><td>${per}</td></tr>`;
      }),
    )
    .join('\n');
  const gridTables = modelNames
    .map((model) => {
      const head = `<tr><th></th>${forgetting.tasks.map((t) => `<th>${esc(t)}</th>`).join('')}</tr>`;
      const body = run.stages
        .map((s) => {
          const cells = forgetting.tasks.map((t) => {
            const r = fid.results.find((x) => x.model === model && x.stage === s.index && x.task === t);
            return `<td>${r ? `${img(input, r.grid, `${model} after stage ${s.index}, ${t}`)}<div class="cap">FID ${num(r.fid, 1)} (floor ${num(r.floor?.fid, 1)})</div>` : '<span class="muted">not learned yet</span>'}</td>`;
          });
          return `<tr><th>after stage ${s.index}</th>${cells.join('')}</tr>`;
        })
        .join('\n');
      return `<h3>${esc(model)}</h3><table class="grids">${head}${body}</table>`;
    })
    .join('\n');
  const realRow = `<table class="grids"><tr>${forgetting.tasks.map((t) => `<th>${esc(t)}</th>`).join('')}</tr><tr>${forgetting.tasks.map((t) => `<td>${img(input, input.realGrids[t], `real ${t}`)}</td>`).join('')}</tr></table>`;
  const cfg = run.config ? `<details><summary>config.json</summary><pre>${esc(JSON.stringify(run.config, null, 2))}</pre></details>` : '<p class="muted">No config.json in the run folder.</p>';

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Run ${esc(run.id)}: evaluation</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ddd; padding: 3px 8px; vertical-align: top; }
th { background: #f4f4f4; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.muted { color: #888; }
img.grid { width: 224px; image-rendering: pixelated; display: block; }
.cap { font-size: 12px; color: #555; }
figure { margin: 1em 0; overflow-x: auto; }
figcaption { font-size: 12px; color: #555; }
code, pre { background: #f6f6f6; }
</style></head><body>
<h1>Run ${esc(run.id)}</h1>
<p>Tasks in order: ${forgetting.tasks.map(esc).join(' → ')}; ${run.stages.length} stage(s) evaluated; generated ${fid.samplesPerCell} samples per model, stage and task. Evaluated ${esc(fid.createdAt)}.</p>
<p>FID/KID features: ${esc(fid.featureExtractor.description)} (${fid.featureExtractor.dim} dimensions).<br>
Feature-net classifier (labels generated samples for the fitting capacity, routes multi-task experts): ${esc(input.labelerSummary)}.</p>
${cfg}

<h2>FID and KID</h2>
<p>Each generated set is compared with the task's real test set. The real-vs-real floor is the same metric for a
sample of the task's training images of the same size against the same test set: the best a generator can expect at that sample count.
KID is the unbiased MMD² with the kernel (x·y/d + 1)³, mean ± standard deviation over random subsets.
Fitting capacity (Lesort et al. 2019): accuracy on the real test set of a classifier trained only on ${fid.samplesPerCell} generated samples
(labelled by the feature-net classifier, ${fid.fittingSteps} steps); the floors' fitting capacity is the same classifier trained on
the same number of real training images with their true labels, and with the feature net's labels (as generated sets are
labelled; the ceiling of a generated set's, the labeller's errors included). The class share is
the smallest and largest fraction of one class among the generated set's labels (a balanced set of k classes has 1/k each).</p>
<table><tr><th>model</th><th>stage</th><th>task</th><th>FID</th><th>floor</th><th>n gen / n test</th><th>KID</th><th>KID subsets</th><th>KID floor</th><th>fitting</th><th>class share (min-max)</th><th>note</th></tr>
${rows}</table>
<h3>Real-vs-real floors</h3>
<table><tr><th>task</th><th>FID</th><th>KID</th><th>fitting (true labels)</th><th>fitting (feature-net labels)</th><th>samples</th></tr>${floorRows}</table>
${figure(input, 'fid_by_stage')}

<h2>Forgetting</h2>
<p>${esc(forgetting.definition)}</p>
<table><tr><th>model</th><th>metric</th><th>direction</th><th>average forgetting</th><th>BWT</th><th>forgetting per task</th></tr>${forgetRows}</table>
${figure(input, 'heatmap_fid')}
${figure(input, 'heatmap_kid')}
${figure(input, 'heatmap_fitting')}

<h2>Samples</h2>
<p>The first ${Math.min(64, fid.samplesPerCell)} samples of each evaluated set (also under <code>figures/samples/</code>).</p>
${gridTables}
<h3>Real training images</h3>
${realRow}

<h2>Training curves</h2>
${figure(input, 'training_curves') || '<p class="muted">metrics.jsonl is missing or has no numeric fields.</p>'}
</body></html>
`;
}
