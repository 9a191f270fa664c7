/**
 * The runs tree as plain data: experiments > studies (parent runs) > trials (child runs), read
 * from MLflow lazily and a page at a time, with the engine's live events merged in so a running
 * study shows its trials before MLflow has them. The CLI's `runs` command prints it; the editor
 * turns its nodes into tree items.
 *
 * A study is a top-level run tagged as one (`hyperopt_runner.study_id`, `runSource =
 * hyperoptAutoTracking` or `fmin_uuid`, as SparkTrials tags its parent runs) or any top-level run
 * that has child runs. Trials are its children (`tags.mlflow.parentRunId`), matched to live
 * events by their `hyperopt_runner.tid` tag.
 */
import type { TrialState } from '../coordinator/events';
import { Emitter, type Unsubscribe } from '../events';
import type { ParamValue } from '../protocol/common';
import { MlflowError, type LifecycleStage, type MlflowClient, type MlflowExperiment, type MlflowRun, type RunStatus } from './client';
import { parentEndStatus } from './runLayout';
import {
  BEST_TRIAL_LOSS_METRIC,
  FMIN_UUID_TAG,
  LOSS_METRIC,
  PARENT_RUN_TAG,
  RUN_SOURCE_HYPEROPT,
  RUN_SOURCE_TAG,
  STUDY_ID_TAG,
  TOTAL_TRIALS_METRIC,
  TRIAL_STATUS_TAG,
  TRIAL_TID_TAG,
  childRunsFilter,
  filterKey,
} from './tags';

/** What the engine tells the views about one trial, as it happens. */
export interface LiveTrialEvent {
  /** The engine's study id (the parent run's `hyperopt_runner.study_id` tag). */
  studyId?: string;
  /** The study's parent run, once the engine has created it. */
  studyRunId?: string;
  /** The experiment the study logs to: places a study MLflow does not show yet. */
  experimentId?: string;
  /** Label of a study MLflow does not show yet. */
  studyLabel?: string;
  tid: number;
  state: TrialState;
  /** The objective's own status (`ok`, `fail`); only `ok` trials compete for best. */
  resultStatus?: string;
  loss?: number;
  /** Epoch milliseconds. */
  startedAt?: number;
  endedAt?: number;
  params?: Record<string, ParamValue>;
  /** The trial's child run, when the engine knows it. */
  runId?: string;
}

/**
 * What the engine tells the views about a study as a whole: that it runs (before MLflow lists its
 * parent run, or before the model has read it), where it logs, and that it ended. A study that
 * ended is shown ended even while MLflow still has its parent RUNNING (the runner ends the parent
 * only once its trials' runs are written; a driver that died leaves it RUNNING until a later
 * command closes it).
 */
export interface LiveStudyEvent {
  studyId: string;
  studyRunId?: string;
  experimentId?: string;
  studyLabel?: string;
  /** Epoch milliseconds. */
  startedAt?: number;
  /** Set once the study is over: the engine's end reason (`interrupted` when its driver died) and when. */
  ended?: { reason?: string; at?: number };
}

export interface ExperimentNode {
  kind: 'experiment';
  id: string;
  parent: undefined;
  experimentId: string;
  label: string;
  status: LifecycleStage;
}

export interface StudyNode {
  kind: 'study';
  id: string;
  /** The experiment node's id; undefined for a live study whose experiment is unknown. */
  parent: string | undefined;
  experimentId?: string;
  runId?: string;
  studyId?: string;
  label: string;
  /** MLflow's status, or the engine's when it has gone further (the study ended, MLflow's parent still RUNNING). */
  status: RunStatus;
  /** How the study ended, as the engine said (`completed`, `stopped`, `cancelled`, `failed`, `interrupted`, ...); live studies only. */
  endReason?: string;
  startTime?: number;
  /** Up to now while the study runs; fixed once it ended. */
  durationMs?: number;
  /** Lowest finite loss among finished trials (the server's answer and the live ones). */
  bestLoss?: number;
  /**
   * The study's trials: the parent's `total_trials_count` while not all of its children are
   * loaded (a collapsed study has none loaded), else the trials the model holds (loaded pages
   * plus live ones).
   */
  trialCount: number;
  /** MLflow does not have this study's run yet: it is known from live events only. */
  live: boolean;
}

export interface TrialNode {
  kind: 'trial';
  id: string;
  parent: string;
  runId?: string;
  tid?: number;
  label: string;
  status: RunStatus;
  loss?: number;
  startTime?: number;
  durationMs?: number;
  isBest: boolean;
  params: Record<string, string>;
  /** MLflow does not have this trial's run yet. */
  live: boolean;
}

export type RunsNode = ExperimentNode | StudyNode | TrialNode;

/** `node` changed along with its children; undefined means the root list. */
export interface RunsModelChange {
  node: RunsNode | undefined;
}

export interface RunsModelOptions {
  /** Items per page at every level (default 50). */
  pageSize?: number;
  /** Trials per request when {@link RunsModel.loadAll} reads a whole study (default 1000). */
  bulkPageSize?: number;
  /** Show only these experiments (no paging at the root then). */
  experimentIds?: string[];
  /** Parallel "has child runs?" checks for untagged top-level runs (default 8). */
  childCheckConcurrency?: number;
  /** Clock for the duration of running items (default Date.now). */
  now?: () => number;
}

// --- internal state -----------------------------------------------------------------------------

interface Paging {
  loaded: boolean;
  nextPageToken?: string;
  generation: number;
  loading?: Promise<void>;
}

interface ExperimentEntry {
  experiment: MlflowExperiment;
  paging: Paging;
}

interface TrialEntry {
  key: string;
  tid?: number;
  runId?: string;
  run?: MlflowRun;
  live?: LiveTrialEvent;
}

interface StudyEntry {
  key: string;
  /** Creation order: when two entries turn out to be one study, the older one (and its id) stays. */
  seq: number;
  experimentId?: string;
  runId?: string;
  studyId?: string;
  label?: string;
  run?: MlflowRun;
  trials: Map<string, TrialEntry>;
  byTid: Map<number, string>;
  byRun: Map<string, string>;
  paging: Paging;
  /** What the engine said of the study itself ({@link LiveStudyEvent}). */
  liveStudy?: { startedAt?: number; ended?: { reason?: string; at?: number } };
  /**
   * The best loss as the server knows it: the parent's `best_trial_loss` once the study is over,
   * else the best finished child as the server ranks them (`metrics.loss ASC`).
   */
  serverBest?: { runId?: string; loss: number };
}

const LIVE_STATUS: Record<TrialState, RunStatus> = {
  queued: 'SCHEDULED',
  running: 'RUNNING',
  done: 'FINISHED',
  error: 'FAILED',
  cancel: 'KILLED',
};

function rank(status: RunStatus): number {
  if (status === 'SCHEDULED') return 0;
  if (status === 'RUNNING') return 1;
  return 2;
}

const newPaging = (): Paging => ({ loaded: false, generation: 0 });

export class RunsModel {
  private readonly client: MlflowClient;
  private readonly pageSize: number;
  private readonly bulkPageSize: number;
  private readonly only: string[] | undefined;
  private readonly concurrency: number;
  private readonly now: () => number;
  private readonly changes = new Emitter<RunsModelChange>();
  private readonly experiments = new Map<string, ExperimentEntry>();
  private experimentOrder: string[] = [];
  private rootPaging = newPaging();
  private readonly studies = new Map<string, StudyEntry>();
  private readonly studyByRun = new Map<string, string>();
  private readonly studyById = new Map<string, string>();
  /** Set when the server rejects `IS NULL` in filters (older MLflow): filter top-level runs here. */
  private noNullFilter = false;
  private studySeq = 0;
  /** Reads that run behind a page already shown (a running study's best trial). */
  private readonly background = new Set<Promise<void>>();

  constructor(client: MlflowClient, options: RunsModelOptions = {}) {
    this.client = client;
    this.pageSize = options.pageSize ?? 50;
    this.bulkPageSize = options.bulkPageSize ?? 1000;
    this.only = options.experimentIds;
    this.concurrency = options.childCheckConcurrency ?? 8;
    this.now = options.now ?? Date.now;
  }

  onDidChange(listener: (change: RunsModelChange) => void): Unsubscribe {
    return this.changes.on(listener);
  }

  /** The children of `node` (the experiments for the root), loading the first page on first use. */
  async getChildren(node?: RunsNode, signal?: AbortSignal): Promise<RunsNode[]> {
    if (node?.kind === 'trial') return [];
    const paging = this.pagingOf(node);
    if (paging && !paging.loaded) await this.loadPage(node, paging, signal);
    return this.children(node);
  }

  /** True while MLflow has more children of `node` than loaded. */
  hasMore(node?: RunsNode): boolean {
    const paging = this.pagingOf(node);
    return paging !== undefined && (!paging.loaded || paging.nextPageToken !== undefined);
  }

  /** Loads the next page of `node`'s children; resolves with all its children. */
  async loadMore(node?: RunsNode, signal?: AbortSignal): Promise<RunsNode[]> {
    const paging = this.pagingOf(node);
    if (paging && (!paging.loaded || paging.nextPageToken !== undefined)) {
      await this.loadPage(node, paging, signal);
      this.emit(node);
    }
    return this.children(node);
  }

  /**
   * Loads every child of `node`; resolves with all of them. A study's trials come in pages of
   * `bulkPageSize` rather than `pageSize`: on MLflow's SQL stores each request pays a fixed
   * cost (the filter's join and the sort run over the whole study), so the whole of a large
   * study takes a tenth of the requests that paging as the tree does would take.
   */
  async loadAll(node?: RunsNode, signal?: AbortSignal): Promise<RunsNode[]> {
    const paging = this.pagingOf(node);
    if (!paging) return this.children(node);
    if (node?.kind !== 'study') {
      while (!paging.loaded || paging.nextPageToken !== undefined) await this.loadPage(node, paging, signal);
      this.emit(node);
      return this.children(node);
    }
    if (!paging.loaded) await this.loadPage(node, paging, signal);
    if (paging.nextPageToken !== undefined) {
      // Page tokens belong to the query that made them: the rest is read by a query of its own
      // with larger pages; trials already loaded merge by run id.
      await (paging.loading ?? Promise.resolve());
      const generation = paging.generation;
      const work = this.loadAllTrials(node.id, generation, signal).then((done) => {
        if (done && paging.generation === generation) paging.nextPageToken = undefined;
      });
      paging.loading = work.finally(() => {
        paging.loading = undefined;
      });
      await paging.loading;
      this.emit(node);
    }
    return this.children(node);
  }

  /** Resolves once the reads started behind pages already returned (a study's best trial) are done. */
  async whenIdle(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  /** Forgets what was read from MLflow under `node` (live data stays); the next read reloads. */
  refresh(node?: RunsNode): void {
    if (node?.kind === 'trial') return;
    if (node === undefined) {
      this.rootPaging = { loaded: false, generation: this.rootPaging.generation + 1 };
      this.experiments.clear();
      this.experimentOrder = [];
      for (const study of [...this.studies.values()]) if (!hasLive(study)) this.dropStudy(study);
    } else if (node.kind === 'experiment') {
      const entry = this.experiments.get(node.experimentId);
      if (entry) entry.paging = { loaded: false, generation: entry.paging.generation + 1 };
      for (const study of [...this.studies.values()]) {
        if (study.experimentId === node.experimentId && !hasLive(study)) this.dropStudy(study);
      }
    } else {
      const study = this.studies.get(node.id);
      if (study) {
        study.paging = { loaded: false, generation: study.paging.generation + 1 };
        study.serverBest = undefined;
        for (const trial of [...study.trials.values()]) if (!trial.live) removeTrial(study, trial);
      }
    }
    this.emit(node);
  }

  /** The node with this id, as it is now. */
  getNode(id: string): RunsNode | undefined {
    const study = this.studies.get(id);
    if (study) return this.studyNode(study);
    if (id.startsWith('experiment:')) {
      const entry = this.experiments.get(id.slice('experiment:'.length));
      return entry ? experimentNode(entry.experiment) : undefined;
    }
    const slash = id.lastIndexOf('/');
    const owner = slash > 0 ? this.studies.get(id.slice(0, slash)) : undefined;
    const trial = owner?.trials.get(id);
    return owner && trial ? this.trialNode(owner, trial, this.best(owner)) : undefined;
  }

  /** The study node for an engine study id or a parent run id, if the model knows it. */
  findStudy(ref: { studyId?: string; runId?: string }): StudyNode | undefined {
    const key = (ref.runId && this.studyByRun.get(ref.runId)) || (ref.studyId && this.studyById.get(ref.studyId));
    const study = key ? this.studies.get(key) : undefined;
    return study ? this.studyNode(study) : undefined;
  }

  /** Merges one live trial event, by (study, tid); MLflow's runs for it merge in when they load. */
  applyLiveEvent(event: LiveTrialEvent): void {
    const known = this.lookupStudy(event.studyRunId, event.studyId);
    const ids = { runId: event.studyRunId, studyId: event.studyId };
    const study = this.linkStudy(known ?? this.createStudy(ids), ids);
    study.experimentId ??= event.experimentId;
    study.label ??= event.studyLabel;
    let trial = lookupTrial(study, event.tid, event.runId);
    if (!trial) trial = addTrial(study, event.tid, event.runId);
    if (trial.tid === undefined) {
      trial.tid = event.tid;
      study.byTid.set(event.tid, trial.key);
    }
    if (event.runId && !trial.runId) {
      trial.runId = event.runId;
      study.byRun.set(event.runId, trial.key);
    }
    trial.live = mergeLive(trial.live, event);
    if (known) this.emit(this.studyNode(study));
    else this.emit(this.parentNodeOf(study));
  }

  /**
   * Merges what the engine says of a study: a running study shows under its experiment (read from
   * MLflow when the root does not list it yet) before MLflow lists its parent run, and an ended one
   * shows ended with a fixed duration. Later events refine earlier ones; an end is not undone.
   */
  applyLiveStudy(event: LiveStudyEvent): void {
    const known = this.lookupStudy(event.studyRunId, event.studyId);
    const ids = { runId: event.studyRunId, studyId: event.studyId };
    const study = this.linkStudy(known ?? this.createStudy(ids), ids);
    const placed = study.experimentId;
    study.experimentId ??= event.experimentId;
    study.label ??= event.studyLabel;
    const live = (study.liveStudy ??= {});
    live.startedAt ??= event.startedAt;
    if (event.ended && !live.ended) live.ended = { ...event.ended };
    if (study.experimentId !== undefined && !this.experiments.has(study.experimentId)) this.findExperiment(study.experimentId);
    // A study that is new, or moved from the top level under its experiment, changes the lists.
    if (known && placed === study.experimentId) this.emit(this.studyNode(study));
    else this.emit(undefined);
  }

  // --- loading ----------------------------------------------------------------------------------

  private pagingOf(node: RunsNode | undefined): Paging | undefined {
    if (node === undefined) return this.rootPaging;
    if (node.kind === 'experiment') return this.experiments.get(node.experimentId)?.paging;
    if (node.kind === 'study') {
      const study = this.studies.get(node.id);
      // A study known only from live events, without a run id, has nothing in MLflow yet.
      return study?.runId ? study.paging : undefined;
    }
    return undefined;
  }

  /** One page, once: concurrent callers share the request; a refresh meanwhile drops its result. */
  private async loadPage(node: RunsNode | undefined, paging: Paging, signal?: AbortSignal): Promise<void> {
    if (paging.loading) return paging.loading;
    const generation = paging.generation;
    const token = paging.nextPageToken;
    const work = async (): Promise<void> => {
      let next: string | undefined;
      if (node === undefined) next = await this.loadExperiments(token, generation, signal);
      else if (node.kind === 'experiment') next = await this.loadStudies(node.experimentId, token, generation, signal);
      else if (node.kind === 'study') next = await this.loadTrials(node.id, token, generation, signal);
      if (paging.generation !== generation) return;
      paging.loaded = true;
      paging.nextPageToken = next;
    };
    paging.loading = work().finally(() => {
      paging.loading = undefined;
    });
    return paging.loading;
  }

  private async loadExperiments(token: string | undefined, generation: number, signal?: AbortSignal): Promise<string | undefined> {
    let items: MlflowExperiment[];
    let next: string | undefined;
    if (this.only) {
      items = await Promise.all(this.only.map((id) => this.client.getExperiment(id, signal)));
    } else {
      const page = await this.client.searchExperimentsPage(
        { pageSize: this.pageSize, orderBy: ['last_update_time DESC'] },
        token,
        signal,
      );
      items = page.items;
      next = page.nextPageToken;
    }
    if (this.rootPaging.generation !== generation) return next;
    for (const experiment of items) {
      const existing = this.experiments.get(experiment.experimentId);
      if (existing) existing.experiment = experiment;
      else {
        this.experiments.set(experiment.experimentId, { experiment, paging: newPaging() });
        this.experimentOrder.push(experiment.experimentId);
      }
    }
    return next;
  }

  private async loadStudies(
    experimentId: string,
    token: string | undefined,
    generation: number,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const options = {
      experimentIds: [experimentId],
      orderBy: ['attributes.start_time DESC'],
      pageSize: this.pageSize,
    };
    let page;
    try {
      page = await this.client.searchRunsPage(
        this.noNullFilter ? options : { ...options, filter: `${filterKey('tags', PARENT_RUN_TAG)} IS NULL` },
        token,
        signal,
      );
    } catch (error) {
      if (!(error instanceof MlflowError) || error.code !== 'bad_request' || this.noNullFilter) throw error;
      this.noNullFilter = true;
      page = await this.client.searchRunsPage(options, token, signal);
    }
    const topLevel = page.items.filter((run) => run.data.tags[PARENT_RUN_TAG] === undefined);
    const tagged = topLevel.filter(isTaggedStudy);
    const untagged = topLevel.filter((run) => !isTaggedStudy(run) && !this.studyByRun.has(run.info.runId));
    const withChildren = await mapLimited(untagged, this.concurrency, async (run) => {
      const children = await this.client.searchRunsPage(
        { experimentIds: [experimentId], filter: childRunsFilter(run.info.runId), pageSize: 1 },
        undefined,
        signal,
      );
      return children.items.length > 0;
    });
    if (this.experiments.get(experimentId)?.paging.generation !== generation) return page.nextPageToken;
    const known = topLevel.filter((run) => this.studyByRun.has(run.info.runId));
    const studies = new Set([...tagged, ...known, ...untagged.filter((_, i) => withChildren[i])]);
    for (const run of topLevel) if (studies.has(run)) this.upsertStudyRun(run);
    return page.nextPageToken;
  }

  private async loadTrials(
    studyKey: string,
    token: string | undefined,
    generation: number,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const study = this.studies.get(studyKey);
    if (!study?.runId) return undefined;
    const runId = study.runId;
    if (study.experimentId === undefined) {
      // Known from live events by its run id only: the run tells where its children are.
      try {
        this.upsertStudyRun(await this.client.getRun(runId, signal));
      } catch (error) {
        if (error instanceof MlflowError && error.code === 'not_found') return undefined;
        throw error;
      }
    }
    if (study.experimentId === undefined) return undefined;
    const experimentIds = [study.experimentId];
    const filter = childRunsFilter(runId);
    const first = token === undefined;
    // Only the page itself is on the way to the first rows; the parent (cheap, by id) refreshes
    // the study's status and final metrics alongside it.
    const [page, parent] = await Promise.all([
      this.client.searchRunsPage({ experimentIds, filter, orderBy: ['attributes.start_time ASC'], pageSize: this.pageSize }, token, signal),
      first ? this.client.getRun(runId, signal) : undefined,
    ]);
    if (study.paging.generation !== generation || this.studies.get(studyKey) !== study) return page.nextPageToken;
    if (parent) this.upsertStudyRun(parent);
    for (const run of page.items) this.upsertTrialRun(study, run);
    if (first && page.nextPageToken !== undefined) this.findServerBest(study, generation, signal);
    return page.nextPageToken;
  }

  /**
   * The best loss of a study whose trials are not all loaded. A finished study's parent holds it
   * (`best_trial_loss`, logged when the study ends, as SparkTrials does). Otherwise the server is
   * asked for the best finished child, behind the page: on MLflow's SQL stores ordering by a
   * metric joins the metric table without an index (SQLite scans it once per run: 20 s and more
   * for 10,000 trials), so the tree never waits for it. A failure leaves the loaded trials' best.
   */
  private findServerBest(study: StudyEntry, generation: number, signal?: AbortSignal): void {
    const run = study.run;
    const final = run?.data.metrics[BEST_TRIAL_LOSS_METRIC];
    if (run && rank(run.info.status) === 2 && final !== undefined) {
      if (Number.isFinite(final)) study.serverBest = { loss: final };
      return;
    }
    if (study.experimentId === undefined || study.runId === undefined) return;
    const query = this.client.searchRunsPage(
      {
        experimentIds: [study.experimentId],
        filter: `${childRunsFilter(study.runId)} AND attributes.status = 'FINISHED'`,
        orderBy: [`${filterKey('metrics', LOSS_METRIC)} ASC`],
        pageSize: 1,
      },
      undefined,
      signal,
    );
    const task = query.then(
      (best) => {
        if (study.paging.generation !== generation || this.studies.get(study.key) !== study) return;
        const top = best.items[0];
        const loss = top?.data.metrics[LOSS_METRIC];
        if (top && loss !== undefined && Number.isFinite(loss) && resultOk(top.data.tags[TRIAL_STATUS_TAG])) {
          study.serverBest = { runId: top.info.runId, loss };
          this.emit(this.studyNode(study));
        }
      },
      () => undefined,
    );
    this.background.add(task);
    void task.finally(() => this.background.delete(task));
  }

  /**
   * Reads an experiment a live study logs to that the root does not list (the run created it after
   * the root was read): it joins the root first, as the most recently updated.
   */
  private findExperiment(experimentId: string): void {
    if (!this.rootPaging.loaded || (this.only && !this.only.includes(experimentId))) return;
    const generation = this.rootPaging.generation;
    const task = this.client.getExperiment(experimentId).then(
      (experiment) => {
        if (this.rootPaging.generation !== generation || this.experiments.has(experimentId)) return;
        this.experiments.set(experimentId, { experiment, paging: newPaging() });
        this.experimentOrder.unshift(experimentId);
        this.emit(undefined);
      },
      () => undefined,
    );
    this.background.add(task);
    void task.finally(() => this.background.delete(task));
  }

  /** Every child of a study in pages of `bulkPageSize`; false when a refresh made the result stale. */
  private async loadAllTrials(studyKey: string, generation: number, signal?: AbortSignal): Promise<boolean> {
    const study = this.studies.get(studyKey);
    if (!study?.runId || study.experimentId === undefined) return false;
    const options = {
      experimentIds: [study.experimentId],
      filter: childRunsFilter(study.runId),
      orderBy: ['attributes.start_time ASC'],
      pageSize: this.bulkPageSize,
    };
    for await (const page of this.client.searchRunsPages(options, signal)) {
      if (study.paging.generation !== generation || this.studies.get(studyKey) !== study) return false;
      for (const run of page.items) this.upsertTrialRun(study, run);
    }
    return true;
  }

  // --- merging ----------------------------------------------------------------------------------

  private lookupStudy(runId: string | undefined, studyId: string | undefined): StudyEntry | undefined {
    const key = (runId && this.studyByRun.get(runId)) || (studyId && this.studyById.get(studyId));
    return key ? this.studies.get(key) : undefined;
  }

  private createStudy(ids: { studyId?: string; runId?: string }): StudyEntry {
    const key = `study:${ids.studyId ?? ids.runId ?? 'unknown'}`;
    const study: StudyEntry = {
      key,
      seq: this.studySeq++,
      trials: new Map(),
      byTid: new Map(),
      byRun: new Map(),
      paging: newPaging(),
    };
    this.studies.set(key, study);
    return this.linkStudy(study, ids);
  }

  /**
   * Records a study's ids. When another entry already holds one of them (a live study met its
   * MLflow run), the two merge into the older entry, which is returned.
   */
  private linkStudy(study: StudyEntry, ids: { studyId?: string; runId?: string }): StudyEntry {
    let survivor = study;
    for (const [id, index, field] of [
      [ids.runId, this.studyByRun, 'runId'],
      [ids.studyId, this.studyById, 'studyId'],
    ] as const) {
      if (!id) continue;
      const otherKey = index.get(id);
      const other = otherKey !== undefined && otherKey !== survivor.key ? this.studies.get(otherKey) : undefined;
      if (other) {
        const [older, newer] = other.seq < survivor.seq ? [other, survivor] : [survivor, other];
        this.absorb(older, newer);
        survivor = older;
      }
      index.set(id, survivor.key);
      survivor[field] ??= id;
    }
    return survivor;
  }

  private absorb(into: StudyEntry, from: StudyEntry): void {
    this.dropStudy(from);
    into.experimentId ??= from.experimentId;
    into.label ??= from.label;
    into.run ??= from.run;
    into.serverBest ??= from.serverBest;
    if (from.liveStudy) {
      const live = (into.liveStudy ??= {});
      live.startedAt ??= from.liveStudy.startedAt;
      live.ended ??= from.liveStudy.ended;
    }
    for (const trial of from.trials.values()) {
      const existing = lookupTrial(into, trial.tid, trial.runId);
      const target = existing ?? addTrial(into, trial.tid, trial.runId);
      target.run ??= trial.run;
      target.live = mergeLive(target.live, trial.live);
      if (trial.runId && !target.runId) {
        target.runId = trial.runId;
        into.byRun.set(trial.runId, target.key);
      }
    }
    if (from.runId) this.studyByRun.set(from.runId, into.key);
    if (from.studyId) this.studyById.set(from.studyId, into.key);
    into.runId ??= from.runId;
    into.studyId ??= from.studyId;
  }

  private dropStudy(study: StudyEntry): void {
    this.studies.delete(study.key);
    if (study.runId && this.studyByRun.get(study.runId) === study.key) this.studyByRun.delete(study.runId);
    if (study.studyId && this.studyById.get(study.studyId) === study.key) this.studyById.delete(study.studyId);
  }

  private upsertStudyRun(run: MlflowRun): void {
    const ids = { runId: run.info.runId, studyId: run.data.tags[STUDY_ID_TAG] || undefined };
    const study = this.linkStudy(this.lookupStudy(ids.runId, ids.studyId) ?? this.createStudy(ids), ids);
    study.run = run;
    study.experimentId = run.info.experimentId;
  }

  private upsertTrialRun(study: StudyEntry, run: MlflowRun): void {
    const tid = parseTid(run.data.tags[TRIAL_TID_TAG] ?? run.data.tags.trial_tid);
    let trial = lookupTrial(study, tid, run.info.runId);
    if (!trial) trial = addTrial(study, tid, run.info.runId);
    trial.run = run;
    if (!trial.runId) trial.runId = run.info.runId;
    study.byRun.set(run.info.runId, trial.key);
    if (tid !== undefined && trial.tid === undefined) {
      trial.tid = tid;
      study.byTid.set(tid, trial.key);
    }
  }

  // --- snapshots --------------------------------------------------------------------------------

  private children(node: RunsNode | undefined): RunsNode[] {
    if (node === undefined) {
      const experiments = this.experimentOrder
        .map((id) => this.experiments.get(id))
        .filter((e): e is ExperimentEntry => e !== undefined)
        .map((e) => experimentNode(e.experiment));
      // Live studies whose experiment is unknown or not listed (yet) show at the top level.
      const homeless = [...this.studies.values()]
        .filter((s) => s.experimentId === undefined || !this.experiments.has(s.experimentId))
        .map((s) => this.studyNode(s));
      return [...experiments, ...sortStudies(homeless)];
    }
    if (node.kind === 'experiment') {
      const studies = [...this.studies.values()]
        .filter((s) => s.experimentId === node.experimentId)
        .map((s) => this.studyNode(s));
      return sortStudies(studies);
    }
    if (node.kind === 'study') {
      const study = this.studies.get(node.id);
      if (!study) return [];
      const best = this.best(study);
      return [...study.trials.values()].map((t) => this.trialNode(study, t, best)).sort(byTrialOrder);
    }
    return [];
  }

  private parentNodeOf(study: StudyEntry): RunsNode | undefined {
    const entry = study.experimentId ? this.experiments.get(study.experimentId) : undefined;
    return entry ? experimentNode(entry.experiment) : undefined;
  }

  private studyNode(study: StudyEntry): StudyNode {
    const info = study.run?.info;
    const liveStarts = [...study.trials.values()]
      .map((t) => t.live?.startedAt)
      .filter((t): t is number => t !== undefined);
    const startTime = info?.startTime ?? study.liveStudy?.startedAt ?? (liveStarts.length > 0 ? Math.min(...liveStarts) : undefined);
    const ended = study.liveStudy?.ended;
    const liveStatus = ended ? parentEndStatus(ended.reason, ended.reason === 'failed') : undefined;
    // MLflow's word once it has the study ended, else the engine's end.
    const mlflowEnded = info !== undefined && rank(info.status) === 2;
    const status: RunStatus = mlflowEnded ? info.status : (liveStatus ?? info?.status ?? 'RUNNING');
    const end = mlflowEnded ? (info.endTime ?? ended?.at) : rank(status) < 2 ? this.now() : (ended?.at ?? lastTrialEnd(study));
    const best = this.best(study);
    return {
      kind: 'study',
      id: study.key,
      parent:
        study.experimentId !== undefined && this.experiments.has(study.experimentId)
          ? `experiment:${study.experimentId}`
          : undefined,
      experimentId: study.experimentId,
      runId: study.runId,
      studyId: study.studyId,
      label: info?.runName ?? study.label ?? `study ${study.studyId ?? study.runId ?? ''}`.trim(),
      status,
      ...(ended?.reason !== undefined ? { endReason: ended.reason } : {}),
      startTime,
      durationMs: startTime !== undefined && end !== undefined ? Math.max(0, end - startTime) : undefined,
      bestLoss: best?.loss,
      trialCount: this.trialCount(study),
      live: study.run === undefined,
    };
  }

  /** The parent's count stands for the trials until all of them are loaded; live ones beyond it count too. */
  private trialCount(study: StudyEntry): number {
    const held = study.trials.size;
    const allLoaded = study.paging.loaded && study.paging.nextPageToken === undefined;
    const logged = study.run?.data.metrics[TOTAL_TRIALS_METRIC];
    if (allLoaded || logged === undefined || !Number.isFinite(logged)) return held;
    return Math.max(held, Math.round(logged));
  }

  private trialNode(study: StudyEntry, trial: TrialEntry, best: Best | undefined): TrialNode {
    const merged = mergeTrial(trial);
    const end = merged.endTime ?? (rank(merged.status) < 2 ? this.now() : undefined);
    const durationMs =
      merged.startTime !== undefined && end !== undefined && merged.status !== 'SCHEDULED'
        ? Math.max(0, end - merged.startTime)
        : undefined;
    return {
      kind: 'trial',
      id: trial.key,
      parent: study.key,
      runId: trial.runId,
      tid: trial.tid,
      label: trial.tid !== undefined ? `trial ${trial.tid}` : (trial.run?.info.runName ?? trial.runId ?? trial.key),
      status: merged.status,
      loss: merged.loss,
      startTime: merged.startTime,
      durationMs,
      isBest: best !== undefined && best.key === trial.key,
      params: merged.params,
      live: trial.run === undefined,
    };
  }

  /** Lowest finite loss among finished `ok` trials, the server's best included; ties go to the lower tid. */
  private best(study: StudyEntry): Best | undefined {
    let best: Best | undefined;
    const consider = (candidate: Best): void => {
      if (
        best === undefined ||
        candidate.loss < best.loss ||
        (candidate.loss === best.loss && (candidate.tid ?? Infinity) < (best.tid ?? Infinity))
      ) {
        best = candidate;
      }
    };
    for (const trial of study.trials.values()) {
      const merged = mergeTrial(trial);
      if (merged.status === 'FINISHED' && merged.ok && merged.loss !== undefined && Number.isFinite(merged.loss)) {
        consider({ key: trial.key, loss: merged.loss, tid: trial.tid });
      }
    }
    if (study.serverBest) {
      const key = study.serverBest.runId !== undefined ? study.byRun.get(study.serverBest.runId) : undefined;
      const loaded = key ? study.trials.get(key) : undefined;
      // A loaded trial speaks for itself above; an unloaded one still sets the best loss.
      if (!loaded) consider({ key: undefined, loss: study.serverBest.loss, tid: undefined });
    }
    return best;
  }

  private emit(node: RunsNode | undefined): void {
    this.changes.emit({ node });
  }
}

// --- helpers ------------------------------------------------------------------------------------

interface Best {
  key: string | undefined;
  loss: number;
  tid: number | undefined;
}

interface MergedTrial {
  status: RunStatus;
  loss?: number;
  ok: boolean;
  startTime?: number;
  endTime?: number;
  params: Record<string, string>;
}

/** MLflow's record and the live one: the further-advanced status wins, MLflow on a tie. */
function mergeTrial(trial: TrialEntry): MergedTrial {
  const run = trial.run;
  const live = trial.live;
  const runStatus = run?.info.status;
  const liveStatus = live ? LIVE_STATUS[live.state] : undefined;
  const status: RunStatus =
    runStatus !== undefined && liveStatus !== undefined
      ? rank(liveStatus) > rank(runStatus)
        ? liveStatus
        : runStatus
      : (runStatus ?? liveStatus ?? 'RUNNING');
  const liveParams = live?.params
    ? Object.fromEntries(Object.entries(live.params).map(([k, v]) => [k, v === null ? 'None' : String(v)]))
    : {};
  const runLoss = run?.data.metrics[LOSS_METRIC];
  const runTagStatus = run?.data.tags[TRIAL_STATUS_TAG];
  return {
    status,
    loss: runLoss ?? live?.loss,
    ok: resultOk(runTagStatus) && resultOk(live?.resultStatus),
    startTime: run?.info.startTime ?? live?.startedAt,
    endTime: run?.info.endTime ?? live?.endedAt,
    params: run && Object.keys(run.data.params).length > 0 ? run.data.params : liveParams,
  };
}

/**
 * Later events refine earlier ones: a field an event leaves out keeps its earlier value, and a
 * state never goes back (a late `running` does not undo `done`).
 */
function mergeLive(earlier: LiveTrialEvent | undefined, later: LiveTrialEvent | undefined): LiveTrialEvent | undefined {
  if (!earlier || !later) return earlier ?? later;
  const merged = { ...earlier, ...definedOnly(later) } as LiveTrialEvent;
  if (rank(LIVE_STATUS[earlier.state]) > rank(LIVE_STATUS[later.state])) merged.state = earlier.state;
  return merged;
}

function resultOk(status: string | undefined): boolean {
  return status === undefined || status === 'ok';
}

function isTaggedStudy(run: MlflowRun): boolean {
  const tags = run.data.tags;
  return Boolean(tags[STUDY_ID_TAG]) || tags[RUN_SOURCE_TAG] === RUN_SOURCE_HYPEROPT || Boolean(tags[FMIN_UUID_TAG]);
}

function hasLive(study: StudyEntry): boolean {
  if (study.liveStudy) return true;
  for (const trial of study.trials.values()) if (trial.live) return true;
  return false;
}

function lastTrialEnd(study: StudyEntry): number | undefined {
  let end: number | undefined;
  for (const trial of study.trials.values()) {
    const at = trial.run?.info.endTime ?? trial.live?.endedAt;
    if (at !== undefined && (end === undefined || at > end)) end = at;
  }
  return end;
}

function parseTid(raw: string | undefined): number | undefined {
  if (raw === undefined || !/^\d+$/.test(raw.trim())) return undefined;
  return Number(raw.trim());
}

function lookupTrial(study: StudyEntry, tid: number | undefined, runId: string | undefined): TrialEntry | undefined {
  const key = (tid !== undefined && study.byTid.get(tid)) || (runId && study.byRun.get(runId));
  return key ? study.trials.get(key) : undefined;
}

function addTrial(study: StudyEntry, tid: number | undefined, runId: string | undefined): TrialEntry {
  const key = `${study.key}/${tid !== undefined ? `tid:${tid}` : `run:${runId ?? study.trials.size}`}`;
  const trial: TrialEntry = { key, tid, runId };
  study.trials.set(key, trial);
  if (tid !== undefined) study.byTid.set(tid, key);
  if (runId) study.byRun.set(runId, key);
  return trial;
}

function removeTrial(study: StudyEntry, trial: TrialEntry): void {
  study.trials.delete(trial.key);
  if (trial.tid !== undefined && study.byTid.get(trial.tid) === trial.key) study.byTid.delete(trial.tid);
  if (trial.runId && study.byRun.get(trial.runId) === trial.key) study.byRun.delete(trial.runId);
}

function experimentNode(experiment: MlflowExperiment): ExperimentNode {
  return {
    kind: 'experiment',
    id: `experiment:${experiment.experimentId}`,
    parent: undefined,
    experimentId: experiment.experimentId,
    label: experiment.name,
    status: experiment.lifecycleStage,
  };
}

/** Live-only studies first (they are the newest), then by start time, newest first. */
function sortStudies(studies: StudyNode[]): StudyNode[] {
  return studies.sort((a, b) => {
    if (a.live !== b.live) return a.live ? -1 : 1;
    return (b.startTime ?? 0) - (a.startTime ?? 0);
  });
}

function byTrialOrder(a: TrialNode, b: TrialNode): number {
  if (a.tid !== undefined && b.tid !== undefined) return a.tid - b.tid;
  if (a.tid !== undefined) return -1;
  if (b.tid !== undefined) return 1;
  return (a.startTime ?? 0) - (b.startTime ?? 0);
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

async function mapLimited<T, R>(items: T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index] as T);
    }
  });
  await Promise.all(lanes);
  return results;
}
