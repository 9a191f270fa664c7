/**
 * Tracking for one run of the engine: where runs go (an http server as given, or the embedded
 * server over the workspace's store), the environment that tells the driver and the workers,
 * and, at the end, writing from the journal whatever the workers could not log.
 */
import { readJournal } from '../journal/journal';
import { messageOf } from '../errors';
import { MlflowClient, mlflowAuthFromEnv } from './client';
import { checkMlflowInstallation, findFreePort, MlflowServerSupervisor, resolveTrackingUri } from './supervisor';
import { syncStudy, unsyncedTrials } from './sync';

export interface TrackingRequest {
  python: string;
  workspace: string;
  cliUri?: string;
  setting?: string;
  env: NodeJS.ProcessEnv;
  disabled?: boolean;
  /** Who owns an embedded server it starts: recorded in its state file. */
  ownerLabel?: string;
  notice: (text: string) => void;
}

export class TrackingSession {
  private constructor(
    readonly uri: string | undefined,
    private readonly supervisor: MlflowServerSupervisor | undefined,
    private readonly env: NodeJS.ProcessEnv,
    /** Resolves when the server answers (at once for a remote server or no tracking). */
    readonly ready: Promise<void> = Promise.resolve(),
  ) {}

  /** Environment for the driver and the workers (empty when the run is not tracked). */
  get processEnv(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = this.uri ? { MLFLOW_TRACKING_URI: this.uri, HYPEROPT_RUNNER_TRACKING: '1' } : { HYPEROPT_RUNNER_TRACKING: '0' };
    // MLflow prints a "View run at" line whenever a run ends; in every trial's output that is noise.
    env.MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT = 'true';
    return env;
  }

  /**
   * Resolves where runs go. For the embedded default the server's port is chosen first, so the
   * URI is known at once and workers can warm up while the server starts; `ready` tells when
   * it answers.
   */
  static async start(request: TrackingRequest): Promise<TrackingSession> {
    if (request.disabled) return new TrackingSession(undefined, undefined, request.env);
    const target = resolveTrackingUri({ cliUri: request.cliUri, env: request.env, setting: request.setting, workspace: request.workspace });
    if (target.kind === 'unsupported') {
      request.notice(`MLflow: ${target.reason}; the run is not tracked`);
      return new TrackingSession(undefined, undefined, request.env);
    }
    if (target.kind === 'remote') return new TrackingSession(target.uri, undefined, request.env);
    const installation = await checkMlflowInstallation(request.python, { env: request.env });
    if (!installation.canServe) {
      request.notice(`MLflow: ${installation.warning ?? 'mlflow cannot serve from this interpreter'}; the run is not tracked`);
      return new TrackingSession(undefined, undefined, request.env);
    }
    const port = await findFreePort();
    const supervisor = new MlflowServerSupervisor({
      python: request.python,
      workspace: request.workspace,
      storeUri: target.storeUri,
      port,
      ownerLabel: request.ownerLabel ?? 'cli',
      env: request.env,
    });
    supervisor.onEvent((event) => {
      if (event.type === 'warning') request.notice(`MLflow: ${event.text}`);
    });
    const started = Date.now();
    request.notice(`MLflow: starting the tracking server for ${target.storeUri}`);
    const ready = supervisor.start().then(
      (uri) => request.notice(`MLflow: tracking server ready at ${uri} (${((Date.now() - started) / 1000).toFixed(1)} s)`),
      (error: unknown) => request.notice(`MLflow: the tracking server did not start (${messageOf(error)}); trials are logged later with \`hyperopt-runner sync\``),
    );
    return new TrackingSession(`http://127.0.0.1:${port}`, supervisor, request.env, ready);
  }

  client(): MlflowClient | undefined {
    const uri = this.supervisor ? this.supervisor.uri : this.uri;
    return uri ? new MlflowClient({ trackingUri: uri, auth: mlflowAuthFromEnv(this.env) }) : undefined;
  }

  /** Writes the runs the workers could not; returns how many. Failures leave them for `sync`. */
  async syncJournals(journals: readonly string[], notice: (text: string) => void): Promise<number> {
    const client = this.client();
    if (!client) return 0;
    let written = 0;
    for (const path of journals) {
      try {
        const study = readJournal(path);
        if (unsyncedTrials(study) === 0 && study.tracking) continue;
        written += (await syncStudy(study, client)).written;
      } catch (error) {
        notice(`MLflow: could not write the missing runs of ${path} (${messageOf(error)}); run \`hyperopt-runner sync\` later`);
      }
    }
    return written;
  }

  async stop(): Promise<void> {
    await this.supervisor?.stop();
  }
}
