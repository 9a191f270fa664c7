/**
 * The host's model of one study for the trials webview: fed with engine events (a live study),
 * a journal (a past one) or rows from MLflow, it builds the webview's `init`, `trials` and
 * `state` messages. vscode-free: the extension only forwards what this produces.
 */
import type { EngineEvent, StudySettings } from '../coordinator/events';
import type { StudyRecord } from '../journal/journal';
import type { StudyInfo } from '../journal/records';
import { lossToNumber } from '../protocol/common';
import {
  type Capabilities,
  type Capability,
  type InitMessage,
  type StateMessage,
  type StudyHeader,
  type StudySettingsView,
  type StudySource,
  type StudyStatus,
  type TrialCounts,
  type TrialRow,
  type TrialsMessage,
  WEBVIEW_PROTOCOL_VERSION,
  encodeTrials,
} from '../protocol/webview';
import type { ImportanceTrial } from './importance';

// The webview's settings shape is the coordinator's: this line fails to compile if they drift.
const _settingsMatch: [StudySettings, StudySettingsView] extends [StudySettingsView, StudySettings] ? true : never = true;
void _settingsMatch;

/** Error texts sent to the webview are cut to this many characters (tracebacks stay in the logs). */
export const MAX_ERROR_TEXT = 2_000;

export function studyTitle(info: Pick<StudyInfo, 'script' | 'callSite' | 'ordinal'>): string {
  const file = info.callSite.file.split(/[\\/]/).pop() ?? info.script;
  return `${file}:${info.callSite.line} (fmin #${info.ordinal + 1})`;
}

export function studyHeader(info: StudyInfo, source: StudySource): StudyHeader {
  return {
    id: info.id,
    title: studyTitle(info),
    runId: info.runId || null,
    script: info.script,
    algo: info.algo,
    maxEvals: info.maxEvals,
    executors: info.executors,
    source,
    space: info.space,
    createdAt: info.createdAt,
  };
}

export function settingsOf(info: StudyInfo): StudySettingsView {
  return {
    timeout: info.timeout,
    deadline: info.timeout !== null ? info.createdAt + info.timeout * 1000 : null,
    parallelism: Math.max(1, info.parallelism),
    lossThreshold: info.lossThreshold,
    noProgressTrials: null,
    trialTimeout: info.trialTimeout,
  };
}

export interface CapabilityOptions {
  /** The study runs in this window's engine, so its controls can reach it. */
  controllable: boolean;
  /** Why not, when not controllable (shown next to the controls). */
  notControllableReason?: string;
  /** Trial logs can be opened (a journal directory with trial logs is known). */
  logs: boolean;
  /** MLflow runs can be opened (a tracking server is known). */
  mlflow: boolean;
  mlflowReason?: string;
}

/** Which controls apply to a study in this state, with the reason for the ones that do not. */
export function capabilitiesFor(state: StudyStatus['state'], options: CapabilityOptions): Capabilities {
  const off = (reason: string): Capability => ({ enabled: false, reason });
  const on: Capability = { enabled: true };
  let steer: Capability = on;
  if (!options.controllable) steer = off(options.notControllableReason ?? 'This study is not running in this window.');
  else if (state === 'ended') steer = off('The study has ended.');
  else if (state === 'cancelling') steer = off('The study is being cancelled.');
  return {
    stop: steer.enabled && state === 'stopping' ? off('The study is already stopping.') : steer,
    cancel: steer,
    timeout: steer,
    policy: steer.enabled && state === 'stopping' ? off('The study is stopping: no new trials start.') : steer,
    parallelism: steer.enabled && state === 'stopping' ? off('The study is stopping: no new trials start.') : steer,
    openLogs: options.logs ? on : off('No trial logs for this study.'),
    openRun: options.mlflow ? on : off(options.mlflowReason ?? 'No MLflow tracking server for this study.'),
  };
}

function cut(text: string): string {
  return text.length > MAX_ERROR_TEXT ? `${text.slice(0, MAX_ERROR_TEXT - 1)}…` : text;
}

export class StudyViewModel {
  private readonly rows = new Map<number, TrialRow>();
  private readonly dirty = new Set<number>();
  private state: StudyStatus['state'] = 'running';
  private reason: string | undefined;
  private message: string | undefined;
  private endedAt: number | null = null;
  private best: { tid: number; loss: number } | null = null;

  constructor(
    readonly header: StudyHeader,
    private settings: StudySettingsView,
    private startedAt: number = header.createdAt,
  ) {}

  get id(): string {
    return this.header.id;
  }

  get studyState(): StudyStatus['state'] {
    return this.state;
  }

  /** A past study read back from its journal. */
  static fromJournal(record: StudyRecord, source: StudySource = 'journal'): StudyViewModel {
    const model = new StudyViewModel(studyHeader(record.info, source), settingsOf(record.info));
    for (const t of record.trials.values()) {
      model.upsert({
        tid: t.tid,
        state: t.state,
        params: t.params,
        ...(t.summary ? { loss: t.summary.loss, status: t.summary.status } : {}),
        ...(t.slot ? { slot: t.slot } : {}),
        ...(t.startedAt !== undefined ? { startedAt: t.startedAt } : {}),
        ...(t.endedAt !== undefined ? { endedAt: t.endedAt } : {}),
        ...(t.attempts > 0 ? { attempt: t.attempts } : {}),
        ...(t.error ? { error: { type: t.error.type, message: cut(t.error.message) } } : {}),
      });
    }
    model.state = record.state;
    model.reason = record.endReason;
    model.message = record.endMessage;
    model.endedAt = record.endedAt ?? null;
    model.dirty.clear();
    return model;
  }

  /**
   * Puts the model in the state another record of the study holds (the window's store), with
   * the time it ended: an ended study's clock stopped then, not when the panel opened.
   */
  setState(state: StudyStatus['state'], options: { reason?: string; message?: string; endedAt?: number } = {}): void {
    this.state = state;
    this.reason = options.reason;
    this.message = options.message;
    this.endedAt = state === 'ended' ? (options.endedAt ?? null) : null;
  }

  /** Applies an engine event; returns true when it concerned this study. */
  apply(event: EngineEvent, now: number = Date.now()): boolean {
    switch (event.type) {
      case 'study.opened':
        if (event.study.id !== this.id) return false;
        this.settings = { ...event.settings };
        this.startedAt = now;
        this.state = 'running';
        this.reason = undefined;
        this.message = undefined;
        this.endedAt = null;
        return true;
      case 'study.state':
        if (event.study !== this.id) return false;
        this.state = event.state;
        this.reason = event.reason;
        this.message = event.message;
        this.endedAt = event.state === 'ended' ? now : null;
        return true;
      case 'study.settings':
        if (event.study !== this.id) return false;
        this.settings = { ...event.settings };
        return true;
      case 'study.closed':
      case 'study.tracking':
        return event.study === this.id;
      case 'trial.queued':
        if (event.study !== this.id) return false;
        this.upsert({ tid: event.tid, state: 'queued', params: event.params });
        return true;
      case 'trial.started': {
        if (event.study !== this.id) return false;
        const row = this.rows.get(event.tid);
        this.upsert({ tid: event.tid, params: row?.params ?? {}, state: 'running', slot: event.slot, startedAt: event.at, attempt: event.attempt, ...(row?.runId ? { runId: row.runId } : {}) });
        return true;
      }
      case 'trial.requeued': {
        if (event.study !== this.id) return false;
        const row = this.rows.get(event.tid);
        if (row) this.upsert({ tid: row.tid, params: row.params, state: 'queued', ...(row.attempt !== undefined ? { attempt: row.attempt } : {}) });
        return true;
      }
      case 'trial.finished': {
        if (event.study !== this.id) return false;
        const row = this.rows.get(event.tid);
        const slot = event.slot ?? row?.slot;
        const startedAt = event.startedAt ?? row?.startedAt;
        this.upsert({
          tid: event.tid,
          params: row?.params ?? {},
          state: event.state,
          ...(event.summary ? { loss: event.summary.loss, status: event.summary.status } : {}),
          ...(slot ? { slot } : {}),
          ...(startedAt !== undefined ? { startedAt } : {}),
          endedAt: event.endedAt,
          ...(row?.attempt !== undefined ? { attempt: row.attempt } : {}),
          ...(event.error ? { error: { type: event.error.type, message: cut(event.error.message) } } : {}),
          ...(row?.runId ? { runId: row.runId } : {}),
        });
        return true;
      }
      case 'trial.output':
        return false;
      case 'notice':
        return false;
    }
  }

  /** Replaces (or adds) a trial's row, for rows that come from elsewhere (MLflow). */
  upsert(row: TrialRow): void {
    this.rows.set(row.tid, row);
    this.dirty.add(row.tid);
    if (row.state === 'done' && (row.status === undefined || row.status === 'ok')) {
      const loss = lossToNumber(row.loss);
      if (loss !== undefined && Number.isFinite(loss) && (this.best === null || loss < this.best.loss)) this.best = { tid: row.tid, loss };
    }
  }

  /** Sets a trial's MLflow run id once it is known. */
  setRunId(tid: number, runId: string): void {
    const row = this.rows.get(tid);
    if (!row || row.runId === runId) return;
    this.upsert({ ...row, runId });
  }

  trial(tid: number): TrialRow | undefined {
    return this.rows.get(tid);
  }

  counts(): TrialCounts {
    const c: TrialCounts = { total: 0, done: 0, ok: 0, failed: 0, cancelled: 0, running: 0, queued: 0 };
    for (const t of this.rows.values()) {
      c.total += 1;
      if (t.state === 'done') {
        c.done += 1;
        if (t.status === undefined || t.status === 'ok') c.ok += 1;
        else c.failed += 1;
      } else if (t.state === 'error') c.failed += 1;
      else if (t.state === 'cancel') c.cancelled += 1;
      else if (t.state === 'running') c.running += 1;
      else c.queued += 1;
    }
    return c;
  }

  /**
   * Whether this model shows a study in `state` with these trial counts. A host whose model
   * follows engine events, while another record of the study (a snapshot after a re-attach, a
   * journal read) can change without one, compares the two with this and builds the model again
   * from that record when they differ.
   */
  agrees(state: StudyStatus['state'], counts: Omit<TrialCounts, 'done'>): boolean {
    if (this.state !== state) return false;
    const mine = this.counts();
    return mine.total === counts.total && mine.ok === counts.ok && mine.failed === counts.failed && mine.cancelled === counts.cancelled && mine.running === counts.running && mine.queued === counts.queued;
  }

  status(now: number = Date.now()): StudyStatus {
    return {
      state: this.state,
      ...(this.reason !== undefined ? { reason: this.reason } : {}),
      ...(this.message !== undefined ? { message: cut(this.message) } : {}),
      counts: this.counts(),
      best: this.best,
      settings: { ...this.settings },
      startedAt: this.startedAt,
      endedAt: this.endedAt,
      now,
    };
  }

  /** The answer to the webview's `ready`: everything so far. Clears the pending updates. */
  init(capabilities: Capabilities, now: number = Date.now()): InitMessage {
    this.dirty.clear();
    return {
      type: 'init',
      protocol: WEBVIEW_PROTOCOL_VERSION,
      study: this.header,
      status: this.status(now),
      capabilities,
      trials: encodeTrials([...this.rows.values()].sort((a, b) => a.tid - b.tid)),
    };
  }

  /** The rows changed since the last `init` or `takeUpdates`, or undefined when none did. */
  takeUpdates(): TrialsMessage | undefined {
    if (this.dirty.size === 0) return undefined;
    const trials: TrialRow[] = [];
    for (const tid of this.dirty) {
      const row = this.rows.get(tid);
      if (row) trials.push(row);
    }
    this.dirty.clear();
    return { type: 'trials', trials: encodeTrials(trials) };
  }

  stateMessage(capabilities?: Capabilities, now: number = Date.now()): StateMessage {
    return { type: 'state', status: this.status(now), ...(capabilities ? { capabilities } : {}) };
  }

  /** The finished trials with a finite loss, for `computeImportances`. */
  importanceTrials(): ImportanceTrial[] {
    const out: ImportanceTrial[] = [];
    for (const t of this.rows.values()) {
      if (t.state !== 'done' || (t.status !== undefined && t.status !== 'ok')) continue;
      const loss = lossToNumber(t.loss);
      if (loss !== undefined && Number.isFinite(loss)) out.push({ params: t.params, loss });
    }
    return out;
  }

  get finishedCount(): number {
    let n = 0;
    for (const t of this.rows.values()) if (t.state === 'done' || t.state === 'error' || t.state === 'cancel') n += 1;
    return n;
  }
}
