/**
 * A uPlot chart in a resizable box: theme-coloured axes, a selection marker (a DOM ring over the
 * plot, so selecting never redraws the canvas), click-to-pick the nearest point, and a rebuild
 * when the theme or the scales change.
 */
import uPlot from 'uplot';
import { formatNumber, logTicks } from '../../../core/src/analysis/shape';
import { h, setAttr } from '../dom';
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
    new ResizeObserver(() => this.resize()).observe(this.box);
  }

  /** Creates (or re-creates) the plot; `options` without width/height. */
  build(options: Omit<uPlot.Options, 'width' | 'height'>, data: uPlot.AlignedData): void {
    this.plot?.destroy();
    this.width = Math.max(120, Math.floor(this.box.clientWidth) || 400);
    const hooks = options.hooks ?? {};
    const draw = [...(hooks.draw ?? []), () => this.placeMarker()];
    this.plot = new uPlot({ ...options, width: this.width, height: this.height, hooks: { ...hooks, draw } }, data, this.box);
    this.plot.over.append(this.marker);
    this.plot.over.addEventListener('click', (event: MouseEvent) => {
      const rect = this.plot?.over.getBoundingClientRect();
      if (!rect) return;
      this.onPick({ x: event.clientX - rect.left, y: event.clientY - rect.top });
    });
  }

  setData(data: uPlot.AlignedData): void {
    this.plot?.setData(data);
  }

  /** Rings the point (x, y) on the y scale `scaleY`; null hides the ring. */
  mark(at: { x: number; y: number; scaleY?: string } | null): void {
    this.markerAt = at ? { x: at.x, y: at.y, scaleY: at.scaleY ?? 'y' } : null;
    this.placeMarker();
  }

  private placeMarker(): void {
    const plot = this.plot;
    const at = this.markerAt;
    if (!plot || !at || !Number.isFinite(at.x) || !Number.isFinite(at.y)) {
      this.marker.hidden = true;
      return;
    }
    const left = plot.valToPos(at.x, 'x');
    const top = plot.valToPos(at.y, at.scaleY);
    const inside = left >= 0 && top >= 0 && left <= plot.over.clientWidth && top <= plot.over.clientHeight;
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
