/**
 * One execution of a user's script under the engine: the driver process, the executors and the
 * engine, with their lifetimes tied together. The CLI shows it in a terminal; the background
 * service shows it in the editor. Neither knows how the other presents it.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { constants as osConstants } from 'node:os';
import type { Readable } from 'node:stream';
import { Engine } from '../coordinator/engine';
import { newToken } from '../coordinator/driverChannel';
import { RunnerError } from '../errors';
import { Emitter } from '../events';
import type { Executor } from '../executor';
import type { ExecutorSpec } from '../executorSpec';
import { probeInterpreter, requireHyperopt } from '../interpreter';
import type { StudyRecord } from '../journal/journal';
import { RunWriter, type TrackingTarget } from '../mlflow/runWriter';
import { driverLogPath, LogFiles, trialLogPath } from '../journal/trialLogs';
import { killGroup, killProcessGroup } from '../processTree';
import { exitStatus, ForkServer, forkServerSupported, requestEnv } from '../python/forkServer';
import { pythonPath, runtimeSourceDir } from '../runtimePath';

export interface RunRequest {
  script: string;
  scriptArgs: string[];
  cwd: string;
  python: string;
  executors: ExecutorSpec[];
  journalDir: string;
  timeout: number | null;
  trialTimeout: number | null;
  parallelism: number | null;
  /** Set when resuming: the run id and its earlier studies by fmin ordinal. */
  resume?: { runId: string; studies: Map<number, StudyRecord> };
  /** Extra environment for the driver and the workers (tracking URI and the like). */
  env?: NodeJS.ProcessEnv;
  /** stdin of the script: the terminal for the CLI, nothing for the background service. */
  stdin?: 'inherit' | 'ignore';
  /**
   * Where the studies' MLflow runs go, when the run is tracked. It may still be resolving when the
   * run starts (the workspace's tracking server being found or started): only the driver's start
   * waits for it, the fork server's imports and the executors' start do not.
   */
  tracking?: RunTracking | Promise<RunTracking | undefined>;
}

export interface RunTracking {
  readonly target: TrackingTarget;
  /** What tells the driver (MLFLOW_TRACKING_URI and the runtime's switch). */
  readonly driverEnv: NodeJS.ProcessEnv;
  /** How long the run's end waits for its MLflow writes before it leaves the rest to a sync. */
  readonly drainMs?: number;
}

export interface SessionExecutorContext {
  python: string;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** The run's fork server (Linux, unless HYPEROPT_RUNNER_FORK=0): local workers fork from it. */
  forkServer?: ForkServer;
}

export type ExecutorFactory = (spec: ExecutorSpec, context: SessionExecutorContext) => Executor;

export interface RunOutcome {
  /** The script's exit code (128 + signal number when a signal ended it). */
  code: number;
  /** A one-line error the run ended with, when it did not end on its own terms. */
  error?: RunnerError | { code: string; message: string };
  /** Journals of the studies the run opened, in order. */
  journals: string[];
}

export function newRunId(): string {
  return `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const number = signal ? (osConstants.signals as Record<string, number>)[signal] : undefined;
  return 128 + (number ?? 1);
}

/** The script's process, spawned or forked. */
interface DriverProcess {
  /** The exit code, once the script ended and its stdout and stderr reached their end. */
  readonly finished: Promise<number>;
  /** Ends the script's process group. */
  kill(graceMs: number): Promise<void>;
}

/** The exit code given when the fork server died before it could report the driver's exit. */
const EXIT_UNKNOWN = 1;

function streamEnded(stream: Readable): Promise<void> {
  if (stream.readableEnded || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
  });
}

export class RunSession {
  readonly runId: string;
  readonly engine: Engine;
  /** The script's own stdout and stderr. */
  readonly output = new Emitter<{ stream: 'stdout' | 'stderr'; text: string }>();
  readonly journals: string[] = [];
  private driver: DriverProcess | undefined;
  // A log that cannot be written means a disk the journal cannot trust either.
  private readonly logs = new LogFiles((path, error) => this.engine.storageFault(path, error));
  private readonly token = newToken();
  private readonly env: NodeJS.ProcessEnv;
  /** One warm interpreter the driver and the local workers fork from; none where forking is off. */
  private readonly forkServer: ForkServer | undefined;
  /** Aborted by an interrupt before the script started: the start is given up. */
  private readonly startAbort = new AbortController();
  /** The exit code of a start given up: as a shell reports the signal that asked for it. */
  private startEndCode = 128 + osConstants.signals.SIGINT;

  constructor(
    readonly request: RunRequest,
    createExecutor: ExecutorFactory,
  ) {
    this.runId = request.resume?.runId ?? newRunId();
    const base = { ...process.env, ...request.env };
    delete base.HYPEROPT_RUNNER_TOKEN;
    this.env = {
      ...base,
      PYTHONPATH: pythonPath(runtimeSourceDir(), dirname(request.script), base.PYTHONPATH),
      // MLflow prints a "View run at" line whenever a run ends; in every trial's output that is noise.
      MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT: 'true',
    };
    if (forkServerSupported(base)) {
      this.forkServer = new ForkServer({
        python: request.python,
        env: this.env,
        cwd: request.cwd,
        stdin: request.stdin ?? 'ignore',
        title: [request.script, ...request.scriptArgs],
        // Warnings hyperopt's import prints: the driver would have printed them itself.
        onDiagnostic: (text) => this.emitOutput('stderr', text),
      });
    }
    const forkServer = this.forkServer;
    const executors = request.executors.map((spec) =>
      createExecutor(spec, { python: request.python, env: this.env, cwd: request.cwd, ...(forkServer ? { forkServer } : {}) }),
    );
    this.engine = new Engine({
      run: { runId: this.runId, script: request.script, args: request.scriptArgs, cwd: request.cwd, python: request.python },
      executors,
      journalDir: request.journalDir,
      token: this.token,
      studyTimeout: request.timeout,
      trialTimeout: request.trialTimeout,
      parallelism: request.parallelism,
      resume: request.resume?.studies,
    });
    this.engine.events.on((event) => {
      if (event.type === 'study.opened') this.journals.push(event.journal);
      else if (event.type === 'trial.output') this.logs.append(trialLogPath(request.journalDir, event.study, event.tid), event.text);
      else if (event.type === 'trial.finished') this.logs.close(trialLogPath(request.journalDir, event.study, event.tid));
    });
  }

  get driverLog(): string {
    return driverLogPath(this.request.journalDir, this.runId);
  }

  /** Runs the script to its end; never rejects for the script's own failures. */
  async run(): Promise<RunOutcome> {
    try {
      return await this.execute();
    } catch (error) {
      // 130 or 143 (128 + SIGINT or SIGTERM), as a shell gives a command the signal ended.
      if (error instanceof RunnerError) return { code: error.code === 'interrupted' ? this.startEndCode : 2, error, journals: this.journals };
      throw error;
    } finally {
      await this.engine.close();
      await this.forkServer?.close();
      this.logs.closeAll();
    }
  }

  /**
   * Gives up the run's start (the interpreter check, the executors, the tracking server) when an
   * interrupt comes before the script started; false once it has, when stopping is the engine's.
   */
  interruptStart(): boolean {
    if (this.driver) return false;
    this.startAbort.abort();
    return true;
  }

  /**
   * Ends the script itself (its process group), after Stop or Cancel did not suffice. Asked before
   * the script started (SIGTERM), the start is given up as an interrupt gives it up.
   */
  async killScript(graceMs = 2000): Promise<void> {
    if (!this.startAbort.signal.aborted) this.startEndCode = 128 + osConstants.signals.SIGTERM;
    this.startAbort.abort();
    if (this.driver) await this.driver.kill(graceMs);
  }

  private emitOutput(stream: 'stdout' | 'stderr', text: string): void {
    this.output.emit({ stream, text });
    this.logs.append(this.driverLog, text);
  }

  private pipeOutput(stream: 'stdout' | 'stderr', from: Readable): void {
    from.setEncoding('utf8');
    from.on('data', (text: string) => this.emitOutput(stream, text));
  }

  /** The driver's environment: the token travels in it (or in the fork request), never in argv. */
  private driverEnv(port: number, tracking: RunTracking | undefined): NodeJS.ProcessEnv {
    return {
      ...this.env,
      ...(tracking ? tracking.driverEnv : { HYPEROPT_RUNNER_TRACKING: '0' }),
      PYTHONUNBUFFERED: '1',
      HYPEROPT_RUNNER_ENDPOINT: `127.0.0.1:${port}`,
      HYPEROPT_RUNNER_TOKEN: this.token,
      HYPEROPT_RUNNER_RUN: this.runId,
    };
  }

  private spawnDriver(port: number, tracking: RunTracking | undefined): DriverProcess {
    const request = this.request;
    const child = spawn(request.python, ['-m', 'hyperopt_runner.launch', request.script, ...request.scriptArgs], {
      cwd: request.cwd,
      env: this.driverEnv(port, tracking),
      stdio: [request.stdin ?? 'ignore', 'pipe', 'pipe'],
      // Its own process group: an interrupt reaches the runner only, which decides what it means.
      detached: process.platform !== 'win32',
      windowsHide: true,
    });
    this.pipeOutput('stdout', child.stdout!);
    this.pipeOutput('stderr', child.stderr!);
    const finished = new Promise<number>((resolve) => {
      child.on('error', () => resolve(127));
      child.on('close', (code, signal) => resolve(exitCodeOf(code, signal)));
    });
    return { finished, kill: (graceMs) => killProcessGroup(child, graceMs) };
  }

  /** Forks the driver from the warm server; it runs `hyperopt_runner.launch` as a spawned one would. */
  private async forkDriver(server: ForkServer, port: number, tracking: RunTracking | undefined): Promise<DriverProcess> {
    const request = this.request;
    const { stdout, stderr } = server.driverOutput;
    this.pipeOutput('stdout', stdout);
    this.pipeOutput('stderr', stderr);
    const drained = Promise.all([streamEnded(stdout), streamEnded(stderr)]);
    const child = await server.fork({
      role: 'driver',
      env: requestEnv(this.driverEnv(port, tracking)),
      cwd: request.cwd,
      argv: [request.script, ...request.scriptArgs],
    });
    let exited = false;
    const exit = child.exited.then((status) => {
      exited = true;
      return exitStatus(status);
    });
    // The script's last prints come after fmin returned: it has finished when both pipes have too.
    const lostServer = server.gone.then(() => drained).then(() => EXIT_UNKNOWN);
    const finished = Promise.race([exit, lostServer]).then(async (code) => {
      await drained;
      return code;
    });
    return {
      finished,
      kill: (graceMs) => killGroup({ pid: child.pid, exited, exit: Promise.race([exit, server.gone]) }, graceMs),
    };
  }

  private async execute(): Promise<RunOutcome> {
    const request = this.request;
    const forkServer = this.forkServer;
    // The interpreter check runs beside the executors' start (hosts connect, workers import
    // hyperopt); its error, when there is one, is the one reported. The fork server starts
    // first of all, so its import overlaps everything else; its `ready` is the check.
    const interrupted = new Promise<never>((_, reject) => {
      const signal = this.startAbort.signal;
      if (signal.aborted) reject(new RunnerError('interrupted'));
      signal.addEventListener('abort', () => reject(new RunnerError('interrupted')), { once: true });
    });
    interrupted.catch(() => undefined); // raced below; not an unhandled rejection when nothing waits for it
    const interpreterChecked = Promise.race([
      forkServer ? forkServer.start().then(() => undefined) : probeInterpreter(request.python, this.env, this.startAbort.signal).then(requireHyperopt),
      interrupted,
    ]);
    interpreterChecked.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
    const port = await this.engine.listen();
    // Workers warm up while the tracking server starts and the script imports its own modules.
    const executorsReady = this.engine.startExecutors();
    const startFailure = executorsReady.then(
      () => undefined,
      (error: unknown) => error,
    );
    await interpreterChecked;
    const tracking = await Promise.race([request.tracking, interrupted]);
    if (tracking) this.engine.useTracking(new RunWriter(tracking.target, { warn: (study, text) => this.engine.trackingProblem(study, text) }), tracking.drainMs);
    const driver = forkServer ? await this.forkDriver(forkServer, port, tracking) : this.spawnDriver(port, tracking);
    this.driver = driver;
    if (this.startAbort.signal.aborted) {
      // Interrupted while the fork was under way: the script had not started its work.
      await driver.kill(500);
      throw new RunnerError('interrupted');
    }
    const first = await Promise.race([driver.finished.then(() => undefined), startFailure]);
    if (first !== undefined) {
      await driver.kill(500);
      throw first;
    }
    const code = await driver.finished;
    const fatal = this.engine.fatal;
    if (fatal) return { code: code === 0 ? 2 : code, error: fatal, journals: this.journals };
    if (this.journals.length === 0 && code === 0) {
      return { code: 3, error: new RunnerError('no_fmin_call', { script: request.script }), journals: this.journals };
    }
    return { code, journals: this.journals };
  }
}
