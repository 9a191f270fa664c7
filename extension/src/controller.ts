/**
 * Wires the parts of the extension: settings, the background service connection, the study
 * store, the scan index, the CodeLens, the Runs tree, the status bar, progress notifications and
 * the trials panel. The commands (commands.ts) act through it.
 */
import { basename, dirname, join } from 'node:path';
import * as vscode from 'vscode';
import { readJournal } from '../../core/src/journal/journal';
import { trialLogPath } from '../../core/src/journal/trialLogs';
import { buildVersion } from '../../core/src/service/serviceFile';
import { FminCodeLensProvider } from './codeLens';
import { COMMANDS } from './commandIds';
import { commands } from './host/commands';
import { window } from './host/window';
import { workspace } from './host/workspace';
import { chooseInterpreter, ensureHyperopt, interpreterActions, interpreterLabel, onPythonExtensionChange, runInterpreterAction, selectInterpreter, type Interpreter } from './interpreter';
import { errorText, reportError, reportInfo, reportWarning, traceInfo } from './log';
import { choiceLabel } from './model/executorChoices';
import { EditorPrompts } from './model/prompts';
import { ServiceConnection } from './model/serviceConnection';
import { readSettings, SECTION, type ReadResult } from './model/settings';
import { statusText } from './model/statusText';
import { bestOf, countsOf, type LocalStudy, StudyStore } from './model/studyStore';
import { studyLabel, type TreeNode } from './model/treeNodes';
import { formatLoss } from './model/format';
import { TrialsPanels } from './panel';
import { RunsTreeProvider } from './runsTree';
import { ScanIndex } from './scanIndex';
import { ScriptFailures } from './scriptFailures';

const LAST_CHOICE = 'hyperoptRunner.lastExecutors';
const MLFLOW_TOKEN = 'hyperoptRunner.mlflowToken';
const LENS_INTERVAL_MS = 500;
/** Key files whose passphrase is in secret storage (the paths only; secret storage cannot list keys). */
const REMEMBERED_KEYS = 'hyperoptRunner.sshPassphraseKeys';

export class Controller implements vscode.Disposable {
  readonly store = new StudyStore();
  readonly connection: ServiceConnection;
  readonly index: ScanIndex;
  readonly failures = new ScriptFailures();
  readonly lenses: FminCodeLensProvider;
  readonly tree: RunsTreeProvider;
  readonly treeView: vscode.TreeView<TreeNode>;
  private interpreterText: string | undefined;
  readonly panels: TrialsPanels;
  readonly prompts: EditorPrompts;
  private readonly statusItem: vscode.StatusBarItem;
  private readonly progressShown = new Set<string>();
  private readonly disposables: vscode.Disposable[] = [];
  private settingsCache: ReadResult | undefined;
  private lensTimer: NodeJS.Timeout | undefined;
  private lensRefreshedAt = 0;

  constructor(
    readonly context: vscode.ExtensionContext,
    readonly folder: string,
  ) {
    const cli = join(context.extensionPath, 'dist', 'cli.js');
    this.connection = new ServiceConnection(this.store, {
      workspace: folder,
      node: process.execPath,
      cli,
      version: buildVersion(cli),
      client: `vscode ${vscode.version}`,
      idleTimeoutSeconds: this.settings().settings.serviceIdleTimeout,
      log: traceInfo,
    });
    this.index = new ScanIndex(context.workspaceState);
    this.lenses = new FminCodeLensProvider(this.index, this.store, () => this.lastChoiceLabel());
    this.tree = new RunsTreeProvider(
      this.store,
      () => this.settings().settings.journalDirectory,
      { resolve: () => this.trackingForViews() },
      () => this.settings().settings.runsPageSize,
    );
    this.treeView = window.createTreeView('hyperoptRunner.runs', { treeDataProvider: this.tree, showCollapseAll: true });
    // Revealing expands the experiment; neither the selection nor the focus moves.
    const reveal = (node: TreeNode): void =>
      void this.treeView.reveal(node, { select: false, focus: false }).then(undefined, (error: unknown) => traceInfo(`could not reveal ${node.id}: ${errorText(error)}`));
    const revealPlaced = vscode.Disposable.from(
      this.tree.onDidPlaceLiveStudy((node) => this.treeView.visible && reveal(node)),
      this.treeView.onDidChangeVisibility((e) => e.visible && this.tree.placedLiveRows().forEach(reveal)),
    );
    this.panels = new TrialsPanels({
      extensionUri: context.extensionUri,
      store: this.store,
      connection: this.connection,
      ...(context.storageUri?.scheme === 'file' ? { openPanelsFile: join(context.storageUri.fsPath, 'open-panels.json') } : {}),
    });
    this.statusItem = window.createStatusBarItem('hyperoptRunner.status', vscode.StatusBarAlignment.Left, 50);
    this.statusItem.name = 'Hyperopt study';
    this.disposables.push(
      this.failures,
      this.index,
      this.lenses,
      this.tree,
      this.treeView,
      revealPlaced,
      this.panels,
      this.statusItem,
      vscode.languages.registerCodeLensProvider({ language: 'python', scheme: 'file' }, this.lenses),
      window.registerWebviewPanelSerializer('hyperoptRunner.trials', this.panels),
      workspace.onDidChangeConfiguration((e) => {
        if (!e.affectsConfiguration(SECTION)) return;
        this.settingsCache = undefined;
        const { problems } = this.settings();
        for (const p of problems) void reportError(p.message, 'Open Settings').then((c) => c && commands.executeCommand('workbench.action.openSettings', p.key));
        if (e.affectsConfiguration(`${SECTION}.trackingUri`) || e.affectsConfiguration(`${SECTION}.tracking`)) this.tree.resetTracking();
        if (e.affectsConfiguration(`${SECTION}.journalDirectory`)) this.tree.refresh();
        if (e.affectsConfiguration(`${SECTION}.python`)) void this.showInterpreter();
      }),
    );
    // The interpreter in use, in the Runs view's title; found off the activation path.
    void this.showInterpreter();
    void onPythonExtensionChange(() => void this.showInterpreter()).then((d) => d && this.disposables.push(d));
    const offIndex = this.index.changed.on(() => this.lenses.refresh());
    this.disposables.push({ dispose: offIndex });
    const offStore = this.store.changes.on((change) => this.onStoreChange(change.runs === true));
    this.disposables.push({ dispose: offStore });
    const offNotices = this.connection.notices.on((n) => {
      if (n.level === 'error') void reportError(n.text);
      else traceInfo(`service: ${n.text}`);
    });
    const offRunNotices = this.connection.runNotices.on(({ run, text }) => traceInfo(`run ${run}: ${text}`));
    this.prompts = new EditorPrompts({
      window: {
        passwordBox: (options, signal) => {
          const source = new vscode.CancellationTokenSource();
          signal.addEventListener('abort', () => source.cancel(), { once: true });
          return window.showInputBox({ ...options, password: true, ignoreFocusOut: true }, source.token).then(
            (value) => (source.dispose(), value),
            (error: unknown) => (source.dispose(), Promise.reject(error)),
          );
        },
        modalWarning: (message, detail, ...items) => window.showModalWarning(message, detail, ...items),
        information: (message, ...items) => window.showInformationMessage(message, ...items),
      },
      secrets: context.secrets,
      remembered: {
        get: () => {
          const value = context.globalState.get<unknown>(REMEMBERED_KEYS);
          return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
        },
        set: (paths) => context.globalState.update(REMEMBERED_KEYS, [...paths]),
      },
      answer: (prompt, answer) => this.connection.request({ type: 'answer', prompt, answer }),
      log: traceInfo,
    });
    const offPrompts = this.connection.prompts.on((message) => {
      if (message.type === 'promptClosed') this.prompts.closed(message);
      else void this.prompts.handle(message).catch((error: unknown) => void reportError(`Could not answer the background service: ${errorText(error)}`));
    });
    this.disposables.push({ dispose: offPrompts });
    this.disposables.push({ dispose: offNotices }, { dispose: offRunNotices });
    this.disposables.push({ dispose: () => this.connection.dispose() });
  }

  /** What activation does beyond construction, without delaying it. */
  start(): void {
    // Re-attach to the studies a service runs for this workspace (after a window reload).
    if (this.connection.serviceRecorded()) void this.reattach(Date.now() + 120_000);
    setTimeout(() => {
      this.tree.loadJournals();
      void this.index.scanWorkspace();
    }, 0);
    const { problems } = this.settings();
    for (const p of problems) void reportError(p.message, 'Open Settings').then((c) => c && commands.executeCommand('workbench.action.openSettings', p.key));
  }

  /**
   * Connects to the recorded service. On a busy machine its hello can miss the client's short
   * deadline (the window then knows the studies only from their journals): try again while the
   * recorded process lives, until `deadline`.
   */
  private async reattach(deadline: number): Promise<void> {
    for (;;) {
      try {
        await this.connection.ensure();
        this.panels.reopenRunning();
        return;
      } catch (error) {
        if (!this.connection.serviceRecorded() || Date.now() > deadline) {
          traceInfo(`no background service to re-attach to: ${errorText(error)}`);
          return;
        }
        traceInfo(`re-attaching to the background service failed (${errorText(error)}); trying again`);
        await new Promise((r) => setTimeout(r, 2_000));
      }
    }
  }

  settings(): ReadResult {
    this.settingsCache ??= readSettings((key) => workspace.getConfiguration(SECTION, vscode.Uri.file(this.folder)).get(key), this.folder);
    return this.settingsCache;
  }

  // ---- running ----------------------------------------------------------------------------------

  lastChoice(): string[] | undefined {
    const value = this.context.workspaceState.get<unknown>(LAST_CHOICE);
    return Array.isArray(value) && value.every((v) => typeof v === 'string') && value.length > 0 ? (value as string[]) : undefined;
  }

  private lastChoiceLabel(): string | undefined {
    const last = this.lastChoice();
    try {
      return last ? choiceLabel(last) : undefined;
    } catch {
      return undefined;
    }
  }

  async rememberChoice(executors: string[]): Promise<void> {
    await this.context.workspaceState.update(LAST_CHOICE, executors);
    this.lenses.refresh();
  }

  /** Runs a script on the given executors; resolves with the run id once the service accepted it. */
  async run(script: vscode.Uri, executors: string[]): Promise<string | undefined> {
    const { settings, problems } = this.settings();
    if (problems.length > 0) {
      // Not awaited: the notification stays until the user closes it.
      void reportError(`${problems[0]!.message}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`, 'Open Settings').then((choice) =>
        choice ? commands.executeCommand('workbench.action.openSettings', problems[0]!.key) : undefined,
      );
      return undefined;
    }
    const document = workspace.textDocuments.find((d) => d.uri.toString() === script.toString());
    if (document?.isDirty) await document.save();
    if (script.scheme === 'file' && (await this.index.knownWithoutFmin(script.fsPath))) {
      const choice = await window.showModalWarning(
        `${basename(script.fsPath)} has no fmin call.`,
        'The workspace scan found no fmin(...) in this file, so no study would run on the executors; the script itself would still run, with whatever else it does.',
        'Run Anyway',
      );
      if (choice !== 'Run Anyway') return undefined;
    }
    this.failures.clear(script);
    let interpreter: Interpreter;
    try {
      interpreter = await selectInterpreter(script, this.folder, settings.python);
    } catch (error) {
      void reportError(errorText(error), ...interpreterActions()).then(runInterpreterAction);
      return undefined;
    }
    if (!(await ensureHyperopt(interpreter))) return undefined;
    const python = interpreter.path;
    const token = await this.context.secrets.get(MLFLOW_TOKEN);
    try {
      const reply = await this.connection.request({
        type: 'run',
        spec: {
          script: script.fsPath,
          args: [],
          cwd: this.folder,
          python,
          executors,
          timeout: settings.studyTimeout,
          trialTimeout: settings.trialTimeout,
          parallelism: settings.parallelism,
          journalDir: settings.journalDirectory,
          trackingUri: settings.trackingUri,
          ...(settings.sshHostsFile || settings.acceptNewHostKeys ? { ssh: { ...(settings.sshHostsFile ? { hostsFile: settings.sshHostsFile } : {}), acceptNewHostKeys: settings.acceptNewHostKeys } } : {}),
          ...(token ? { env: { MLFLOW_TRACKING_TOKEN: token } } : {}),
        },
      });
      const run = reply.run!;
      traceInfo(`run ${run}: ${script.fsPath} on ${executors.join(' + ')} with ${python}`);
      this.showProgress(run);
      return run;
    } catch (error) {
      void reportError(`Could not run ${script.fsPath}: ${errorText(error)}`);
      return undefined;
    }
  }

  /** A cancellable notification while a run goes; Cancel cancels its studies through the service. */
  showProgress(runId: string): void {
    if (this.progressShown.has(runId)) return;
    const run = this.store.run(runId);
    if (run && run.state === 'ended') return;
    this.progressShown.add(runId);
    // The title names the tool; the message names the script, then its study (file:line), once each.
    const title = 'Hyperopt';
    const scriptName = run ? basename(run.script) : 'tuning script';
    void window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, (progress, token) => {
      // The edge between the editor's CancellationToken and the engine: one cancel request.
      const abort = new AbortController();
      const onCancel = token.onCancellationRequested(() => abort.abort());
      abort.signal.addEventListener('abort', () => {
        this.connection.request({ type: 'cancel', run: runId }).catch((error: unknown) => void reportError(`Cancel failed: ${errorText(error)}`));
      }, { once: true });
      let lastDone = 0;
      // What the run is waiting for before its first study (the tracking server starting, say).
      let startingBecause: string | undefined;
      return new Promise<void>((resolve) => {
        const update = (): void => {
          const current = this.store.run(runId);
          if (!current || current.state === 'ended') {
            off();
            offNotices();
            onCancel.dispose();
            this.progressShown.delete(runId);
            this.reportRunEnd(runId);
            resolve();
            return;
          }
          const study = current.studies.map((id) => this.store.study(id)).filter((s): s is LocalStudy => s !== undefined).at(-1);
          if (!study) {
            progress.report({ message: `${scriptName}: ${startingBecause ? `starting: ${startingBecause}` : 'starting...'}` });
            return;
          }
          const counts = countsOf(study);
          const total = study.info.maxEvals ?? 0;
          const increment = total > 0 && counts.finished > lastDone ? ((counts.finished - lastDone) / total) * 100 : undefined;
          lastDone = counts.finished;
          progress.report({ message: `${studyLabel(study)}: ${counts.finished}/${total || '?'} trials${study.state !== 'running' ? ` (${study.state})` : ''}`, increment });
        };
        const off = this.store.changes.on(update);
        const offNotices = this.connection.runNotices.on(({ run, text }) => {
          if (run !== runId) return;
          startingBecause = text;
          update();
        });
        update();
      });
    });
  }

  private reportRunEnd(runId: string): void {
    const run = this.store.run(runId);
    if (!run) return;
    this.tree.loadJournals();
    if (run.error && run.error.code === 'hyperopt_missing') {
      void ensureHyperopt({ path: run.studies.length > 0 ? (this.store.study(run.studies[0]!)?.info.python ?? '') : '' });
    } else if (run.error && run.error.code !== 'cancelled') {
      void reportError(`${run.script.split(/[\\/]/).pop()}: ${run.error.message}`, 'Show Logs').then((c) => (c === 'Show Logs' ? this.openFile(run.driverLog) : undefined));
    } else if (run.code !== undefined && run.code !== 0) {
      void this.reportScriptFailure({ ...run, cwd: this.folder });
    } else {
      // Where the progress notification was: what each study found, and the way to its charts and to what the script printed.
      for (const id of run.studies) {
        const study = this.store.study(id);
        if (!study) continue;
        const counts = countsOf(study);
        const best = bestOf(study);
        const how = study.reason && study.reason !== 'max_evals' && study.reason !== 'completed' ? ` (${study.reason})` : '';
        const text = `${studyLabel(study)}: ${best ? `best ${formatLoss(best.loss)}` : 'no successful trial'} after ${counts.finished} trial${counts.finished === 1 ? '' : 's'}${how}`;
        void reportInfo(text, 'Open Charts', 'Show Output').then((c) => {
          if (c === 'Open Charts') this.panels.show(id);
          else if (c === 'Show Output') void this.openFile(run.driverLog);
        });
      }
    }
  }

  private onStoreChange(runs: boolean): void {
    const active = this.store.activeStudies();
    void commands.setContext('hyperoptRunner.studyRunning', active.length > 0);
    const status = statusText(active);
    if (status) {
      this.statusItem.text = status.text;
      this.statusItem.tooltip = status.tooltip;
      this.statusItem.command = { command: COMMANDS.revealStudy, title: 'Show study', arguments: [status.studyId] };
      this.statusItem.show();
    } else {
      this.statusItem.hide();
    }
    if (runs) for (const run of this.store.activeRuns()) this.showProgress(run.run);
    // CodeLens titles change with the counts: at most twice a second, the first change of a
    // quiet spell at once (so the lens does not trail the status bar by the whole interval).
    const sinceLens = Date.now() - this.lensRefreshedAt;
    if (!this.lensTimer) {
      this.lensTimer = setTimeout(() => {
        this.lensTimer = undefined;
        this.lensRefreshedAt = Date.now();
        this.lenses.refresh();
      }, sinceLens >= LENS_INTERVAL_MS ? 0 : LENS_INTERVAL_MS - sinceLens);
    }
  }

  // ---- views ------------------------------------------------------------------------------------

  /** The tracking server the Runs view reads: the configured one, or the service's embedded one. */
  private async trackingForViews(): Promise<{ uri?: string; warning?: string; auth?: { kind: 'bearer'; token: string }; embedded?: boolean }> {
    const { settings } = this.settings();
    if (settings.trackingUri === null) return {};
    const token = await this.context.secrets.get(MLFLOW_TOKEN);
    const auth = token ? { kind: 'bearer' as const, token } : undefined;
    if (/^https?:\/\//i.test(settings.trackingUri)) return { uri: settings.trackingUri.replace(/\/+$/, ''), auth };
    let python: string;
    try {
      python = (await selectInterpreter(vscode.Uri.file(this.folder), this.folder, settings.python)).path;
    } catch (error) {
      return { warning: errorText(error) };
    }
    const reply = await this.connection.request({ type: 'tracking', trackingUri: settings.trackingUri, python }, 180_000);
    const tracking = reply.tracking;
    if (tracking?.kind === 'embedded' && tracking.token) {
      return { uri: tracking.uri ?? undefined, warning: tracking.warning, auth: { kind: 'bearer', token: tracking.token }, embedded: true };
    }
    return { uri: tracking?.uri ?? undefined, warning: tracking?.warning, auth };
  }

  /** Where the script failed, in a notification and as a problem at the line; else its exit code. */
  private async reportScriptFailure(run: { script: string; driverLog: string; cwd: string; code?: number }): Promise<void> {
    const failure = await this.failures.record(run);
    if (!failure) {
      const c = await reportWarning(`${basename(run.script)} exited with code ${run.code}`, 'Show Logs');
      if (c === 'Show Logs') void this.openFile(run.driverLog);
      return;
    }
    const c = await reportError(`${basename(failure.file)}:${failure.line}: ${failure.message}`, 'Go to Line', 'Show Logs');
    if (c === 'Go to Line') void this.openFile(failure.uri.fsPath, failure.line);
    else if (c === 'Show Logs') void this.openFile(run.driverLog);
  }

  async openFile(path: string, line?: number): Promise<void> {
    try {
      const editor = await window.showTextDocument(vscode.Uri.file(path), { preview: true });
      if (line !== undefined) {
        const position = new vscode.Position(Math.max(0, line - 1), 0);
        editor.selection = new vscode.Selection(position, position);
        editor.revealRange(new vscode.Range(position, position), vscode.TextEditorRevealType.InCenter);
      }
    } catch (error) {
      void reportError(`Cannot open ${path}: ${errorText(error)}`);
    }
  }

  trialLog(study: LocalStudy, tid: number): string {
    return trialLogPath(dirname(study.journal), study.id, tid);
  }

  /**
   * Shows at the top of the Runs view which interpreter runs tuning scripts (or that none is
   * found). A view alone in its container has no header for a description, so it is the view's
   * message, left out while the view is empty and shows its welcome text instead.
   */
  async showInterpreter(): Promise<void> {
    const setting = this.settings().settings.python;
    try {
      const interpreter = await selectInterpreter(vscode.Uri.file(this.folder), this.folder, setting);
      this.interpreterText = interpreterLabel(interpreter, this.folder);
    } catch {
      this.interpreterText = 'Python: not found';
    }
    this.showInterpreterLine();
  }

  private showInterpreterLine(): void {
    this.treeView.message = this.tree.isEmpty ? undefined : this.interpreterText;
  }

  chooseInterpreter(): Promise<void> {
    return chooseInterpreter(this.folder, this.settings().settings.python);
  }

  /** A study by id: this window's store first, then its journal in the journal directory. */
  findStudy(id: string): LocalStudy | undefined {
    const known = this.store.study(id);
    if (known) return known;
    try {
      this.store.loadJournals([readJournal(join(this.settings().settings.journalDirectory, `${id}.jsonl`))], { prune: false });
    } catch {
      return undefined;
    }
    return this.store.study(id);
  }

  dispose(): void {
    if (this.lensTimer) clearTimeout(this.lensTimer);
    for (const d of this.disposables) d.dispose();
  }
}
