/**
 * When each trial ran, on which slot: one lane per slot (grouped by host), a bar from start to
 * end (to now while running), coloured by outcome. Shows how busy the executors are.
 */
import { formatDuration } from '../../../core/src/analysis/shape';
import { hostOfSlot } from '../../../core/src/protocol/webview';
import { fitCanvas, h, pixelRatio, setAttr } from '../dom';
import type { Model, Topic } from '../model';
import type { View } from '../scheduler';
import { Outcome } from '../store';
import type { Selector } from './history';

const PAD = { top: 8, bottom: 24, left: 96, right: 16 };

export class TimelineView implements View {
  readonly name = 'timeline';
  readonly topics: readonly Topic[] = ['trials', 'selection', 'theme', 'layout', 'tick', 'status'];
  readonly element: HTMLElement;
  private readonly canvas = h('canvas', { class: 'tl-canvas', tabindex: 0, role: 'img', 'aria-label': 'Timeline of trials per slot' });
  private readonly box = h('div', { class: 'tl-box', 'data-chart': 'timeline' }, this.canvas);
  private readonly summary = h('p', { class: 'legend', 'data-testid': 'timeline-summary' });
  private width = 0;
  private height = 0;
  private t0 = 0;
  private t1 = 1;
  private lanes: string[] = [];
  private laneHeight = 16;

  constructor(
    private readonly model: Model,
    private readonly selector: Selector,
    invalidate: (...topics: Topic[]) => void,
  ) {
    this.element = h(
      'section',
      { class: 'panel wide', id: 'timeline', 'aria-labelledby': 'timeline-title' },
      h('h2', { id: 'timeline-title' }, 'Timeline'),
      this.summary,
      this.box,
    );
    this.canvas.addEventListener('click', (e) => this.pick(e));
    new ResizeObserver(() => {
      if (Math.abs(this.box.clientWidth - this.width) >= 2) invalidate('layout');
    }).observe(this.box);
  }

  render(): void {
    const store = this.model.store;
    const p = this.model.palette;
    this.width = Math.max(240, this.measured || 600);
    this.lanes = store.lanes();
    const laneIndex = new Map(this.lanes.map((s, i) => [s, i]));
    this.laneHeight = this.lanes.length === 0 ? 16 : Math.max(6, Math.min(18, Math.floor(320 / this.lanes.length)));
    this.height = PAD.top + PAD.bottom + Math.max(1, this.lanes.length) * this.laneHeight;
    const now = this.model.now();
    const status = this.model.status;
    let t0 = status?.startedAt ?? Infinity;
    let t1 = status?.endedAt ?? (status && status.state !== 'ended' ? now : -Infinity);
    for (let row = 0; row < store.size; row++) {
      const s = store.startedAt[row] as number;
      if (Number.isNaN(s)) continue;
      if (s < t0) t0 = s;
      const e = store.endedAt[row] as number;
      const end = Number.isNaN(e) ? (store.outcome[row] === Outcome.Running ? now : s) : e;
      if (end > t1) t1 = end;
    }
    if (!Number.isFinite(t0) || !(t1 > t0)) {
      t0 = Number.isFinite(t0) ? t0 : now;
      t1 = t0 + 1000;
    }
    this.t0 = t0;
    this.t1 = t1;

    const ratio = pixelRatio();
    fitCanvas(this.canvas, this.width, this.height);
    const ctx = this.canvas.getContext('2d');
    if (!ctx) return;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, this.width, this.height);
    ctx.font = `11px ${p.font}`;

    // Lanes and their labels (the host shown once per group).
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'right';
    let lastHost = '';
    for (let i = 0; i < this.lanes.length; i++) {
      const slot = this.lanes[i] as string;
      const y = PAD.top + i * this.laneHeight;
      if (i % 2 === 1) {
        ctx.fillStyle = p.grid;
        ctx.globalAlpha = 0.35;
        ctx.fillRect(PAD.left, y, this.width - PAD.left - PAD.right, this.laneHeight);
        ctx.globalAlpha = 1;
      }
      if (this.laneHeight >= 10) {
        const host = hostOfSlot(slot);
        ctx.fillStyle = host === lastHost ? p.muted : p.foreground;
        ctx.fillText(slot, PAD.left - 6, y + this.laneHeight / 2);
        lastHost = host;
      }
    }

    // Bars: pixel-aligned rectangles (the cheapest thing a canvas draws), and a lane's bars that
    // touch at this scale merged into one, so 10,000 short trials cost a few hundred rectangles.
    const colours = [p.muted, p.running, p.ok, p.failed, p.cancelled];
    const rects: number[][] = colours.map(() => []);
    const lanes = this.lanes.length;
    const runColour = new Int32Array(lanes).fill(-1);
    const runX0 = new Float64Array(lanes);
    const runX1 = new Float64Array(lanes);
    const barHeight = Math.max(2, this.laneHeight - 2);
    const flush = (lane: number): void => {
      const k = runColour[lane] as number;
      if (k < 0) return;
      const x0 = runX0[lane] as number;
      const x1 = runX1[lane] as number;
      // A pixel between neighbours when there is room, so back-to-back trials stay apart.
      (rects[k] as number[]).push(x0, PAD.top + lane * this.laneHeight + 1, x1 - x0 >= 4 ? x1 - x0 - 1 : x1 - x0);
    };
    let bars = 0;
    const busy = new Float64Array(lanes);
    const laneOfSlot = Int32Array.from(store.slots, (slot) => laneIndex.get(slot) ?? -1);
    for (let row = 0; row < store.size; row++) {
      const s = store.startedAt[row] as number;
      const slot = store.slot[row] as number;
      if (Number.isNaN(s) || slot < 0) continue;
      const lane = laneOfSlot[slot] as number;
      if (lane < 0) continue;
      const k = store.outcome[row] as number;
      const e = store.endedAt[row] as number;
      const end = Number.isNaN(e) ? (k === Outcome.Running ? now : s) : e;
      busy[lane] = (busy[lane] as number) + (end - s);
      bars += 1;
      const x0 = Math.round(this.x(s));
      const x1 = Math.max(x0 + 1, Math.round(this.x(end)));
      // Merge what overlaps at this scale (or is a pixel wide and touches); wider neighbours stay apart.
      const touches = x0 < (runX1[lane] as number) || (x1 - x0 <= 1 && x0 <= (runX1[lane] as number));
      if (runColour[lane] === k && touches && x0 >= (runX0[lane] as number)) {
        if (x1 > (runX1[lane] as number)) runX1[lane] = x1;
        continue;
      }
      flush(lane);
      runColour[lane] = k;
      runX0[lane] = x0;
      runX1[lane] = x1;
    }
    for (let lane = 0; lane < lanes; lane++) flush(lane);
    for (let k = 0; k < colours.length; k++) {
      const list = rects[k] as number[];
      if (list.length === 0) continue;
      ctx.fillStyle = colours[k] as string;
      for (let i = 0; i < list.length; i += 3) ctx.fillRect(list[i] as number, list[i + 1] as number, list[i + 2] as number, barHeight);
    }

    // Time axis.
    ctx.strokeStyle = p.foreground;
    ctx.fillStyle = p.muted;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    const axisY = this.height - PAD.bottom + 0.5;
    ctx.beginPath();
    ctx.moveTo(PAD.left, axisY);
    ctx.lineTo(this.width - PAD.right, axisY);
    ctx.stroke();
    for (const t of ticks(t1 - t0, Math.max(2, Math.floor((this.width - PAD.left - PAD.right) / 90)))) {
      const x = this.x(t0 + t);
      ctx.fillText(t === 0 ? '0' : formatDuration(t), x, axisY + 5);
    }

    // The selected trial.
    const tid = this.model.selectedTid;
    const row = tid === null ? undefined : store.row(tid);
    let shown = false;
    if (row !== undefined) {
      const s = store.startedAt[row] as number;
      const slot = store.slot[row] as number;
      const lane = slot >= 0 ? laneIndex.get(store.slots[slot] as string) : undefined;
      if (!Number.isNaN(s) && lane !== undefined) {
        const e = store.endedAt[row] as number;
        const end = Number.isNaN(e) ? now : e;
        ctx.strokeStyle = p.selected;
        ctx.lineWidth = 2;
        const x0 = this.x(s);
        ctx.strokeRect(x0 - 1, PAD.top + lane * this.laneHeight, Math.max(3, this.x(end) - x0 + 2), this.laneHeight);
        shown = true;
      }
    }
    setAttr(this.box, 'data-bars', bars);
    setAttr(this.box, 'data-lanes', this.lanes.length);
    setAttr(this.box, 'data-selected-tid', shown ? tid : null);
    const span = t1 - t0;
    const use = this.lanes.length > 0 && span > 0 ? busy.reduce((a, b) => a + b, 0) / (span * this.lanes.length) : 0;
    this.summary.textContent = this.lanes.length === 0 ? 'No trial has started yet.' : `${this.lanes.length} slot${this.lanes.length === 1 ? '' : 's'} · busy ${Math.round(use * 100)}% of ${formatDuration(span)}`;
    this.canvas.setAttribute('aria-label', `Timeline of trials per slot: ${this.summary.textContent}`);
  }

  private measured = 0;

  measure(): void {
    this.measured = this.box.clientWidth;
  }

  private x(t: number): number {
    return PAD.left + ((t - this.t0) / (this.t1 - this.t0)) * (this.width - PAD.left - PAD.right);
  }

  private pick(e: MouseEvent): void {
    const rect = this.canvas.getBoundingClientRect();
    const x = e.clientX - rect.left;
    const lane = Math.floor((e.clientY - rect.top - PAD.top) / this.laneHeight);
    const slot = this.lanes[lane];
    if (slot === undefined) return;
    const store = this.model.store;
    const t = this.t0 + ((x - PAD.left) / (this.width - PAD.left - PAD.right)) * (this.t1 - this.t0);
    const slack = (3 / (this.width - PAD.left - PAD.right)) * (this.t1 - this.t0);
    const now = this.model.now();
    for (let row = 0; row < store.size; row++) {
      if (store.slotOf(row) !== slot) continue;
      const s = store.startedAt[row] as number;
      const en = store.endedAt[row] as number;
      const end = Number.isNaN(en) ? now : en;
      if (t >= s - slack && t <= end + slack) {
        this.selector.select(store.tid[row] as number);
        return;
      }
    }
  }
}

/** Round tick offsets (ms) for a span: 1, 2, 5 x 10^k seconds, minutes or hours. */
function ticks(span: number, max: number): number[] {
  const steps = [100, 200, 500, 1e3, 2e3, 5e3, 10e3, 15e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 14400e3, 21600e3, 43200e3, 86400e3];
  const step = steps.find((s) => span / s <= max) ?? span / max;
  const out: number[] = [];
  for (let t = 0; t <= span + 1e-9; t += step) out.push(t);
  return out;
}
