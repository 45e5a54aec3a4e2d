// Figures as vega-lite specifications, rendered in Node to SVG (vega's headless view) and to
// PNG (sharp rasterises the SVG).

import * as vega from 'vega';
import * as vl from 'vega-lite';
import sharp from 'sharp';

export interface Figure {
  /** File stem under figures/, e.g. 'training_curves'. */
  name: string;
  title: string;
  spec: vl.TopLevelSpec;
}

export interface RenderedFigure extends Figure {
  svg: string;
  png: Buffer;
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

export async function renderFigure(fig: Figure, density = 144): Promise<RenderedFigure> {
  const compiled = vl.compile(fig.spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const png = await sharp(Buffer.from(svg), { density }).flatten({ background: '#ffffff' }).png().toBuffer();
  return { ...fig, svg, png };
}

/** One line of metrics.jsonl, as the training driver writes it. */
export interface MetricRecord {
  stage?: number;
  task?: string;
  phase?: string;
  step?: number;
  [key: string]: unknown;
}

/** Fields that index or describe a row rather than measure training. */
const NOT_PLOTTED = new Set(['stage', 'step', 'iteration', 'expert', 'epoch', 'time', 't', 'seconds', 'elapsed', 'wall', 'timestamp', 'lr', 'samples', 'threshold', 'temperature']);
/** Row types of the training driver that are summaries, not training curves. */
const SUMMARY_TYPES = new Set(['phase', 'decision', 'eval']);

/** The curve group of a row: its `type` (as the training driver writes) or `phase`; null for summary rows. */
function groupOf(r: MetricRecord): string | null {
  if (typeof r.type === 'string') return SUMMARY_TYPES.has(r.type) ? null : r.type;
  return typeof r.phase === 'string' ? r.phase : 'train';
}

/** The numeric fields worth plotting, losses first, then the most frequent. */
export function plottedMetrics(records: readonly MetricRecord[], max = 6): string[] {
  const count = new Map<string, number>();
  for (const r of records) {
    for (const [k, v] of Object.entries(r)) if (typeof v === 'number' && Number.isFinite(v) && !NOT_PLOTTED.has(k)) count.set(k, (count.get(k) ?? 0) + 1);
  }
  const lossy = (k: string) => (k === 'loss' ? 0 : k.includes('loss') ? 1 : 2);
  return [...count.entries()]
    .sort((a, b) => lossy(a[0]) - lossy(b[0]) || b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, max)
    .map(([k]) => k);
}

/** Training curves: one panel per group (teacher, student) and metric, one line per stage and task. */
export function trainingCurves(records: readonly MetricRecord[], maxPoints = 300): Figure | null {
  const groups = new Map<string, MetricRecord[]>();
  for (const r of records) {
    const g = groupOf(r);
    if (g === null) continue;
    let list = groups.get(g);
    if (!list) groups.set(g, (list = []));
    list.push(r);
  }
  const values: Record<string, unknown>[] = [];
  const panels: string[] = [];
  for (const group of [...groups.keys()].sort()) {
    const rows = groups.get(group)!;
    const metrics = plottedMetrics(rows);
    const series = new Map<string, { label: string; metric: string; xs: number[]; ys: number[] }>();
    rows.forEach((r, i) => {
      const label = `stage ${r.stage ?? 0}${r.task !== undefined ? ` · ${String(r.task)}` : ''}${r.expert !== undefined ? ` · expert ${String(r.expert)}` : ''}`;
      const x = typeof r.step === 'number' ? r.step : typeof r.iteration === 'number' ? r.iteration : i;
      for (const m of metrics) {
        const v = r[m];
        if (typeof v !== 'number' || !Number.isFinite(v)) continue;
        const key = `${label}|${m}`;
        let s = series.get(key);
        if (!s) series.set(key, (s = { label, metric: m, xs: [], ys: [] }));
        s.xs.push(x);
        s.ys.push(v);
      }
    });
    for (const m of metrics) if ([...series.values()].some((s) => s.metric === m)) panels.push(`${group}: ${m}`);
    for (const s of series.values()) {
      // Long series are averaged over equal bins so that the figure stays small.
      const bin = Math.max(1, Math.ceil(s.xs.length / maxPoints));
      for (let i = 0; i < s.xs.length; i += bin) {
        const end = Math.min(s.xs.length, i + bin);
        let sy = 0;
        for (let k = i; k < end; k++) sy += s.ys[k]!;
        values.push({ panel: `${group}: ${s.metric}`, series: s.label, step: s.xs[end - 1], value: sy / (end - i) });
      }
    }
  }
  if (!values.length) return null;
  return {
    name: 'training_curves',
    title: 'Training curves from metrics.jsonl (one line per stage and task; long series averaged over bins)',
    spec: {
      $schema: SCHEMA,
      data: { values },
      facet: { field: 'panel', type: 'nominal', title: null, sort: panels },
      columns: 3,
      spec: {
        width: 300,
        height: 150,
        mark: { type: 'line', strokeWidth: 1.2, point: false },
        encoding: {
          x: { field: 'step', type: 'quantitative', title: 'step' },
          y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false } },
          color: { field: 'series', type: 'nominal', title: 'stage · task', legend: { labelLimit: 400 } },
        },
      },
      resolve: { scale: { y: 'independent', x: 'independent' } },
    } as vl.TopLevelSpec,
  };
}

export interface MatrixCell {
  model: string;
  stage: number;
  task: string;
  value: number | null;
}

/** A heatmap of R[stage][task] per model (columns), value printed in each cell. */
export function heatmap(name: string, title: string, legend: string, cells: readonly MatrixCell[], direction: 'lower' | 'higher', digits = 1): Figure {
  const values = cells.map((c) => ({ ...c, stageLabel: `after stage ${c.stage}`, label: c.value === null ? '–' : c.value.toFixed(digits) }));
  return {
    name,
    title,
    spec: {
      $schema: SCHEMA,
      data: { values },
      facet: { column: { field: 'model', type: 'nominal', title: null } },
      spec: {
        width: { step: 90 },
        height: { step: 40 },
        encoding: {
          x: { field: 'task', type: 'nominal', title: 'task', sort: null, axis: { labelAngle: 0 } },
          y: { field: 'stageLabel', type: 'ordinal', title: null, sort: null },
        },
        layer: [
          {
            mark: { type: 'rect' },
            encoding: {
              color: {
                field: 'value',
                type: 'quantitative',
                title: `${legend} (${direction} is better)`,
                scale: { scheme: direction === 'lower' ? 'orangered' : 'greens' },
                legend: { titleLimit: 400 },
              },
            },
          },
          { mark: { type: 'text', fontSize: 12 }, encoding: { text: { field: 'label', type: 'nominal' }, color: { value: 'black' } } },
        ],
      },
    } as vl.TopLevelSpec,
  };
}

export interface StagePoint {
  model: string;
  task: string;
  stage: number;
  value: number;
  kind: string;
}

/** A metric over stages, one line per task, one panel per model. */
export function byStage(name: string, title: string, yTitle: string, points: readonly StagePoint[]): Figure {
  return {
    name,
    title,
    spec: {
      $schema: SCHEMA,
      data: { values: points.map((p) => ({ ...p })) },
      facet: { column: { field: 'model', type: 'nominal', title: null } },
      spec: {
        width: 260,
        height: 180,
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'stage', type: 'ordinal', title: 'after stage', axis: { labelAngle: 0 } },
          y: { field: 'value', type: 'quantitative', title: `${yTitle} (symlog scale)`, scale: { type: 'symlog' } },
          color: { field: 'task', type: 'nominal' },
          strokeDash: { field: 'kind', type: 'nominal', title: null },
          shape: { field: 'kind', type: 'nominal', title: null },
        },
      },
    } as vl.TopLevelSpec,
  };
}
