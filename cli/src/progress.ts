/**
 * The terminal view of a run: the script's own output passes through untouched, trial output
 * gets a "[trial N]" prefix, and one live progress line sits at the bottom on a TTY.
 */
import type { EngineEvent, StudySettings } from '../../core/src/coordinator/events';
import { lossToNumber } from '../../core/src/protocol/common';

interface StudyView {
  id: string;
  maxEvals: number | null;
  priorDone: number;
  done: number;
  failed: number;
  cancelled: number;
  running: number;
  best: number | undefined;
  openedAt: number;
  settings: StudySettings;
  state: string;
  durations: number[];
  reportedDecile: number;
}

export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const two = (n: number): string => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
}

export function formatLoss(loss: number | undefined): string {
  if (loss === undefined) return '-';
  if (!Number.isFinite(loss)) return String(loss);
  return Math.abs(loss) >= 1e4 || (Math.abs(loss) < 1e-3 && loss !== 0) ? loss.toExponential(3) : loss.toPrecision(4);
}

/**
 * Text from journals and the tracking server with its control characters escaped (ESC as \x1b):
 * printed raw, a run name could clear the screen or overwrite the line before it.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- the control characters are what is matched
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export class ProgressView {
  private readonly studies = new Map<string, StudyView>();
  private current: StudyView | undefined;
  private drawn = false;
  private redrawTimer: NodeJS.Timeout | undefined;
  private clock: NodeJS.Timeout | undefined;
  private atLineStart = new Map<string, boolean>();

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly live: boolean,
    private readonly echoTrialOutput = true,
  ) {}

  onEvent(event: EngineEvent): void {
    switch (event.type) {
      case 'study.opened': {
        const view: StudyView = {
          id: event.study.id,
          maxEvals: event.study.maxEvals,
          priorDone: 0,
          done: 0,
          failed: 0,
          cancelled: 0,
          running: 0,
          best: undefined,
          openedAt: Date.now(),
          settings: event.settings,
          state: 'running',
          durations: [],
          reportedDecile: 0,
        };
        this.studies.set(view.id, view);
        this.current = view;
        const site = `${event.study.callSite.file}:${event.study.callSite.line}`;
        this.line(`hyperopt-runner: study ${view.id} ${event.resumed ? 'resumed' : 'started'} (${site}, parallelism ${event.settings.parallelism}, journal ${event.journal})`);
        if (this.live) this.clock ??= setInterval(() => this.redraw(), 1000);
        break;
      }
      case 'trial.started': {
        const view = this.studies.get(event.study);
        if (view) view.running += 1;
        break;
      }
      case 'trial.requeued': {
        const view = this.studies.get(event.study);
        if (view) view.running -= 1;
        this.line(`hyperopt-runner: trial ${event.tid} re-queued (${event.slot}: ${event.reason})`);
        break;
      }
      case 'trial.finished': {
        const view = this.studies.get(event.study);
        if (!view) break;
        if (event.startedAt !== undefined) view.running -= 1;
        if (event.state === 'done') {
          view.done += 1;
          const loss = event.summary?.status === 'ok' ? lossToNumber(event.summary.loss) : undefined;
          if (event.summary?.status !== 'ok') view.failed += 1;
          if (loss !== undefined && !Number.isNaN(loss) && (view.best === undefined || loss < view.best)) view.best = loss;
          if (event.startedAt !== undefined) view.durations.push(event.endedAt - event.startedAt);
        } else if (event.state === 'error') {
          view.done += 1;
          view.failed += 1;
          if (event.error) this.line(`hyperopt-runner: trial ${event.tid} failed: ${event.error.type}: ${event.error.message.split('\n')[0]}`);
        } else view.cancelled += 1;
        if (!this.live && view.maxEvals) {
          const decile = Math.floor((10 * view.done) / view.maxEvals);
          if (decile > view.reportedDecile) {
            view.reportedDecile = decile;
            this.line(this.describe(view));
          }
        }
        break;
      }
      case 'study.settings': {
        const view = this.studies.get(event.study);
        if (view) view.settings = event.settings;
        break;
      }
      case 'study.state': {
        const view = this.studies.get(event.study);
        if (!view) break;
        view.state = event.state;
        if (event.state === 'stopping') this.line(`hyperopt-runner: stopping study ${view.id} (${event.reason}): running trials finish, no new ones start`);
        if (event.state === 'cancelling') this.line(`hyperopt-runner: cancelling study ${view.id} (${event.message ?? event.reason}): running trials are killed`);
        if (event.state === 'ended') {
          this.line(`${this.describe(view)} - ended: ${event.reason}${event.message ? ` (${event.message})` : ''}`);
          if (this.current === view) this.current = undefined;
          if (![...this.studies.values()].some((s) => s.state !== 'ended')) this.stopClock();
        }
        break;
      }
      case 'trial.output':
        if (this.echoTrialOutput) this.prefixed(`[trial ${event.tid}] `, `${event.study}/${event.tid}`, event.text);
        return;
      case 'notice':
        this.line(`hyperopt-runner: ${event.text}`);
        return;
      default:
        break;
    }
    this.scheduleRedraw();
  }

  /** Output of the script itself (to its own stream) or of the runner (to the progress stream). */
  write(text: string, target: NodeJS.WritableStream = this.out): void {
    this.clear();
    target.write(text);
    this.scheduleRedraw();
  }

  line(text: string): void {
    this.write(text.endsWith('\n') ? text : text + '\n');
  }

  dispose(): void {
    this.stopClock();
    clearTimeout(this.redrawTimer);
    this.clear();
  }

  describe(view: StudyView): string {
    const elapsed = Date.now() - view.openedAt;
    const total = view.maxEvals !== null ? `/${view.maxEvals}` : '';
    const parts = [
      `study ${view.id}: ${view.done}${total} done`,
      `${Math.max(0, view.running)} running`,
      `${view.failed} failed`,
      ...(view.cancelled > 0 ? [`${view.cancelled} cancelled`] : []),
      `best loss ${formatLoss(view.best)}`,
      `${formatDuration(elapsed)} elapsed`,
    ];
    const left = this.timeLeft(view);
    if (left !== undefined) parts.push(`${formatDuration(left)} left`);
    return parts.join(' | ');
  }

  private timeLeft(view: StudyView): number | undefined {
    const byDeadline = view.settings.deadline !== null ? view.settings.deadline - Date.now() : undefined;
    let byRate: number | undefined;
    if (view.maxEvals !== null && view.durations.length > 0) {
      const mean = view.durations.reduce((a, b) => a + b, 0) / view.durations.length;
      const remaining = Math.max(0, view.maxEvals - view.done);
      byRate = (remaining * mean) / Math.max(1, view.settings.parallelism);
    }
    if (byDeadline === undefined) return byRate;
    if (byRate === undefined) return byDeadline;
    return Math.min(byDeadline, byRate);
  }

  private prefixed(prefix: string, key: string, text: string): void {
    let lineStart = this.atLineStart.get(key) ?? true;
    let rendered = '';
    for (const piece of text.split(/(?<=\n)/)) {
      if (lineStart) rendered += prefix;
      rendered += piece;
      lineStart = piece.endsWith('\n');
    }
    this.atLineStart.set(key, lineStart);
    if (!lineStart) rendered += '\n';
    this.atLineStart.set(key, true);
    this.write(rendered);
  }

  private scheduleRedraw(): void {
    if (!this.live || this.redrawTimer) return;
    this.redrawTimer = setTimeout(() => {
      this.redrawTimer = undefined;
      this.redraw();
    }, 100);
  }

  private redraw(): void {
    if (!this.live) return;
    const view = this.current;
    if (!view) return this.clear();
    const text = this.describe(view);
    const width = this.out.columns ?? 120;
    this.out.write(`\r\x1b[K${text.length > width - 1 ? text.slice(0, width - 2) + '…' : text}`);
    this.drawn = true;
  }

  private clear(): void {
    if (this.live && this.drawn) {
      this.out.write('\r\x1b[K');
      this.drawn = false;
    }
  }

  private stopClock(): void {
    if (this.clock) clearInterval(this.clock);
    this.clock = undefined;
  }
}
