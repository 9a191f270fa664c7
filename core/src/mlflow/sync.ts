/**
 * Writes to MLflow what a study's workers could not (the server was down or not yet up, or a
 * worker ended before its background logger had written a trial's run): the journal holds every
 * finished trial's params, loss and status, so nothing is lost.
 */
import { JournalWriter, type JournalTrial, type StudyRecord } from '../journal/journal';
import { lossToNumber } from '../protocol/common';
import type { MlflowClient } from './client';
import {
  FMIN_UUID_TAG, LOSS_METRIC, RUN_SOURCE_HYPEROPT, RUN_SOURCE_TAG, SLOT_TAG, STUDY_ID_TAG, TRACEBACK_TAG, TRIAL_STATUS_TAG, TRIAL_TID_TAG,
} from './tags';

export interface SyncResult {
  study: string;
  written: number;
  parentCreated: boolean;
}

/**
 * Creates the missing child runs (and the parent run when even that is missing), and completes
 * the runs a worker created but never reported complete (no complete `tracked` record).
 */
export async function syncStudy(study: StudyRecord, client: MlflowClient, signal?: AbortSignal): Promise<SyncResult> {
  const journal = new JournalWriter(study.path);
  let parentCreated = false;
  try {
    let tracking = study.tracking;
    if (!tracking) {
      const experimentId = '0';
      const parent = await client.createRun(
        {
          experimentId,
          runName: `${study.info.script.split('/').pop()?.replace(/\.py$/, '')}:${study.info.callSite.line}`,
          startTime: study.info.createdAt,
          tags: { [RUN_SOURCE_TAG]: RUN_SOURCE_HYPEROPT, [FMIN_UUID_TAG]: study.info.id, [STUDY_ID_TAG]: study.info.id },
        },
        signal,
      );
      tracking = { uri: '', experimentId, parentRunId: parent.info.runId };
      await client.logBatch(parent.info.runId, {
        params: {
          max_evals: String(study.info.maxEvals),
          parallelism: String(study.info.parallelism),
          timeout: String(study.info.timeout),
          algo: study.info.algo,
          max_queue_len: String(study.info.maxQueueLen),
        },
      }, signal);
      if (study.state === 'ended') await client.finishRun(parent.info.runId, study.endReason === 'cancelled' ? 'KILLED' : 'FINISHED', study.endedAt, signal);
      journal.append({ k: 'tracking', uri: tracking.uri, experimentId, parentRunId: tracking.parentRunId, at: Date.now() });
      parentCreated = true;
    }
    let written = 0;
    for (const trial of study.trials.values()) {
      if ((trial.mlflowRunId && !trial.mlflowIncomplete) || (trial.state !== 'done' && trial.state !== 'error')) continue;
      const ok = trial.state === 'done' && trial.summary?.status === 'ok';
      const runId = trial.mlflowRunId ?? (await client.createRun(
        {
          experimentId: tracking.experimentId,
          parentRunId: tracking.parentRunId,
          runName: `trial ${trial.tid}`,
          startTime: trial.startedAt ?? trial.endedAt ?? Date.now(),
          tags: {
            [RUN_SOURCE_TAG]: RUN_SOURCE_HYPEROPT,
            [FMIN_UUID_TAG]: study.info.id,
            [TRIAL_TID_TAG]: String(trial.tid),
            [TRIAL_STATUS_TAG]: trial.state === 'error' ? 'error' : (trial.summary?.status ?? 'unknown'),
            ...(trial.slot ? { [SLOT_TAG]: trial.slot } : {}),
            ...tracebackTag(trial),
          },
        },
        signal,
      )).info.runId;
      const loss = trial.state === 'done' && trial.summary ? lossToNumber(trial.summary.loss) : undefined;
      await client.logBatch(
        runId,
        {
          params: Object.fromEntries(Object.entries(trial.params).map(([k, v]) => [k, String(v)])),
          ...(loss !== undefined ? { metrics: [{ key: LOSS_METRIC, value: loss, timestamp: trial.endedAt }] } : {}),
        },
        signal,
      );
      if (trial.mlflowRunId) {
        await client.logBatch(runId, { tags: { [TRIAL_STATUS_TAG]: trial.state === 'error' ? 'error' : (trial.summary?.status ?? 'unknown'), ...tracebackTag(trial) } }, signal);
      }
      await client.finishRun(runId, ok ? 'FINISHED' : 'FAILED', trial.endedAt ?? Date.now(), signal);
      journal.append({ k: 'synced', tid: trial.tid, mlflowRunId: runId, at: Date.now() });
      trial.mlflowRunId = runId;
      trial.mlflowIncomplete = undefined;
      written += 1;
    }
    return { study: study.info.id, written, parentCreated };
  } finally {
    journal.close();
  }
}

function tracebackTag(trial: JournalTrial): Record<string, string> {
  return trial.error ? { [TRACEBACK_TAG]: (trial.error.traceback ?? `${trial.error.type}: ${trial.error.message}`).slice(-5000) } : {};
}

/** Trials that finished but have no complete MLflow run yet. */
export function unsyncedTrials(study: StudyRecord): number {
  let n = 0;
  for (const t of study.trials.values()) if ((!t.mlflowRunId || t.mlflowIncomplete) && (t.state === 'done' || t.state === 'error')) n += 1;
  return n;
}
