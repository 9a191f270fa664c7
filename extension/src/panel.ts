/**
 * The trials panel of a study: the webview bundle (dist/webview.js) with its typed protocol
 * (core/src/protocol/webview.ts). The host side here feeds it from this window's study store and
 * the service's live events, and turns its control requests into service requests.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import * as vscode from 'vscode';
import { applyControl, type ControlTarget } from '../../core/src/analysis/control';
import type { ImportanceResult, ImportanceTask } from '../../core/src/analysis/importance';
import { AnalysisPool } from '../../core/src/analysis/pool';
import { ImportanceRefresher } from '../../core/src/analysis/refresh';
import { capabilitiesFor, StudyViewModel } from '../../core/src/analysis/studyView';
import type { EngineEvent } from '../../core/src/coordinator/events';
import { createNonce, renderWebviewHtml } from '../../core/src/protocol/webviewHtml';
import { parseWebviewToHost, PersistedWebviewState, type HostToWebview } from '../../core/src/protocol/webview';
import { COMMANDS } from './commandIds';
import { commands } from './host/commands';
import { window } from './host/window';
import { errorText, traceInfo, traceWarn } from './log';
import { viewModelOf } from './model/panelModel';
import type { ServiceConnection } from './model/serviceConnection';
import { countsOf, type LocalStudy, type StudyStore } from './model/studyStore';
import { studyLabel } from './model/treeNodes';
import { formatStartTime } from './model/format';

export const PANEL_VIEW_TYPE = 'hyperoptRunner.trials';

/** A panel's tab title: the study's call site and start time (two panels of one script differ). */
function panelTitle(study: LocalStudy | undefined, studyId: string): string {
  return study ? `Trials: ${studyLabel(study)} · ${formatStartTime(study.info.createdAt)}` : `Trials: ${studyId}`;
}

class TrialsPanel {
  private model: StudyViewModel;
  private ready = false;
  private flushTimer: NodeJS.Timeout | undefined;
  /** The store changed: compare it with the model at the next flush (see `reconcile`). */
  private storeChanged = false;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly importances: ImportanceRefresher;
  /** Finished trials when importances were last asked for: new figures only when that changes. */
  private importancesAt = -1;

  constructor(
    readonly panel: vscode.WebviewPanel,
    readonly studyId: string,
    private readonly host: PanelHost,
    computeImportances: (task: ImportanceTask, signal: AbortSignal) => Promise<ImportanceResult>,
  ) {
    this.importances = new ImportanceRefresher({
      compute: computeImportances,
      send: (message) => this.post(message),
      onError: (error) => traceWarn(`trials panel: importances failed: ${errorText(error)}`),
    });
    const study = host.store.study(studyId);
    this.model = study ? viewModelOf(study) : new StudyViewModel({ id: studyId, title: studyId, runId: null, script: null, algo: null, maxEvals: null, executors: [], source: 'journal', space: [], createdAt: Date.now() }, { timeout: null, deadline: null, parallelism: 1, lossThreshold: null, noProgressTrials: null, trialTimeout: null });
    const dist = vscode.Uri.joinPath(host.extensionUri, 'dist');
    panel.webview.options = { enableScripts: true, localResourceRoots: [dist] };
    panel.title = panelTitle(study, studyId);
    panel.webview.html = renderWebviewHtml({
      scriptUri: panel.webview.asWebviewUri(vscode.Uri.joinPath(dist, 'webview.js')).toString(),
      styleUri: panel.webview.asWebviewUri(vscode.Uri.joinPath(dist, 'webview.css')).toString(),
      cspSource: panel.webview.cspSource,
      nonce: createNonce(),
      title: panel.title,
    });
    this.disposables.push(panel.webview.onDidReceiveMessage((raw: unknown) => void this.onMessage(raw)));
    const offEvents = host.connection.events.on(({ event }) => this.onEvent(event));
    const offStore = host.store.changes.on((change) => {
      if (change.studies && !change.studies.includes(studyId)) return;
      // A panel restored before the window knew its study gets the study's title once it does.
      const title = panelTitle(host.store.study(studyId), studyId);
      if (panel.title !== title) panel.title = title;
      this.storeChanged = true;
      this.scheduleFlush();
    });
    this.disposables.push({ dispose: offEvents }, { dispose: offStore });
  }

  /**
   * The model follows the engine's events, the store follows them too but also changes without
   * one: a re-attach replaces it with the service's snapshot, a run that ends without its studies'
   * end events marks them ended, a journal read refreshes a past study. When the store and the
   * model no longer agree on the study's state or trial counts, the model is built again from the
   * store. Returns true when it was (the webview then needs a fresh `init`).
   */
  private reconcile(): boolean {
    if (!this.storeChanged) return false;
    this.storeChanged = false;
    const study = this.host.store.study(this.studyId);
    if (!study) return false;
    if (this.model.agrees(study.state, countsOf(study))) return false;
    this.model = viewModelOf(study);
    return true;
  }

  private capabilities() {
    const study = this.host.store.study(this.studyId);
    const live = study !== undefined && study.live && study.state !== 'ended';
    return capabilitiesFor(this.model.studyState, {
      controllable: live,
      notControllableReason: 'This study is not running.',
      logs: true,
      mlflow: study?.tracking !== undefined,
      mlflowReason: 'This study has no MLflow run.',
    });
  }

  private post(message: HostToWebview): void {
    void this.panel.webview.postMessage(message);
  }

  /** Importances over the latest finished trials, computed on the analysis thread (rate-limited there). */
  private refreshImportances(force = false): void {
    const finished = this.model.finishedCount;
    if (!force && finished === this.importancesAt) return;
    this.importancesAt = finished;
    this.importances.request(() => ({ space: this.model.header.space, trials: this.model.importanceTrials() }));
  }

  private onEvent(event: EngineEvent): void {
    if (!this.model.apply(event)) return;
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (!this.ready || this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      if (this.reconcile()) {
        this.post(this.model.init(this.capabilities()));
        this.refreshImportances(true);
        return;
      }
      const updates = this.model.takeUpdates();
      if (updates) this.post(updates);
      this.post(this.model.stateMessage(this.capabilities()));
      this.refreshImportances();
    }, 200);
  }

  private async onMessage(raw: unknown): Promise<void> {
    const parsed = parseWebviewToHost(raw);
    if (!parsed.ok) {
      traceWarn(`trials panel: ignored a message: ${parsed.error}`);
      return;
    }
    const message = parsed.message;
    switch (message.type) {
      case 'ready':
        this.ready = true;
        this.reconcile();
        this.post(this.model.init(this.capabilities()));
        // A reloaded webview lost its figures: send them again.
        this.refreshImportances(true);
        return;
      case 'control': {
        const outcome = await this.control(message.request);
        this.post({ type: 'reply', id: message.id, ok: outcome.ok, ...(outcome.ok ? {} : { error: outcome.error }) });
        return;
      }
      case 'openLogs':
        void commands.executeCommand(COMMANDS.showLogs, { studyId: this.studyId, tid: message.tid });
        return;
      case 'openRun':
        void commands.executeCommand(COMMANDS.openInMlflow, { studyId: this.studyId, tid: message.tid });
        return;
      case 'selectTrial':
        return;
      case 'rejected':
        traceWarn(`trials panel rejected a message (${message.messageType ?? '?'}): ${message.error}`);
        return;
    }
  }

  /** The panel's request, checked as the engine would, then sent to the service. */
  private async control(request: Parameters<typeof applyControl>[2]): Promise<{ ok: true } | { ok: false; error: string }> {
    const study = this.host.store.study(this.studyId);
    const calls: Array<() => Promise<unknown>> = [];
    const id = this.studyId;
    const send = this.host.connection;
    const target: ControlTarget = {
      snapshot: () => (study && study.live && study.settings ? { state: study.state, settings: study.settings } : undefined),
      stop: () => calls.push(() => send.request({ type: 'stop', study: id })),
      cancel: () => calls.push(() => send.request({ type: 'cancel', study: id })),
      setTimeout: (_s, seconds) => calls.push(() => send.request({ type: 'setTimeout', study: id, seconds })),
      setParallelism: (_s, n) => calls.push(() => send.request({ type: 'setParallelism', study: id, n })),
      setPolicy: (_s, policy) => calls.push(() => send.request({ type: 'setPolicy', study: id, ...policy })),
    };
    const outcome = applyControl(target, id, request, study?.openedAt ?? Date.now());
    if (!outcome.ok) return outcome;
    try {
      for (const call of calls) await call();
      return { ok: true };
    } catch (error) {
      return { ok: false, error: errorText(error) };
    }
  }

  dispose(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.importances.dispose();
    for (const d of this.disposables) d.dispose();
  }
}

export interface PanelHost {
  extensionUri: vscode.Uri;
  store: StudyStore;
  connection: ServiceConnection;
  /**
   * A file that lists the studies whose panels are open. The editor keeps a panel across a window
   * reload only when it saved its layout before the reload (in a browser, at its periodic save),
   * so a panel opened shortly before a reload can be lost; this list brings back those of studies
   * that still run.
   */
  openPanelsFile?: string;
}

/** One panel per study; opening it again reveals it. */
export class TrialsPanels implements vscode.WebviewPanelSerializer, vscode.Disposable {
  private readonly open = new Map<string, TrialsPanel>();
  /** The importances' worker thread, while a panel is open. */
  private analysis: AnalysisPool | undefined;

  constructor(private readonly host: PanelHost) {}

  private computeImportances = (task: ImportanceTask, signal: AbortSignal): Promise<ImportanceResult> => {
    this.analysis ??= new AnalysisPool();
    return this.analysis.importances(task, signal);
  };

  /** Opens (or reveals) the panel of a study. */
  show(studyId: string, preserveFocus = false): void {
    const existing = this.open.get(studyId);
    if (existing) {
      existing.panel.reveal(undefined, preserveFocus);
      return;
    }
    const panel = window.createWebviewPanel(PANEL_VIEW_TYPE, 'Trials', { viewColumn: vscode.ViewColumn.Active, preserveFocus }, { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(this.host.extensionUri, 'dist')] });
    this.attach(panel, studyId);
  }

  isOpen(studyId: string): boolean {
    return this.open.has(studyId);
  }

  private attach(panel: vscode.WebviewPanel, studyId: string): void {
    const view = new TrialsPanel(panel, studyId, this.host, this.computeImportances);
    this.open.set(studyId, view);
    this.remember();
    panel.onDidDispose(() => {
      view.dispose();
      this.open.delete(studyId);
      this.remember();
      if (this.open.size === 0) this.closeAnalysis();
    });
    traceInfo(`opened the trials panel of ${studyId}`);
  }

  private remember(): void {
    const file = this.host.openPanelsFile;
    if (!file) return;
    try {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, JSON.stringify([...this.open.keys()]));
    } catch (error) {
      traceWarn(`trials panel: could not note the open panels in ${file}: ${errorText(error)}`);
    }
  }

  private remembered(): string[] {
    const file = this.host.openPanelsFile;
    if (!file || !existsSync(file)) return [];
    try {
      const ids: unknown = JSON.parse(readFileSync(file, 'utf8'));
      return Array.isArray(ids) ? ids.filter((id): id is string => typeof id === 'string') : [];
    } catch {
      return [];
    }
  }

  /**
   * After the window re-attached to the service: opens again the panels of running studies that
   * were open before the reload and that the editor did not bring back itself (no tab of ours
   * with the study's title, restored or waiting to be).
   */
  reopenRunning(): void {
    const tabs = new Set(
      window.tabGroups.all.flatMap((g) => g.tabs).filter((t) => t.input instanceof vscode.TabInputWebview && t.input.viewType.endsWith(PANEL_VIEW_TYPE)).map((t) => t.label),
    );
    for (const id of this.remembered()) {
      const study = this.host.store.study(id);
      if (!study || !study.live || study.state === 'ended' || this.open.has(id)) continue;
      if (tabs.has(panelTitle(study, id)) || tabs.has(panelTitle(undefined, id))) continue;
      traceInfo(`trials panel: opening again the panel of ${id}, open before the window reloaded`);
      this.show(id, true);
    }
  }

  /** After a window reload: the panel's saved state names its study. */
  async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown): Promise<void> {
    const parsed = PersistedWebviewState.safeParse(state);
    if (!parsed.success) {
      panel.dispose();
      return;
    }
    this.attach(panel, parsed.data.studyId);
  }

  private closeAnalysis(): void {
    const pool = this.analysis;
    this.analysis = undefined;
    void pool?.close().catch((error: unknown) => traceWarn(`trials panel: closing the analysis thread: ${errorText(error)}`));
  }

  dispose(): void {
    // The panels themselves stay: on a window reload the editor keeps them and hands them back
    // to the serializer; closing them here would lose a live study's panel.
    for (const view of this.open.values()) view.dispose();
    this.open.clear();
    this.closeAnalysis();
  }
}
