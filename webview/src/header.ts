/** The panel's header: state, counts, best loss and its parameters, elapsed and time left. */
import { formatDuration, formatNumber } from '../../core/src/analysis/shape';
import { h, setAttr, setText } from './dom';
import type { Model, Topic } from './model';
import type { View } from './scheduler';

const STATE_TEXT: Record<string, string> = { running: 'Running', stopping: 'Stopping', cancelling: 'Cancelling', ended: 'Ended' };
/** The reason each state has when asked for by the user: the state says it already ("Stopping (stopped)"). */
const OWN_REASON: Record<string, string> = { stopping: 'stopped', cancelling: 'cancelled' };

export class HeaderView implements View {
  readonly name = 'header';
  readonly topics: readonly Topic[] = ['status', 'trials', 'tick'];
  readonly element: HTMLElement;
  private readonly title = h('h1', { class: 'title' }, 'Hyperopt trials');
  private readonly subtitle = h('span', { class: 'subtitle' });
  private readonly state = h('span', { class: 'state', role: 'status', 'data-testid': 'state' });
  private readonly counts = h('span', { class: 'counts', 'data-testid': 'counts' });
  private readonly best = h('span', { class: 'best', 'data-testid': 'best' });
  private readonly argmin = h('span', { class: 'argmin', 'data-testid': 'argmin' });
  private readonly elapsed = h('span', { class: 'elapsed', 'data-testid': 'elapsed' });
  private readonly left = h('span', { class: 'time-left', 'data-testid': 'time-left' });

  constructor(private readonly model: Model) {
    const stat = (label: string, value: HTMLElement): HTMLElement => h('div', { class: 'stat' }, h('span', { class: 'stat-label' }, label), value);
    this.element = h(
      'header',
      { class: 'summary', 'aria-label': 'Study summary' },
      h('div', { class: 'heading' }, this.title, this.state, this.subtitle),
      h('div', { class: 'stats' }, stat('Trials', this.counts), stat('Best loss', this.best), stat('Elapsed', this.elapsed), stat('Time left', this.left)),
      this.argmin,
    );
  }

  render(): void {
    const { study, status } = this.model;
    if (!study || !status) return;
    setText(this.title, study.title);
    const sub = [study.algo, study.executors.join(', '), study.source === 'live' ? '' : `from the ${study.source}`].filter(Boolean).join(' · ');
    setText(this.subtitle, sub);
    const reason = status.reason && status.reason !== OWN_REASON[status.state] ? ` (${status.reason.replace(/_/g, ' ')})` : '';
    setText(this.state, `${STATE_TEXT[status.state] ?? status.state}${reason}`);
    setAttr(this.state, 'data-state', status.state);
    setAttr(this.state, 'title', status.message ?? null);

    const c = status.counts;
    const of = study.maxEvals !== null ? ` of ${study.maxEvals}` : '';
    const parts = [`${c.total}${of}`, `${c.ok} ok`];
    if (c.failed) parts.push(`${c.failed} failed`);
    if (c.cancelled) parts.push(`${c.cancelled} cancelled`);
    if (c.running) parts.push(`${c.running} running`);
    if (c.queued) parts.push(`${c.queued} queued`);
    setText(this.counts, parts.join(' · '));

    if (status.best) {
      setText(this.best, `${formatNumber(status.best.loss)} (trial ${status.best.tid})`);
      const store = this.model.store;
      const row = store.row(status.best.tid);
      const args = row === undefined ? '' : store.params.map((c2) => `${c2.axis.label}=${store.paramText(c2, row)}`).filter((t) => !t.endsWith('=')).join(', ');
      setText(this.argmin, args ? `argmin: ${args}` : '');
    } else {
      setText(this.best, '–');
      setText(this.argmin, '');
    }

    const now = this.model.now();
    // An ended study sent without its end time stopped at its last trial's end, not now.
    const end = status.endedAt ?? (status.state === 'ended' ? (this.model.store.lastEnd() ?? status.startedAt) : now);
    setText(this.elapsed, formatDuration(Math.max(0, end - status.startedAt)));
    const deadline = status.settings.deadline;
    if (status.state === 'ended') setText(this.left, '–');
    else if (deadline === null) setText(this.left, 'no timeout');
    else setText(this.left, deadline - now > 0 ? formatDuration(deadline - now) : 'due now');
  }
}
