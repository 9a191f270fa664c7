/** Tag names the runtime writes on MLflow runs and the views read back, plus filter-string helpers. */

/** MLflow's own tag linking a child run to its parent. */
export const PARENT_RUN_TAG = 'mlflow.parentRunId';
/** MLflow's own tag holding a run's display name. */
export const RUN_NAME_TAG = 'mlflow.runName';
/** Set on a study's parent run, as Databricks' SparkTrials does. */
export const RUN_SOURCE_TAG = 'runSource';
export const RUN_SOURCE_HYPEROPT = 'hyperoptAutoTracking';
/** SparkTrials' identifier of one `fmin` call, on the parent and on every child run. */
export const FMIN_UUID_TAG = 'fmin_uuid';
/** The engine's study id, on the study's parent run. */
export const STUDY_ID_TAG = 'hyperopt_runner.study_id';
/** The trial's hyperopt `tid`, on each child run. */
export const TRIAL_TID_TAG = 'hyperopt_runner.tid';
/** The slot and host that ran a trial, on each child run. */
export const SLOT_TAG = 'hyperopt_runner.slot';
export const HOST_TAG = 'hyperopt_runner.host';
/** A failed trial's traceback (truncated; the full text is the run's traceback.txt artifact). */
export const TRACEBACK_TAG = 'hyperopt_runner.traceback';
/** Why a trial was cancelled (an attempt lost with its command says so), on its KILLED run. */
export const CANCEL_REASON_TAG = 'hyperopt_runner.cancel_reason';
/** The trial's result status as the objective reported it (`ok`, `fail`). */
export const TRIAL_STATUS_TAG = 'trial_status';
/** The metric holding a trial's loss. */
export const LOSS_METRIC = 'loss';
/** The parent run's best loss among `ok` trials, logged when the study ends (as SparkTrials does). */
export const BEST_TRIAL_LOSS_METRIC = 'best_trial_loss';
/** The parent run's count of the study's trials, logged when the study ends (as SparkTrials does). */
export const TOTAL_TRIALS_METRIC = 'total_trials_count';

/**
 * A key as MLflow's filter grammar wants it: `tags.name`, with backticks when the name holds
 * anything but letters, digits and underscores (`tags.\`hyperopt_runner.tid\``).
 * `mlflow.parentRunId` is the documented exception that the grammar accepts bare.
 */
export function filterKey(kind: 'tags' | 'params' | 'metrics' | 'attributes', name: string): string {
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || (kind === 'tags' && name === PARENT_RUN_TAG)) {
    return `${kind}.${name}`;
  }
  if (name.includes('`')) throw new Error(`an MLflow filter key cannot contain a backtick: ${name}`);
  return `${kind}.\`${name}\``;
}

/** A string literal for a filter; MLflow's grammar has no escapes, so pick the quote that is absent. */
export function filterValue(value: string): string {
  if (!value.includes("'")) return `'${value}'`;
  if (!value.includes('"')) return `"${value}"`;
  throw new Error(`an MLflow filter value cannot contain both quote characters: ${value}`);
}

/** `tags.mlflow.parentRunId = '<id>'`: the child runs of one parent. */
export function childRunsFilter(parentRunId: string): string {
  return `${filterKey('tags', PARENT_RUN_TAG)} = ${filterValue(parentRunId)}`;
}
