/**
 * The studies this window knows without MLflow: the live ones the background service reports
 * (snapshot + events) and the past ones read from the journal directory. Live data wins over a
 * journal read of the same study. vscode-free: the tree, status bar, CodeLens and commands read it.
 */
import { dirname } from 'node:path';
import type { EngineEvent, StudySettings } from '../../../core/src/coordinator/events';
import { Emitter } from '../../../core/src/events';
import type { StudyRecord } from '../../../core/src/journal/journal';
import type { StudyInfo, StudyState } from '../../../core/src/journal/records';
import { driverLogPath } from '../../../core/src/journal/trialLogs';
import { lossToNumber, type ParamValue } from '../../../core/src/protocol/common';
import type { ControlError, RunSnapshot, Snapshot, StudySnapshot, TrialSnapshot } from '../../../core/src/protocol/control';

export type TrialState = 'queued' | 'running' | 'done' | 'error' | 'cancel';

export interface LocalTrial {
  tid: number;
  state: TrialState;
  params: Record<string, ParamValue>;
  loss?: number;
  /** The objective's own status (`ok`, `fail`); only `ok` trials compete for best. */
  resultStatus?: string;
  error?: { type: string; message: string };
  slot?: string;
  startedAt?: number;
  endedAt?: number;
}

export interface LocalStudy {
  id: string;
  info: StudyInfo;
  journal: string;
  state: StudyState;
  reason?: string;
  message?: string;
  settings?: StudySettings;
  openedAt: number;
  endedAt?: number;
  trials: Map<number, LocalTrial>;
  /** The background service reports it (it runs, or ran, in a run the service still holds). */
  live: boolean;
  /** The study's MLflow parent run, when the driver created one. */
  tracking?: { uri: string; experimentId: string; parentRunId: string };
}

export interface LiveRun {
  run: string;
  script: string;
  executors: string[];
  state: RunSnapshot['state'];
  startedAt: number;
  endedAt?: number;
  code?: number;
  error?: ControlError;
  driverLog: string;
  journalDir: string;
  trackingUri: string | null;
  studies: string[];
}

export interface StoreChange {
  /** Studies that changed; undefined: the whole list. */
  studies?: string[];
  runs?: boolean;
}

export interface StudyCounts {
  total: number;
  finished: number;
  ok: number;
  failed: number;
  cancelled: number;
  running: number;
  queued: number;
}

export class StudyStore {
  readonly changes = new Emitter<StoreChange>();
  private readonly byId = new Map<string, LocalStudy>();
  private readonly liveRuns = new Map<string, LiveRun>();

  // ---- feeding ---------------------------------------------------------------------------------

  /** Past studies from the journal directory; a study the service reports keeps its live data. */
  loadJournals(records: readonly StudyRecord[], options: { prune?: boolean } = {}): void {
    const seen = new Set<string>();
    for (const record of records) {
      seen.add(record.info.id);
      const existing = this.byId.get(record.info.id);
      if (existing?.live) continue;
      this.byId.set(record.info.id, fromJournal(record));
    }
    if (options.prune !== false) for (const [id, study] of this.byId) if (!study.live && !seen.has(id)) this.byId.delete(id);
    this.changes.emit({});
  }

  /** A (re-)attach: the service's runs replace what this window knew of live runs. */
  applySnapshot(snapshot: Snapshot): void {
    this.liveRuns.clear();
    for (const study of this.byId.values()) study.live = false;
    for (const run of snapshot.runs) this.putRun(run);
    this.changes.emit({ runs: true });
  }

  applyRunStarted(run: RunSnapshot): void {
    this.putRun(run);
    this.changes.emit({ runs: true });
  }

  applyRunEnded(runId: string, code: number, error?: ControlError): void {
    const run = this.liveRuns.get(runId);
    if (!run) return;
    run.state = 'ended';
    run.code = code;
    run.error = error;
    run.endedAt = Date.now();
    // A study whose driver died without an end event is over all the same.
    for (const id of run.studies) {
      const study = this.byId.get(id);
      if (study && study.state !== 'ended') {
        study.state = 'ended';
        study.reason ??= 'interrupted';
        study.endedAt = run.endedAt;
      }
    }
    this.changes.emit({ runs: true, studies: [...run.studies] });
  }

  applyEvent(runId: string, event: EngineEvent, now: number = Date.now()): void {
    const run = this.liveRuns.get(runId);
    if (event.type === 'study.opened') {
      const study: LocalStudy = {
        id: event.study.id,
        info: event.study,
        journal: event.journal,
        state: 'running',
        settings: { ...event.settings },
        openedAt: now,
        trials: event.resumed ? (this.byId.get(event.study.id)?.trials ?? new Map()) : new Map(),
        live: true,
      };
      this.byId.set(study.id, study);
      if (run && !run.studies.includes(study.id)) run.studies.push(study.id);
      if (run) run.state = 'running';
      this.changes.emit({ studies: [study.id], runs: true });
      return;
    }
    if (event.type === 'notice' || event.type === 'trial.output' || event.type === 'study.closed') return;
    const study = this.byId.get(event.study);
    if (!study) return;
    switch (event.type) {
      case 'study.state':
        study.state = event.state;
        study.reason = event.reason;
        study.message = event.message;
        if (event.state === 'ended') study.endedAt = now;
        break;
      case 'study.settings':
        study.settings = { ...event.settings };
        break;
      case 'study.tracking':
        study.tracking = { uri: event.uri, experimentId: event.experimentId, parentRunId: event.parentRunId };
        break;
      case 'trial.queued':
        study.trials.set(event.tid, { tid: event.tid, state: 'queued', params: event.params });
        break;
      case 'trial.started': {
        const trial = study.trials.get(event.tid) ?? { tid: event.tid, state: 'running', params: {} };
        Object.assign(trial, { state: 'running', slot: event.slot, startedAt: event.at });
        study.trials.set(event.tid, trial);
        break;
      }
      case 'trial.requeued': {
        const trial = study.trials.get(event.tid);
        if (trial) trial.state = 'queued';
        break;
      }
      case 'trial.finished': {
        const trial = study.trials.get(event.tid) ?? { tid: event.tid, state: event.state, params: {} };
        trial.state = event.state;
        trial.endedAt = event.endedAt;
        if (event.startedAt !== undefined) trial.startedAt = event.startedAt;
        if (event.slot) trial.slot = event.slot;
        if (event.summary) {
          trial.loss = lossToNumber(event.summary.loss);
          trial.resultStatus = event.summary.status;
        }
        if (event.error) trial.error = { type: event.error.type, message: event.error.message };
        study.trials.set(event.tid, trial);
        break;
      }
    }
    this.changes.emit({ studies: [study.id] });
  }

  private putRun(snapshot: RunSnapshot): void {
    this.liveRuns.set(snapshot.run, {
      run: snapshot.run,
      script: snapshot.script,
      executors: snapshot.executors,
      state: snapshot.state,
      startedAt: snapshot.startedAt,
      endedAt: snapshot.endedAt,
      code: snapshot.code,
      error: snapshot.error,
      driverLog: snapshot.driverLog,
      journalDir: snapshot.journalDir,
      trackingUri: snapshot.trackingUri,
      studies: snapshot.studies.map((s) => s.info.id),
    });
    for (const study of snapshot.studies) this.byId.set(study.info.id, fromSnapshot(study, snapshot.state !== 'ended' || study.state !== 'ended'));
  }

  // ---- reading ---------------------------------------------------------------------------------

  study(id: string): LocalStudy | undefined {
    return this.byId.get(id);
  }

  /** Newest first. */
  studies(): LocalStudy[] {
    return [...this.byId.values()].sort((a, b) => b.info.createdAt - a.info.createdAt);
  }

  /** Studies that run now (not ended) in an active run of the service. */
  activeStudies(): LocalStudy[] {
    return this.studies().filter((s) => s.live && s.state !== 'ended');
  }

  runs(): LiveRun[] {
    return [...this.liveRuns.values()];
  }

  run(id: string): LiveRun | undefined {
    return this.liveRuns.get(id);
  }

  activeRuns(): LiveRun[] {
    return this.runs().filter((r) => r.state !== 'ended');
  }

  /** The run a study belongs to, if the service holds it. */
  runOf(studyId: string): LiveRun | undefined {
    return this.runs().find((r) => r.studies.includes(studyId));
  }

  driverLogOf(study: LocalStudy): string {
    return this.runOf(study.id)?.driverLog ?? driverLogPath(dirname(study.journal), study.info.runId);
  }
}

// ---- per-study figures -----------------------------------------------------------------------------

export function countsOf(study: LocalStudy): StudyCounts {
  const c: StudyCounts = { total: 0, finished: 0, ok: 0, failed: 0, cancelled: 0, running: 0, queued: 0 };
  for (const t of study.trials.values()) {
    c.total += 1;
    if (t.state === 'done') {
      c.finished += 1;
      if (t.resultStatus === undefined || t.resultStatus === 'ok') c.ok += 1;
      else c.failed += 1;
    } else if (t.state === 'error') {
      c.finished += 1;
      c.failed += 1;
    } else if (t.state === 'cancel') {
      c.finished += 1;
      c.cancelled += 1;
    } else if (t.state === 'running') c.running += 1;
    else c.queued += 1;
  }
  return c;
}

/** Lowest finite loss among finished `ok` trials; ties go to the lower tid. */
export function bestOf(study: LocalStudy): LocalTrial | undefined {
  let best: LocalTrial | undefined;
  for (const t of study.trials.values()) {
    if (t.state !== 'done' || (t.resultStatus !== undefined && t.resultStatus !== 'ok')) continue;
    if (t.loss === undefined || !Number.isFinite(t.loss)) continue;
    if (!best || t.loss < best.loss! || (t.loss === best.loss && t.tid < best.tid)) best = t;
  }
  return best;
}

/** When an ended study ended: its end event's time, else its last trial's end (a snapshot has neither the event nor its time). */
export function endedAtOf(study: LocalStudy): number | undefined {
  if (study.state !== 'ended') return undefined;
  if (study.endedAt !== undefined) return study.endedAt;
  let end: number | undefined;
  for (const t of study.trials.values()) if (t.endedAt !== undefined && (end === undefined || t.endedAt > end)) end = t.endedAt;
  return end;
}

/** Epoch ms of the study's deadline, when it has a timeout. */
export function deadlineOf(study: LocalStudy): number | undefined {
  const settings = study.settings;
  if (!settings) return undefined;
  if (settings.deadline !== null) return settings.deadline;
  return settings.timeout !== null ? study.openedAt + settings.timeout * 1000 : undefined;
}

function fromJournal(record: StudyRecord): LocalStudy {
  const trials = new Map<number, LocalTrial>();
  for (const t of record.trials.values()) {
    trials.set(t.tid, {
      tid: t.tid,
      // A journal left mid-study by a dead driver has trials that will never finish.
      state: record.state === 'ended' && (t.state === 'running' || t.state === 'queued') ? 'cancel' : t.state,
      params: t.params,
      ...(t.summary ? { loss: lossToNumber(t.summary.loss), resultStatus: t.summary.status } : {}),
      ...(t.error ? { error: { type: t.error.type, message: t.error.message } } : {}),
      ...(t.slot ? { slot: t.slot } : {}),
      ...(t.startedAt !== undefined ? { startedAt: t.startedAt } : {}),
      ...(t.endedAt !== undefined ? { endedAt: t.endedAt } : {}),
    });
  }
  return {
    id: record.info.id,
    info: record.info,
    journal: record.path,
    // Not live here: a journal that says running belongs to a study no service runs any more.
    state: 'ended',
    reason: record.state === 'ended' ? record.endReason : 'interrupted',
    message: record.endMessage,
    openedAt: record.info.createdAt,
    endedAt: record.endedAt,
    trials,
    live: false,
    ...(record.tracking ? { tracking: record.tracking } : {}),
  };
}

function fromSnapshot(study: StudySnapshot, live: boolean): LocalStudy {
  const trials = new Map<number, LocalTrial>();
  for (const t of study.trials) trials.set(t.tid, trialFromSnapshot(t));
  return {
    id: study.info.id,
    info: study.info,
    journal: study.journal,
    state: study.state,
    reason: study.reason,
    message: study.message,
    settings: { ...study.settings },
    openedAt: study.openedAt,
    ...(study.endedAt !== undefined ? { endedAt: study.endedAt } : {}),
    trials,
    live,
    ...(study.tracking ? { tracking: study.tracking } : {}),
  };
}

function trialFromSnapshot(t: TrialSnapshot): LocalTrial {
  return {
    tid: t.tid,
    state: t.state,
    params: t.params,
    ...(t.summary ? { loss: lossToNumber(t.summary.loss), resultStatus: t.summary.status } : {}),
    ...(t.error ? { error: t.error } : {}),
    ...(t.slot ? { slot: t.slot } : {}),
    ...(t.startedAt !== undefined ? { startedAt: t.startedAt } : {}),
    ...(t.endedAt !== undefined ? { endedAt: t.endedAt } : {}),
  };
}
