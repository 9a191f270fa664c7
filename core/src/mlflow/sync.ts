/**
 * Writes to MLflow what a study could not log while it ran (the server was down or not yet up, or
 * the coordinator ended before its writes were done): the journal holds every finished trial's
 * params, loss and status, so nothing is lost. The runs are laid out by runLayout.ts, as the
 * ones written while the study ran.
 */
import { endedAtItsEnd, inFlight, JournalWriter, lastWriteAt, listJournals, lostAttemptEnds, ownerGone, readJournal, type JournalTrial, type StudyRecord } from '../journal/journal';
import { lossToNumber } from '../protocol/common';
import type { MlflowClient } from './client';
import { childRunsFilter, FMIN_UUID_TAG, TRIAL_TID_TAG } from './tags';
import {
  childEndBatch,
  childEndStatus,
  childRunCreate,
  fminParamsOf,
  parentEndBatch,
  parentEndStatus,
  ownParentFilter,
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
 * the runs that were created but never reported complete (no complete `tracked` record). A study
 * whose command died first is ended as interrupted: its attempts in flight as lost, its parent
 * KILLED. A study another command still runs is left to it.
 */
export async function syncStudy(study: StudyRecord, client: MlflowClient, signal?: AbortSignal): Promise<SyncResult> {
  if (runByAnother(study)) return { study: study.info.id, written: 0, parentCreated: false };
  const journal = new JournalWriter(study.path);
  let parentCreated = false;
  try {
    const gone = ownerGone(study);
    if (gone || study.state === 'ended') {
      // An ended study may still hold an attempt in flight: one queued again after its worker was
      // lost when the study was interrupted.
      const why = gone ? `the command that ran the study (pid ${study.owner!.pid}) ended without finishing it` : 'the study ended before it ran again';
      const at = lastWriteAt(study.path);
      const ends = lostAttemptEnds(study, `attempt lost: ${why}`, at);
      for (const end of ends) journal.append(end);
      if (gone) journal.append({ k: 'state', state: 'ended', reason: 'interrupted', message: why, at });
      if (gone || ends.length > 0) study = readJournal(study.path);
    }
    let tracking = study.tracking;
    if (!tracking) {
      // The parent the study would have had live: the script's active run, else one created in the
      // script's experiment (the default one for journals that do not say).
      const request = study.trackingRequest;
      const params = request?.params ?? fminParamsOf(study.info);
      let existing: Record<string, string> = {};
      if (request?.activeRunId) {
        const active = await client.getRun(request.activeRunId, signal);
        tracking = { uri: '', experimentId: active.info.experimentId, parentRunId: active.info.runId, owned: false };
        existing = active.data.params;
      } else {
        const experimentId = request?.experimentId ?? '0';
        // A command that ended as it created the parent may have made it without journalling it.
        const [made] = (await client.searchRunsPage({ experimentIds: [experimentId], filter: ownParentFilter(study.info), pageSize: 1 }, undefined, signal)).items;
        const parent = made ?? (await client.createRun(parentRunCreate(study.info, experimentId), signal));
        tracking = { uri: '', experimentId, parentRunId: parent.info.runId, owned: true };
        parentCreated = made === undefined;
      }
      await client.logBatch(tracking.parentRunId, parentStartBatch(study.info, params, study.info.parallelism, existing), signal);
      journal.append({ k: 'tracking', uri: tracking.uri, experimentId: tracking.experimentId, parentRunId: tracking.parentRunId, owned: tracking.owned, at: Date.now() });
    }
    let written = 0;
    const existing = await existingChildRuns(study, tracking.experimentId, tracking.parentRunId, client, signal);
    for (const trial of study.trials.values()) {
      if (!unsynced(trial)) continue;
      const outcome = trialOutcomeOf(trial);
      const runId =
        trial.mlflowRunId ??
        existing.get(trial.tid) ??
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
    if ((tracking.owned || !study.tracking) && !tracking.ended && study.state === 'ended') {
      await finishParent(study, tracking.parentRunId, tracking.owned === true, client, signal);
      journal.append({ k: 'parentEnded', at: Date.now() });
    }
    return { study: study.info.id, written, parentCreated };
  } finally {
    journal.close();
  }
}

/**
 * The child runs MLflow has for trials the journal names none for: a command that ended (or was
 * killed) while creating them had them made without journalling them. Asked only when there are
 * such trials; a sync that reuses them writes no second run for a trial.
 */
async function existingChildRuns(study: StudyRecord, experimentId: string, parentRunId: string, client: MlflowClient, signal?: AbortSignal): Promise<Map<number, string>> {
  const found = new Map<number, string>();
  if (![...study.trials.values()].some((t) => unsynced(t) && t.mlflowRunId === undefined)) return found;
  for await (const page of client.searchRunsPages({ experimentIds: [experimentId], filter: childRunsFilter(parentRunId), pageSize: 1000 }, signal)) {
    for (const run of page.items) {
      const tid = Number(run.data.tags[TRIAL_TID_TAG]);
      if (run.data.tags[FMIN_UUID_TAG] === study.info.id && Number.isInteger(tid) && !found.has(tid)) found.set(tid, run.info.runId);
    }
  }
  return found;
}

/**
 * The counts the journal knows on an ended study's parent, and its end when the runner created it
 * and it is still RUNNING (the coordinator went away before it could end it). The script's own
 * active run is left as the script left it.
 */
async function finishParent(study: StudyRecord, parentRunId: string, owned: boolean, client: MlflowClient, signal?: AbortSignal): Promise<void> {
  if (owned && (await client.getRun(parentRunId, signal)).info.status !== 'RUNNING') return;
  const counts = { ok: 0, failed: 0, cancelled: 0, total: study.trials.size };
  let best: number | undefined;
  for (const trial of study.trials.values()) {
    if (trial.state === 'cancel') counts.cancelled += 1;
    else if (trial.state === 'done' && trial.summary?.status === 'ok') {
      counts.ok += 1;
      const loss = lossToNumber(trial.summary.loss);
      if (loss !== undefined && !Number.isNaN(loss) && (best === undefined || loss < best)) best = loss;
    } else if (trial.state === 'done' || trial.state === 'error') counts.failed += 1;
  }
  await client.logBatch(parentRunId, parentEndBatch(counts, best, study.endedAt ?? Date.now()), signal);
  if (owned) await client.finishRun(parentRunId, parentEndStatus(study.endReason, false), study.endedAt, signal);
}

/**
 * `syncStudy` for each journal that needs it; a journal that fails is named to `failed` and the
 * rest go on. Returns how many studies were written and how many runs.
 */
export async function syncJournalFiles(
  paths: readonly string[],
  client: MlflowClient,
  failed: (path: string, error: unknown) => void,
): Promise<{ studies: number; written: number }> {
  let studies = 0;
  let written = 0;
  for (const path of paths) {
    try {
      const study = readJournal(path);
      if (!needsSync(study)) continue;
      written += (await syncStudy(study, client)).written;
      studies += 1;
    } catch (error) {
      failed(path, error);
    }
  }
  return { studies, written };
}

/** Whether a study has anything for `syncStudy` to write. */
export function needsSync(study: StudyRecord): boolean {
  if (ownerGone(study) || (study.state === 'ended' && [...study.trials.values()].some(inFlight))) return true;
  if (runByAnother(study)) return false;
  return !study.tracking || unsyncedTrials(study) > 0 || (study.tracking.owned === true && !study.tracking.ended && study.state === 'ended');
}

/** The journals in `dir` of studies whose command died before it could end them. */
export function abandonedJournals(dir: string): string[] {
  return listJournals(dir)
    .filter((path) => !endedAtItsEnd(path))
    .filter((path) => {
      try {
        return ownerGone(readJournal(path));
      } catch {
        return false; // unreadable: `studies` reports it
      }
    });
}

/** A study not ended whose command is alive (or cannot be checked): its runs are that command's to write. */
function runByAnother(study: StudyRecord): boolean {
  return study.state !== 'ended' && study.owner !== undefined && !ownerGone(study);
}

/** Trials that finished but have no complete MLflow run yet. */
export function unsyncedTrials(study: StudyRecord): number {
  let n = 0;
  for (const t of study.trials.values()) if (unsynced(t)) n += 1;
  return n;
}

/** A finished trial without a complete run, or a cancelled one whose run was left open (a cancelled trial that never started has none). */
function unsynced(trial: JournalTrial): boolean {
  if (trial.mlflowRunId && !trial.mlflowIncomplete) return false;
  return trial.state === 'done' || trial.state === 'error' || (trial.state === 'cancel' && trial.mlflowRunId !== undefined);
}
