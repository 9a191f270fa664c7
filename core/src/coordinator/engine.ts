/**
 * The coordinator: owns every study of a run, its queue, slots, timeouts, Stop/Cancel and
 * policies, and emits typed events. Event driven throughout: a finished trial asks the driver
 * for the next point and dispatches queued trials in the same turn.
 */
import { randomBytes } from 'node:crypto';
import { InfrastructureError, messageOf, RunnerError } from '../errors';
import { STUDY_ENDING, type Executor, type JobTracking, type Slot, type SlotOutcome } from '../executor';
import { Emitter } from '../events';
import { currentOwner, ensureWritableJournalDir, journalPath, JournalWriter, lastWriteAt, lostAttemptEnds, type StudyRecord } from '../journal/journal';
import type { JournalRecord, StudyInfo, StudyState } from '../journal/records';
import { JOURNAL_VERSION } from '../journal/records';
import { lossToNumber, type TrialError } from '../protocol/common';
import type { DriverToCoordinator, EndReason, ExhaustReason, FinishedTrial, NewTrial, Open } from '../protocol/driver';
import type { DriverConnection } from './driverChannel';
import type { StudyCounts } from '../mlflow/runLayout';
import type { RunWriter, StudyEnd, StudyRuns } from '../mlflow/runWriter';
import type { TrialRun } from '../protocol/worker';
import { DriverServer } from './driverChannel';
import { decideParallelism } from './parallelism';
import type { EngineEvent, StudySettings } from './events';

export interface RunInfo {
  readonly runId: string;
  readonly script: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly python: string;
}

export interface EngineOptions {
  readonly run: RunInfo;
  readonly executors: readonly Executor[];
  readonly journalDir: string;
  readonly token: string;
  /** Seconds; applies to every study (the smaller of this and fmin's own timeout wins). */
  readonly studyTimeout?: number | null;
  readonly trialTimeout?: number | null;
  /** Overrides the executors' slot count as every study's parallelism. */
  readonly parallelism?: number | null;
  /** Earlier studies of the run being resumed, by fmin call ordinal. */
  readonly resume?: ReadonlyMap<number, StudyRecord>;
  /** How often a trial whose worker was lost is tried again before it counts as failed. */
  readonly maxRetries?: number;
}

/** How long closing waits for MLflow writes still queued, unless told otherwise (the rest is left to the sync). */
const TRACKING_DRAIN_MS = 60_000;
/**
 * What one attempt of a trial may print (its log, the terminal, the editor):
 * an objective printing in a tight loop would fill the disk and flood every view.
 */
export const TRIAL_OUTPUT_LIMIT = 8 * 1024 * 1024;

interface QueuedTrial {
  readonly trial: NewTrial;
  attempts: number;
}

interface RunningTrial {
  readonly tid: number;
  readonly slot: Slot;
  readonly abort: AbortController;
  readonly startedAt: number;
  /** Why the engine aborted it, which decides the trial's final state. */
  abortReason?: { state: 'cancel' | 'error'; error: TrialError };
  timer?: NodeJS.Timeout;
}

/** A tracked trial's child run, created at its first dispatch and kept across attempts. */
interface TrialRunRef {
  readonly run: Promise<TrialRun | undefined>;
  readonly params: NewTrial['params'];
  runId?: string;
}

export function newStudyId(now = new Date()): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}-${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}`;
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

const CANCEL_MESSAGES: Record<string, string> = {
  cancelled: 'fmin run cancelled by user',
  timeout: 'fmin run timeout',
  failed: 'fmin run failed',
};

class Study {
  state: StudyState = 'running';
  readonly queue: QueuedTrial[] = [];
  readonly running = new Map<number, RunningTrial>();
  readonly finished = new Map<number, { state: 'done' | 'error' | 'cancel'; ok: boolean; loss?: number }>();
  /** Slots that could not load this study's domain. */
  readonly refusedSlots = new Set<string>();
  pendingSuggest = 0;
  exhausted: ExhaustReason | undefined;
  stopReason: EndReason | undefined;
  endMessage: string | undefined;
  endReason: EndReason | undefined;
  closed = false;
  bestLoss = Infinity;
  sinceImprovement = 0;
  deadlineTimer: NodeJS.Timeout | undefined;
  lastLoadError: TrialError | undefined;
  /** The study's MLflow runs, when the run is tracked. */
  runs: StudyRuns | undefined;
  readonly trialRuns = new Map<number, TrialRunRef>();
  trackingWarned = false;

  constructor(
    readonly info: StudyInfo,
    readonly driver: DriverConnection,
    readonly domain: string,
    readonly journal: JournalWriter,
    readonly settings: StudySettings,
    readonly maxQueueLen: number,
    readonly startedAt: number,
  ) {}

  get id(): string {
    return this.info.id;
  }

  get inFlight(): number {
    return this.queue.length + this.running.size + this.pendingSuggest;
  }
}

export class Engine {
  readonly events = new Emitter<EngineEvent>();
  private readonly server: DriverServer;
  private readonly studies = new Map<string, Study>();
  private readonly order: Study[] = [];
  private readonly idle = new Set<Slot>();
  private readonly busy = new Set<Slot>();
  private readonly lifetime = new AbortController();
  private closing = false;
  /** Writes the studies' MLflow runs when the run is tracked. */
  private tracking: RunWriter | undefined;
  private trackingDrainMs = TRACKING_DRAIN_MS;
  /**
   * A Stop or Cancel of every study asked for while none is open (the script still starting, or
   * between two fmin calls): the next study to open is ended the same way as soon as it opens.
   */
  private pendingEnd: { kind: 'stop'; reason: EndReason } | { kind: 'cancel'; reason: 'cancelled' | 'timeout' | 'failed'; message?: string } | undefined;

  constructor(private readonly options: EngineOptions) {
    this.server = new DriverServer(options.token);
    this.server.connections.on((connection) => this.onDriver(connection));
    this.server.rejected.on((why) => this.emit({ type: 'notice', text: `refused a driver connection: ${why}` }));
  }

  /** Tracks the studies opened from now on in MLflow (the run's tracking is known before its driver starts). */
  useTracking(writer: RunWriter, drainMs = TRACKING_DRAIN_MS): void {
    this.tracking = writer;
    this.trackingDrainMs = drainMs;
  }

  /** Starts the driver server; resolves with its loopback port. */
  async listen(): Promise<number> {
    ensureWritableJournalDir(this.options.journalDir);
    return this.server.listen();
  }

  /** Starts the executors' warm workers; rejects when an executor cannot start any slot. */
  startExecutors(): Promise<void> {
    this.executorsReady ??= this.launchExecutors();
    return this.executorsReady;
  }

  private executorsReady: Promise<void> | undefined;

  private async launchExecutors(): Promise<void> {
    await Promise.all(
      this.options.executors.map((executor) =>
        executor.start(
          {
            slotsChanged: () => this.refreshSlots(),
            notice: (text) => this.emit({ type: 'notice', text }),
          },
          this.lifetime.signal,
        ),
      ),
    );
    this.refreshSlots();
  }

  /** The slots the executors have or will have again (a host still connecting counts; a retired one does not). */
  get slotCapacity(): number {
    return this.options.executors.reduce((n, e) => n + e.slots.filter((s) => !s.gone).length, 0);
  }

  get slotCount(): number {
    return this.options.executors.reduce((n, e) => n + e.slots.filter((s) => s.usable).length, 0);
  }

  /** Live view of a study for progress displays. */
  snapshot(studyId: string): { info: StudyInfo; state: StudyState; settings: StudySettings; running: number; queued: number } | undefined {
    const study = this.studies.get(studyId);
    if (!study) return undefined;
    return { info: study.info, state: study.state, settings: { ...study.settings }, running: study.running.size, queued: study.queue.length };
  }

  activeStudies(): string[] {
    return this.order.filter((s) => s.state !== 'ended').map((s) => s.id);
  }

  /** No new trials; running ones finish; fmin returns. */
  stop(studyId?: string, reason: EndReason = 'stopped'): void {
    if (this.rememberEnd(studyId, { kind: 'stop', reason })) return;
    for (const study of this.select(studyId)) {
      if (study.state !== 'running') continue;
      study.stopReason = reason;
      this.setState(study, 'stopping', reason);
      this.cancelQueued(study, 'stopped before it started');
      this.maybeEnd(study);
    }
  }

  /** Running trials are killed; fmin returns what finished. */
  cancel(studyId?: string, reason: 'cancelled' | 'timeout' | 'failed' = 'cancelled', message?: string): void {
    if (this.rememberEnd(studyId, { kind: 'cancel', reason, ...(message ? { message } : {}) })) return;
    for (const study of this.select(studyId)) {
      if (study.state === 'ended' || study.state === 'cancelling') continue;
      study.stopReason = reason;
      study.endMessage = message ?? CANCEL_MESSAGES[reason];
      this.setState(study, 'cancelling', reason, study.endMessage);
      this.cancelQueued(study, study.endMessage ?? reason);
      for (const run of study.running.values()) {
        run.abortReason ??= { state: 'cancel', error: { type: 'Cancelled', message: study.endMessage ?? reason } };
        run.abort.abort(STUDY_ENDING);
      }
      this.maybeEnd(study);
    }
  }

  /** True when no study is open to take an end asked of all of them: it is kept for the next one (a cancel outranks a stop). */
  private rememberEnd(studyId: string | undefined, end: NonNullable<Engine['pendingEnd']>): boolean {
    if (studyId !== undefined || this.closing || this.activeStudies().length > 0) return false;
    if (end.kind === 'cancel' || this.pendingEnd?.kind !== 'cancel') this.pendingEnd = end;
    return true;
  }

  /** Sets the study timeout in seconds from the study's start (null removes it). */
  setTimeout(studyId: string, seconds: number | null): void {
    const study = this.studies.get(studyId);
    if (!study || study.state === 'ended') return;
    study.settings.timeout = seconds;
    this.armDeadline(study);
    this.settingsChanged(study, { timeout: seconds });
  }

  setParallelism(studyId: string, parallelism: number): void {
    const study = this.studies.get(studyId);
    if (!study || study.state === 'ended' || !(parallelism >= 1)) return;
    study.settings.parallelism = Math.floor(parallelism);
    this.settingsChanged(study, { parallelism: study.settings.parallelism });
    this.pump(study);
  }

  setPolicy(studyId: string, policy: { lossThreshold?: number | null; noProgressTrials?: number | null }): void {
    const study = this.studies.get(studyId);
    if (!study || study.state === 'ended') return;
    if (policy.lossThreshold !== undefined) study.settings.lossThreshold = policy.lossThreshold;
    if (policy.noProgressTrials !== undefined) study.settings.noProgressTrials = policy.noProgressTrials;
    this.settingsChanged(study, policy);
    this.checkPolicies(study);
  }

  /** Kills every trial and worker; marks unfinished studies interrupted in their journals. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const study of this.order) {
      if (study.state !== 'ended') this.interrupt(study, 'the coordinator shut down');
    }
    this.lifetime.abort();
    this.server.close();
    await Promise.all(this.options.executors.map((e) => e.close()));
    const writer = this.tracking;
    if (writer && writer.pending > 0) {
      const progress = setTimeout(() => this.emit({ type: 'notice', text: 'MLflow: writing the last runs...' }), 1_000);
      // What is left is in the journal: the sync or the workspace's tracking server writes it (and says so).
      await writer.drain(this.trackingDrainMs);
      clearTimeout(progress);
    }
    for (const study of this.order) study.journal.close();
  }

  // ---- driver side -------------------------------------------------------------------------

  private onDriver(driver: DriverConnection): void {
    driver.events.on((event) => {
      if (event.type === 'message') this.onDriverMessage(driver, event.message);
      else if (event.type === 'invalid') this.emit({ type: 'notice', text: `driver sent an invalid message: ${event.error}` });
      else this.onDriverClosed(driver);
    });
  }

  private onDriverClosed(driver: DriverConnection): void {
    for (const study of this.order) {
      if (study.driver === driver && study.state !== 'ended') this.interrupt(study, 'the script exited before fmin returned');
    }
  }

  private onDriverMessage(driver: DriverConnection, message: DriverToCoordinator): void {
    switch (message.type) {
      case 'open':
        // A study opens only on running executors, so a failed start leaves no journal behind.
        this.startExecutors().then(
          () => this.openStudy(driver, message),
          () => undefined,
        );
        return;
      case 'trials': {
        const study = this.studyOf(driver, message.study);
        if (!study) return;
        const asked = study.pendingSuggest;
        study.pendingSuggest = 0;
        for (const trial of message.trials) this.enqueue(study, trial);
        if (message.trials.length === 0 && asked > 0 && study.running.size === 0 && study.queue.length === 0) {
          // Nothing in flight and no point offered: the algorithm has nothing more to give.
          study.exhausted = 'algo_stopped';
        }
        // Points that answer a request made before Stop, Cancel or a timeout are cancelled at once
        // (see enqueue); with nothing else running they were the last thing the study waited for.
        this.maybeEnd(study);
        this.pump(study);
        return;
      }
      case 'exhausted': {
        const study = this.studyOf(driver, message.study);
        if (!study) return;
        study.pendingSuggest = 0;
        study.exhausted = message.reason;
        this.maybeEnd(study);
        this.pump(study);
        return;
      }
      case 'close': {
        const study = this.studyOf(driver, message.study);
        if (!study) return;
        study.closed = true;
        this.closeRuns(study, { counts: message.counts ?? this.countsOf(study), bestLoss: lossToNumber(message.bestLoss), failed: message.error !== undefined, endReason: study.endReason });
        this.emit({ type: 'study.closed', study: study.id });
        return;
      }
      case 'fatal':
        this.emit({ type: 'notice', text: message.message });
        // A journal that could not be written stays the run's error: it is why the study ended.
        if (!this.storageFailure) this.fatal = { code: message.code, message: message.message };
        return;
      case 'notice':
        this.emit({ type: 'notice', text: message.message });
        return;
      case 'hello':
        return;
    }
  }

  /** The last fatal error a driver reported, or a journal that could not be written (shown as the run's one-line error). */
  fatal: { code: string; message: string } | undefined;
  /** Set once a journal or a trial log could not be written: nothing is journalled after it. */
  private storageFailure: RunnerError | undefined;

  private studyOf(driver: DriverConnection, id: string): Study | undefined {
    const study = this.studies.get(id);
    return study && study.driver === driver ? study : undefined;
  }

  private openStudy(driver: DriverConnection, open: Open): void {
    const previous = this.options.resume?.get(open.ordinal);
    const id = previous?.info.id ?? newStudyId();
    const now = Date.now();
    const decided = decideParallelism(this.options.parallelism, open.parallelism, this.slotCapacity);
    const parallelism = decided.parallelism;
    const timeouts = [open.timeout, this.options.studyTimeout].filter((t): t is number => typeof t === 'number' && t > 0);
    const timeout = previous ? previous.info.timeout : timeouts.length > 0 ? Math.min(...timeouts) : null;
    const info: StudyInfo = previous?.info ?? {
      id,
      runId: this.options.run.runId,
      ordinal: open.ordinal,
      script: this.options.run.script,
      args: [...this.options.run.args],
      cwd: this.options.run.cwd,
      python: this.options.run.python,
      executors: this.options.executors.map((e) => e.label),
      callSite: open.callSite,
      maxEvals: open.maxEvals,
      parallelism,
      parallelismSource: decided.source,
      requestedParallelism: open.parallelism,
      timeout,
      trialTimeout: this.options.trialTimeout ?? null,
      lossThreshold: open.lossThreshold,
      algo: open.algo,
      maxQueueLen: open.maxQueueLen,
      space: open.space,
      createdAt: now,
    };
    const journal = new JournalWriter(journalPath(this.options.journalDir, id));
    const settings: StudySettings = {
      timeout,
      deadline: null,
      parallelism,
      lossThreshold: open.lossThreshold,
      noProgressTrials: null,
      trialTimeout: this.options.trialTimeout ?? null,
    };
    const study = new Study(info, driver, open.domain, journal, settings, Math.max(1, open.maxQueueLen), now);
    this.studies.set(id, study);
    this.order.push(study);

    let resume: FinishedTrial[] | undefined;
    let reservedTids: number[] = [];
    let lost: Array<Extract<JournalRecord, { k: 'end' }>> = [];
    if (previous) {
      resume = [];
      // The attempts an earlier command left in flight are lost: ended as such (their runs closed
      // below), and their tids kept from the new trials, which get runs of their own.
      const owner = previous.owner ? ` (pid ${previous.owner.pid})` : '';
      lost = lostAttemptEnds(previous, `attempt lost: the command that ran the study${owner} ended without finishing it`, lastWriteAt(previous.path));
      for (const end of lost) study.finished.set(end.tid, { state: 'cancel', ok: false, loss: undefined });
      reservedTids = [...previous.trials.values()].filter((t) => t.state !== 'done' && t.state !== 'error').map((t) => t.tid);
      for (const t of previous.trials.values()) {
        if (t.state !== 'done' && t.state !== 'error') continue;
        resume.push({ tid: t.tid, state: t.state, vals: t.vals, summary: t.summary, result: t.result, error: t.error, startedAt: t.startedAt, endedAt: t.endedAt });
        const ok = t.state === 'done' && t.summary?.status === 'ok';
        study.finished.set(t.tid, { state: t.state, ok, loss: ok ? lossToNumber(t.summary?.loss) : undefined });
        this.trackBest(study, study.finished.get(t.tid)?.loss);
      }
      this.write(study, { k: 'resumed', runId: this.options.run.runId, owner: currentOwner(), at: now });
      for (const end of lost) this.write(study, end);
    } else {
      this.write(study, { k: 'study', v: JOURNAL_VERSION, study: info, owner: currentOwner() });
    }
    this.emit({ type: 'study.opened', study: info, journal: journal.path, settings: { ...settings }, resumed: Boolean(previous) });
    if (decided.notice && !previous) this.emit({ type: 'notice', text: `study ${id}: ${decided.notice}` });
    driver.send({
      type: 'opened', ref: open.ref, study: id, parallelism, journal: journal.path, ...(resume ? { resume } : {}), ...(reservedTids.length > 0 ? { reservedTids } : {}),
    });
    if (this.tracking && open.tracking) this.track(study, this.tracking, open.tracking, previous?.tracking);
    for (const end of lost) if (end.mlflowRunId) this.endLostRun(study, end, end.mlflowRunId, previous!.trials.get(end.tid)?.params ?? {});

    const alreadyEnded = previous && previous.state === 'ended' && previous.endReason !== 'interrupted';
    if (alreadyEnded) {
      study.endReason = (previous.endReason as EndReason | undefined) ?? 'completed';
      study.endMessage = previous.endMessage;
      study.state = 'ended';
      driver.send({ type: 'ended', study: id, reason: study.endReason, ...(study.endMessage ? { message: study.endMessage } : {}) });
      this.emit({ type: 'study.state', study: id, state: 'ended', reason: study.endReason });
      return;
    }
    this.setState(study, 'running');
    this.armDeadline(study);
    const pending = this.pendingEnd;
    this.pendingEnd = undefined;
    if (pending?.kind === 'stop') this.stop(id, pending.reason);
    else if (pending?.kind === 'cancel') this.cancel(id, pending.reason, pending.message);
    this.pump(study);
  }

  /** Opens the study's parent MLflow run (a resumed study keeps its own); the journal records it once it exists. */
  private track(study: Study, writer: RunWriter, request: NonNullable<Open['tracking']>, previous: StudyRecord['tracking']): void {
    if (!previous) {
      this.write(study, {
        k: 'trackingRequest',
        params: request.params,
        ...(request.activeRunId ? { activeRunId: request.activeRunId } : {}),
        ...(request.experimentId ? { experimentId: request.experimentId } : {}),
        at: Date.now(),
      });
    }
    study.runs = writer.openStudy(study.info, {
      params: request.params,
      actualParallelism: study.info.parallelism,
      mlflow: { activeRunId: request.activeRunId, experimentId: request.experimentId },
      ...(previous ? { parent: { experimentId: previous.experimentId, parentRunId: previous.parentRunId } } : {}),
    });
    void study.runs.parent.then((parent) => {
      if (!parent) return;
      const tracking = { uri: parent.uri, experimentId: parent.experimentId, parentRunId: parent.parentRunId };
      this.write(study, { k: 'tracking', ...tracking, owned: parent.owned, at: Date.now() });
      this.emit({ type: 'study.tracking', study: study.id, ...tracking });
    });
  }

  /** Closes the run of an attempt lost with an earlier command (the sync does it if this cannot). */
  private endLostRun(study: Study, end: Extract<JournalRecord, { k: 'end' }>, runId: string, params: Record<string, unknown>): void {
    const outcome = { state: 'cancel' as const, error: end.error, params, endedAt: end.endedAt ?? Date.now(), slot: end.slot };
    study.runs?.trialEnded(end.tid, Promise.resolve({ runId, artifactUri: '' }), outcome, (tracked) => {
      this.write(study, { k: 'tracked', tid: end.tid, mlflowRunId: tracked.runId, complete: tracked.complete, ...(tracked.error ? { error: tracked.error } : {}), at: Date.now() });
    });
  }

  private closeRuns(study: Study, end: StudyEnd): void {
    void study.runs?.close(end).then((written) => {
      if (written) this.write(study, { k: 'parentEnded', at: Date.now() });
    });
  }

  /** The trial counts the engine knows (for a study whose driver could not report its own). */
  private countsOf(study: Study): StudyCounts {
    let ok = 0;
    let failed = 0;
    let cancelled = 0;
    for (const t of study.finished.values()) {
      if (t.state === 'cancel') cancelled += 1;
      else if (t.ok) ok += 1;
      else failed += 1;
    }
    return { ok, failed, cancelled, total: ok + failed + cancelled + study.queue.length + study.running.size };
  }

  private enqueue(study: Study, trial: NewTrial): void {
    if (study.state !== 'running') {
      // Points that arrive after Stop or Cancel are recorded as cancelled so fmin can finish.
      this.write(study, { k: 'trial', tid: trial.tid, vals: trial.vals, params: trial.params, at: Date.now() });
      this.finishTrial(study, trial.tid, 'cancel', { error: { type: 'Cancelled', message: 'the study stopped before this trial started' } });
      return;
    }
    study.queue.push({ trial, attempts: 0 });
    this.write(study, { k: 'trial', tid: trial.tid, vals: trial.vals, params: trial.params, at: Date.now() });
    this.emit({ type: 'trial.queued', study: study.id, tid: trial.tid, params: trial.params });
  }

  /** Asks the driver for more points when there is room, then hands queued trials to slots. */
  private pump(study: Study): void {
    if (study.state === 'running' && !study.exhausted && study.pendingSuggest === 0) {
      const limit = study.settings.parallelism + study.maxQueueLen - 1;
      const room = limit - study.inFlight;
      if (room > 0) {
        study.pendingSuggest = room;
        study.driver.send({ type: 'suggest', study: study.id, count: room });
      }
    }
    this.dispatch();
  }

  // ---- slots --------------------------------------------------------------------------------

  private refreshSlots(): void {
    for (const executor of this.options.executors) {
      for (const slot of executor.slots) {
        if (slot.usable && !this.busy.has(slot)) this.idle.add(slot);
        if (!slot.usable) this.idle.delete(slot);
      }
    }
    this.dispatch();
    for (const study of this.order) this.checkStarved(study);
  }

  private dispatch(): void {
    for (const study of this.order) {
      if (study.state !== 'running') continue;
      while (study.queue.length > 0 && study.running.size < study.settings.parallelism) {
        const slot = this.takeSlot(study);
        if (!slot) break;
        const queued = study.queue.shift()!;
        this.startTrial(study, queued, slot);
      }
    }
  }

  private takeSlot(study: Study): Slot | undefined {
    for (const slot of this.idle) {
      if (!slot.usable || study.refusedSlots.has(slot.id)) continue;
      this.idle.delete(slot);
      this.busy.add(slot);
      return slot;
    }
    return undefined;
  }

  private releaseSlot(slot: Slot): void {
    this.busy.delete(slot);
    if (slot.usable && !this.closing) this.idle.add(slot);
  }

  private startTrial(study: Study, queued: QueuedTrial, slot: Slot): void {
    const tid = queued.trial.tid;
    const at = Date.now();
    queued.attempts += 1;
    const run: RunningTrial = { tid, slot, abort: new AbortController(), startedAt: at };
    study.running.set(tid, run);
    this.write(study, { k: 'start', tid, slot: slot.id, attempt: queued.attempts, at });
    this.emit({ type: 'trial.started', study: study.id, tid, slot: slot.id, at, attempt: queued.attempts });
    study.driver.send({ type: 'started', study: study.id, tid, slot: slot.id });
    const trialTimeout = study.settings.trialTimeout;
    // The limit covers the objective, not a cold worker's start-up or the domain's first load.
    const armTrialTimeout = (): void => {
      if (trialTimeout === null || trialTimeout <= 0 || run.abort.signal.aborted) return;
      run.timer = setTimeout(() => {
        run.abortReason ??= { state: 'error', error: { type: 'TrialTimeout', message: `the trial ran longer than its ${trialTimeout} s limit and was killed` } };
        run.abort.abort();
      }, trialTimeout * 1000);
    };
    let printed = 0;
    let atLineStart = true;
    const onOutput = (text: string): void => {
      if (printed > TRIAL_OUTPUT_LIMIT) return;
      const room = TRIAL_OUTPUT_LIMIT - printed;
      printed += Buffer.byteLength(text);
      if (printed <= TRIAL_OUTPUT_LIMIT) {
        if (text.length > 0) atLineStart = text.endsWith('\n');
        this.emit({ type: 'trial.output', study: study.id, tid, slot: slot.id, text });
        return;
      }
      const limit = `${TRIAL_OUTPUT_LIMIT / 1024 / 1024} MB`;
      const kept = Buffer.from(text).subarray(0, room).toString('utf8').replace(/\uFFFD$/, '');
      // The notice starts a line of its own, without a blank line when the output ended one.
      const newline = (kept.length > 0 ? kept.endsWith('\n') : atLineStart) ? '' : '\n';
      this.emit({ type: 'trial.output', study: study.id, tid, slot: slot.id, text: `${kept}${newline}[hyperopt-runner: the rest of this trial's output, past ${limit}, is dropped]\n` });
      this.emit({ type: 'notice', text: `trial ${tid} printed more than ${limit}; the rest of its output is dropped (the trial goes on)` });
    };
    let tracking: JobTracking | undefined;
    if (study.runs && this.tracking) {
      let ref = study.trialRuns.get(tid);
      if (!ref) {
        // Created as the trial goes out, once per trial: a retry after a lost worker reuses it.
        const created: TrialRunRef = { run: study.runs.trialStarted(tid, { slot: slot.id, host: slot.host }, at), params: queued.trial.params };
        void created.run.then((info) => {
          if (!info) return;
          created.runId = info.runId;
          // Journalled as soon as it exists, so whatever completes the run later never makes a second one.
          this.write(study, { k: 'run', tid, mlflowRunId: info.runId, at: Date.now() });
        });
        study.trialRuns.set(tid, created);
        ref = created;
      }
      const token = this.tracking.token;
      tracking = { uri: this.tracking.uri, ...(token ? { token } : {}), run: ref.run };
    }
    slot
      .run(
        {
          study: study.id,
          tid,
          spec: queued.trial.spec,
          domain: study.domain,
          ...(tracking ? { tracking } : {}),
          onEvaluating: armTrialTimeout,
          onOutput,
        },
        run.abort.signal,
      )
      .then(
        (outcome) => this.onOutcome(study, queued, run, outcome),
        (error: unknown) => this.onInfrastructureFailure(study, queued, run, error),
      );
  }

  private onOutcome(study: Study, queued: QueuedTrial, run: RunningTrial, outcome: SlotOutcome): void {
    clearTimeout(run.timer);
    study.running.delete(run.tid);
    this.releaseSlot(run.slot);
    if (outcome.kind === 'result') {
      const r = outcome.result;
      if (r.tracking?.error) this.warnTracking(study, `trial ${run.tid}: ${r.tracking.error}`);
      if (r.outcome === 'ok') {
        this.finishTrial(study, run.tid, 'done', { summary: r.summary, result: r.result, slot: run.slot.id, startedAt: r.startedAt, endedAt: r.endedAt });
      } else {
        this.finishTrial(study, run.tid, 'error', { error: r.error, slot: run.slot.id, startedAt: r.startedAt, endedAt: r.endedAt });
      }
    } else if (outcome.kind === 'aborted') {
      const reason = run.abortReason ?? { state: 'cancel' as const, error: { type: 'Cancelled', message: 'cancelled' } };
      this.finishTrial(study, run.tid, reason.state, { error: reason.error, slot: run.slot.id, startedAt: run.startedAt });
    } else {
      // This slot cannot load the study (a module missing on that host): try elsewhere.
      study.refusedSlots.add(run.slot.id);
      study.lastLoadError = outcome.error;
      queued.attempts -= 1;
      study.queue.unshift(queued);
      this.write(study, { k: 'requeue', tid: run.tid, slot: run.slot.id, reason: `load failed: ${outcome.error.message}`, at: Date.now() });
      this.emit({ type: 'notice', text: `${run.slot.id} cannot load study ${study.id}: ${outcome.error.type}: ${outcome.error.message}` });
      this.checkStarved(study);
    }
    this.afterChange(study);
  }

  private onInfrastructureFailure(study: Study, queued: QueuedTrial, run: RunningTrial, error: unknown): void {
    clearTimeout(run.timer);
    study.running.delete(run.tid);
    this.releaseSlot(run.slot);
    const why = messageOf(error);
    if (run.abort.signal.aborted) {
      const reason = run.abortReason ?? { state: 'cancel' as const, error: { type: 'Cancelled', message: 'cancelled' } };
      this.finishTrial(study, run.tid, reason.state, { error: reason.error, slot: run.slot.id, startedAt: run.startedAt });
    } else if (queued.attempts <= (this.options.maxRetries ?? 2) && study.state === 'running') {
      study.queue.unshift(queued);
      this.write(study, { k: 'requeue', tid: run.tid, slot: run.slot.id, reason: why, at: Date.now() });
      this.emit({ type: 'trial.requeued', study: study.id, tid: run.tid, slot: run.slot.id, reason: why });
    } else if (study.state !== 'running') {
      this.finishTrial(study, run.tid, 'cancel', { error: { type: 'Cancelled', message: study.endMessage ?? 'the study stopped' }, slot: run.slot.id, startedAt: run.startedAt });
    } else {
      this.finishTrial(study, run.tid, 'error', {
        error: { type: 'WorkerLost', message: `the trial's worker was lost ${queued.attempts} times; last: ${why}` },
        slot: run.slot.id,
        startedAt: run.startedAt,
      });
    }
    if (!(error instanceof InfrastructureError) && !(error instanceof RunnerError)) {
      this.emit({ type: 'notice', text: `${run.slot.id}: ${why}` });
    }
    this.afterChange(study);
  }

  private afterChange(study: Study): void {
    this.checkPolicies(study);
    this.maybeEnd(study);
    this.pump(study);
    // Another study may be waiting for the slot this one released.
    this.dispatch();
  }

  /** When no slot can serve a study any more, it fails with the reason instead of hanging. */
  private checkStarved(study: Study): void {
    if (study.state !== 'running') return;
    const candidates = this.options.executors.flatMap((e) => e.slots).filter((s) => !s.gone && !study.refusedSlots.has(s.id));
    if (candidates.length > 0) return;
    const error = study.lastLoadError;
    const message = error
      ? new RunnerError('domain_load_failed', { error: `${error.type}: ${error.message}`, python: this.options.run.python }).message
      : new RunnerError('no_slots_left', { executors: this.options.executors.map((e) => e.label).join(', ') }).message;
    this.emit({ type: 'notice', text: message });
    this.cancel(study.id, 'failed', message);
  }

  private finishTrial(
    study: Study,
    tid: number,
    state: 'done' | 'error' | 'cancel',
    detail: { summary?: FinishedTrial['summary']; result?: string; error?: TrialError; slot?: string; startedAt?: number; endedAt?: number },
  ): void {
    const endedAt = detail.endedAt ?? Date.now();
    const ok = state === 'done' && detail.summary?.status === 'ok';
    const loss = ok ? lossToNumber(detail.summary?.loss) : undefined;
    study.finished.set(tid, { state, ok, loss });
    // A run whose writes follow is incomplete until its `tracked` record says otherwise; a sync
    // completes it from the journal if the coordinator dies first.
    const runRef = study.trialRuns.get(tid);
    // Journal first: once this line is written the result survives any later crash.
    this.write(study, {
      k: 'end', tid, state, summary: detail.summary, result: detail.result, error: detail.error, slot: detail.slot, startedAt: detail.startedAt, endedAt,
      ...(runRef ? { mlflowRunId: runRef.runId, mlflowIncomplete: true } : {}),
    });
    if (runRef && study.runs) {
      study.runs.trialEnded(tid, runRef.run, { state, summary: detail.summary, error: detail.error, params: runRef.params, endedAt, slot: detail.slot }, (tracked) => {
        this.write(study, { k: 'tracked', tid, mlflowRunId: tracked.runId, complete: tracked.complete, ...(tracked.error ? { error: tracked.error } : {}), at: Date.now() });
      });
    }
    study.driver.send({
      type: 'finished',
      study: study.id,
      tid,
      state,
      ...(detail.summary ? { summary: detail.summary } : {}),
      ...(detail.result ? { result: detail.result } : {}),
      ...(detail.error ? { error: detail.error } : {}),
      ...(detail.startedAt !== undefined ? { startedAt: detail.startedAt } : {}),
      endedAt,
    });
    this.emit({ type: 'trial.finished', study: study.id, tid, state, summary: detail.summary, error: detail.error, slot: detail.slot, startedAt: detail.startedAt, endedAt });
    if (state === 'done') {
      const improved = this.trackBest(study, loss);
      study.sinceImprovement = improved ? 0 : study.sinceImprovement + 1;
    }
  }

  /** A problem with a study's MLflow runs, from whoever writes them: one notice per study. */
  trackingProblem(studyId: string, text: string): void {
    const study = this.studies.get(studyId);
    if (study) this.warnTracking(study, text);
  }

  /** One warning per study: MLflow trouble never stops a study, and must not flood the terminal. */
  private warnTracking(study: Study, text: string): void {
    if (study.trackingWarned) return;
    study.trackingWarned = true;
    this.emit({ type: 'notice', text: `MLflow: ${text} (the study goes on; missing runs are written from the journal later)` });
  }

  private trackBest(study: Study, loss: number | undefined): boolean {
    if (loss === undefined || Number.isNaN(loss) || loss >= study.bestLoss) return false;
    study.bestLoss = loss;
    return true;
  }

  private checkPolicies(study: Study): void {
    if (study.state !== 'running') return;
    const { lossThreshold, noProgressTrials } = study.settings;
    // As hyperopt: the search goes on while the best loss is at or above the threshold.
    if (lossThreshold !== null && study.bestLoss < lossThreshold) this.stop(study.id, 'loss_threshold');
    else if (noProgressTrials !== null && noProgressTrials > 0 && study.sinceImprovement >= noProgressTrials) this.stop(study.id, 'no_progress');
  }

  private cancelQueued(study: Study, message: string): void {
    for (const queued of study.queue.splice(0)) {
      this.finishTrial(study, queued.trial.tid, 'cancel', { error: { type: 'Cancelled', message } });
    }
  }

  private maybeEnd(study: Study): void {
    if (study.state === 'ended' || study.running.size > 0) return;
    const drained = study.queue.length === 0 && study.pendingSuggest === 0;
    if (!drained) return;
    if (study.state === 'running' && !study.exhausted) return;
    const reason: EndReason = study.stopReason ?? study.exhausted ?? 'completed';
    study.endReason = reason;
    clearTimeout(study.deadlineTimer);
    this.setState(study, 'ended', reason, study.endMessage);
    study.driver.send({ type: 'ended', study: study.id, reason, ...(study.endMessage ? { message: study.endMessage } : {}) });
  }

  /** The driver or coordinator went away: kill what runs, and leave the study resumable. */
  private interrupt(study: Study, why: string): void {
    clearTimeout(study.deadlineTimer);
    study.stopReason = 'failed';
    study.state = 'cancelling';
    for (const queued of study.queue.splice(0)) void queued;
    for (const run of study.running.values()) {
      run.abortReason ??= { state: 'cancel', error: { type: 'Cancelled', message: why } };
      run.abort.abort(STUDY_ENDING);
    }
    study.state = 'ended';
    this.write(study, { k: 'state', state: 'ended', reason: 'interrupted', message: why, at: Date.now() });
    this.emit({ type: 'study.state', study: study.id, state: 'ended', reason: 'interrupted', message: why });
    if (study.closed) return;
    // The trials being killed count as cancelled: their ends come after this.
    const counts = this.countsOf(study);
    counts.cancelled += [...study.running.keys()].filter((tid) => !study.finished.has(tid)).length;
    this.closeRuns(study, { counts, bestLoss: Number.isFinite(study.bestLoss) ? study.bestLoss : undefined, failed: false, endReason: 'interrupted' });
  }

  private armDeadline(study: Study): void {
    clearTimeout(study.deadlineTimer);
    const timeout = study.settings.timeout;
    if (timeout === null || timeout <= 0) {
      study.settings.deadline = null;
      return;
    }
    study.settings.deadline = study.startedAt + timeout * 1000;
    const wait = Math.max(0, study.settings.deadline - Date.now());
    study.deadlineTimer = setTimeout(() => this.cancel(study.id, 'timeout'), wait);
  }

  private settingsChanged(study: Study, change: Omit<Extract<JournalRecord, { k: 'settings' }>, 'k' | 'at'>): void {
    this.write(study, { k: 'settings', ...change, at: Date.now() });
    this.emit({ type: 'study.settings', study: study.id, settings: { ...study.settings } });
  }

  private setState(study: Study, state: StudyState, reason?: EndReason, message?: string): void {
    study.state = state;
    this.write(study, { k: 'state', state, ...(reason ? { reason } : {}), ...(message ? { message } : {}), at: Date.now() });
    this.emit({ type: 'study.state', study: study.id, state, ...(reason ? { reason } : {}), ...(message ? { message } : {}) });
  }

  private select(studyId: string | undefined): Study[] {
    if (studyId === undefined) return [...this.order];
    const study = this.studies.get(studyId);
    return study ? [study] : [];
  }

  private write(study: Study, record: JournalRecord): void {
    if (this.storageFailure) return;
    try {
      study.journal.append(record);
    } catch (error) {
      this.storageFault(study.journal.path, error);
    }
  }

  /**
   * A journal or a trial log could not be written (a full disk, a file system gone read-only):
   * every open study is cancelled, as a study whose trials are not kept cannot go on. No journal is
   * written from here on, so each reads as what fit before the fault, a study whose coordinator is
   * gone, which `resume` continues once the disk has room again.
   */
  storageFault(path: string, error: unknown): void {
    if (this.storageFailure) return;
    const { code } = error as NodeJS.ErrnoException;
    const studies = this.activeStudies();
    const failure = new RunnerError('journal_write_failed', {
      path,
      reason: code === 'ENOSPC' ? 'no space left on the device' : code === 'EROFS' ? 'the file system is read-only' : (code ?? messageOf(error)),
      study: studies.length === 1 ? studies[0] : undefined,
    });
    this.storageFailure = failure;
    this.fatal = { code: failure.code, message: failure.message };
    this.cancel(undefined, 'cancelled', 'the journal could not be written');
  }

  private emit(event: EngineEvent): void {
    this.events.emit(event);
  }
}
