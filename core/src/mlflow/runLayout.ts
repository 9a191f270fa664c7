/**
 * What a study's MLflow runs hold, as Databricks' SparkTrials lays them out: a parent run per
 * `fmin` call (the script's active run when it has one) and a child run per trial. Defined once
 * here; the runs written while a study runs (runWriter.ts) and those written later from the
 * journal (sync.ts) are built by these functions.
 */
import type { JournalTrial } from '../journal/journal';
import type { StudyInfo } from '../journal/records';
import { lossToNumber, type ResultSummary, type TrialError } from '../protocol/common';
import type { CreateRunOptions, LogBatchInput, RunStatus } from './client';
import {
  BEST_TRIAL_LOSS_METRIC,
  CANCEL_REASON_TAG,
  childRunsFilter,
  filterKey,
  filterValue,
  FMIN_UUID_TAG,
  HOST_TAG,
  LOSS_METRIC,
  RUN_SOURCE_HYPEROPT,
  RUN_SOURCE_TAG,
  SLOT_TAG,
  STUDY_ID_TAG,
  TOTAL_TRIALS_METRIC,
  TRACEBACK_TAG,
  TRIAL_STATUS_TAG,
  TRIAL_TID_TAG,
} from './tags';

/** MLflow's own tag naming the source file of a run. */
export const SOURCE_NAME_TAG = 'mlflow.source.name';
/** The study's call site, `file:line`, on its parent run. */
export const CALL_SITE_TAG = 'hyperopt_runner.call_site';
/** The user id the runner's runs carry (what MLflow's own client sends without a user tag). */
export const RUNNER_USER_ID = 'unknown';
/** MLflow refuses longer tag values. */
const TAG_LIMIT = 5000;
/** MLflow refuses longer param values. */
const PARAM_LIMIT = 6000;

/** fmin's arguments as the parent's params: max_evals, parallelism, timeout, algo, max_queue_len (Python's `str()` of each). */
export type FminParams = Record<string, string>;

/** The fmin arguments of a study as its journal keeps them, in Python's spelling (for runs written later from the journal). */
export function fminParamsOf(info: StudyInfo): FminParams {
  const python = (value: number | null): string => (value === null ? 'None' : String(value));
  return {
    max_evals: info.maxEvals === null ? '9223372036854775807' : String(info.maxEvals),
    parallelism: 'None',
    timeout: python(info.timeout),
    algo: info.algo,
    max_queue_len: String(info.maxQueueLen),
  };
}

export function parentRunName(info: Pick<StudyInfo, 'callSite'>): string {
  const file = info.callSite.file.split(/[\\/]/).pop() ?? 'script';
  return `${file.replace(/\.py$/, '')}:${info.callSite.line}`;
}

/** The parent run the runner creates when the script has no active run. */
export function parentRunCreate(info: StudyInfo, experimentId: string): CreateRunOptions {
  return {
    experimentId,
    runName: parentRunName(info),
    startTime: info.createdAt,
    userId: RUNNER_USER_ID,
    // The study's id from the start: a parent created by a command that ended before it could
    // journal it is found again by the runs written later (sync.ts) instead of made twice.
    tags: { [SOURCE_NAME_TAG]: info.callSite.file, [STUDY_ID_TAG]: info.id },
    sameRunFilter: ownParentFilter(info),
  };
}

/** The search for the parent run the runner created for a study (its children have other names). */
export function ownParentFilter(info: Pick<StudyInfo, 'id' | 'callSite'>): string {
  const quoted = (value: string): string => `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  return `tags.\`${STUDY_ID_TAG}\` = ${quoted(info.id)} and attributes.run_name = ${quoted(parentRunName(info))}`;
}

/**
 * The params and tags a study puts on its parent. Several fmin calls in one active run: as MLflow
 * does with a conflicting name, a param whose value differs from the one already there gets the
 * study's suffix.
 */
export function parentStartBatch(info: StudyInfo, params: FminParams, actualParallelism: number, existing: Record<string, string>): LogBatchInput {
  const suffix = info.id.split('-').pop() ?? info.id;
  const all: Record<string, string> = { ...params, actual_parallelism: String(actualParallelism) };
  const logged: Record<string, string> = {};
  for (const key of ['max_evals', 'parallelism', 'actual_parallelism', 'timeout', 'algo', 'max_queue_len']) {
    const value = all[key];
    if (value === undefined) continue;
    logged[existing[key] !== undefined && existing[key] !== value ? `${key}_${suffix}` : key] = value;
  }
  return {
    params: logged,
    tags: {
      [RUN_SOURCE_TAG]: RUN_SOURCE_HYPEROPT,
      [FMIN_UUID_TAG]: info.id,
      [STUDY_ID_TAG]: info.id,
      [CALL_SITE_TAG]: `${info.callSite.file}:${info.callSite.line}`,
    },
  };
}

/** The trial counts of a study, as its `fmin` saw them (prior trials of its Trials object included). */
export interface StudyCounts {
  ok: number;
  failed: number;
  cancelled: number;
  total: number;
}

export function parentEndBatch(counts: StudyCounts, bestLoss: number | undefined, at: number): LogBatchInput {
  const metric = (key: string, value: number): { key: string; value: number; timestamp: number; step: number } => ({ key, value, timestamp: at, step: 0 });
  return {
    metrics: [
      metric('successful_trials_count', counts.ok),
      metric('failed_trials_count', counts.failed),
      metric('cancelled_trials_count', counts.cancelled),
      metric(TOTAL_TRIALS_METRIC, counts.total),
      ...(bestLoss !== undefined && !Number.isNaN(bestLoss) ? [metric(BEST_TRIAL_LOSS_METRIC, bestLoss)] : []),
    ],
  };
}

/** FAILED when fmin raised, KILLED when the study was cancelled (or its driver died), else FINISHED. */
export function parentEndStatus(endReason: string | undefined, failed: boolean): RunStatus {
  if (failed) return 'FAILED';
  return endReason === 'cancelled' || endReason === 'interrupted' ? 'KILLED' : 'FINISHED';
}

/** Where a trial ran and what the child run of a trial carries from the start. */
export interface ChildRunStart {
  readonly studyId: string;
  readonly tid: number;
  readonly slot?: string;
  readonly host?: string;
  readonly experimentId: string;
  readonly parentRunId: string;
  readonly startTime: number;
}

export function childRunCreate(start: ChildRunStart): CreateRunOptions {
  return {
    experimentId: start.experimentId,
    parentRunId: start.parentRunId,
    runName: `trial ${start.tid}`,
    startTime: start.startTime,
    userId: RUNNER_USER_ID,
    // A retry after a lost answer finds the run the first attempt made.
    sameRunFilter: `${childRunsFilter(start.parentRunId)} and ${filterKey('tags', FMIN_UUID_TAG)} = ${filterValue(start.studyId)} and ${filterKey('tags', TRIAL_TID_TAG)} = ${filterValue(String(start.tid))}`,
    tags: {
      [RUN_SOURCE_TAG]: RUN_SOURCE_HYPEROPT,
      [FMIN_UUID_TAG]: start.studyId,
      [TRIAL_TID_TAG]: String(start.tid),
      ...(start.slot ? { [SLOT_TAG]: start.slot } : {}),
      ...(start.host ? { [HOST_TAG]: start.host } : {}),
    },
  };
}

/** How a trial ended, as its child run records it. */
export interface TrialOutcome {
  readonly state: 'done' | 'error' | 'cancel';
  readonly summary?: ResultSummary;
  readonly error?: TrialError;
  readonly params: Record<string, unknown>;
  readonly endedAt: number;
  /** The slot of the attempt that ended it (a retried trial may have started elsewhere). */
  readonly slot?: string;
}

export function trialOutcomeOf(trial: JournalTrial): TrialOutcome {
  return {
    state: trial.state === 'done' || trial.state === 'error' ? trial.state : 'cancel',
    summary: trial.summary,
    error: trial.error,
    params: trial.params,
    endedAt: trial.endedAt ?? Date.now(),
    slot: trial.slot,
  };
}

/** `ok` or the objective's own status; `error` when it raised; `cancelled` when the trial was killed. */
export function trialStatusOf(outcome: Pick<TrialOutcome, 'state' | 'summary'>): string {
  if (outcome.state === 'error') return 'error';
  if (outcome.state === 'cancel') return 'cancelled';
  return outcome.summary?.status ?? 'unknown';
}

/** The params, the loss and the status tags of a finished trial, in one batch. */
export function childEndBatch(outcome: TrialOutcome): LogBatchInput {
  const params = Object.fromEntries(Object.entries(outcome.params).map(([k, v]) => [k, String(v).slice(0, PARAM_LIMIT)]));
  const loss = outcome.state === 'done' && outcome.summary ? lossToNumber(outcome.summary.loss) : undefined;
  const tags: Record<string, string> = { [TRIAL_STATUS_TAG]: trialStatusOf(outcome), ...(outcome.slot ? { [SLOT_TAG]: outcome.slot } : {}) };
  const traceback = tracebackText(outcome.error);
  if (outcome.state === 'error' && traceback) tags[TRACEBACK_TAG] = traceback.slice(-TAG_LIMIT);
  if (outcome.state === 'cancel' && outcome.error) tags[CANCEL_REASON_TAG] = outcome.error.message.slice(0, TAG_LIMIT);
  return {
    params,
    tags,
    ...(loss !== undefined ? { metrics: [{ key: LOSS_METRIC, value: loss, timestamp: outcome.endedAt, step: 0 }] } : {}),
  };
}

export function childEndStatus(outcome: Pick<TrialOutcome, 'state' | 'summary'>): RunStatus {
  if (outcome.state === 'cancel') return 'KILLED';
  return outcome.state === 'done' && outcome.summary?.status === 'ok' ? 'FINISHED' : 'FAILED';
}

/** A failed trial's full traceback, kept as its run's `traceback.txt` (the tag holds the end of it). */
export function tracebackText(error: TrialError | undefined): string | undefined {
  if (!error) return undefined;
  return error.traceback ?? `${error.type}: ${error.message}`;
}
