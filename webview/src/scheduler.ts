/**
 * One animation frame applies everything that arrived since the last one, then redraws the views
 * whose topics changed. Views that only follow the live data (new trials, the clock) are spaced
 * out by their own cost, and within a frame they share a time budget, so a study that streams
 * trials never keeps the page from answering: a view redraws for data alone at most ten times a
 * second, and no more often than every six times its own drawing cost (a view that takes 30 ms,
 * every 180 ms), while a click (selection, brush, theme, layout) redraws it in the next frame.
 * A view may also spread a long drawing over several frames: it returns true to be called again
 * (with the topic 'continue'). Views out of sight wait: the first frame of a study draws what is
 * on screen, the rest follows in the next frames, within the budget.
 */
import type { Topic } from './model';

export interface RenderContext {
  /** Draw everything now, in this frame (the first paint of a study). */
  force: boolean;
  /** The view is on screen (off screen, a view may spread its drawing over frames). */
  visible: boolean;
}

export interface View {
  readonly name: string;
  readonly topics: readonly Topic[];
  /** The view's box: when it is off screen, the view is drawn after those on screen. */
  readonly element?: HTMLElement;
  /**
   * Reads the layout the view needs (sizes) before any view of the frame writes to the page:
   * all reads first, then all writes, so the page is laid out once per frame, not once per view.
   */
  measure?(): void;
  /** Returns true when it has more to draw in a later frame. */
  render(changed: ReadonlySet<Topic>, context: RenderContext): boolean | void;
}

/** Topics that only the live feed changes: their redraws may wait. */
const LIVE: ReadonlySet<Topic> = new Set<Topic>(['trials', 'tick', 'importances', 'status', 'continue']);
/** Live data redraws a view at most this often (ten times a second is plenty to watch a study). */
const LIVE_MIN_INTERVAL_MS = 100;
/** Frame time spent on deferrable redraws before the rest waits for the next frame. */
const FRAME_BUDGET_MS = 10;

interface Slot {
  view: View;
  pending: Set<Topic>;
  lastEnd: number;
  cost: number;
}

export class Scheduler {
  private readonly slots: Slot[] = [];
  private requested = false;
  private readonly before: Array<() => void> = [];
  private readonly after: Array<() => void> = [];
  /** The next frame renders every pending view regardless of the budget (first paint). */
  private forceAll = false;

  add(view: View): void {
    this.slots.push({ view, pending: new Set(view.topics), lastEnd: -Infinity, cost: 0 });
  }

  /** Work that runs at the start of each frame (applying the messages that arrived). */
  onFrameStart(fn: () => void): void {
    this.before.push(fn);
  }

  /** Work that runs after the views of each frame (saving state, paint marks). */
  onFrameEnd(fn: () => void): void {
    this.after.push(fn);
  }

  invalidate(...topics: Topic[]): void {
    for (const slot of this.slots) {
      for (const topic of topics) if (slot.view.topics.includes(topic)) slot.pending.add(topic);
    }
    this.request();
  }

  /** The next frame draws everything that is pending, budget or not. */
  renderAllNextFrame(): void {
    this.forceAll = true;
    this.request();
  }

  request(): void {
    if (this.requested) return;
    this.requested = true;
    requestAnimationFrame(() => this.frame());
  }

  /** Views with pending work (for tests and the benchmark). */
  pendingViews(): string[] {
    return this.slots.filter((s) => s.pending.size > 0).map((s) => s.view.name);
  }

  get idle(): boolean {
    return this.slots.every((s) => s.pending.size === 0);
  }

  /** Which of the views with work to do are on screen (one layout read for all of them). */
  private onScreen(): Set<Slot> {
    const shown = new Set<Slot>();
    const height = window.innerHeight;
    for (const slot of this.slots) {
      if (slot.pending.size === 0) continue;
      const el = slot.view.element;
      if (!el) {
        shown.add(slot);
        continue;
      }
      const r = el.getBoundingClientRect();
      if (r.bottom > 0 && r.top < height && r.width > 0) shown.add(slot);
    }
    for (const slot of this.slots) if (slot.pending.size > 0) slot.view.measure?.();
    return shown;
  }

  private frame(): void {
    // `requested` stays set while the frame runs: what is invalidated meanwhile (the messages
    // applied below, a view that asks for a redraw) is drawn in this frame or requested once at
    // its end, after the frame-end work (so a callback that work queues, such as the paint
    // mark, runs at the very start of the next frame, before any view of that frame draws).
    let more = false;
    try {
      more = this.draw();
    } finally {
      this.requested = false;
      if (more || !this.idle) this.request();
    }
  }

  /** One frame's work; true when some view has more to draw in a later frame. */
  private draw(): boolean {
    for (const fn of this.before) fn();
    const start = performance.now();
    const force = this.forceAll;
    this.forceAll = false;
    const shown = this.onScreen();
    let more = false;
    for (const slot of this.slots) {
      if (slot.pending.size === 0) continue;
      const now = performance.now();
      if (!shown.has(slot) && (force || now - start > FRAME_BUDGET_MS)) {
        more = true;
        continue;
      }
      let urgent = false;
      let onlyContinue = true;
      for (const t of slot.pending) {
        if (!LIVE.has(t)) urgent = true;
        if (t !== 'continue') onlyContinue = false;
      }
      if (!force && !urgent) {
        const wait = onlyContinue ? 0 : Math.min(2_000, Math.max(LIVE_MIN_INTERVAL_MS, slot.cost * 6));
        if (now - slot.lastEnd < wait || now - start > FRAME_BUDGET_MS) {
          more = true;
          continue;
        }
      }
      const changed = slot.pending;
      slot.pending = new Set();
      const t0 = performance.now();
      let again: boolean | void = false;
      try {
        again = slot.view.render(changed, { force, visible: shown.has(slot) });
      } catch (error) {
        console.error(`[trials] the ${slot.view.name} view failed to draw`, error);
      }
      const t1 = performance.now();
      if (!changed.has('continue')) slot.cost = slot.cost === 0 ? t1 - t0 : 0.7 * slot.cost + 0.3 * (t1 - t0);
      slot.lastEnd = t1;
      if (again === true) {
        slot.pending.add('continue');
        more = true;
      }
    }
    for (const fn of this.after) fn();
    return more;
  }
}
