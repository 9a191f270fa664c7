/** One run owned by the background service: a RunSession plus what views need to catch up. */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { EngineEvent } from '../coordinator/events';
import { messageOf, RunnerError } from '../errors';
import { Emitter } from '../events';
import { parseExecutorSpec, type ExecutorSpec } from '../executorSpec';
import { driverLogPath } from '../journal/trialLogs';
import type { MlflowClient } from '../mlflow/client';
import { syncJournalFiles } from '../mlflow/sync';
import type { ControlError, ResolvedRunSpec, RunSnapshot, TrackingInfo } from '../protocol/control';
import { newRunId, RunSession, type RunTracking, type SessionExecutorContext } from '../session/runSession';
import { STATE_DIR } from '../mlflow/supervisor';
import { StudyTracks } from './studyTrack';
import type { TrackingServers } from './tracking';
import { withSshSettings, type HostKeyPrompt, type SshRunSettings } from '../../../executors/src/ssh';
import type { Executor } from '../executor';
import type { AnswerTo, Question } from '../protocol/control';

/** Builds a run's executors; `ssh` carries the questions SSH connections put to the editor. */
export type ServiceExecutorFactory = (spec: ExecutorSpec, context: SessionExecutorContext & { ssh?: SshRunSettings }) => Executor;

/** Puts a question to the editor attached for a run (see prompts.ts). */
export type AskEditor = <Q extends Question>(run: string, question: Q, signal?: AbortSignal) => Promise<AnswerTo<Q> | undefined>;

export type RunMessage =
  | { type: 'event'; event: EngineEvent }
  | { type: 'output'; stream: 'stdout' | 'stderr'; text: string }
  | { type: 'ended'; code: number; error?: ControlError };

export function defaultServiceJournalDir(workspace: string): string {
  return join(resolve(workspace), STATE_DIR, 'journal');
}

export class ServiceRun {
  readonly id = newRunId();
  readonly messages = new Emitter<RunMessage>();
  readonly startedAt = Date.now();
  readonly tracks = new StudyTracks();
  readonly cwd: string;
  readonly journalDir: string;
  readonly executors: ExecutorSpec[];
  state: 'starting' | 'running' | 'ended' = 'starting';
  endedAt: number | undefined;
  code: number | undefined;
  error: ControlError | undefined;
  trackingUri: string | null = null;
  /** Writes what the workers could not log, with the tracking server's credentials. */
  private trackingClient: MlflowClient | undefined;
  private trackingInfo: TrackingInfo | undefined;
  private session: RunSession | undefined;
  /** Stop or Cancel asked for before the script started: it does not start. */
  private abandoned: 'stopped' | 'cancelled' | undefined;
  private readonly starting = new AbortController();
  /** Aborted when the run or one of its studies is stopped or cancelled: closes the questions open then. */
  private questions = new AbortController();
  /** Questions being asked, by subject: connections that need the same answer share one prompt. */
  private readonly asking = new Map<string, Promise<unknown>>();
  readonly done: Promise<void>;

  /** Throws a RunnerError for a spec that cannot run (missing script, bad executor). */
  constructor(
    readonly spec: ResolvedRunSpec,
    private readonly workspace: string,
    private readonly createExecutor: ServiceExecutorFactory,
    private readonly tracking: TrackingServers,
    private readonly askEditor?: AskEditor,
  ) {
    this.cwd = resolve(workspace, spec.cwd ?? '.');
    const script = resolve(this.cwd, spec.script);
    if (!existsSync(script) || !statSync(script).isFile()) throw new RunnerError('script_not_found', { path: spec.script, cwd: this.cwd });
    this.spec = { ...spec, script };
    this.journalDir = spec.journalDir ? resolve(workspace, spec.journalDir) : defaultServiceJournalDir(workspace);
    this.executors = withSshSettings(spec.executors.map(parseExecutorSpec), {
      hostsFile: spec.ssh?.hostsFile ? resolve(workspace, spec.ssh.hostsFile) : undefined,
      acceptNewHostKeys: spec.ssh?.acceptNewHostKeys,
      codeDir: resolve(script, '..'),
    });
    this.done = new Promise((settle) => {
      this.messages.on((m) => {
        if (m.type === 'ended') settle();
      });
    });
  }

  get active(): boolean {
    return this.state !== 'ended';
  }

  get driverLog(): string {
    return driverLogPath(this.journalDir, this.id);
  }

  /** Resolves the tracking server, then runs the script to its end. Never rejects. */
  async start(): Promise<void> {
    const env: NodeJS.ProcessEnv = { ...this.spec.env };
    let tracking: RunTracking | undefined;
    try {
      if (this.spec.trackingUri !== null) {
        // A first run starts the workspace's server (its store created, mlflow imported): say so
        // when that is what the script waits for.
        const slow = setTimeout(() => this.emitEvent({ type: 'notice', text: 'waiting for the MLflow tracking server to start' }), 1_000);
        const info = await this.tracking.resolve(this.spec.trackingUri, this.spec.python, this.starting.signal).finally(() => clearTimeout(slow));
        const target = this.tracking.target(info, env);
        if (info.uri && target) {
          this.trackingUri = info.uri;
          this.trackingInfo = info;
          this.trackingClient = target.client;
          // As the CLI does (mlflow/tracking.ts): the driver learns the URI (and the embedded server's token), the engine writes the runs.
          tracking = {
            target,
            driverEnv: { MLFLOW_TRACKING_URI: info.uri, HYPEROPT_RUNNER_TRACKING: '1', ...(info.kind === 'embedded' && target.token ? { MLFLOW_TRACKING_TOKEN: target.token } : {}) },
          };
        } else if (info.warning) {
          this.emitEvent({ type: 'notice', text: `${info.warning}; the study runs without tracking` });
        }
      }
    } catch {
      // aborted while the tracking server started: Stop or Cancel came first
    }
    if (this.abandoned) {
      this.finish(130, { code: this.abandoned, message: `the run was ${this.abandoned} before the script started` });
      return;
    }
    const session = new RunSession(
      {
        script: this.spec.script,
        scriptArgs: this.spec.args,
        cwd: this.cwd,
        python: this.spec.python,
        executors: this.executors,
        journalDir: this.journalDir,
        timeout: this.spec.timeout,
        trialTimeout: this.spec.trialTimeout,
        parallelism: this.spec.parallelism,
        // RunSession takes a caller's run id only with `resume`; an empty map resumes no study.
        resume: { runId: this.id, studies: new Map() },
        env,
        stdin: 'ignore',
        tracking,
      },
      (spec, context) => this.createExecutor(spec, { ...context, ssh: this.sshQuestions() }),
    );
    this.session = session;
    this.state = 'running';
    session.engine.events.on((event) => this.emitEvent(event));
    session.output.on(({ stream, text }) => this.messages.emit({ type: 'output', stream, text }));
    try {
      const outcome = await session.run();
      await this.syncJournals(session.journals);
      // As the CLI's run does at its end: what a command that died left running is closed.
      if (this.trackingInfo) await this.tracking.closeAbandoned(this.trackingInfo, this.journalDir);
      this.finish(outcome.code, outcome.error ? { code: outcome.error.code, message: outcome.error.message } : undefined);
    } catch (error) {
      this.finish(2, { code: 'internal', message: messageOf(error) });
    }
  }

  /** Writes to MLflow the trial runs the workers could not log (the server was down). */
  private async syncJournals(journals: readonly string[]): Promise<void> {
    const client = this.trackingClient;
    if (!client) return;
    const { written } = await syncJournalFiles(journals, client, (path, error) =>
      this.emitEvent({ type: 'notice', text: `MLflow: could not write the missing runs of ${path} (${messageOf(error)}); run \`hyperopt-runner sync\` later` }),
    );
    if (written > 0) this.emitEvent({ type: 'notice', text: `MLflow: wrote ${written} trial run(s) that could not be logged during the study` });
  }

  /** SSH key passphrases and unknown host keys go to the editor that is attached, when there is one. */
  private sshQuestions(): SshRunSettings {
    const ask = this.askEditor;
    if (!ask) return {};
    return {
      passphrase: (keyPath, host, options) =>
        this.askOnce(`key\0${keyPath}\0${options?.retry === true}`, async () => {
          const answer = await ask(this.id, { kind: 'sshPassphrase', keyPath, host, retry: options?.retry === true }, this.questions.signal);
          return answer?.passphrase ?? undefined;
        }),
      onUnknownHostKey: (prompt: HostKeyPrompt) =>
        this.askOnce(`host\0${prompt.hostKeyName}\0${prompt.fingerprint}`, async () => {
          const answer = await ask(
            this.id,
            { kind: 'hostKey', host: prompt.host, hostKeyName: prompt.hostKeyName, keyType: prompt.type, fingerprint: prompt.fingerprint, file: prompt.file },
            this.questions.signal,
          );
          return answer?.trust === true;
        }),
    };
  }

  /** Open questions are closed; later ones (a reconnect for the script's next fmin) are asked again. */
  private closeQuestions(): void {
    this.questions.abort();
    this.questions = new AbortController();
    this.asking.clear();
  }

  private askOnce<T>(subject: string, ask: () => Promise<T>): Promise<T> {
    const open = this.asking.get(subject) as Promise<T> | undefined;
    if (open) return open;
    const asked: Promise<T> = ask().finally(() => {
      if (this.asking.get(subject) === asked) this.asking.delete(subject);
    });
    this.asking.set(subject, asked);
    return asked;
  }

  private emitEvent(event: EngineEvent): void {
    this.tracks.apply(event);
    this.messages.emit({ type: 'event', event });
  }

  private finish(code: number, error: ControlError | undefined): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    this.endedAt = Date.now();
    this.code = code;
    this.error = error;
    this.messages.emit({ type: 'ended', code, ...(error ? { error } : {}) });
  }

  hasStudy(study: string): boolean {
    return this.tracks.has(study);
  }

  stop(study?: string): void {
    this.closeQuestions();
    if (!this.session) {
      this.abandoned ??= 'stopped';
      this.starting.abort();
      return;
    }
    this.session.engine.stop(study, 'stopped');
  }

  cancel(study?: string): void {
    this.closeQuestions();
    if (!this.session) {
      this.abandoned = 'cancelled';
      this.starting.abort();
      return;
    }
    this.session.engine.cancel(study, 'cancelled');
  }

  setTimeout(study: string, seconds: number | null): void {
    this.session?.engine.setTimeout(study, seconds);
  }

  setParallelism(study: string, n: number): void {
    this.session?.engine.setParallelism(study, n);
  }

  setPolicy(study: string, policy: { lossThreshold?: number | null; noProgressTrials?: number | null }): void {
    this.session?.engine.setPolicy(study, policy);
  }

  /** Ends everything: running trials are cancelled and the script's process group is killed. */
  async terminate(graceMs = 3000): Promise<void> {
    if (!this.active) return;
    this.cancel();
    const ended = await Promise.race([this.done.then(() => true), sleep(graceMs).then(() => false)]);
    if (!ended) {
      await this.session?.killScript(1000);
      await Promise.race([this.done, sleep(5000)]);
    }
  }

  snapshot(): RunSnapshot {
    return {
      run: this.id,
      script: this.spec.script,
      args: [...this.spec.args],
      cwd: this.cwd,
      python: this.spec.python,
      executors: this.executors.map((e) => e.label),
      journalDir: this.journalDir,
      driverLog: this.driverLog,
      trackingUri: this.trackingUri,
      state: this.state,
      startedAt: this.startedAt,
      ...(this.endedAt !== undefined ? { endedAt: this.endedAt } : {}),
      ...(this.code !== undefined ? { code: this.code } : {}),
      ...(this.error ? { error: this.error } : {}),
      studies: this.tracks.snapshot(),
    };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
