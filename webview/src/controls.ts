/**
 * Controls of a running study: Stop, Cancel, timeout (set, remove, extend), early-stop policy
 * and parallelism. Each sends one `control` request; the reply shows in the status line. Controls
 * that do not apply are disabled, with the reason written next to them; a reason that every group
 * shares (the study has ended, it runs in another window) is written once, above them.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-label/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import type { VscodeButton } from '@vscode-elements/elements/dist/vscode-button/vscode-button.js';
import type { VscodeTextfield } from '@vscode-elements/elements/dist/vscode-textfield/vscode-textfield.js';
import { formatDurationInput, parseDuration } from '../../core/src/analysis/shape';
import type { CapabilityName, ControlRequest } from '../../core/src/protocol/webview';
import { MAX_PARALLELISM, MAX_TIMEOUT_SECONDS } from '../../core/src/protocol/webview';
import { h, setAttr, setText } from './dom';
import type { Model, Topic } from './model';
import type { View } from './scheduler';

export type SendControl = (request: ControlRequest) => Promise<{ ok: boolean; error?: string }>;

interface Group {
  capability: CapabilityName;
  element: HTMLElement;
  reason: HTMLElement;
  inputs: VscodeTextfield[];
  buttons: VscodeButton[];
}

const LABELS: Record<ControlRequest['action'], string> = {
  stop: 'Stop',
  cancel: 'Cancel',
  setTimeout: 'Timeout',
  extendTimeout: 'Extend timeout',
  setParallelism: 'Parallelism',
  setPolicy: 'Early-stop policy',
};

function button(id: string, text: string, secondary = false): VscodeButton {
  const b = document.createElement('vscode-button');
  b.id = id;
  b.textContent = text;
  b.secondary = secondary;
  return b;
}

function field(id: string, label: string, placeholder: string): { label: HTMLElement; input: VscodeTextfield } {
  const l = document.createElement('vscode-label');
  l.htmlFor = id;
  l.textContent = label;
  const input = document.createElement('vscode-textfield');
  input.id = id;
  input.placeholder = placeholder;
  input.label = label;
  return { label: l, input };
}

export class ControlsView implements View {
  readonly name = 'controls';
  readonly topics: readonly Topic[] = ['status', 'capabilities'];
  readonly element: HTMLElement;
  private readonly groups: Group[] = [];
  private readonly sharedReason = h('p', { class: 'reason shared-reason', 'data-testid': 'reason-controls' });
  private readonly statusLine = h('p', { class: 'control-status', role: 'status', 'aria-live': 'polite', 'data-testid': 'control-status' });
  private readonly timeout = field('timeout-input', 'Timeout', 'e.g. 30m');
  private readonly extend = field('extend-input', 'Extend by', 'e.g. 10m');
  private readonly noProgress = field('no-progress-input', 'Stop after N trials without progress', 'off');
  private readonly threshold = field('loss-threshold-input', 'Stop at loss ≤', 'off');
  private readonly parallelism = field('parallelism-input', 'Parallel trials', '');
  /** Inputs the user typed in since the last status: the host's values do not overwrite them. */
  private readonly edited = new Set<VscodeTextfield>();

  constructor(
    private readonly model: Model,
    private readonly send: SendControl,
  ) {
    const stop = button('stop', 'Stop');
    const cancel = button('cancel', 'Cancel', true);
    stop.title = 'No new trials; running trials finish.';
    cancel.title = 'Running trials are killed.';
    stop.addEventListener('click', () => this.run({ action: 'stop' }));
    cancel.addEventListener('click', () => this.run({ action: 'cancel' }));

    const setT = button('timeout-set', 'Set');
    setT.title = 'The study is cancelled this long after it started.';
    const clearT = button('timeout-clear', 'Remove', true);
    const extendT = button('timeout-extend', 'Extend');
    this.extend.input.value = '10m';
    setT.addEventListener('click', () => {
      const seconds = this.readDuration(this.timeout.input, 'timeout');
      if (seconds !== undefined) this.run({ action: 'setTimeout', seconds }, [this.timeout.input]);
    });
    clearT.addEventListener('click', () => this.run({ action: 'setTimeout', seconds: null }, [this.timeout.input]));
    extendT.addEventListener('click', () => {
      const seconds = this.readDuration(this.extend.input, 'extension');
      if (seconds !== undefined) this.run({ action: 'extendTimeout', seconds });
    });

    const applyPolicy = button('policy-apply', 'Apply');
    applyPolicy.addEventListener('click', () => {
      const n = this.readOptionalInt(this.noProgress.input, 'number of trials', 1, 10_000_000);
      const t = this.readOptionalNumber(this.threshold.input, 'loss threshold');
      if (n === false || t === false) return;
      this.run({ action: 'setPolicy', noProgressTrials: n, lossThreshold: t }, [this.noProgress.input, this.threshold.input]);
    });

    const applyParallelism = button('parallelism-apply', 'Apply');
    this.parallelism.input.type = 'number';
    this.parallelism.input.min = 1;
    this.parallelism.input.max = MAX_PARALLELISM;
    applyParallelism.addEventListener('click', () => {
      const n = this.readOptionalInt(this.parallelism.input, 'parallelism', 1, MAX_PARALLELISM);
      if (n === false) return;
      if (n === null) return this.report('Parallelism: enter a whole number from 1.', true);
      this.run({ action: 'setParallelism', n }, [this.parallelism.input]);
    });

    for (const f of [this.timeout, this.extend, this.noProgress, this.threshold, this.parallelism]) {
      f.input.addEventListener('input', () => this.edited.add(f.input));
      f.input.addEventListener('keydown', (event: KeyboardEvent) => {
        if (event.key !== 'Enter') return;
        const target = f === this.timeout ? setT : f === this.extend ? extendT : f === this.parallelism ? applyParallelism : applyPolicy;
        if (!target.disabled) target.click();
      });
    }

    this.element = h(
      'section',
      { class: 'controls', 'aria-label': 'Study controls' },
      this.sharedReason,
      this.group('run', 'Run', 'stop', [], [stop, cancel]),
      this.group('timeout', 'Time limit', 'timeout', [this.timeout, this.extend], [setT, clearT, extendT], [[this.timeout, setT, clearT], [this.extend, extendT]]),
      this.group('policy', 'Early stop', 'policy', [this.noProgress, this.threshold], [applyPolicy], [[this.noProgress], [this.threshold, applyPolicy]]),
      this.group('parallelism', 'Parallelism', 'parallelism', [this.parallelism], [applyParallelism]),
      this.statusLine,
    );
    // Cancel has its own capability but shares the group with Stop.
    this.cancelButton = cancel;
  }

  private readonly cancelButton: VscodeButton;

  private group(
    id: string,
    title: string,
    capability: CapabilityName,
    fields: Array<{ label: HTMLElement; input: VscodeTextfield }>,
    buttons: VscodeButton[],
    rows?: Array<Array<{ label: HTMLElement; input: VscodeTextfield } | VscodeButton>>,
  ): HTMLElement {
    const heading = h('h2', { id: `controls-${id}` }, title);
    const reason = h('p', { class: 'reason', id: `controls-${id}-reason`, 'data-testid': `reason-${id}` });
    const body = h('div', { class: 'group-body' });
    const layout = rows ?? [[...fields, ...buttons]];
    for (const row of layout) {
      const line = h('div', { class: 'control-row' });
      for (const item of row) {
        if ('input' in item) line.append(h('div', { class: 'field' }, item.label, item.input));
        else line.append(item);
      }
      body.append(line);
    }
    const element = h('div', { class: 'group', role: 'group', 'aria-labelledby': `controls-${id}`, 'aria-describedby': `controls-${id}-reason`, 'data-group': id }, heading, body, reason);
    this.groups.push({ capability, element, reason, inputs: fields.map((f) => f.input), buttons });
    return element;
  }

  render(): void {
    const status = this.model.status;
    const reasonsOf = new Map<Group, string[]>();
    for (const group of this.groups) {
      const cap = this.model.capability(group.capability);
      let reasons = cap.enabled ? [] : [cap.reason ?? 'Not available.'];
      if (group.capability === 'stop') {
        const cancel = this.model.capability('cancel');
        this.cancelButton.disabled = !cancel.enabled;
        this.cancelButton.title = cancel.enabled ? 'Running trials are killed.' : (cancel.reason ?? '');
        for (const b of group.buttons) if (b !== this.cancelButton) b.disabled = !cap.enabled;
        if (!cancel.enabled && cancel.reason && !reasons.includes(cancel.reason)) reasons = [...reasons, `Cancel: ${cancel.reason}`];
      } else {
        for (const b of group.buttons) b.disabled = !cap.enabled;
      }
      for (const input of group.inputs) input.disabled = !cap.enabled;
      reasonsOf.set(group, reasons);
      setAttr(group.element, 'data-disabled', !cap.enabled);
    }
    const texts = [...reasonsOf.values()].map((r) => r.join(' '));
    const shared = texts.every((t) => t !== '' && t === texts[0]) ? texts[0] : '';
    setText(this.sharedReason, shared);
    for (const [group, reasons] of reasonsOf) setText(group.reason, shared ? '' : reasons.join(' '));
    if (!status) return;
    const s = status.settings;
    this.prefill(this.timeout.input, s.timeout === null ? '' : formatDurationInput(s.timeout));
    this.prefill(this.noProgress.input, s.noProgressTrials === null ? '' : String(s.noProgressTrials));
    this.prefill(this.threshold.input, s.lossThreshold === null ? '' : String(s.lossThreshold));
    this.prefill(this.parallelism.input, String(s.parallelism));
  }

  private prefill(input: VscodeTextfield, value: string): void {
    if (this.edited.has(input)) return;
    if (input.value !== value) input.value = value;
  }

  private report(text: string, error = false): void {
    setText(this.statusLine, text);
    setAttr(this.statusLine, 'data-error', error);
  }

  private readDuration(input: VscodeTextfield, what: string): number | undefined {
    const seconds = parseDuration(input.value);
    if (seconds === undefined || !(seconds > 0) || seconds > MAX_TIMEOUT_SECONDS) {
      input.invalid = true;
      this.report(`The ${what} must be a duration such as 90, 90s, 15m or 1h30m.`, true);
      return undefined;
    }
    input.invalid = false;
    return seconds;
  }

  /** A whole number, null when empty, false (reported) when not valid. */
  private readOptionalInt(input: VscodeTextfield, what: string, min: number, max: number): number | null | false {
    const text = input.value.trim();
    input.invalid = false;
    if (text === '' || text.toLowerCase() === 'off') return null;
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max) {
      input.invalid = true;
      this.report(`The ${what} must be a whole number from ${min} to ${max}.`, true);
      return false;
    }
    return n;
  }

  private readOptionalNumber(input: VscodeTextfield, what: string): number | null | false {
    const text = input.value.trim();
    input.invalid = false;
    if (text === '' || text.toLowerCase() === 'off') return null;
    const n = Number(text);
    if (!Number.isFinite(n)) {
      input.invalid = true;
      this.report(`The ${what} must be a number (empty turns it off).`, true);
      return false;
    }
    return n;
  }

  private run(request: ControlRequest, inputs: VscodeTextfield[] = []): void {
    const label = LABELS[request.action];
    this.report(`${label}: sent…`);
    void this.send(request).then((reply) => {
      if (reply.ok) {
        for (const input of inputs) this.edited.delete(input);
        this.report(`${label}: done.`);
      } else {
        this.report(`${label}: ${reply.error ?? 'refused.'}`, true);
      }
    });
  }
}
