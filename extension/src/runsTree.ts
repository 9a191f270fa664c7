/**
 * The "Runs" tree: studies this window knows from the background service and the journals, and
 * MLflow's experiments > studies > trials from the runs model, merged with live events. Nodes
 * are plain objects (model/treeNodes.ts); this is the one place they become TreeItems.
 */
import * as vscode from 'vscode';
import { MlflowClient, type MlflowAuth } from '../../core/src/mlflow/client';
import { browserLinkPath } from '../../core/src/mlflow/serverLease';
import { RunsModel } from '../../core/src/mlflow/runsModel';
import { listStudies } from '../../core/src/journal/journal';
import { errorText, traceInfo, traceWarn } from './log';
import { RunsView } from './model/runsView';
import { loadMoreNode, mlflowNode, present, studyNode, trialNode, type TreeNode } from './model/treeNodes';
import type { LocalStudy, StudyStore } from './model/studyStore';

export interface TrackingSource {
  /** The URI views read runs from, or undefined (with a reason) when there is none. */
  /** `embedded`: the workspace's own server, which a browser enters through a one-time link. */
  resolve(): Promise<{ uri?: string; warning?: string; auth?: MlflowAuth; embedded?: boolean }>;
}

export class RunsTreeProvider implements vscode.TreeDataProvider<TreeNode>, vscode.Disposable {
  private readonly changeEmitter = new vscode.EventEmitter<TreeNode | undefined>();
  readonly onDidChangeTreeData = this.changeEmitter.event;
  private readonly view: RunsView;
  /** The embedded server's API token, for browser links; undefined for a server given by URI. */
  private embeddedToken: string | undefined;
  private trackingWarning: string | undefined;
  private trackingPending: Promise<void> | undefined;
  private readonly nodes = new Map<string, TreeNode>();
  private readonly trialLimit = new Map<string, number>();
  private rootLimit: number;
  private refreshTimer: NodeJS.Timeout | undefined;
  private mlflowError: string | undefined;
  /** Live studies whose row under their experiment has been announced (once each). */
  private readonly placed = new Set<string>();
  private readonly placedEmitter = new vscode.EventEmitter<TreeNode>();
  /**
   * A running study of this window has come under its MLflow experiment: the row to reveal, so
   * that a collapsed experiment does not hide the study the user just started.
   */
  readonly onDidPlaceLiveStudy = this.placedEmitter.event;
  private empty: boolean | undefined;
  private readonly emptyEmitter = new vscode.EventEmitter<boolean>();
  /** The top level became empty or got rows (the view's welcome text shows only when it is empty). */
  readonly onDidChangeEmpty = this.emptyEmitter.event;

  constructor(
    private readonly store: StudyStore,
    private readonly journalDir: () => string,
    private readonly tracking: TrackingSource | undefined,
    private readonly pageSize: () => number,
  ) {
    this.rootLimit = pageSize();
    this.view = new RunsView(store);
    store.changes.on(() => this.scheduleRefresh());
  }

  private get model(): RunsModel | undefined {
    return this.view.runs;
  }

  private get modelUri(): string | undefined {
    return this.view.trackingUri;
  }

  /** Reads the journal directory again and reloads MLflow. */
  refresh(): void {
    this.loadJournals();
    this.model?.refresh();
    this.mlflowError = undefined;
    this.changeEmitter.fire(undefined);
  }

  loadJournals(): void {
    const dir = this.journalDir();
    const { studies, unreadable } = listStudies(dir);
    if (unreadable.length > 0) traceWarn(`unreadable journals in ${dir}: ${unreadable.join(', ')}`);
    this.store.loadJournals(studies);
  }

  /** Coalesces bursts of live events into one redraw per 250 ms, the runs model told of them first. */
  private scheduleRefresh(): void {
    if (this.refreshTimer) return;
    this.refreshTimer = setTimeout(() => {
      // The model's changes while it is told are part of this redraw.
      this.view.flush();
      this.refreshTimer = undefined;
      this.changeEmitter.fire(undefined);
      this.announcePlaced();
    }, 250);
  }

  /** The rows of running studies already placed under their experiment (to reveal when the view shows again). */
  placedLiveRows(): TreeNode[] {
    return [...this.placed].flatMap((id) => {
      const study = this.store.study(id);
      const row = study && study.live && study.state !== 'ended' ? this.experimentRow(study) : undefined;
      return row ? [row] : [];
    });
  }

  private announcePlaced(): void {
    for (const study of this.store.studies()) {
      if (!study.live || study.state === 'ended' || this.placed.has(study.id)) continue;
      const row = this.experimentRow(study);
      if (!row) continue;
      this.placed.add(study.id);
      this.placedEmitter.fire(row);
    }
  }

  /** The study's row under its MLflow experiment, when the runs model places it there. */
  private experimentRow(study: LocalStudy): TreeNode | undefined {
    const row = study.tracking ? this.model?.findStudy({ studyId: study.id, runId: study.tracking.parentRunId }) : undefined;
    if (row?.parent === undefined) return undefined;
    const id = `mlflow:${row.id}`;
    let node = this.nodes.get(id);
    if (!node) this.nodes.set(id, (node = mlflowNode(row)));
    return node;
  }

  getTreeItem(node: TreeNode): vscode.TreeItem {
    const p = present(node, { study: (id) => this.store.study(id), mlflowUi: this.modelUri !== undefined, now: Date.now() });
    const collapsible =
      p.collapsible === 'none' ? vscode.TreeItemCollapsibleState.None : p.collapsible === 'expanded' ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.Collapsed;
    const item = new vscode.TreeItem(p.label, collapsible);
    item.id = node.id;
    item.description = p.description;
    item.tooltip = p.tooltip;
    item.contextValue = p.contextValue;
    if (p.icon) item.iconPath = new vscode.ThemeIcon(p.icon.id, p.icon.color ? new vscode.ThemeColor(p.icon.color) : undefined);
    if (p.command) item.command = { command: p.command.command, title: p.command.title, arguments: p.command.args };
    return item;
  }

  getParent(node: TreeNode): TreeNode | undefined {
    if (node.kind === 'trial') return this.nodes.get(`local:${node.studyId}`);
    if (node.kind === 'mlflow' && node.node.parent) return this.nodes.get(`mlflow:${node.node.parent}`);
    if (node.kind === 'loadMore') return node.owner;
    return undefined;
  }

  async getChildren(node?: TreeNode): Promise<TreeNode[]> {
    const children = await this.children(node);
    for (const child of children) this.nodes.set(child.id, child);
    return children;
  }

  private async children(node?: TreeNode): Promise<TreeNode[]> {
    if (!node) return this.rootChildren();
    if (node.kind === 'study') {
      const study = this.store.study(node.studyId);
      if (!study) return [];
      const trials = [...study.trials.values()].sort((a, b) => a.tid - b.tid);
      const limit = this.trialLimit.get(node.id) ?? this.pageSize();
      const shown = trials.slice(0, limit).map((t) => trialNode(study.id, t.tid));
      return trials.length > limit ? [...shown, loadMoreNode(node)] : shown;
    }
    if (node.kind === 'mlflow' && this.model) {
      try {
        const kids = (await this.model.getChildren(node.node)).map(mlflowNode);
        return this.model.hasMore(node.node) ? [...kids, loadMoreNode(node)] : kids;
      } catch (error) {
        return [{ kind: 'message', id: `error:${node.id}`, text: `MLflow: ${errorText(error)}`, severity: 'warning' }];
      }
    }
    return [];
  }

  private async rootChildren(): Promise<TreeNode[]> {
    await this.ensureModel();
    const result: TreeNode[] = [];
    const { local, mlflow: mlflowRoot, error } = await this.view.root();
    if (this.model) this.mlflowError = error !== undefined ? errorText(error) : undefined;
    result.push(...local.slice(0, this.rootLimit).map((s) => studyNode(s.id)));
    if (local.length > this.rootLimit) result.push(loadMoreNode(undefined));
    result.push(...mlflowRoot.map(mlflowNode));
    if (this.model?.hasMore(undefined) && mlflowRoot.length > 0) result.push({ kind: 'loadMore', id: 'more:mlflow-root', owner: undefined });
    const warning = this.mlflowError ? `MLflow: ${this.mlflowError}` : this.trackingWarning;
    if (warning && result.length > 0) result.push({ kind: 'message', id: 'tracking-warning', text: warning, severity: 'warning' });
    if (this.empty !== (result.length === 0)) {
      this.empty = result.length === 0;
      this.emptyEmitter.fire(this.empty);
    }
    // The experiments are known now; a reveal waits until the view has these rows.
    setTimeout(() => this.announcePlaced(), 0);
    return result;
  }

  /** Connects the runs model to the tracking server once one is known. */
  private ensureModel(): Promise<void> {
    if (this.model || !this.tracking) return Promise.resolve();
    this.trackingPending ??= (async () => {
      try {
        const { uri, warning, auth, embedded } = await this.tracking!.resolve();
        this.trackingWarning = warning;
        if (!uri) return;
        this.embeddedToken = embedded && auth?.kind === 'bearer' ? auth.token : undefined;
        const model = new RunsModel(new MlflowClient({ trackingUri: uri, auth, maxRetries: 1 }), { pageSize: this.pageSize() });
        model.onDidChange(() => this.scheduleRefresh());
        this.view.connect(model, uri);
        traceInfo(`Runs view reads MLflow at ${uri}`);
      } catch (error) {
        this.trackingWarning = `MLflow: ${errorText(error)}`;
      } finally {
        this.trackingPending = undefined;
      }
    })();
    // The tree shows what it has now and redraws when MLflow answers.
    void this.trackingPending.then(() => this.changeEmitter.fire(undefined));
    return Promise.resolve();
  }

  /** Forget the tracking server (settings changed). */
  resetTracking(): void {
    this.view.disconnect();
    this.embeddedToken = undefined;
    this.trackingWarning = undefined;
    this.changeEmitter.fire(undefined);
  }

  get isEmpty(): boolean {
    return this.empty ?? true;
  }

  get mlflowUri(): string | undefined {
    return this.modelUri;
  }

  /** The path after `mlflowUri` that opens MLflow's UI at `route` in a browser (the embedded server's goes through a one-time link). */
  async browserPath(route: string): Promise<string> {
    if (this.modelUri === undefined || this.embeddedToken === undefined) return `/${route}`;
    return browserLinkPath(this.modelUri, this.embeddedToken, route);
  }

  async loadMore(ownerId: string | undefined): Promise<void> {
    if (ownerId === undefined) {
      this.rootLimit += this.pageSize();
      if (this.model?.hasMore(undefined)) await this.model.loadMore(undefined).catch(() => undefined);
    } else if (ownerId.startsWith('local:')) {
      this.trialLimit.set(ownerId, (this.trialLimit.get(ownerId) ?? this.pageSize()) + this.pageSize());
    } else {
      const owner = this.nodes.get(ownerId);
      if (owner?.kind === 'mlflow' && this.model) await this.model.loadMore(owner.node).catch((e: unknown) => traceWarn(`loading more failed: ${errorText(e)}`));
    }
    this.changeEmitter.fire(undefined);
  }

  node(id: string): TreeNode | undefined {
    return this.nodes.get(id);
  }

  /** The study's row: under its experiment when the model places it there, else at the top. */
  studyRowFor(studyId: string): TreeNode {
    const study = this.store.study(studyId);
    return (study && this.experimentRow(study)) ?? this.nodes.get(`local:${studyId}`) ?? studyNode(studyId);
  }

  dispose(): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.changeEmitter.dispose();
    this.placedEmitter.dispose();
    this.emptyEmitter.dispose();
  }
}
