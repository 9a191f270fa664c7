/**
 * The tracking servers a service provides: an http(s) URI is used as it is; the workspace's
 * embedded store (or a file / SQLite store the user named) is the workspace's tracking server
 * daemon, shared with the CLI, leased for as long as the service lives.
 */
import { messageOf } from '../errors';
import { Emitter } from '../events';
import { MlflowClient, mlflowAuthFromEnv } from '../mlflow/client';
import type { TrackingTarget } from '../mlflow/runWriter';
import { acquireTrackingServer, currentCliCommand, type CliCommand, type TrackingServerLease } from '../mlflow/serverLease';
import { resolveTrackingUri } from '../mlflow/supervisor';
import { abandonedJournals, syncJournalFiles } from '../mlflow/sync';
import { checkTrackingServer } from '../mlflow/tracking';
import type { TrackingInfo } from '../protocol/control';

export class TrackingServers {
  readonly notices = new Emitter<{ level: 'info' | 'warning' | 'error'; text: string }>();
  private readonly leases = new Map<string, Promise<TrackingServerLease>>();
  /** Leases that answered, by the URI they gave. */
  private readonly byUri = new Map<string, TrackingServerLease>();

  constructor(
    private readonly workspace: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly cli: CliCommand = currentCliCommand(),
  ) {}

  /** '' is the workspace's embedded server. Never rejects: a failure comes back as a warning. */
  async resolve(trackingUri: string, python: string, signal?: AbortSignal): Promise<TrackingInfo> {
    const target = resolveTrackingUri({ setting: trackingUri, workspace: this.workspace, env: {} });
    if (target.kind === 'remote') {
      // As the CLI does: a study never hands its workers an address that does not answer.
      const failure = await checkTrackingServer(target.uri, this.env, signal).then(
        () => undefined,
        (error: unknown) => messageOf(error),
      );
      signal?.throwIfAborted();
      return failure === undefined ? { uri: target.uri, kind: 'remote' } : { uri: null, kind: 'none', warning: `MLflow: ${target.uri} does not answer (${failure})` };
    }
    if (target.kind === 'unsupported') return { uri: null, kind: 'none', warning: `tracking URI ${target.uri}: ${target.reason}` };
    let pending = this.leases.get(target.storeUri);
    if (pending) {
      const held = await pending.catch(() => undefined);
      // A daemon that failed or went away is replaced by asking again.
      if (!held || held.state === 'failed' || held.state === 'lost') {
        held?.release();
        this.leases.delete(target.storeUri);
        pending = undefined;
      }
    }
    if (!pending) {
      pending = acquireTrackingServer({
        workspace: this.workspace,
        storeUri: target.storeUri,
        python,
        cli: this.cli,
        env: this.env,
        notice: (text) => this.notices.emit({ level: 'warning', text }),
      });
      this.leases.set(target.storeUri, pending);
      pending.then(
        (lease) => {
          this.byUri.set(lease.uri, lease);
          this.notices.emit({ level: 'info', text: `MLflow server at ${lease.uri}${lease.started ? ' (started)' : ' (the workspace\'s, reused)'}` });
          lease.changes.on(({ state, message }) => {
            if (state === 'failed' || state === 'lost') this.notices.emit({ level: 'error', text: `the MLflow server is not available: ${message ?? state}` });
          });
        },
        () => undefined,
      );
    }
    try {
      signal?.throwIfAborted();
      const lease = await pending;
      if (lease.state === 'failed') return { uri: null, kind: 'none', warning: `the embedded MLflow server is not available: ${lease.message ?? 'it could not start'}` };
      return { uri: lease.uri, kind: 'embedded', token: lease.record.apiToken };
    } catch (error) {
      signal?.throwIfAborted();
      this.leases.delete(target.storeUri);
      return { uri: null, kind: 'none', warning: `the embedded MLflow server is not available: ${messageOf(error)}` };
    }
  }

  /** Where a run's engine writes its studies' runs, for a URI `resolve` gave. */
  target(info: TrackingInfo, env: NodeJS.ProcessEnv): TrackingTarget | undefined {
    if (!info.uri) return undefined;
    const lease = info.kind === 'embedded' ? this.byUri.get(info.uri) : undefined;
    const client = new MlflowClient({ trackingUri: info.uri, auth: lease ? lease.auth : mlflowAuthFromEnv(env), maxRetries: 1, requestTimeoutMs: 10_000 });
    const token = lease ? lease.record.apiToken : env.MLFLOW_TRACKING_TOKEN;
    return { uri: info.uri, ...(token ? { token } : {}), client, env, ready: () => (lease ? lease.ready() : client.health()) };
  }

  /**
   * Ends the runs of the studies a command that died left in `journalDir` (their parent and
   * in-flight children RUNNING in MLflow for good otherwise): KILLED, with the counts the journal
   * knows (a study of a live command, this service's included, is left to it). Returns how many
   * studies it closed.
   */
  async closeAbandoned(info: TrackingInfo, journalDir: string): Promise<number> {
    const target = this.target(info, this.env);
    if (!target) return 0;
    const { studies } = await syncJournalFiles(abandonedJournals(journalDir), target.client, (path, error) =>
      this.notices.emit({ level: 'warning', text: `MLflow: could not close the runs of ${path} (${messageOf(error)}); \`hyperopt-runner sync\` writes them later` }),
    );
    if (studies > 0) this.notices.emit({ level: 'info', text: `MLflow: closed the runs of ${studies} stud${studies === 1 ? 'y' : 'ies'} that a command which died had left running` });
    return studies;
  }

  /** Lets go of the leases; the daemons end by themselves once nobody uses them. */
  async stopAll(): Promise<void> {
    const leases = await Promise.allSettled([...this.leases.values()]);
    for (const result of leases) if (result.status === 'fulfilled') result.value.release();
    this.leases.clear();
    this.byUri.clear();
  }
}
