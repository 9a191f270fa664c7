/** `hyperopt-runner run` and `resume`: start the script under the engine and show its progress. */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { constants as osConstants } from 'node:os';
import { Engine } from '../../core/src/coordinator/engine';
import { newToken } from '../../core/src/coordinator/driverChannel';
import { RunnerError } from '../../core/src/errors';
import type { ExecutorSpec } from '../../core/src/executorSpec';
import { bestTrial, countTrials, readJournal, type StudyRecord } from '../../core/src/journal/journal';
import { driverLogPath, LogFiles, trialLogPath } from '../../core/src/journal/trialLogs';
import { lossToNumber } from '../../core/src/protocol/common';
import { pythonPath, runtimeSourceDir } from '../../core/src/runtimePath';
import { createExecutor } from '../../executors/src/create';
import { probeInterpreter, requireHyperopt } from '../../core/src/interpreter';
import { killProcessGroup } from '../../executors/src/processTree';
import { ProgressView } from './progress';

export interface ScriptRun {
  script: string;
  scriptArgs: string[];
  cwd: string;
  python: string;
  executors: ExecutorSpec[];
  journalDir: string;
  timeout: number | null;
  trialTimeout: number | null;
  parallelism: number | null;
  summaryJson: string | null;
  quiet: boolean;
  /** Set when resuming: the run id and its earlier studies by fmin ordinal. */
  resume?: { runId: string; studies: Map<number, StudyRecord> };
}

export function newRunId(): string {
  return `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
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
    state: record.state === 'ended' ? (record.endReason ?? 'ended') : record.state,
    trials: { total: counts.total, ok: counts.ok, failed: counts.failed, cancelled: counts.cancelled },
    bestLoss: loss === undefined ? null : Number.isFinite(loss) ? loss : String(loss),
    argmin,
    wallTimeSec: record.endedAt !== undefined ? (record.endedAt - record.info.createdAt) / 1000 : null,
    parallelism: record.info.parallelism,
    journal: record.path,
  };
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const number = signal ? (osConstants.signals as Record<string, number>)[signal] : undefined;
  return 128 + (number ?? 1);
}

/** Runs a script to the end; resolves with the exit code the CLI should return. */
export async function runScript(run: ScriptRun): Promise<number> {
  requireHyperopt(await probeInterpreter(run.python));
  const runId = run.resume?.runId ?? newRunId();
  const token = newToken();
  const runtimeDir = runtimeSourceDir();
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONPATH: pythonPath(runtimeDir, dirname(run.script), process.env.PYTHONPATH) };
  delete env.HYPEROPT_RUNNER_TOKEN;
  const executors = run.executors.map((spec) => createExecutor(spec, { python: run.python, env, cwd: run.cwd }));
  const engine = new Engine({
    run: { runId, script: run.script, args: run.scriptArgs, cwd: run.cwd, python: run.python },
    executors,
    journalDir: run.journalDir,
    token,
    studyTimeout: run.timeout,
    trialTimeout: run.trialTimeout,
    parallelism: run.parallelism,
    resume: run.resume?.studies,
  });

  const view = new ProgressView(process.stderr, process.stderr.isTTY === true && !run.quiet);
  const logs = new LogFiles();
  const opened: string[] = [];
  engine.events.on((event) => {
    view.onEvent(event);
    if (event.type === 'study.opened') opened.push(event.journal);
    if (event.type === 'trial.output') logs.append(trialLogPath(run.journalDir, event.study, event.tid), event.text);
    if (event.type === 'trial.finished') logs.close(trialLogPath(run.journalDir, event.study, event.tid));
  });

  let driver: ChildProcess | undefined;
  let interrupts = 0;
  const onSigint = (): void => {
    interrupts += 1;
    if (interrupts === 1) {
      view.line('hyperopt-runner: Ctrl+C: stopping (running trials finish, fmin returns). Press Ctrl+C again to cancel running trials.');
      engine.stop(undefined, 'stopped');
    } else if (interrupts === 2) {
      view.line('hyperopt-runner: Ctrl+C: cancelling running trials. Press Ctrl+C again to end the script.');
      engine.cancel(undefined, 'cancelled');
    } else if (driver) {
      view.line('hyperopt-runner: Ctrl+C: ending the script.');
      void killProcessGroup(driver, 2000);
    }
  };
  const onTerminate = (): void => {
    engine.cancel(undefined, 'cancelled');
    if (driver) void killProcessGroup(driver, 1000);
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onTerminate);
  process.on('SIGHUP', onTerminate);

  try {
    const port = await engine.listen();
    const driverEnv: NodeJS.ProcessEnv = {
      ...env,
      PYTHONUNBUFFERED: '1',
      HYPEROPT_RUNNER_ENDPOINT: `127.0.0.1:${port}`,
      HYPEROPT_RUNNER_TOKEN: token,
      HYPEROPT_RUNNER_RUN: runId,
    };
    // Workers warm up while the script imports its own modules.
    const executorsReady = engine.startExecutors();
    const child = spawn(run.python, ['-m', 'hyperopt_runner.launch', run.script, ...run.scriptArgs], {
      cwd: run.cwd,
      env: driverEnv,
      stdio: ['inherit', 'pipe', 'pipe'],
      // Its own process group: Ctrl+C reaches the CLI only, which decides what it means.
      detached: process.platform !== 'win32',
      windowsHide: true,
    });
    driver = child;
    const driverLog = driverLogPath(run.journalDir, runId);
    child.stdout!.setEncoding('utf8');
    child.stderr!.setEncoding('utf8');
    child.stdout!.on('data', (text: string) => {
      view.write(text, process.stdout);
      logs.append(driverLog, text);
    });
    child.stderr!.on('data', (text: string) => {
      view.write(text, process.stderr);
      logs.append(driverLog, text);
    });
    const exited = new Promise<number>((resolve) => {
      child.on('error', (error) => {
        view.line(`hyperopt-runner: error: could not start ${run.python}: ${error.message}`);
        resolve(2);
      });
      child.on('exit', (code, signal) => resolve(exitCodeOf(code, signal)));
    });
    const startFailure = executorsReady.then(
      () => undefined,
      (error: unknown) => error,
    );
    const first = await Promise.race([exited.then((code) => ({ code })), startFailure.then((error) => ({ error }))]);
    if ('error' in first && first.error !== undefined) {
      await killProcessGroup(child, 500);
      throw first.error;
    }
    const code = await exited;
    // Let stdout/stderr drain before the final lines.
    await new Promise((resolve) => setImmediate(resolve));
    if (engine.fatal) {
      view.line(`hyperopt-runner: error: ${engine.fatal.message}`);
      return code === 0 ? 2 : code;
    }
    if (opened.length === 0 && code === 0) {
      throw new RunnerError('no_fmin_call', { script: run.script });
    }
    return code;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onTerminate);
    process.off('SIGHUP', onTerminate);
    await engine.close();
    logs.closeAll();
    view.dispose();
    if (run.summaryJson) {
      const summaries = opened.map((path) => summarizeStudy(readJournal(path)));
      writeFileSync(run.summaryJson, JSON.stringify(summaries, null, 2) + '\n');
    }
  }
}
