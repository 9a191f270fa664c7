/**
 * A uPlot chart in a resizable box: theme-coloured axes, a selection marker (a DOM ring over the
 * plot, so selecting never redraws the canvas), click-to-pick the nearest point, and a rebuild
 * when the theme or the scales change.
 */
import uPlot from 'uplot';
import { formatNumber, logTicks } from '../../../core/src/analysis/shape';
import { h, pixelRatio, setAttr } from '../dom';
import { rgbOf } from '../theme';
import type { Palette } from '../theme';

export interface PickPoint {
  /** CSS px within the plot area. */
  x: number;
  y: number;
}

export function axisOptions(palette: Palette, extra: Partial<uPlot.Axis> = {}): uPlot.Axis {
  return {
    stroke: palette.foreground,
    grid: { stroke: palette.grid, width: 1 },
    ticks: { stroke: palette.grid, width: 1, size: 4 },
    font: `11px ${palette.font}`,
    labelFont: `11px ${palette.font}`,
    ...extra,
  };
}

/** Tick labels for a numeric axis, short. */
export function numberTicks(_u: uPlot, splits: number[]): string[] {
  return splits.map((v) => (v === null || v === undefined ? '' : formatNumber(v)));
}

/** Whole steps, 1-2-5 by decade: a count has no tick between 1 and 2. */
const COUNT_INCRS = Array.from({ length: 9 }, (_, e) => [1, 2, 5].map((k) => k * 10 ** e)).flat();

/**
 * Axis options for an axis that counts (trial ids): ticks on whole numbers only, where uPlot's
 * defaults put them at 0.5 on a short study. `shown` hears the ticks drawn.
 */
export function countAxis(shown?: (ticks: number[]) => void): Partial<uPlot.Axis> {
  return {
    incrs: COUNT_INCRS,
    values: (u: uPlot, splits: number[]) => {
      shown?.(splits);
      return numberTicks(u, splits);
    },
  };
}

/** Axis options for a log scale: decade ticks (1-2-5 within a short range) instead of uPlot's nine per decade. */
export function logAxis(): Partial<uPlot.Axis> {
  return {
    splits: (_u: uPlot, _axis: number, min: number, max: number) => {
      const ticks = logTicks(min, max);
      return ticks.length >= 2 ? ticks : [min, max];
    },
    values: numberTicks,
  };
}

/**
 * A dot's footprint in device pixels: the pixels it covers at all, as offsets from its corner,
 * with their opacity out of 255 (the outline ring opaque, the inside at the fill's opacity).
 */
interface Stamp {
  size: number;
  dx: Int32Array;
  dy: Int32Array;
  alpha: Int32Array;
}

const stamps = new Map<string, Stamp>();

function dotStamp(diameter: number, ratio: number, fillAlpha: number): Stamp {
  const key = `${diameter}|${ratio}|${fillAlpha}`;
  const known = stamps.get(key);
  if (known) return known;
  const r = (diameter / 2) * ratio;
  const inner = Math.max(0, r - ratio);
  const size = Math.ceil(2 * r) + 2;
  const c = size / 2;
  const SUB = 4;
  const dx: number[] = [];
  const dy: number[] = [];
  const alpha: number[] = [];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let inDisc = 0;
      let inInner = 0;
      for (let sy = 0; sy < SUB; sy++) {
        for (let sx = 0; sx < SUB; sx++) {
          const ox = x + (sx + 0.5) / SUB - c;
          const oy = y + (sy + 0.5) / SUB - c;
          const d2 = ox * ox + oy * oy;
          if (d2 <= r * r) inDisc++;
          if (d2 <= inner * inner) inInner++;
        }
      }
      const disc = inDisc / (SUB * SUB);
      const ring = (inDisc - inInner) / (SUB * SUB);
      const a = Math.round((ring + disc * fillAlpha * (1 - ring)) * 255);
      if (a <= 0) continue;
      dx.push(x);
      dy.push(y);
      alpha.push(a);
    }
  }
  const stamp = { size, dx: Int32Array.from(dx), dy: Int32Array.from(dy), alpha: Int32Array.from(alpha) };
  if (stamps.size > 16) stamps.clear();
  stamps.set(key, stamp);
  return stamp;
}

/**
 * The dots' pixels, shared by every chart: one buffer per plot size (the slices share theirs),
 * and one canvas they are put on before being drawn over the chart.
 */
const buffers = new Map<string, ImageData>();
let scratch: OffscreenCanvasRenderingContext2D | null | undefined;

function pixelBuffer(w: number, h: number): ImageData {
  const key = `${w}x${h}`;
  let image = buffers.get(key);
  if (image) new Uint32Array(image.data.buffer).fill(0);
  else {
    if (buffers.size > 8) buffers.clear();
    image = new ImageData(w, h);
    buffers.set(key, image);
  }
  return image;
}

function scratchCanvas(w: number, h: number): OffscreenCanvasRenderingContext2D | null {
  if (scratch === undefined) scratch = new OffscreenCanvas(w, h).getContext('2d');
  if (!scratch) return null;
  const canvas = scratch.canvas;
  if (canvas.width < w || canvas.height < h) {
    canvas.width = Math.max(w, canvas.width);
    canvas.height = Math.max(h, canvas.height);
  }
  return scratch;
}

/**
 * Draws a scatter series in a uPlot draw hook: a dot (outline in `colour`, inside at `fillAlpha`)
 * per (x, y), skipping missing (NaN) values and what lies outside the plot. The dots are
 * composited straight into the alpha of a pixel buffer of the plot's size (one colour, so a pixel
 * is its opacity; integer maths, only the pixels a dot covers are touched) and drawn with one
 * call: a canvas spends microseconds on every arc or stamp, which adds up to a visible stall at
 * 10,000 points, and in a fresh page every pass over every pixel of a plot runs as cold code.
 * Returns how many dots it drew.
 */
export function drawDots(u: uPlot, xs: Float64Array, ys: Float64Array, colour: string, fillAlpha: number, diameter: number): number {
  const { left, top, width, height } = u.bbox;
  const w = Math.max(1, Math.round(width));
  const hgt = Math.max(1, Math.round(height));
  const stamp = dotStamp(diameter, pixelRatio(), fillAlpha);
  const size = stamp.size;
  const half = size / 2;
  const dxs = stamp.dx;
  const dys = stamp.dy;
  const cover = stamp.alpha;
  const count = cover.length;
  // Where each of those pixels lies from the dot's corner in the buffer (for dots wholly inside).
  const offsets = new Int32Array(count);
  for (let j = 0; j < count; j++) offsets[j] = (dys[j] as number) * w + (dxs[j] as number);
  const image = pixelBuffer(w, hgt);
  const px = new Uint32Array(image.data.buffer);
  const [r, g, b] = rgbOf(colour);
  // Little-endian RGBA: the colour in the low bytes, the opacity in the high one.
  const rgb = ((b & 255) << 16) | ((g & 255) << 8) | (r & 255);
  // uPlot's valToPos, inlined for linear and log scales (one call per point adds up).
  const sx = u.scales.x as uPlot.Scale;
  const sy = u.scales.y as uPlot.Scale;
  const logX = sx.distr === 3;
  const logY = sy.distr === 3;
  const x0s = logX ? Math.log10(sx.min as number) : (sx.min as number);
  const x1s = logX ? Math.log10(sx.max as number) : (sx.max as number);
  const y0s = logY ? Math.log10(sy.min as number) : (sy.min as number);
  const y1s = logY ? Math.log10(sy.max as number) : (sy.max as number);
  // Position = value * k + b. The value is first multiplied by a fraction: had a chart with
  // whole-number values (trial ids) run first with a subtraction first, the optimised code
  // would expect whole numbers and be thrown away at the next chart's first fraction.
  const kx = x1s === x0s ? 0 : width / (x1s - x0s);
  const ky = y1s === y0s ? 0 : -height / (y1s - y0s);
  const bx = -x0s * kx;
  const by = height - y0s * ky;
  const maxX = w - size;
  const maxY = hgt - size;
  let drawn = 0;
  for (let i = 0; i < xs.length; i++) {
    const y = ys[i] as number;
    const x = xs[i] as number;
    const pxf = (logX ? Math.log10(x) : x) * kx + bx;
    const pyf = (logY ? Math.log10(y) : y) * ky + by;
    // NaN (a missing value) fails these tests too.
    if (!(pxf >= -half && pxf <= w + half && pyf >= -half && pyf <= hgt + half)) continue;
    const x0 = Math.round(pxf - half);
    const y0 = Math.round(pyf - half);
    if (x0 >= 0 && y0 >= 0 && x0 <= maxX && y0 <= maxY) {
      const base = y0 * w + x0;
      for (let j = 0; j < count; j++) {
        const k = base + (offsets[j] as number);
        const a = cover[j] as number;
        // a over the pixel's opacity: a + old * (255 - a) / 255, rounded.
        const old = (px[k] as number) >>> 24;
        px[k] = ((a + ((old * (255 - a) * 257 + 32896) >>> 16)) << 24) | rgb;
      }
    } else {
      for (let j = 0; j < count; j++) {
        const xx = x0 + (dxs[j] as number);
        const yy = y0 + (dys[j] as number);
        if (xx < 0 || xx >= w || yy < 0 || yy >= hgt) continue;
        const k = yy * w + xx;
        const a = cover[j] as number;
        const old = (px[k] as number) >>> 24;
        px[k] = ((a + ((old * (255 - a) * 257 + 32896) >>> 16)) << 24) | rgb;
      }
    }
    drawn += 1;
  }
  const layer = scratchCanvas(w, hgt);
  if (!layer) return drawn;
  layer.putImageData(image, 0, 0);
  u.ctx.drawImage(layer.canvas, 0, 0, w, hgt, left, top, w, hgt);
  return drawn;
}

export class UChart {
  readonly box: HTMLElement;
  plot: uPlot | undefined;
  private readonly marker = h('div', { class: 'select-marker', hidden: true, 'aria-hidden': 'true' });
  private markerAt: { x: number; y: number; scaleY: string } | null = null;
  private width = 0;

  constructor(
    private readonly height: number,
    label: string,
    private readonly onPick: (at: PickPoint) => void,
  ) {
    this.box = h('div', { class: 'uchart', tabindex: 0, role: 'group', 'aria-label': label });
    // The chart's height from the start, so the page is laid out as it will be once drawn.
    this.box.style.minHeight = `${height}px`;
    new ResizeObserver(() => this.resize()).observe(this.box);
  }

  /** Creates (or re-creates) the plot; `options` without width/height. */
  build(options: Omit<uPlot.Options, 'width' | 'height'>, data: uPlot.AlignedData): void {
    this.plot?.destroy();
    this.width = Math.max(120, this.measured ?? (Math.floor(this.box.clientWidth) || 400));
    const hooks = options.hooks ?? {};
    const draw = [...(hooks.draw ?? []), (u: uPlot) => this.placeMarker(u)];
    // Drawn now, inside the view's render (uPlot would draw in a microtask, after the frame's
    // views, outside their measured cost).
    this.plot = new uPlot({ ...options, width: this.width, height: this.height, hooks: { ...hooks, draw } }, data, (u, init) => {
      this.box.append(u.root);
      u.batch(() => init());
    });
    this.plot.over.append(this.marker);
    this.plot.over.addEventListener('click', (event: MouseEvent) => {
      const rect = this.plot?.over.getBoundingClientRect();
      if (!rect) return;
      this.onPick({ x: event.clientX - rect.left, y: event.clientY - rect.top });
    });
  }

  /**
   * New data, drawn now (uPlot would draw in a microtask, outside the view's measured cost), at
   * the width measured in this frame (one drawing, not one now and another on the resize).
   */
  setData(data: uPlot.AlignedData): void {
    const plot = this.plot;
    if (!plot) return;
    const width = this.measured;
    plot.batch(() => {
      if (width !== undefined && Math.abs(width - this.width) >= 2) {
        this.width = Math.max(120, width);
        plot.setSize({ width: this.width, height: this.height });
      }
      plot.setData(data);
    });
  }

  /** Rings the point (x, y) on the y scale `scaleY`; null hides the ring. */
  mark(at: { x: number; y: number; scaleY?: string } | null): void {
    this.markerAt = at ? { x: at.x, y: at.y, scaleY: at.scaleY ?? 'y' } : null;
    this.placeMarker();
  }

  private placeMarker(plot = this.plot): void {
    const at = this.markerAt;
    if (!plot || !at || !Number.isFinite(at.x) || !Number.isFinite(at.y)) {
      this.marker.hidden = true;
      return;
    }
    const left = plot.valToPos(at.x, 'x');
    const top = plot.valToPos(at.y, at.scaleY);
    const ratio = pixelRatio();
    const inside = left >= 0 && top >= 0 && left <= plot.bbox.width / ratio && top <= plot.bbox.height / ratio;
    this.marker.hidden = !inside;
    this.marker.style.left = `${left}px`;
    this.marker.style.top = `${top}px`;
  }

  /** The index of the nearest of `count` points to a click, within `radius` CSS px. */
  nearest(at: PickPoint, count: number, x: (i: number) => number, y: (i: number) => number, scaleY = 'y', radius = 12): number | undefined {
    const plot = this.plot;
    if (!plot) return undefined;
    let best: number | undefined;
    let bestD = radius * radius;
    for (let i = 0; i < count; i++) {
      const xv = x(i);
      const yv = y(i);
      if (!Number.isFinite(xv) || !Number.isFinite(yv)) continue;
      const dx = plot.valToPos(xv, 'x') - at.x;
      const dy = plot.valToPos(yv, scaleY) - at.y;
      const d = dx * dx + dy * dy;
      if (d <= bestD) {
        bestD = d;
        best = i;
      }
    }
    return best;
  }

  private measured: number | undefined;

  /** Reads the box's width now (the layout read of a frame), for the next build. */
  measure(): void {
    const width = Math.floor(this.box.clientWidth);
    this.measured = width > 0 ? width : undefined;
  }

  count(name: string, value: number | string | null): void {
    setAttr(this.box, `data-${name}`, value === null ? null : String(value));
  }

  private resize(): void {
    const width = Math.floor(this.box.clientWidth);
    if (!this.plot || width <= 0 || Math.abs(width - this.width) < 2) return;
    this.width = width;
    this.plot.setSize({ width, height: this.height });
  }
}
