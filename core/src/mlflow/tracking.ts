/**
 * Tracking for one command: where runs go (an http server as given, or the workspace's tracking
 * server over its store, shared and kept between commands), the environment that tells the
 * driver and the workers, and, at the end, writing from the journal whatever could not be logged.
 */
import { readJournal } from '../journal/journal';
import { messageOf } from '../errors';
import { MlflowClient, mlflowAuthFromEnv, type MlflowAuth } from './client';
import type { RunTracking } from '../session/runSession';
import type { TrackingTarget } from './runWriter';
import { acquireTrackingServer, handOffSync, type CliCommand, type TrackingServerLease } from './serverLease';
import { resolveTrackingUri } from './supervisor';
import { needsSync, syncJournalFiles, unsyncedTrials } from './sync';

export interface TrackingRequest {
  python: string;
  workspace: string;
  cliUri?: string;
  setting?: string;
  env: NodeJS.ProcessEnv;
  disabled?: boolean;
  /** How to start the workspace's tracking server daemon when none runs (this program's CLI). */
  cli: CliCommand;
  /** Idle timeout of a daemon started here. */
  idleTimeoutSeconds?: number;
  notice: (text: string) => void;
}

/** How long a tracking server given by URI may take to answer its first health check. */
const REMOTE_CHECK_MS = 5_000;
/** How long a run's end writes its last runs itself before it hands the rest to the workspace's server. */
const HAND_OFF_AFTER_MS = 1_000;

/** Rejects when a tracking server given by URI does not answer a health check within a few seconds. */
export function checkTrackingServer(uri: string, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<void> {
  return new MlflowClient({ trackingUri: uri, auth: mlflowAuthFromEnv(env), maxRetries: 0, requestTimeoutMs: REMOTE_CHECK_MS }).health(signal);
}

export class TrackingSession {
  private readyOnce: Promise<void> | undefined;

  private constructor(
    public uri: string | undefined,
    private readonly env: NodeJS.ProcessEnv,
    private lease?: TrackingServerLease,
    private readonly request?: TrackingRequest,
    private readonly storeUri?: string,
  ) {}


  /**
   * Resolves where runs go. The workspace's own server is leased (started when none runs): its
   * URI is valid at once, requests made while MLflow still starts wait for it, so nothing here
   * waits for MLflow itself.
   */
  static async start(request: TrackingRequest): Promise<TrackingSession> {
    if (request.disabled) return new TrackingSession(undefined, request.env);
    const target = resolveTrackingUri({ cliUri: request.cliUri, env: request.env, setting: request.setting, workspace: request.workspace });
    if (target.kind === 'unsupported') {
      request.notice(`MLflow: ${target.reason}; the run is not tracked`);
      return new TrackingSession(undefined, request.env);
    }
    if (target.kind === 'remote') return new TrackingSession(target.uri, request.env);
    let lease: TrackingServerLease;
    try {
      lease = await acquireTrackingServer({
        workspace: request.workspace,
        storeUri: target.storeUri,
        python: request.python,
        cli: request.cli,
        env: request.env,
        idleTimeoutSeconds: request.idleTimeoutSeconds,
        notice: request.notice,
      });
    } catch (error) {
      request.notice(`MLflow: ${messageOf(error)}; the run is not tracked (trials can be logged later with \`hyperopt-runner sync\`)`);
      return new TrackingSession(undefined, request.env);
    }
    if (lease.started) {
      request.notice(
        `MLflow: starting the workspace's tracking server for ${target.storeUri} at ${lease.uri}; it stays up for the next runs (\`hyperopt-runner tracking stop\` ends it)`,
      );
    }
    if (lease.state === 'failed') request.notice(`MLflow: the workspace's tracking server is not available (${lease.message}); trials are logged later with \`hyperopt-runner sync\``);
    lease.changes.on(({ state, message }) => {
      if (state === 'failed' || state === 'lost') {
        request.notice(`MLflow: the workspace's tracking server is not available (${message ?? state}); trials are logged later with \`hyperopt-runner sync\``);
      }
    });
    return new TrackingSession(lease.uri, request.env, lease, request, target.storeUri);
  }

  /**
   * Resolves when MLflow answers; rejects when it cannot: the workspace's server failed to start,
   * or a server given by URI did not answer a health check within a few seconds.
   */
  ready(): Promise<void> {
    this.readyOnce ??= this.lease
      ? this.lease.ready()
      : this.uri
        ? checkTrackingServer(this.uri, this.env)
        : Promise.resolve();
    return this.readyOnce;
  }

  client(): MlflowClient | undefined {
    if (!this.uri || this.lease?.state === 'failed' || this.lease?.state === 'lost') return undefined;
    return new MlflowClient({ trackingUri: this.uri, auth: this.auth() });
  }

  /** The workspace's server takes its record's API token; a server given by URI, what the environment says. */
  private auth(): MlflowAuth | undefined {
    return this.lease ? this.lease.auth : mlflowAuthFromEnv(this.env);
  }

  /**
   * The run's tracking, or undefined when it is not tracked: the URI the driver gets, and where the
   * engine writes the studies' runs (its requests give up quickly: a study never waits for MLflow,
   * and the journal keeps what was not written). A server given by URI is asked first (it had since
   * the command's start to answer): the driver and the workers never get an address that does not
   * answer, where every `mlflow.log_*` of the objective would sit in MLflow's retries for minutes.
   */
  async runTracking(notice: (text: string) => void): Promise<RunTracking | undefined> {
    if (!this.uri) return undefined;
    const uri = this.uri;
    if (this.lease?.state === 'failed') return undefined;
    if (!this.lease) {
      const failure = await this.ready().then(
        () => undefined,
        (error: unknown) => messageOf(error),
      );
      if (failure !== undefined) {
        notice(`MLflow: ${uri} does not answer (${failure}); the run is not tracked (\`hyperopt-runner sync --tracking-uri ${uri}\` writes its runs once it answers)`);
        return undefined;
      }
    }
    const client = new MlflowClient({ trackingUri: uri, auth: this.auth(), maxRetries: 1, requestTimeoutMs: 10_000 });
    const token = this.lease ? this.lease.record.apiToken : this.env.MLFLOW_TRACKING_TOKEN;
    const target: TrackingTarget = { uri, ...(token ? { token } : {}), client, env: this.env, ready: () => this.ready() };
    const driverEnv: Record<string, string> = { MLFLOW_TRACKING_URI: uri, HYPEROPT_RUNNER_TRACKING: '1' };
    if (this.lease) driverEnv.MLFLOW_TRACKING_TOKEN = this.lease.record.apiToken;
    // The workspace's own server takes what is left at the end (syncJournals): the end need not wait long.
    return { target, driverEnv, drainMs: this.lease ? HAND_OFF_AFTER_MS : undefined };
  }

  /**
   * Writes the runs the studies could not; returns how many. Failures leave them for `sync`. The
   * workspace's own server is handed the journals instead, so the command need not wait for it;
   * when it went away during the run, a new one is started for this.
   */
  async syncJournals(journals: readonly string[], notice: (text: string) => void): Promise<number> {
    if (journals.length === 0) return 0;
    if ((this.lease?.state === 'lost' || this.lease?.state === 'failed') && this.request && this.storeUri) await this.replaceLease(this.request, this.storeUri);
    if (this.lease && this.lease.state !== 'lost' && this.lease.state !== 'failed') {
      const pending = journals.map((path) => readJournal(path)).filter((study) => needsSync(study));
      if (pending.length === 0) return 0;
      const trials = pending.reduce((n, study) => n + unsyncedTrials(study), 0);
      if (await handOffSync(this.lease.record, pending.map((study) => study.path))) {
        notice(`MLflow: the workspace's tracking server writes ${trials > 0 ? `the runs of the last ${trials} trial(s)` : "the study's final counts"} in the background`);
        return 0;
      }
    }
    const client = this.client();
    if (!client || !(await this.ready().then(() => true, () => false))) return 0;
    const { written } = await syncJournalFiles(journals, client, (path, error) =>
      notice(`MLflow: could not write the missing runs of ${path} (${messageOf(error)}); run \`hyperopt-runner sync\` later`),
    );
    return written;
  }

  private async replaceLease(request: TrackingRequest, storeUri: string): Promise<void> {
    try {
      const lease = await acquireTrackingServer({ workspace: request.workspace, storeUri, python: request.python, cli: request.cli, env: request.env, notice: request.notice });
      // Another port, same store: only this sync uses it.
      this.uri = lease.uri;
      this.lease?.release();
      this.lease = lease;
      this.readyOnce = undefined;
      request.notice(`MLflow: the workspace's tracking server went away during the run; a new one at ${lease.uri} takes the runs that were missing`);
    } catch (error) {
      request.notice(`MLflow: ${messageOf(error)}; the missing runs are written later with \`hyperopt-runner sync\``);
    }
  }

  /** Lets go of the workspace's server (it stays up for the next command until it is idle). */
  stop(): void {
    this.lease?.release();
  }
}
