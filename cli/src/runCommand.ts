/** `hyperopt-runner run` and `resume`: the script under the engine, with progress in the terminal. */
import { writeFileSync } from 'node:fs';
import { bestTrial, countTrials, ownerGone, readJournal, type StudyRecord } from '../../core/src/journal/journal';
import { lossToNumber } from '../../core/src/protocol/common';
import { RunSession, type RunRequest } from '../../core/src/session/runSession';
import { createExecutor } from '../../executors/src/create';
import { ProgressView } from './progress';
import { currentCliCommand } from '../../core/src/mlflow/serverLease';
import { TrackingSession } from '../../core/src/mlflow/tracking';
import { abandonedJournals } from '../../core/src/mlflow/sync';

export interface ScriptRun extends RunRequest {
  summaryJson: string | null;
  quiet: boolean;
  trackingUri: string | null;
  noTracking: boolean;
}

export interface StudySummary {
  study: string;
  script: string;
  callSite: string;
  state: string;
  trials: { total: number; ok: number; failed: number; cancelled: number };
  bestLoss: number | string | null;
  argmin: Record<string, number | string | boolean> | null;
  wallTimeSec: number | null;
  parallelism: number;
  journal: string;
}

export function summarizeStudy(record: StudyRecord): StudySummary {
  const trials = [...record.trials.values()];
  const counts = countTrials(trials);
  const best = bestTrial(trials);
  const loss = best?.summary ? lossToNumber(best.summary.loss) : undefined;
  const argmin = best
    ? Object.fromEntries(Object.entries(best.vals).flatMap(([label, values]) => (values.length > 0 ? [[label, values[0]!]] : [])))
    : null;
  return {
    study: record.info.id,
    script: record.info.script,
    callSite: `${record.info.callSite.file}:${record.info.callSite.line}`,
    state: record.state === 'ended' ? (record.endReason ?? 'ended') : ownerGone(record) ? 'interrupted' : record.state,
    trials: { total: counts.total, ok: counts.ok, failed: counts.failed, cancelled: counts.cancelled },
    bestLoss: loss === undefined ? null : Number.isFinite(loss) ? loss : String(loss),
    argmin,
    wallTimeSec: record.endedAt !== undefined ? (record.endedAt - record.info.createdAt) / 1000 : null,
    parallelism: record.info.parallelism,
    journal: record.path,
  };
}

/** Runs a script to the end; resolves with the exit code the CLI should return. */
export async function runScript(run: ScriptRun): Promise<number> {
  const view = new ProgressView(process.stderr, process.stderr.isTTY === true && !run.quiet);
  const notice = (text: string): void => view.line(`hyperopt-runner: ${text}`);
  // Found (or started) while the fork server imports hyperopt: only the driver's start waits for it.
  const trackingStarted = TrackingSession.start({
    python: run.python,
    workspace: run.cwd,
    cliUri: run.trackingUri ?? undefined,
    env: process.env,
    disabled: run.noTracking,
    cli: currentCliCommand(),
    notice,
  });
  const session = new RunSession({ ...run, stdin: 'inherit', tracking: trackingStarted.then((t) => t.runTracking(notice)) }, createExecutor);
  session.engine.events.on((event) => view.onEvent(event));
  session.output.on(({ stream, text }) => view.write(text, stream === 'stdout' ? process.stdout : process.stderr));

  let interrupts = 0;
  const onSigint = (): void => {
    interrupts += 1;
    if (interrupts === 1 && session.interruptStart()) return; // the run ends with its own line
    // Asked after the script started but before it reached fmin, Stop and Cancel end the study as it opens.
    const early = session.engine.activeStudies().length === 0 ? ' (no study is open yet: it ends as soon as it opens)' : '';
    if (interrupts === 1) {
      view.line(`hyperopt-runner: Ctrl+C: stopping${early || ' (running trials finish, fmin returns)'}. Press Ctrl+C again to cancel running trials.`);
      session.engine.stop(undefined, 'stopped');
    } else if (interrupts === 2) {
      view.line(`hyperopt-runner: Ctrl+C: cancelling running trials${early}. Press Ctrl+C again to end the script.`);
      session.engine.cancel(undefined, 'cancelled');
    } else {
      view.line('hyperopt-runner: Ctrl+C: ending the script.');
      void session.killScript();
    }
  };
  const onTerminate = (): void => {
    session.engine.cancel(undefined, 'cancelled');
    void session.killScript(1000);
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onTerminate);
  process.on('SIGHUP', onTerminate);
  try {
    const outcome = await session.run();
    if (outcome.error) view.line(`hyperopt-runner: error: ${outcome.error.message}`);
    return outcome.code;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onTerminate);
    process.off('SIGHUP', onTerminate);
    const tracking = await trackingStarted;
    // Studies of the journal folder whose command died are ended here too (in MLflow: only when tracked).
    const abandoned = tracking.uri ? abandonedJournals(run.journalDir).filter((path) => !session.journals.includes(path)) : [];
    const written = await tracking.syncJournals([...session.journals, ...abandoned], notice);
    if (written > 0) notice(`MLflow: wrote ${written} trial run(s) that could not be logged during the study`);
    tracking.stop();
    view.dispose();
    if (run.summaryJson) {
      const summaries = session.journals.map((path) => summarizeStudy(readJournal(path)));
      writeFileSync(run.summaryJson, JSON.stringify(summaries, null, 2) + '\n');
    }
  }
}
