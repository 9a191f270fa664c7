/**
 * The panel: wires the host channel, the model, the frame scheduler and the views. Messages are
 * queued as they arrive and applied at the start of the next animation frame, all at once.
 */
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import type { HostToWebview, InitMessage, PersistedWebviewState } from '../../core/src/protocol/webview';
import { WEBVIEW_PROTOCOL_VERSION, dispatchMessage } from '../../core/src/protocol/webview';
import { HistoryView } from './charts/history';
import { ImportancesView } from './charts/importances';
import { ParcoordsView } from './charts/parcoords';
import { SlicesView } from './charts/slices';
import { TimelineView } from './charts/timeline';
import { ControlsView } from './controls';
import { h, setAttr } from './dom';
import { HeaderView } from './header';
import { Host } from './host';
import { Model, type Topic } from './model';
import { Scheduler } from './scheduler';
import { SelectionView } from './selection';
import { TrialStore } from './store';
import { TableView } from './table';
import { readPalette, watchTheme } from './theme';

export class App {
  readonly model = new Model(readPalette());
  private readonly scheduler = new Scheduler();
  private readonly host: Host;
  private inbox: HostToWebview[] = [];
  private restored: PersistedWebviewState | undefined;
  private savedState = '';
  private firstPaint = false;
  private awaitingComplete = false;
  private readonly slices: SlicesView;
  private readonly logLoss = document.createElement('vscode-checkbox');
  private readonly problem = h('p', { class: 'problem', role: 'alert', hidden: true });

  constructor(private readonly root: HTMLElement) {
    this.host = new Host((message) => {
      this.inbox.push(message);
      this.scheduler.request();
    });
    this.restored = this.host.loadState();

    const selector = { select: (tid: number | null) => this.select(tid) };
    const invalidate = (...topics: Topic[]): void => this.scheduler.invalidate(...topics);
    const header = new HeaderView(this.model);
    const selection = new SelectionView(this.model, {
      openLogs: (tid) => this.host.post({ type: 'openLogs', tid }),
      openRun: (tid) => this.host.post({ type: 'openRun', tid }),
      clear: () => this.select(null),
    });
    const controls = new ControlsView(this.model, (request) => this.host.control(request));
    const history = new HistoryView(this.model, selector);
    const importances = new ImportancesView(this.model);
    const slices = new SlicesView(this.model, selector);
    this.slices = slices;
    const parcoords = new ParcoordsView(this.model, selector, invalidate);
    const timeline = new TimelineView(this.model, selector, invalidate);
    const table = new TableView(this.model, selector, () => invalidate('table'));

    this.logLoss.id = 'log-loss';
    this.logLoss.label = 'Log scale for the loss';
    this.logLoss.textContent = 'Log scale for the loss';
    this.logLoss.addEventListener('change', () => {
      this.model.logLoss = this.logLoss.checked;
      invalidate('scale');
    });

    for (const view of [header, controls, selection, table, history, importances, slices, parcoords, timeline]) this.scheduler.add(view);
    this.scheduler.onFrameStart(() => this.drain());
    this.scheduler.onFrameEnd(() => this.afterFrame());

    const main = h(
      'main',
      { class: 'grid' },
      history.element,
      importances.element,
      slices.element,
      parcoords.element,
      timeline.element,
      table.element,
    );
    const top = h('div', { class: 'sticky' }, header.element, selection.element);
    root.replaceChildren(top, this.problem, controls.element, h('div', { class: 'toolbar' }, this.logLoss), main);
    root.setAttribute('aria-busy', 'true');

    watchTheme(() => {
      this.model.palette = readPalette();
      invalidate('theme');
    });
    window.setInterval(() => {
      if (this.model.status && this.model.status.state !== 'ended') invalidate('tick');
    }, 1000);
  }

  start(): void {
    this.host.start();
  }

  select(tid: number | null, fromHost = false): void {
    if (this.model.selectedTid === tid) return;
    this.model.selectedTid = tid;
    this.scheduler.invalidate('selection');
    if (!fromHost) this.host.post({ type: 'selectTrial', tid });
  }

  /** Applies what arrived since the last frame. */
  private drain(): void {
    if (this.inbox.length === 0) return;
    const messages = this.inbox;
    this.inbox = [];
    for (const message of messages) {
      // A message that fails to apply is reported, and the ones after it are still applied.
      try {
        this.apply(message);
      } catch (error) {
        console.error(`[trials] a ${message.type} message failed to apply`, error);
        this.host.post({ type: 'rejected', error: `failed to apply: ${String(error)}`.slice(0, 1_000), messageType: message.type });
      }
    }
  }

  private apply(message: HostToWebview): void {
    dispatchMessage(message, {
      init: (m) => this.init(m),
      trials: (m) => {
        if (!this.model.study) return;
        this.model.store.upsert(m.trials);
        this.scheduler.invalidate('trials');
      },
      state: (m) => {
        if (!this.model.study) return;
        this.model.status = m.status;
        this.model.clockOffset = m.status.now - Date.now();
        if (m.capabilities) this.model.capabilities = m.capabilities;
        this.scheduler.invalidate('status', 'capabilities');
      },
      importances: (m) => {
        this.model.importances = m;
        this.scheduler.invalidate('importances');
      },
      select: (m) => this.select(m.tid, true),
      reply: () => undefined,
    });
  }

  private init(m: InitMessage): void {
    if (m.protocol !== WEBVIEW_PROTOCOL_VERSION) {
      this.showProblem(`This panel speaks protocol ${WEBVIEW_PROTOCOL_VERSION}, the extension ${m.protocol}: reload the window.`);
      this.host.post({ type: 'rejected', error: `protocol ${m.protocol} is not ${WEBVIEW_PROTOCOL_VERSION}`, messageType: 'init' });
      return;
    }
    const model = this.model;
    const sameStudy = model.study?.id === m.study.id;
    model.study = m.study;
    model.status = m.status;
    model.clockOffset = m.status.now - Date.now();
    model.capabilities = m.capabilities;
    model.store = new TrialStore(m.study.space);
    model.store.upsert(m.trials);
    this.slices.prepare();
    if (!sameStudy) {
      model.importances = undefined;
      if (this.restored && this.restored.studyId === m.study.id) model.restore(this.restored);
      else if (model.selectedTid !== null || model.brushes.size > 0) {
        model.selectedTid = null;
        model.brushes.clear();
        model.page = 0;
      }
      this.restored = undefined;
    }
    this.logLoss.checked = model.logLoss;
    document.title = `Trials: ${m.study.title}`;
    this.root.setAttribute('aria-busy', 'false');
    this.scheduler.invalidate('trials', 'status', 'capabilities', 'selection', 'table', 'brush', 'importances', 'scale', 'layout');
    this.scheduler.renderAllNextFrame();
    this.firstPaint = true;
    document.body.removeAttribute('data-complete');
  }

  private afterFrame(): void {
    const state = this.model.persisted();
    if (state) {
      const text = JSON.stringify(state);
      if (text !== this.savedState) {
        this.savedState = text;
        this.host.saveState(state);
      }
    }
    setAttr(document.body, 'data-trials', this.model.store.size);
    // Marks for the benchmark and the tests: the first frame of a study draws what is on
    // screen ('painted' once that frame is on screen), the others follow ('complete').
    if (this.firstPaint && this.model.study) {
      this.firstPaint = false;
      this.awaitingComplete = true;
      performance.mark('trials:rendered');
      requestAnimationFrame(() => {
        performance.mark('trials:painted');
        setAttr(document.body, 'data-painted', this.model.store.size);
      });
    } else if (this.awaitingComplete && this.scheduler.idle) {
      this.awaitingComplete = false;
      performance.mark('trials:drawn');
      requestAnimationFrame(() => {
        performance.mark('trials:complete');
        setAttr(document.body, 'data-complete', this.model.store.size);
      });
    }
  }

  private showProblem(text: string): void {
    this.problem.textContent = text;
    this.problem.hidden = false;
  }
}
