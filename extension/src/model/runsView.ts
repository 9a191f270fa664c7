/**
 * What the Runs tree lists, vscode-free: the runs model (MLflow's experiments > studies > trials)
 * told what this window's service reports of its tracked studies, and the store's studies that
 * the model does not place under an experiment. runsTree.ts turns the rows into tree items.
 *
 * A tracked study the service runs is the model's from its `study.tracking` event on (the parent
 * run exists then): it shows under its experiment with the service's counts and state, and it
 * is the same row once MLflow lists its parent run. Before that event, and with tracking off, it
 * is a row of its own at the top.
 */
import { parentRunName } from '../../../core/src/mlflow/runLayout';
import type { LiveStudyEvent, LiveTrialEvent, RunsModel, RunsNode } from '../../../core/src/mlflow/runsModel';
import { endedAtOf, type LocalStudy, type StoreChange, type StudyStore } from './studyStore';

export interface RootRows {
  /** Studies of this window that the model does not show under an experiment, newest first. */
  local: LocalStudy[];
  /** The model's top level (experiments), empty without a model. */
  mlflow: RunsNode[];
  /** Why MLflow's top level could not be read. */
  error?: unknown;
}

export class RunsView {
  private model: RunsModel | undefined;
  private uri: string | undefined;
  private readonly dirty = new Set<string>();
  private dirtyAll = false;
  /** Per study, each trial's state and end as last told to the model: a redraw tells only what changed. */
  private readonly told = new Map<string, Map<number, string>>();

  constructor(private readonly store: StudyStore) {
    store.changes.on((change) => this.changed(change));
  }

  get runs(): RunsModel | undefined {
    return this.model;
  }

  get trackingUri(): string | undefined {
    return this.uri;
  }

  /** Reads MLflow at `uri` through `model`; every study the service reports is told to it. */
  connect(model: RunsModel, uri: string): void {
    this.model = model;
    this.uri = uri;
    this.told.clear();
    this.dirtyAll = true;
    this.flush();
  }

  disconnect(): void {
    this.model = undefined;
    this.uri = undefined;
  }

  /**
   * Tells the model what the store learnt since the last flush. The store changes once per
   * engine event; the tree flushes once per redraw, so a burst of events costs one pass.
   */
  flush(): void {
    const model = this.model;
    if (!model) {
      this.dirty.clear();
      this.dirtyAll = false;
      return;
    }
    const studies = this.dirtyAll ? this.store.studies() : [...this.dirty].map((id) => this.store.study(id));
    this.dirty.clear();
    this.dirtyAll = false;
    for (const study of studies) {
      if (!study || !this.tracks(study)) continue;
      model.applyLiveStudy(liveStudyOf(study));
      let told = this.told.get(study.id);
      if (!told) this.told.set(study.id, (told = new Map()));
      for (const trial of liveTrialsOf(study)) {
        const seen = `${trial.state}:${trial.endedAt ?? ''}:${trial.loss ?? ''}`;
        if (told.get(trial.tid) === seen) continue;
        told.set(trial.tid, seen);
        model.applyLiveEvent(trial);
      }
    }
  }

  /** The top level: MLflow's experiments and the studies that are not under one of them. */
  async root(): Promise<RootRows> {
    this.flush();
    let mlflow: RunsNode[] = [];
    let error: unknown;
    if (this.model) {
      try {
        mlflow = await this.model.getChildren(undefined);
      } catch (e) {
        error = e;
      }
    }
    const listed = new Set(mlflow.flatMap((n) => (n.kind === 'experiment' ? [n.experimentId] : [])));
    const local = this.store.studies().filter((s) => !this.underExperiment(s, listed));
    return { local, mlflow: mlflow.filter((n) => n.kind === 'experiment'), ...(error !== undefined ? { error } : {}) };
  }

  /**
   * True when the study shows under one of MLflow's experiments: the model places it there, or
   * (a past study the model has not read yet) its parent run is in a listed experiment.
   */
  private underExperiment(study: LocalStudy, listed: ReadonlySet<string>): boolean {
    if (!study.tracking || !this.sameServer(study.tracking.uri)) return false;
    const node = this.model?.findStudy({ studyId: study.id, runId: study.tracking.parentRunId });
    if (node) return node.parent !== undefined;
    return listed.has(study.tracking.experimentId);
  }

  /** The service runs it (or ran it in a run it still holds) and logs it to this server. */
  private tracks(study: LocalStudy): boolean {
    return study.live && study.tracking !== undefined && this.sameServer(study.tracking.uri);
  }

  private sameServer(uri: string): boolean {
    return this.uri !== undefined && uri.replace(/\/+$/, '') === this.uri.replace(/\/+$/, '');
  }

  private changed(change: StoreChange): void {
    if (change.studies === undefined) this.dirtyAll = true;
    else for (const id of change.studies) this.dirty.add(id);
  }
}

/** A tracked study as the runs model takes it. */
export function liveStudyOf(study: LocalStudy): LiveStudyEvent {
  return {
    studyId: study.id,
    ...(study.tracking ? { studyRunId: study.tracking.parentRunId, experimentId: study.tracking.experimentId } : {}),
    studyLabel: parentRunName(study.info),
    startedAt: study.info.createdAt,
    ...(study.state === 'ended' ? { ended: { reason: study.reason, at: endedAtOf(study) } } : {}),
  };
}

export function liveTrialsOf(study: LocalStudy): LiveTrialEvent[] {
  return [...study.trials.values()].map((t) => ({
    studyId: study.id,
    tid: t.tid,
    state: t.state,
    params: t.params,
    ...(t.resultStatus !== undefined ? { resultStatus: t.resultStatus } : {}),
    ...(t.loss !== undefined ? { loss: t.loss } : {}),
    ...(t.startedAt !== undefined ? { startedAt: t.startedAt } : {}),
    ...(t.endedAt !== undefined ? { endedAt: t.endedAt } : {}),
  }));
}
