/**
 * Loss per trial (x: trial id), with the best-so-far line. Failed and cancelled trials have no
 * loss: they are marked along the top edge, failed with a cross, cancelled with a triangle.
 */
import uPlot from 'uplot';
import { h, pixelRatio, setText } from '../dom';
import type { Model, Topic } from '../model';
import type { View } from '../scheduler';
import { Outcome } from '../store';
import { UChart, axisOptions, countAxis, drawDots, logAxis, numberTicks } from './uplotChart';

/** Where the marks of trials without a loss sit: CSS px below the top of the plot. */
const FAILED_Y = 7;
const CANCELLED_Y = 18;

export interface Selector {
  select(tid: number | null): void;
}

export class HistoryView implements View {
  readonly name = 'history';
  readonly topics: readonly Topic[] = ['trials', 'selection', 'theme', 'scale'];
  readonly element: HTMLElement;
  private readonly chart: UChart;
  private readonly legend = h('p', { class: 'legend', 'aria-hidden': 'true' });
  private xs = new Float64Array(0);
  private ys: Array<number | null> = [];
  /** The same losses for the dots, NaN where there is none. */
  private yv = new Float64Array(0);
  private failed: number[] = [];
  private cancelled: number[] = [];
  private logY = false;
  /** Whether there is a loss and every loss is positive (a log scale can show them). */
  private allPositive = false;

  constructor(
    private readonly model: Model,
    private readonly selector: Selector,
  ) {
    this.chart = new UChart(260, 'Loss per trial. Arrow keys select the previous or next trial; Escape clears.', (at) => this.pick(at));
    this.chart.box.dataset.chart = 'history';
    this.chart.box.addEventListener('keydown', (event) => this.key(event));
    this.element = h('section', { class: 'panel wide', id: 'history', 'aria-labelledby': 'history-title' }, h('h2', { id: 'history-title' }, 'Loss per trial'), this.legend, this.chart.box);
  }

  measure(): void {
    this.chart.measure();
  }

  render(changed: ReadonlySet<Topic>): void {
    if (changed.has('trials') || changed.has('scale') || !this.chart.plot) this.collect();
    const wantLog = this.model.logLoss && this.allPositive;
    // The chart is rebuilt only when its options change (theme, log scale): a new study's
    // trials, as the rest, are new data for the chart already there.
    if (changed.has('theme') || !this.chart.plot || wantLog !== this.logY) {
      this.logY = wantLog;
      this.chart.build(this.options(), this.data());
    } else if (changed.has('trials') || changed.has('scale')) {
      this.chart.setData(this.data());
    }
    this.markSelection();
  }

  private collect(): void {
    const store = this.model.store;
    const order = store.byTid();
    const n = order.length;
    if (this.xs.length !== n) {
      this.xs = new Float64Array(n);
      this.yv = new Float64Array(n);
    }
    this.ys = new Array<number | null>(n);
    this.failed = [];
    this.cancelled = [];
    let points = 0;
    // The best-so-far line is a staircase: only its corners are kept (a few dozen, not one per trial).
    const stepX: number[] = [];
    const stepY: number[] = [];
    let best = Number.NaN;
    let smallest = Infinity;
    for (let i = 0; i < n; i++) {
      const row = order[i] as number;
      this.xs[i] = store.tid[row] as number;
      const outcome = store.outcome[row];
      const loss = store.loss[row] as number;
      const finite = outcome === Outcome.Ok && Number.isFinite(loss);
      this.ys[i] = finite ? loss : null;
      this.yv[i] = finite ? loss : Number.NaN;
      if (finite) {
        points += 1;
        if (loss < smallest) smallest = loss;
        if (!(loss >= best)) {
          best = loss;
          stepX.push(this.xs[i] as number);
          stepY.push(loss);
        }
      }
      if (outcome === Outcome.Failed) this.failed.push(i);
      else if (outcome === Outcome.Cancelled) this.cancelled.push(i);
    }
    this.allPositive = points > 0 && smallest > 0;
    this.stepX = stepX;
    this.stepY = stepY;
    this.chart.count('points', points);
    this.chart.count('scale-y', this.model.logLoss && this.allPositive ? 'log' : 'linear');
    this.chart.count('failed', this.failed.length);
    this.chart.count('cancelled', this.cancelled.length);
    setText(this.legend, `● ok ${points}   ✕ failed ${this.failed.length}   ▽ cancelled ${this.cancelled.length}   ─ best so far`);
  }

  /** Where the best loss so far drops: trial ids and the new best. */
  private stepX: number[] = [];
  private stepY: number[] = [];

  private data(): uPlot.AlignedData {
    return [this.xs, this.ys];
  }

  private options(): Omit<uPlot.Options, 'width' | 'height'> {
    const p = this.model.palette;
    return {
      legend: { show: false },
      cursor: { drag: { x: true, y: false, setScale: true }, points: { show: false } },
      // The y range takes in the best-so-far line, not only the points in view: zoomed in on
      // later trials (all worse than the best), the line would otherwise run below the axis.
      scales: { x: { time: false }, y: { distr: this.logY ? 3 : 1, range: (u, min, max) => this.rangeY(u, min, max) } },
      axes: [axisOptions(p, { label: 'trial', ...countAxis((ticks) => this.chart.count('x-ticks', ticks.join(' '))) }), axisOptions(p, { label: this.logY ? 'loss (log)' : 'loss', ...(this.logY ? logAxis() : { values: numberTicks }), size: 60 })],
      series: [
        {},
        // The dots are stamped in the draw hook (drawDots): uPlot's own points are arcs, slow by the thousand.
        { label: 'loss', stroke: p.ok, paths: () => null, points: { show: false } },
      ],
      hooks: {
        setScale: [
          (u: uPlot, key: string) => {
            if (key !== 'y') return;
            this.chart.count('y-min', u.scales.y?.min ?? null);
            this.chart.count('y-max', u.scales.y?.max ?? null);
          },
        ],
        draw: [
          (u: uPlot) => {
            drawDots(u, this.xs, this.yv, p.ok, 0.6, this.xs.length > 3000 ? 3.5 : 5);
            this.drawBest(u);
            this.drawMarks(u);
          },
        ],
      },
    };
  }

  private rangeY(u: uPlot, dataMin: number | null, dataMax: number | null): uPlot.Range.MinMax {
    const best = this.bestAt(u.scales.x.max);
    let min = dataMin;
    let max = dataMax;
    if (best !== undefined) {
      min = min === null || best < min ? best : min;
      max = max === null ? best : max;
    }
    if (min === null || max === null) return [min, max];
    return this.logY ? uPlot.rangeLog(min, max, 10, false) : uPlot.rangeNum(min, max, 0.1, true);
  }

  /** The best loss so far at trial id `x` (the staircase's last corner at or before it). */
  private bestAt(x: number | undefined): number | undefined {
    const steps = this.stepX;
    if (steps.length === 0) return undefined;
    if (x === undefined || !Number.isFinite(x)) return this.stepY[steps.length - 1];
    let lo = 0;
    let hi = steps.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((steps[mid] as number) <= x) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? undefined : this.stepY[lo - 1];
  }

  /** The best loss so far: a step down at each trial that improved it, level up to the last trial. */
  private drawBest(u: uPlot): void {
    const n = this.stepX.length;
    if (n === 0) return;
    const ctx = u.ctx;
    const ratio = pixelRatio();
    const { left, top, width, height } = u.bbox;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    ctx.lineWidth = 2 * ratio;
    ctx.strokeStyle = this.model.palette.best;
    ctx.lineJoin = 'round';
    ctx.beginPath();
    let y = u.valToPos(this.stepY[0] as number, 'y', true);
    ctx.moveTo(u.valToPos(this.stepX[0] as number, 'x', true), y);
    for (let k = 1; k < n; k++) {
      const x = u.valToPos(this.stepX[k] as number, 'x', true);
      ctx.lineTo(x, y);
      y = u.valToPos(this.stepY[k] as number, 'y', true);
      ctx.lineTo(x, y);
    }
    ctx.lineTo(u.valToPos(this.xs[this.xs.length - 1] as number, 'x', true), y);
    ctx.stroke();
    ctx.restore();
  }

  /** Crosses (failed) and triangles (cancelled) along the top edge of the plot. */
  private drawMarks(u: uPlot): void {
    const ctx = u.ctx;
    const ratio = pixelRatio();
    const p = this.model.palette;
    const size = 4 * ratio;
    const top = u.bbox.top + FAILED_Y * ratio;
    ctx.save();
    ctx.lineWidth = 1.5 * ratio;
    ctx.strokeStyle = p.failed;
    ctx.beginPath();
    for (const i of this.failed) {
      const x = u.valToPos(this.xs[i] as number, 'x', true);
      ctx.moveTo(x - size, top - size);
      ctx.lineTo(x + size, top + size);
      ctx.moveTo(x + size, top - size);
      ctx.lineTo(x - size, top + size);
    }
    ctx.stroke();
    ctx.strokeStyle = p.cancelled;
    ctx.beginPath();
    const y2 = u.bbox.top + CANCELLED_Y * ratio;
    for (const i of this.cancelled) {
      const x = u.valToPos(this.xs[i] as number, 'x', true);
      ctx.moveTo(x - size, y2 - size);
      ctx.lineTo(x + size, y2 - size);
      ctx.lineTo(x, y2 + size);
      ctx.closePath();
    }
    ctx.stroke();
    ctx.restore();
  }

  private markSelection(): void {
    const tid = this.model.selectedTid;
    this.chart.count('selected-tid', tid);
    if (tid === null) return this.chart.mark(null);
    const i = this.indexOf(tid);
    if (i === undefined) return this.chart.mark(null);
    const y = this.ys[i];
    if (y !== null && y !== undefined) return this.chart.mark({ x: tid, y });
    // No loss: ring its mark on the top edge.
    const plot = this.chart.plot;
    if (!plot) return;
    const failed = this.model.store.outcome[this.model.store.row(tid) ?? -1] === Outcome.Failed;
    const px = failed ? FAILED_Y : CANCELLED_Y;
    this.chart.mark({ x: tid, y: plot.posToVal(px, 'y') });
  }

  private indexOf(tid: number): number | undefined {
    // xs is sorted by tid.
    let lo = 0;
    let hi = this.xs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = this.xs[mid] as number;
      if (v === tid) return mid;
      if (v < tid) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  /** Selects the trial nearest to a click: points by their loss, failed and cancelled by their marks. */
  private pick(at: { x: number; y: number }): void {
    const plot = this.chart.plot;
    if (!plot) return;
    const store = this.model.store;
    let best = -1;
    let bestD = 12 * 12;
    for (let k = 0; k < this.xs.length; k++) {
      const y = this.ys[k];
      let py: number;
      if (y !== null && y !== undefined) py = plot.valToPos(y, 'y');
      else {
        const row = store.row(this.xs[k] as number);
        const o = row === undefined ? -1 : store.outcome[row];
        if (o === Outcome.Failed) py = FAILED_Y;
        else if (o === Outcome.Cancelled) py = CANCELLED_Y;
        else continue;
      }
      const dx = plot.valToPos(this.xs[k] as number, 'x') - at.x;
      const dy = py - at.y;
      const d = dx * dx + dy * dy;
      if (d <= bestD) {
        bestD = d;
        best = k;
      }
    }
    if (best >= 0) this.selector.select(this.xs[best] as number);
  }

  private key(event: KeyboardEvent): void {
    const n = this.xs.length;
    if (n === 0) return;
    const current = this.model.selectedTid === null ? undefined : this.indexOf(this.model.selectedTid);
    let next: number | undefined;
    if (event.key === 'ArrowRight') next = current === undefined ? 0 : Math.min(n - 1, current + 1);
    else if (event.key === 'ArrowLeft') next = current === undefined ? n - 1 : Math.max(0, current - 1);
    else if (event.key === 'Home') next = 0;
    else if (event.key === 'End') next = n - 1;
    else if (event.key === 'Escape') {
      this.selector.select(null);
      event.preventDefault();
      return;
    } else return;
    event.preventDefault();
    this.selector.select(this.xs[next] as number);
  }
}
