/**
 * One chart per hyperparameter: its value (x) against the loss (y) for the trials that have a
 * loss. Log-distributed parameters get a log x axis; choices get a categorical axis (one column
 * per option, points spread a little within it so they do not hide each other).
 */
import type uPlot from 'uplot';
import { h } from '../dom';
import type { Model, Topic } from '../model';
import type { RenderContext, View } from '../scheduler';
import { type ParamColumn, Outcome } from '../store';
import type { Selector } from './history';
import { UChart, axisOptions, drawDots, logAxis, numberTicks } from './uplotChart';

/** A fixed spread in [-0.3, 0.3] per trial id, so categorical points keep their place. */
function jitter(tid: number): number {
  const x = Math.imul(tid ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
  return ((x % 1000) / 1000 - 0.5) * 0.6;
}

class SliceChart {
  readonly chart: UChart;
  readonly element: HTMLElement;
  /** The rows drawn (in row order), and their x (axis position, jittered for categories) and y. */
  private rows = new Int32Array(0);
  private xs = new Float64Array(0);
  private ys = new Float64Array(0);
  private logX = false;
  private logY = false;
  private kind = '';
  private categoryCount = -1;

  constructor(
    readonly column: ParamColumn,
    private readonly model: Model,
    private readonly selector: Selector,
  ) {
    const label = column.axis.label;
    this.chart = new UChart(190, `Loss against ${label}`, (at) => this.pick(at));
    this.chart.box.dataset.chart = 'slice';
    this.chart.box.dataset.param = label;
    this.element = h('figure', { class: 'slice' }, h('figcaption', {}, label, h('span', { class: 'dist' }, ` ${column.axis.dist}`)), this.chart.box);
  }

  render(changed: ReadonlySet<Topic>): void {
    if (changed.has('trials') || changed.has('scale') || !this.chart.plot) this.collect();
    const axis = this.column.axis;
    const logX = axis.kind === 'log' && this.positiveX;
    const logY = this.model.logLoss && this.positiveY;
    const categories = axis.kind === 'categorical' ? axis.categories.length : 0;
    const rebuild =
      changed.has('theme') || changed.has('scale') || !this.chart.plot || logX !== this.logX || logY !== this.logY || axis.kind !== this.kind || categories !== this.categoryCount;
    if (rebuild) {
      this.logX = logX;
      this.logY = logY;
      this.kind = axis.kind;
      this.categoryCount = categories;
      this.chart.build(this.options(), this.bounds);
    } else if (changed.has('trials')) {
      this.chart.setData(this.bounds);
    }
    this.chart.count('points', this.xs.length);
    this.chart.count('scale', axis.kind === 'categorical' ? 'categorical' : logX ? 'log' : 'linear');
    this.chart.count('scale-y', logY ? 'log' : 'linear');
    this.chart.count('categories', axis.kind === 'categorical' ? axis.categories.join(',') : null);
    this.markSelection();
  }

  /**
   * The points, in one pass over the store: their rows, x and y, and what the render needs of
   * them (the corners uPlot is given, whether every x and every y is positive).
   */
  private collect(): void {
    const store = this.model.store;
    const values = this.column.values;
    const categorical = this.column.axis.kind === 'categorical';
    const loss = store.loss;
    const outcome = store.outcome;
    const tids = store.tid;
    const size = store.size;
    const rows = new Int32Array(size);
    const xs = new Float64Array(size);
    const ys = new Float64Array(size);
    let n = 0;
    let x0 = Infinity;
    let x1 = -Infinity;
    let y0 = Infinity;
    let y1 = -Infinity;
    for (let row = 0; row < size; row++) {
      if (outcome[row] !== Outcome.Ok) continue;
      const y = loss[row] as number;
      const value = values[row] as number;
      if (!Number.isFinite(y) || !Number.isFinite(value)) continue;
      const x = categorical ? value + jitter(tids[row] as number) : value;
      rows[n] = row;
      xs[n] = x;
      ys[n] = y;
      n += 1;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
    this.rows = rows.subarray(0, n);
    this.xs = xs.subarray(0, n);
    this.ys = ys.subarray(0, n);
    // Every value is finite: all are positive when the smallest is.
    this.positiveX = n > 0 && x0 > 0;
    this.positiveY = n > 0 && y0 > 0;
    this.bounds = n > 0 ? [[x0, x1], [y0, y1]] : [[], []];
  }

  private positiveX = false;
  private positiveY = false;
  /**
   * What uPlot is given in place of the points: the two corners of their bounding box. uPlot's
   * automatic ranges read only the extremes of the data, so its scales come out as they would
   * from every point, while the points themselves are drawn by a draw hook (drawDots) from the
   * chart's own arrays: no sort by x and no pass of uPlot's over thousands of values. One
   * difference: zooming x does not refit y to the points inside the window.
   */
  private bounds: uPlot.AlignedData = [[], []];

  private options(): Omit<uPlot.Options, 'width' | 'height'> {
    const p = this.model.palette;
    const axis = this.column.axis;
    const categorical = axis.kind === 'categorical';
    const categories = axis.categories;
    const xAxis: Partial<uPlot.Axis> = categorical
      ? {
          splits: () => categories.map((_, i) => i),
          values: (_u: uPlot, splits: number[]) => splits.map((s) => categories[s] ?? ''),
          grid: { show: false },
        }
      : this.logX
        ? logAxis()
        : { values: numberTicks };
    return {
      legend: { show: false },
      cursor: { drag: { x: !categorical, y: false, setScale: !categorical }, points: { show: false } },
      scales: {
        x: categorical ? { time: false, range: () => [-0.6, Math.max(0, categories.length - 1) + 0.6] } : { time: false, distr: this.logX ? 3 : 1 },
        y: { distr: this.logY ? 3 : 1 },
      },
      axes: [axisOptions(p, xAxis), axisOptions(p, { ...(this.logY ? logAxis() : { values: numberTicks }), size: 56 })],
      series: [{}, { label: 'loss', stroke: p.ok, paths: () => null, points: { show: false } }],
      hooks: { draw: [(u: uPlot) => void drawDots(u, this.xs, this.ys, p.ok, 0.5, this.xs.length > 3000 ? 3 : 4)] },
    };
  }

  private markSelection(): void {
    const tid = this.model.selectedTid;
    const row = tid === null ? undefined : this.model.store.row(tid);
    this.chart.count('selected-tid', row === undefined ? null : tid);
    if (row === undefined) return this.chart.mark(null);
    const i = this.rows.indexOf(row);
    if (i < 0) return this.chart.mark(null);
    this.chart.mark({ x: this.xs[i] as number, y: this.ys[i] as number });
  }

  private pick(at: { x: number; y: number }): void {
    const i = this.chart.nearest(at, this.xs.length, (k) => this.xs[k] as number, (k) => this.ys[k] as number);
    if (i !== undefined) this.selector.select(this.model.store.tid[this.rows[i] as number] as number);
  }
}

export class SlicesView implements View {
  readonly name = 'slices';
  readonly topics: readonly Topic[] = ['trials', 'selection', 'theme', 'scale'];
  readonly element: HTMLElement;
  private readonly grid = h('div', { class: 'slice-grid' });
  private readonly charts: SliceChart[] = [];

  constructor(
    private readonly model: Model,
    private readonly selector: Selector,
  ) {
    this.element = h(
      'section',
      { class: 'panel wide', id: 'slices', 'aria-labelledby': 'slices-title' },
      h('h2', { id: 'slices-title' }, 'Hyperparameters against loss'),
      this.grid,
    );
  }

  /** One (empty) chart box per hyperparameter, so the page is laid out before anything is drawn. */
  prepare(): void {
    const columns = this.model.store.params;
    // A new study (init) brings new columns: start over.
    if (this.charts.length > columns.length || this.charts.some((c, i) => c.column !== columns[i])) {
      for (const c of this.charts) c.chart.plot?.destroy();
      this.charts.length = 0;
      this.stale.clear();
      this.grid.replaceChildren();
    }
    for (let i = this.charts.length; i < columns.length; i++) {
      const chart = new SliceChart(columns[i] as ParamColumn, this.model, this.selector);
      this.charts.push(chart);
      this.grid.append(chart.element);
    }
    this.grid.dataset.charts = String(this.charts.length);
  }

  measure(): void {
    for (const chart of this.charts) chart.chart.measure();
  }

  render(changed: ReadonlySet<Topic>, context: RenderContext): boolean {
    this.prepare();
    const liveOnly = [...changed].every((t) => t === 'trials' || t === 'continue');
    if (context.force || (context.visible && !liveOnly)) {
      for (const chart of this.charts) chart.render(chart.chart.plot ? new Set([...changed, ...(this.stale.get(chart) ?? [])]) : new Set<Topic>([...changed, 'trials']));
      this.stale.clear();
      return false;
    }
    // New trials alone, or off screen: one chart after another, a few per frame.
    for (const chart of this.charts) {
      const topics = this.stale.get(chart) ?? new Set<Topic>();
      for (const t of changed) if (t !== 'continue') topics.add(t);
      if (!chart.chart.plot) topics.add('trials');
      if (topics.size > 0) this.stale.set(chart, topics);
    }
    const t0 = performance.now();
    for (const [chart, topics] of this.stale) {
      chart.render(topics);
      this.stale.delete(chart);
      if (performance.now() - t0 > 6) break;
    }
    return this.stale.size > 0;
  }

  /** Charts with changes not drawn yet, and which. */
  private readonly stale = new Map<SliceChart, Set<Topic>>();
}
