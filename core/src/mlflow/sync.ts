/**
 * Writes to MLflow what a study could not log while it ran (the server was down or not yet up, or
 * the coordinator ended before its writes were done): the journal holds every finished trial's
 * params, loss and status, so nothing is lost. The runs are laid out by runLayout.ts, as the
 * ones written while the study ran.
 */
import { JournalWriter, type StudyRecord } from '../journal/journal';
import type { MlflowClient } from './client';
import {
  childEndBatch,
  childEndStatus,
  childRunCreate,
  fminParamsOf,
  parentEndStatus,
  parentRunCreate,
  parentStartBatch,
  trialOutcomeOf,
} from './runLayout';

export interface SyncResult {
  study: string;
  written: number;
  parentCreated: boolean;
}

/**
 * Creates the missing child runs (and the parent run when even that is missing), and completes
 * the runs that were created but never reported complete (no complete `tracked` record).
 */
export async function syncStudy(study: StudyRecord, client: MlflowClient, signal?: AbortSignal): Promise<SyncResult> {
  const journal = new JournalWriter(study.path);
  let parentCreated = false;
  try {
    let tracking = study.tracking;
    if (!tracking) {
      // The experiment the script would have chosen is not in the journal: the default one.
      const experimentId = '0';
      const parent = await client.createRun(parentRunCreate(study.info, experimentId), signal);
      tracking = { uri: '', experimentId, parentRunId: parent.info.runId };
      await client.logBatch(parent.info.runId, parentStartBatch(study.info, fminParamsOf(study.info), study.info.parallelism, {}), signal);
      if (study.state === 'ended') await client.finishRun(parent.info.runId, parentEndStatus(study.endReason, false), study.endedAt, signal);
      journal.append({ k: 'tracking', uri: tracking.uri, experimentId, parentRunId: tracking.parentRunId, at: Date.now() });
      parentCreated = true;
    }
    let written = 0;
    for (const trial of study.trials.values()) {
      if ((trial.mlflowRunId && !trial.mlflowIncomplete) || (trial.state !== 'done' && trial.state !== 'error')) continue;
      const outcome = trialOutcomeOf(trial);
      const runId =
        trial.mlflowRunId ??
        (
          await client.createRun(
            childRunCreate({
              studyId: study.info.id,
              tid: trial.tid,
              slot: trial.slot,
              experimentId: tracking.experimentId,
              parentRunId: tracking.parentRunId,
              startTime: trial.startedAt ?? trial.endedAt ?? Date.now(),
            }),
            signal,
          )
        ).info.runId;
      await client.logBatch(runId, childEndBatch(outcome), signal);
      await client.finishRun(runId, childEndStatus(outcome), outcome.endedAt, signal);
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

/** Trials that finished but have no complete MLflow run yet. */
export function unsyncedTrials(study: StudyRecord): number {
  let n = 0;
  for (const t of study.trials.values()) if ((!t.mlflowRunId || t.mlflowIncomplete) && (t.state === 'done' || t.state === 'error')) n += 1;
  return n;
}
