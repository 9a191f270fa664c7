/** The selected trial: its details and the actions on it (logs, MLflow run). */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import { formatDuration, formatNumber } from '../../core/src/analysis/shape';
import { h, setAttr, setText } from './dom';
import type { Model, Topic } from './model';
import type { View } from './scheduler';

export interface SelectionActions {
  openLogs(tid: number): void;
  openRun(tid: number): void;
  clear(): void;
}

export class SelectionView implements View {
  readonly name = 'selection';
  readonly topics: readonly Topic[] = ['selection', 'trials', 'capabilities'];
  readonly element: HTMLElement;
  private readonly summary = h('span', { class: 'selection-summary', 'data-testid': 'selection-summary' });
  private readonly params = h('span', { class: 'selection-params' });
  private readonly note = h('span', { class: 'selection-note' });
  private readonly reasons = h('span', { class: 'reason', 'data-testid': 'selection-reasons' });
  private readonly logs = document.createElement('vscode-button');
  private readonly run = document.createElement('vscode-button');
  private readonly clear = document.createElement('vscode-button');

  constructor(
    private readonly model: Model,
    actions: SelectionActions,
  ) {
    this.logs.id = 'open-logs';
    this.logs.textContent = 'Open logs';
    this.run.id = 'open-run';
    this.run.textContent = 'Open MLflow run';
    this.run.secondary = true;
    this.clear.id = 'clear-selection';
    this.clear.textContent = 'Clear selection';
    this.clear.secondary = true;
    this.logs.addEventListener('click', () => this.model.selectedTid !== null && actions.openLogs(this.model.selectedTid));
    this.run.addEventListener('click', () => this.model.selectedTid !== null && actions.openRun(this.model.selectedTid));
    this.clear.addEventListener('click', () => actions.clear());
    this.element = h(
      'section',
      { class: 'selection', 'aria-label': 'Selected trial', hidden: true },
      h('div', { class: 'selection-text' }, this.summary, this.params, this.note),
      h('div', { class: 'selection-actions' }, this.logs, this.run, this.clear, this.reasons),
    );
  }

  render(): void {
    const tid = this.model.selectedTid;
    const store = this.model.store;
    const row = tid === null ? undefined : store.row(tid);
    this.element.hidden = row === undefined;
    setAttr(this.element, 'data-tid', row === undefined ? null : tid);
    if (row === undefined || tid === null) return;
    const outcome = store.outcomeOf(row);
    const loss = store.loss[row] as number;
    const bits = [`Trial ${tid}`, outcome];
    if (!Number.isNaN(loss)) bits.push(`loss ${formatNumber(loss)}`);
    const slot = store.slotOf(row);
    if (slot) bits.push(slot);
    const d = store.duration(row);
    if (!Number.isNaN(d)) bits.push(formatDuration(d));
    setText(this.summary, bits.join(' · '));
    setText(this.params, store.params.map((c) => `${c.axis.label}=${store.paramText(c, row)}`).filter((t) => !t.endsWith('=')).join(', '));
    setText(this.note, store.notes.get(row) ?? '');
    const logs = this.model.capability('openLogs');
    const run = this.model.capability('openRun');
    this.logs.disabled = !logs.enabled || outcome === 'queued';
    this.logs.title = !logs.enabled ? (logs.reason ?? '') : outcome === 'queued' ? 'The trial has not started.' : 'Open this trial’s output';
    this.run.disabled = !run.enabled;
    this.run.title = run.enabled ? 'Open this trial’s MLflow run' : (run.reason ?? '');
    const why: string[] = [];
    if (!logs.enabled) why.push(`Logs: ${logs.reason ?? 'not available.'}`);
    if (!run.enabled) why.push(`MLflow: ${run.reason ?? 'not available.'}`);
    setText(this.reasons, why.join(' '));
  }
}
