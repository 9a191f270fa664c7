/**
 * Parallel coordinates over every hyperparameter and the loss, on a canvas. One line per trial
 * with a loss; the best tenth drawn on top in their own colour. Drag along an axis to brush a
 * range (the trials outside every brush fade, and the table keeps only those inside); click an
 * axis to clear its brush; click a line to select its trial.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import { formatNumber } from '../../../core/src/analysis/shape';
import { fitCanvas, h, pixelRatio, setAttr, setText } from '../dom';
import { LOSS_KEY, type Model, type Topic } from '../model';
import type { RenderContext, View } from '../scheduler';
import { Outcome } from '../store';
import { rgbOf, withAlpha } from '../theme';
import type { Selector } from './history';

const HEIGHT = 300;
const PAD = { top: 40, bottom: 24, left: 44, right: 44 };
const AXIS_HIT = 14;
/** Above this many lines the chart is drawn as a density image (see drawDensity). */
const DENSITY_ABOVE = 1_500;

/** A high percentile of the non-zero counts (from a sample of them: an estimate is enough). */
function percentileOfCovered(counts: Float32Array, q: number): number {
  const sample: number[] = [];
  const step = Math.max(1, Math.floor(counts.length / 20_000));
  for (let k = 0; k < counts.length; k += step) {
    const c = counts[k] as number;
    if (c > 0) sample.push(c);
  }
  if (sample.length === 0) return 0;
  sample.sort((a, b) => a - b);
  return sample[Math.min(sample.length - 1, Math.floor(q * sample.length))] as number;
}


/** A drawing of the lines in progress (density mode accumulates over several frames). */
interface Job {
  groups: Uint8Array;
  inside: number;
  next: number;
  ratio: number;
  density: boolean;
  counts: Float32Array[];
  /**
   * Segments between neighbouring axes, binned by their ends (quarter-pixel rows), per group:
   * segments that share both ends are drawn once with their count as weight. Axes with few
   * values (choices, small integers) make most segments share their ends.
   */
  bins: Array<Map<number, number>>;
  /** Bins not yet drawn, as [group, axis, key, weight] in a flat list, and how far drawing got. */
  queue: number[];
  drawn: number;
}

/** Time a drawing in progress may take per frame while trials stream in. */
const SLICE_MS = 6;

interface Axis {
  key: string;
  label: string;
  kind: 'linear' | 'log' | 'categorical';
  categories: string[];
  values: Float64Array;
  lo: number;
  hi: number;
}

export class ParcoordsView implements View {
  readonly name = 'parcoords';
  readonly topics: readonly Topic[] = ['trials', 'selection', 'brush', 'theme', 'scale', 'layout'];
  readonly element: HTMLElement;
  private readonly base = h('canvas', { class: 'pc-base', 'aria-hidden': 'true' });
  private readonly overlay = h('canvas', {
    class: 'pc-overlay',
    tabindex: 0,
    role: 'img',
    'aria-label': 'Parallel coordinates of the hyperparameters and the loss. Drag along an axis to filter trials; Escape clears the filters.',
  });
  private readonly box = h('div', { class: 'pc-box', 'data-chart': 'parcoords' }, this.base, this.overlay);
  private readonly info = h('span', { class: 'pc-info', 'data-testid': 'brush-info' });
  private readonly clear = document.createElement('vscode-button');
  private axes: Axis[] = [];
  /** Rows drawn, and each one's y (CSS px) on each axis, row-major. */
  private rows = new Int32Array(0);
  private ys = new Float32Array(0);
  private width = 0;
  private drag: { axis: number; y0: number; y1: number } | null = null;
  private job: Job | null = null;
  /** Trials arrived while a drawing was in progress: draw again when it is done. */
  private stale = false;

  constructor(
    private readonly model: Model,
    private readonly selector: Selector,
    private readonly invalidate: (...topics: Topic[]) => void,
  ) {
    this.clear.id = 'clear-brushes';
    this.clear.textContent = 'Clear filters';
    this.clear.secondary = true;
    this.clear.addEventListener('click', () => this.clearBrushes());
    this.element = h(
      'section',
      { class: 'panel wide', id: 'parcoords', 'aria-labelledby': 'parcoords-title' },
      h('div', { class: 'panel-head' }, h('h2', { id: 'parcoords-title' }, 'Parallel coordinates'), this.info, this.clear),
      this.box,
    );
    this.overlay.addEventListener('pointerdown', (e) => this.down(e));
    this.overlay.addEventListener('pointermove', (e) => this.move(e));
    this.overlay.addEventListener('pointerup', (e) => this.up(e));
    this.overlay.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' || e.key === 'Delete') {
        e.preventDefault();
        this.clearBrushes();
      }
    });
    new ResizeObserver(() => {
      if (Math.abs(this.box.clientWidth - this.width) >= 2) this.invalidate('layout');
    }).observe(this.box);
  }

  render(changed: ReadonlySet<Topic>, context: RenderContext): boolean {
    const width = Math.max(200, this.measured || 600);
    const now = changed.has('brush') || changed.has('theme') || changed.has('scale') || changed.has('layout') || width !== this.width || this.axes.length === 0;
    this.width = width;
    if (context.force || (now && context.visible)) {
      // Drawn in full, in this frame.
      this.job = this.start();
      this.advance(Infinity);
    } else if (now) {
      // Off screen: start over, drawn over the next frames.
      this.job = this.start();
      this.stale = false;
    } else if (changed.has('trials')) {
      // New trials: redrawn over the next frames (the drawing in progress finishes first).
      if (this.job) this.stale = true;
      else this.job = this.start();
    }
    if (this.job) this.advance(SLICE_MS);
    if (!this.job && this.stale) {
      this.stale = false;
      this.job = this.start();
    }
    this.drawOverlay();
    return this.job !== null;
  }

  private measured = 0;

  measure(): void {
    this.measured = this.box.clientWidth;
  }

  private axisX(i: number): number {
    const n = this.axes.length;
    if (n <= 1) return PAD.left;
    return PAD.left + (i * (this.width - PAD.left - PAD.right)) / (n - 1);
  }

  private layout(): void {
    const store = this.model.store;
    const all = new Int32Array(store.size);
    let count = 0;
    for (let row = 0; row < store.size; row++) {
      if (store.outcome[row] === Outcome.Ok && Number.isFinite(store.loss[row] as number)) all[count++] = row;
    }
    const rows = all.subarray(0, count);
    this.rows = rows;
    const axes: Axis[] = store.params.map((c) => ({
      key: c.axis.label,
      label: c.axis.label,
      kind: c.axis.kind,
      categories: c.axis.categories,
      values: c.values,
      lo: 0,
      hi: 0,
    }));
    axes.push({ key: LOSS_KEY, label: 'loss', kind: this.model.logLoss ? 'log' : 'linear', categories: [], values: store.loss, lo: 0, hi: 0 });
    for (const axis of axes) {
      let lo = Infinity;
      let hi = -Infinity;
      for (const row of rows) {
        const v = axis.values[row] as number;
        if (!Number.isFinite(v)) continue;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      if (axis.kind === 'log' && !(lo > 0)) axis.kind = 'linear';
      if (axis.kind === 'categorical') {
        lo = -0.5;
        hi = Math.max(1, axis.categories.length) - 0.5;
      } else if (!(hi >= lo)) {
        lo = 0;
        hi = 1;
      }
      axis.lo = lo;
      axis.hi = hi;
    }
    this.axes = axes;
    const n = axes.length;
    const ys = new Float32Array(rows.length * n);
    const top = PAD.top;
    const bottom = HEIGHT - PAD.bottom;
    for (let a = 0; a < n; a++) {
      const axis = axes[a] as Axis;
      const values = axis.values;
      // toY, inlined: this loop runs for every trial on every axis.
      const log = axis.kind === 'log';
      const lo = log ? Math.log10(axis.lo) : axis.lo;
      const hi = log ? Math.log10(axis.hi) : axis.hi;
      const scale = hi === lo ? 0 : (bottom - top) / (hi - lo);
      const middle = (top + bottom) / 2;
      for (let r = 0; r < rows.length; r++) {
        const v = values[rows[r] as number] as number;
        let y: number;
        if (!Number.isFinite(v) || (log && !(v > 0))) y = Number.NaN;
        else if (scale === 0) y = middle;
        else y = bottom - ((log ? Math.log10(v) : v) - lo) * scale;
        ys[r * n + a] = y;
      }
    }
    this.ys = ys;
    setAttr(this.box, 'data-axes', n);
  }

  private t(axis: Axis, v: number): number {
    return axis.kind === 'log' ? Math.log10(v) : v;
  }

  /** CSS px from the top of the canvas; NaN when the trial has no value on this axis. */
  private toY(axis: Axis, v: number): number {
    if (!Number.isFinite(v) || (axis.kind === 'log' && !(v > 0))) return Number.NaN;
    const top = PAD.top;
    const bottom = HEIGHT - PAD.bottom;
    const lo = this.t(axis, axis.lo);
    const hi = this.t(axis, axis.hi);
    if (hi === lo) return (top + bottom) / 2;
    return bottom - ((this.t(axis, v) - lo) / (hi - lo)) * (bottom - top);
  }

  private fromY(axis: Axis, y: number): number {
    const top = PAD.top;
    const bottom = HEIGHT - PAD.bottom;
    const lo = this.t(axis, axis.lo);
    const hi = this.t(axis, axis.hi);
    const t = lo + ((bottom - y) / (bottom - top)) * (hi - lo);
    return axis.kind === 'log' ? Math.pow(10, t) : t;
  }

  /** Lays the trials out on the axes and prepares a drawing of them. */
  private start(): Job {
    this.layout();
    const rows = this.rows;
    const mask = this.model.brushMask();
    const store = this.model.store;
    // The best tenth of the trials (by loss) get their own colour.
    const losses = Float64Array.from(rows, (r) => store.loss[r] as number).sort();
    const cut = losses.length > 0 ? (losses[Math.max(0, Math.ceil(losses.length * 0.1) - 1)] as number) : -Infinity;
    // 0: outside the brushes, 1: inside, 2: inside and among the best tenth.
    const groups = new Uint8Array(rows.length);
    let inside = 0;
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r] as number;
      if (mask[row] !== 1) continue;
      inside += 1;
      groups[r] = (store.loss[row] as number) <= cut ? 2 : 1;
    }
    const ratio = pixelRatio();
    const density = rows.length > DENSITY_ABOVE;
    const size = density ? Math.round(this.width * ratio) * Math.round(HEIGHT * ratio) : 0;
    return {
      groups,
      inside,
      next: 0,
      ratio,
      density,
      counts: density ? [new Float32Array(size), new Float32Array(size), new Float32Array(size)] : [],
      bins: density ? Array.from({ length: 3 * Math.max(0, this.axes.length - 1) }, () => new Map<number, number>()) : [],
      queue: [],
      drawn: -1,
    };
  }

  /** Draws more of the job, for about `budgetMs`; at the end, puts the picture on the canvas. */
  private advance(budgetMs: number): void {
    const job = this.job;
    if (!job) return;
    const t0 = performance.now();
    if (job.density) {
      while (job.next < this.rows.length) {
        const end = Math.min(this.rows.length, job.next + 2000);
        this.bin(job, job.next, end);
        job.next = end;
        if (performance.now() - t0 > budgetMs) return;
      }
      if (job.drawn < 0) {
        job.queue = [];
        job.bins.forEach((bins, i) => {
          for (const [key, weight] of bins) job.queue.push(i, key, weight);
        });
        job.drawn = 0;
      }
      while (job.drawn < job.queue.length) {
        const end = Math.min(job.queue.length, job.drawn + 3 * 1000);
        this.rasterize(job, job.drawn, end);
        job.drawn = end;
        if (performance.now() - t0 > budgetMs) return;
      }
    }
    this.finish(job);
    this.job = null;
  }

  private finish(job: Job): void {
    const rows = this.rows;
    const ratio = job.ratio;
    fitCanvas(this.base, this.width, HEIGHT);
    fitCanvas(this.overlay, this.width, HEIGHT);
    const ctx = this.base.getContext('2d');
    if (!ctx) return;
    const p = this.model.palette;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, this.width, HEIGHT);
    const colours: Array<[string, number]> = [
      [p.muted, 0.12],
      [p.ok, rows.length > 2000 ? 0.12 : 0.35],
      [p.best, 0.8],
    ];
    if (!job.density) {
      const paths = [new Path2D(), new Path2D(), new Path2D()];
      for (let r = 0; r < rows.length; r++) this.trace(paths[job.groups[r] as number] as Path2D, r);
      ctx.lineWidth = 1;
      for (let g = 0; g < 3; g++) {
        const [colour, alpha] = colours[g] as [string, number];
        ctx.strokeStyle = withAlpha(colour, alpha);
        ctx.stroke(paths[g] as Path2D);
      }
    } else {
      this.composite(ctx, job, colours);
    }
    this.drawAxes(ctx);
    setAttr(this.box, 'data-lines', rows.length);
    setAttr(this.box, 'data-in-brush', job.inside);
    const brushes = this.model.brushes.size;
    setText(this.info, brushes === 0 ? `${rows.length} trials` : `${job.inside} of ${rows.length} trials inside ${brushes} filter${brushes === 1 ? '' : 's'}`);
    this.clear.disabled = brushes === 0;
  }

  /** Adds trial r's polyline to a path (broken where it has no value). */
  private trace(path: Path2D, r: number): void {
    const n = this.axes.length;
    let pen = false;
    for (let a = 0; a < n; a++) {
      const y = this.ys[r * n + a] as number;
      if (Number.isNaN(y)) {
        pen = false;
        continue;
      }
      const x = this.axisX(a);
      if (pen) path.lineTo(x, y);
      else path.moveTo(x, y);
      pen = true;
    }
  }

  /**
   * Many lines: each group's lines are accumulated into a per-pixel count (a line is a run of
   * anti-aliased steps along its longer direction), and the counts become opacity. Stroking
   * thousands of lines as vector paths costs the canvas seconds; this costs tens of milliseconds
   * (spread over frames while trials stream in), and shows where lines crowd together better
   * than overdrawn strokes do.
   */
  private bin(job: Job, from: number, to: number): void {
    const n = this.axes.length;
    const q = job.ratio * 4;
    for (let r = from; r < to; r++) {
      const g = job.groups[r] as number;
      for (let a = 0; a + 1 < n; a++) {
        const y0 = this.ys[r * n + a] as number;
        const y1 = this.ys[r * n + a + 1] as number;
        if (Number.isNaN(y0) || Number.isNaN(y1)) continue;
        const key = Math.round(y0 * q) * 65536 + Math.round(y1 * q);
        const bins = job.bins[g * (n - 1) + a] as Map<number, number>;
        bins.set(key, (bins.get(key) ?? 0) + 1);
      }
    }
  }

  /** Draws queued bins into the groups' counts: each segment a run of anti-aliased steps. */
  private rasterize(job: Job, from: number, to: number): void {
    const ratio = job.ratio;
    const w = Math.round(this.width * ratio);
    const hgt = Math.round(HEIGHT * ratio);
    const n = this.axes.length;
    const xs = Float32Array.from({ length: n }, (_, a) => this.axisX(a) * ratio);
    // Fixed point (8 fractional bits) keeps the inner loop in integer arithmetic; the ends lie
    // within the axes, so every step lands inside the canvas.
    const maxY = (hgt - 2) * 256;
    for (let i = from; i < to; i += 3) {
      const index = job.queue[i] as number;
      const key = job.queue[i + 1] as number;
      const weight = job.queue[i + 2] as number;
      const g = Math.floor(index / (n - 1));
      const a = index % (n - 1);
      const d = job.counts[g] as Float32Array;
      const y0 = Math.floor(key / 65536) / 4;
      const y1 = (key % 65536) / 4;
      const x0 = xs[a] as number;
      const dx = (xs[a + 1] as number) - x0;
      const dy = y1 - y0;
      const steps = Math.max(1, Math.ceil(Math.max(Math.abs(dx), Math.abs(dy))));
      let x = Math.round(x0 * 256);
      let y = Math.round(y0 * 256);
      const sx = Math.round((dx / steps) * 256);
      const sy = Math.round((dy / steps) * 256);
      for (let s = 0; s <= steps; s++) {
        const yc = y < 0 ? 0 : y > maxY ? maxY : y;
        const k = (yc >> 8) * w + (x >> 8);
        const f = ((yc & 255) / 256) * weight;
        d[k] = (d[k] as number) + weight - f;
        d[k + w] = (d[k + w] as number) + f;
        x += sx;
        y += sy;
      }
    }
  }

  /**
   * Turns the counts into pixels, the three groups in one pass. Opacity grows with the log of a
   * pixel's count, up to a reference count (a high percentile of the covered pixels), so crowded
   * and sparse regions both stay readable; a table of LEVELS steps up to four times the reference
   * makes it a lookup per pixel.
   */
  private composite(ctx: CanvasRenderingContext2D, job: Job, colours: Array<[string, number]>): void {
    const w = Math.round(this.width * job.ratio);
    const hgt = Math.round(HEIGHT * job.ratio);
    const image = ctx.createImageData(w, hgt);
    const out = new Uint32Array(image.data.buffer);
    const LEVELS = 1024;
    const tables: Uint8Array[] = [];
    const scales: number[] = [];
    const rgbs: Array<[number, number, number]> = [];
    for (let g = 0; g < 3; g++) {
      const [colour, alpha] = colours[g] as [string, number];
      rgbs.push(rgbOf(colour));
      const reference = percentileOfCovered(job.counts[g] as Float32Array, 0.98);
      const table = new Uint8Array(LEVELS + 1);
      const span = reference * 4;
      if (reference > 0) {
        const top = g === 0 ? 0.3 : g === 1 ? 0.8 : 0.95;
        const floor = g === 2 ? 0.2 : alpha * 0.5;
        const logRef = Math.log1p(reference);
        for (let i = 1; i <= LEVELS; i++) {
          const c = (i / LEVELS) * span;
          table[i] = Math.round(255 * Math.min(top, floor + (top - floor) * (Math.log1p(c) / logRef)) * Math.min(1, c));
        }
      }
      tables.push(table);
      scales.push(span > 0 ? LEVELS / span : 0);
    }
    const [d0, d1, d2] = job.counts as [Float32Array, Float32Array, Float32Array];
    const [t0, t1, t2] = tables as [Uint8Array, Uint8Array, Uint8Array];
    const [s0, s1, s2] = scales as [number, number, number];
    const [c0, c1, c2] = rgbs as [[number, number, number], [number, number, number], [number, number, number]];
    for (let k = 0; k < out.length; k++) {
      const n0 = d0[k] as number;
      const n1 = d1[k] as number;
      const n2 = d2[k] as number;
      if (n0 <= 0 && n1 <= 0 && n2 <= 0) continue;
      // Painter's order: outside the filters, inside, the best tenth on top.
      let r = 0;
      let g = 0;
      let b = 0;
      let a = 0;
      if (n0 > 0) {
        const x = (t0[Math.min(LEVELS, Math.ceil(n0 * s0))] as number) / 255;
        r = c0[0];
        g = c0[1];
        b = c0[2];
        a = x;
      }
      if (n1 > 0) {
        const x = (t1[Math.min(LEVELS, Math.ceil(n1 * s1))] as number) / 255;
        const o = x + a * (1 - x);
        r = (c1[0] * x + r * a * (1 - x)) / o;
        g = (c1[1] * x + g * a * (1 - x)) / o;
        b = (c1[2] * x + b * a * (1 - x)) / o;
        a = o;
      }
      if (n2 > 0) {
        const x = (t2[Math.min(LEVELS, Math.ceil(n2 * s2))] as number) / 255;
        const o = x + a * (1 - x);
        r = (c2[0] * x + r * a * (1 - x)) / o;
        g = (c2[1] * x + g * a * (1 - x)) / o;
        b = (c2[2] * x + b * a * (1 - x)) / o;
        a = o;
      }
      // Little-endian RGBA.
      out[k] = (((a * 255) & 255) << 24) | ((b & 255) << 16) | ((g & 255) << 8) | (r & 255);
    }
    ctx.putImageData(image, 0, 0);
  }

  private drawAxes(ctx: CanvasRenderingContext2D): void {
    const p = this.model.palette;
    const spacing = this.axes.length > 1 ? this.axisX(1) - this.axisX(0) : this.width;
    const fit = (text: string, room: number): string => {
      if (ctx.measureText(text).width <= room) return text;
      let t = text;
      while (t.length > 1 && ctx.measureText(`${t}…`).width > room) t = t.slice(0, -1);
      return `${t}…`;
    };
    ctx.font = `11px ${p.font}`;
    ctx.lineWidth = 1;
    for (let a = 0; a < this.axes.length; a++) {
      const axis = this.axes[a] as Axis;
      const x = Math.round(this.axisX(a)) + 0.5;
      ctx.strokeStyle = p.foreground;
      ctx.beginPath();
      ctx.moveTo(x, PAD.top);
      ctx.lineTo(x, HEIGHT - PAD.bottom);
      ctx.stroke();
      ctx.textAlign = 'center';
      ctx.textBaseline = 'alphabetic';
      ctx.fillStyle = p.foreground;
      ctx.font = `600 11px ${p.font}`;
      ctx.fillText(fit(axis.label + (axis.kind === 'log' ? ' (log)' : ''), spacing - 8), x, PAD.top - 20);
      ctx.font = `11px ${p.font}`;
      if (axis.kind === 'categorical') {
        ctx.textAlign = 'left';
        ctx.textBaseline = 'middle';
        for (let i = 0; i < axis.categories.length; i++) {
          const text = fit(axis.categories[i] as string, Math.max(30, spacing / 2 - 10));
          const y = this.toY(axis, i);
          const w = ctx.measureText(text).width;
          ctx.fillStyle = withAlpha(p.background, 0.85);
          ctx.fillRect(x + 4, y - 8, w + 6, 16);
          ctx.fillStyle = p.foreground;
          ctx.fillText(text, x + 7, y);
        }
      } else {
        ctx.fillStyle = p.muted;
        ctx.textBaseline = 'alphabetic';
        ctx.fillText(formatNumber(axis.hi), x, PAD.top - 6);
        ctx.textBaseline = 'top';
        ctx.fillText(formatNumber(axis.lo), x, HEIGHT - PAD.bottom + 6);
      }
    }
  }

  private drawOverlay(): void {
    const ctx = this.overlay.getContext('2d');
    if (!ctx) return;
    const ratio = pixelRatio();
    const p = this.model.palette;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, this.width, HEIGHT);
    // Brushes.
    ctx.fillStyle = withAlpha(p.selected, 0.25);
    ctx.strokeStyle = p.selected;
    ctx.lineWidth = 1;
    for (let a = 0; a < this.axes.length; a++) {
      const axis = this.axes[a] as Axis;
      const b = this.model.brushes.get(axis.key);
      let span: [number, number] | undefined;
      if (this.drag && this.drag.axis === a) span = [this.drag.y0, this.drag.y1];
      else if (b) span = [this.clampY(this.toY(axis, b.hi)), this.clampY(this.toY(axis, b.lo))];
      if (!span) continue;
      const x = this.axisX(a);
      const y = Math.min(span[0], span[1]);
      const hgt = Math.max(2, Math.abs(span[1] - span[0]));
      ctx.fillRect(x - 7, y, 14, hgt);
      ctx.strokeRect(x - 7 + 0.5, y + 0.5, 13, hgt - 1);
    }
    // The selected trial.
    const tid = this.model.selectedTid;
    const row = tid === null ? undefined : this.model.store.row(tid);
    const r = row === undefined ? -1 : this.rows.indexOf(row);
    setAttr(this.box, 'data-selected-tid', r >= 0 ? tid : null);
    if (r < 0) return;
    const n = this.axes.length;
    ctx.strokeStyle = p.selected;
    ctx.lineWidth = 3;
    ctx.beginPath();
    let pen = false;
    for (let a = 0; a < n; a++) {
      const y = this.ys[r * n + a] as number;
      if (Number.isNaN(y)) {
        pen = false;
        continue;
      }
      if (pen) ctx.lineTo(this.axisX(a), y);
      else ctx.moveTo(this.axisX(a), y);
      pen = true;
    }
    ctx.stroke();
  }

  private clampY(y: number): number {
    if (Number.isNaN(y)) return PAD.top;
    return Math.min(HEIGHT - PAD.bottom, Math.max(PAD.top, y));
  }

  private point(e: PointerEvent): { x: number; y: number } {
    const rect = this.overlay.getBoundingClientRect();
    return { x: e.clientX - rect.left, y: e.clientY - rect.top };
  }

  private axisAt(x: number): number | undefined {
    for (let a = 0; a < this.axes.length; a++) if (Math.abs(this.axisX(a) - x) <= AXIS_HIT) return a;
    return undefined;
  }

  private down(e: PointerEvent): void {
    const at = this.point(e);
    const axis = this.axisAt(at.x);
    if (axis === undefined) return;
    const y = this.clampY(at.y);
    this.drag = { axis, y0: y, y1: y };
    this.overlay.setPointerCapture(e.pointerId);
    e.preventDefault();
  }

  private move(e: PointerEvent): void {
    if (!this.drag) return;
    this.drag.y1 = this.clampY(this.point(e).y);
    this.drawOverlay();
  }

  private up(e: PointerEvent): void {
    const drag = this.drag;
    this.drag = null;
    const at = this.point(e);
    if (!drag) {
      this.pick(at);
      return;
    }
    const axis = this.axes[drag.axis] as Axis;
    if (Math.abs(drag.y1 - drag.y0) < 3) this.model.brushes.delete(axis.key);
    else {
      const a = this.fromY(axis, drag.y0);
      const b = this.fromY(axis, drag.y1);
      this.model.brushes.set(axis.key, { lo: Math.min(a, b), hi: Math.max(a, b) });
    }
    this.invalidate('brush');
  }

  /** Selects the line nearest to a click between two axes. */
  private pick(at: { x: number; y: number }): void {
    const n = this.axes.length;
    if (n < 2) return;
    let a = 0;
    while (a < n - 2 && this.axisX(a + 1) < at.x) a++;
    const x0 = this.axisX(a);
    const x1 = this.axisX(a + 1);
    const f = Math.min(1, Math.max(0, (at.x - x0) / (x1 - x0)));
    const mask = this.model.brushMask();
    let best = -1;
    let bestD = 6;
    for (let r = 0; r < this.rows.length; r++) {
      const y0 = this.ys[r * n + a] as number;
      const y1 = this.ys[r * n + a + 1] as number;
      if (Number.isNaN(y0) || Number.isNaN(y1)) continue;
      const d = Math.abs(y0 + (y1 - y0) * f - at.y) - (mask[this.rows[r] as number] === 1 ? 1 : 0);
      if (d < bestD) {
        bestD = d;
        best = r;
      }
    }
    if (best >= 0) this.selector.select(this.model.store.tid[this.rows[best] as number] as number);
  }

  private clearBrushes(): void {
    if (this.model.brushes.size === 0) return;
    this.model.brushes.clear();
    this.invalidate('brush');
  }
}
