/**
 * The tracking servers a service provides: an http(s) URI is used as it is; the workspace's
 * embedded store (or a file / SQLite store the user named) is served by one supervised
 * `mlflow server` per store, kept while the service lives.
 */
import { messageOf } from '../errors';
import { Emitter } from '../events';
import { MlflowServerSupervisor, resolveTrackingUri } from '../mlflow/supervisor';
import type { TrackingInfo } from '../protocol/control';

export class TrackingServers {
  readonly notices = new Emitter<{ level: 'info' | 'warning' | 'error'; text: string }>();
  private readonly supervisors = new Map<string, MlflowServerSupervisor>();

  constructor(
    private readonly workspace: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  /** '' is the workspace's embedded server. Never rejects: a failure comes back as a warning. */
  async resolve(trackingUri: string, python: string, signal?: AbortSignal): Promise<TrackingInfo> {
    const target = resolveTrackingUri({ setting: trackingUri, workspace: this.workspace, env: {} });
    if (target.kind === 'remote') return { uri: target.uri, kind: 'remote' };
    if (target.kind === 'unsupported') return { uri: null, kind: 'none', warning: `tracking URI ${target.uri}: ${target.reason}` };
    let supervisor = this.supervisors.get(target.storeUri);
    if (!supervisor) {
      supervisor = new MlflowServerSupervisor({
        python,
        workspace: this.workspace,
        storeUri: target.storeUri,
        ownerLabel: 'service',
        env: this.env,
      });
      supervisor.onEvent((event) => {
        if (event.type === 'warning') this.notices.emit({ level: 'warning', text: event.text });
        else if (event.type === 'restarting') this.notices.emit({ level: 'warning', text: `${event.reason}; restarting it` });
        else if (event.type === 'error') this.notices.emit({ level: 'error', text: event.error.message });
        else if (event.type === 'ready') this.notices.emit({ level: 'info', text: `MLflow server ready at ${event.uri}${event.reused ? ' (reused)' : ''}` });
      });
      this.supervisors.set(target.storeUri, supervisor);
    }
    try {
      return { uri: await supervisor.start(signal), kind: 'embedded' };
    } catch (error) {
      signal?.throwIfAborted();
      // A later request tries again (with another interpreter, perhaps).
      this.supervisors.delete(target.storeUri);
      return { uri: null, kind: 'none', warning: `the embedded MLflow server is not available: ${messageOf(error)}` };
    }
  }

  async stopAll(): Promise<void> {
    await Promise.allSettled([...this.supervisors.values()].map((s) => s.stop()));
    this.supervisors.clear();
  }
}
