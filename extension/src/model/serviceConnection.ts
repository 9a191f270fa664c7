/**
 * This window's link to the workspace's background service: connects (starting the service when
 * asked to), subscribes, feeds the study store from the snapshot and the events, and re-attaches
 * after the connection drops. vscode-free.
 */
import type { EngineEvent } from '../../../core/src/coordinator/events';
import { Emitter } from '../../../core/src/events';
import type { PromptClosedMessage, PromptMessage, Reply, ServiceNoticeMessage } from '../../../core/src/protocol/control';
import { connectService, type ControlClient, type ControlRequestInput, type LaunchOptions, type PushMessage } from '../../../core/src/service/client';
import { pidAlive, readServiceFile } from '../../../core/src/service/serviceFile';
import type { StudyStore } from './studyStore';

export interface ConnectionOptions extends Omit<LaunchOptions, 'log'> {
  log: (line: string) => void;
}

export class ServiceConnection {
  readonly notices = new Emitter<ServiceNoticeMessage>();
  readonly output = new Emitter<Extract<PushMessage, { type: 'output' }>>();
  /** Driver and engine notices (`notice` events), by run. */
  readonly runNotices = new Emitter<{ run: string; text: string }>();
  /** Every engine event, after the store has applied it. */
  readonly events = new Emitter<{ run: string; event: EngineEvent }>();
  /** Questions from the service (SSH passphrases, host keys) and their closing. */
  readonly prompts = new Emitter<PromptMessage | PromptClosedMessage>();
  private client: ControlClient | undefined;
  private connecting: Promise<ControlClient> | undefined;
  private disposed = false;
  private reconnectTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: StudyStore,
    private readonly options: ConnectionOptions,
  ) {}

  get connected(): boolean {
    return this.client !== undefined && !this.client.isClosed;
  }

  /** True when service.json names a live process (a service may have runs to re-attach to). */
  serviceRecorded(): boolean {
    const record = readServiceFile(this.options.workspace);
    return record !== undefined && pidAlive(record.pid);
  }

  /** The connected client; starts the service when none runs. */
  ensure(): Promise<ControlClient> {
    if (this.client && !this.client.isClosed) return Promise.resolve(this.client);
    this.connecting ??= this.open().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  async request(message: ControlRequestInput, timeoutMs?: number): Promise<Reply> {
    const client = await this.ensure();
    return client.request(message, timeoutMs);
  }

  private async open(): Promise<ControlClient> {
    const { client, started } = await connectService({ ...this.options });
    this.options.log(`${started ? 'started and connected to' : 'connected to'} the background service (pid ${client.service?.pid}, build ${client.service?.version})`);
    client.messages.on((message) => this.onMessage(message));
    client.disconnected.on(({ error }) => this.onDisconnected(client, error));
    const reply = await client.request({ type: 'subscribe' });
    if (reply.snapshot) {
      this.store.applySnapshot(reply.snapshot);
      const active = reply.snapshot.runs.filter((r) => r.state !== 'ended');
      if (active.length > 0) this.options.log(`re-attached to ${active.length} running run(s): ${active.map((r) => r.run).join(', ')}`);
    }
    this.client = client;
    return client;
  }

  private onMessage(message: PushMessage): void {
    switch (message.type) {
      case 'event':
        if (message.event.type === 'notice') this.runNotices.emit({ run: message.run, text: message.event.text });
        this.store.applyEvent(message.run, message.event);
        this.events.emit({ run: message.run, event: message.event });
        return;
      case 'output':
        this.output.emit(message);
        return;
      case 'runStarted':
        this.store.applyRunStarted(message.run);
        return;
      case 'runEnded':
        this.store.applyRunEnded(message.run, message.code, message.error);
        return;
      case 'serviceNotice':
        this.notices.emit(message);
        return;
      case 'prompt':
      case 'promptClosed':
        this.prompts.emit(message);
        return;
    }
  }

  /** The service went away (it ended, or the connection broke): re-attach while runs were going. */
  private onDisconnected(client: ControlClient, error: string | undefined): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.options.log(`the background service connection closed${error ? `: ${error}` : ''}`);
    if (this.disposed) return;
    const hadRuns = this.store.activeRuns().length > 0;
    if (!hadRuns) return;
    this.reconnectTimer = setTimeout(() => {
      if (this.disposed) return;
      if (!this.serviceRecorded()) {
        // The service is gone, and with it its runs: their studies are over.
        for (const run of this.store.activeRuns()) this.store.applyRunEnded(run.run, 1, { code: 'service_gone', message: 'the background service ended' });
        return;
      }
      this.ensure().catch((e: unknown) => this.options.log(`re-attaching failed: ${e instanceof Error ? e.message : String(e)}`));
    }, 1_000);
  }

  dispose(): void {
    this.disposed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.client?.close();
    this.client = undefined;
  }
}
