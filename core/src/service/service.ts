/**
 * The background service of one workspace: owns its runs (many at once) and its embedded MLflow
 * server, outlives editor windows, and ends itself after it has been idle (no client, no run).
 *
 * Clients speak the control protocol (protocol/control.ts) over loopback TCP after proving they
 * hold the token the service wrote to `.hyperopt-runner/service.json` (mode 0600).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { messageOf, RunnerError } from '../errors';
import { Emitter } from '../events';
import {
  ClientToService,
  CONTROL_PROTOCOL_VERSION,
  RunSpec,
  type ControlErrorCode,
  type Reply,
  type ServiceInfo,
  type ServiceToClient,
  type Snapshot,
} from '../protocol/control';
import { decodeMessage, encodeMessage, LineSplitter } from '../protocol/ndjson';
import { PromptBroker } from './prompts';
import { removeServiceFile, writeServiceFile } from './serviceFile';
import { defaultServiceJournalDir, ServiceRun, type ServiceExecutorFactory } from './serviceRun';
import { TrackingServers } from './tracking';

export interface ServiceOptions {
  workspace: string;
  createExecutor: ServiceExecutorFactory;
  /** Recorded in service.json and the hello reply; clients replace a service of another build. */
  version: string;
  /** Exit after this long without clients and runs (ms, default 5 min). */
  idleTimeoutMs?: number;
  /** Ended runs kept for snapshots (default 20). */
  keepEndedRuns?: number;
  /** Write service.json (default true; tests that run several services in one folder turn it off). */
  writeServiceFile?: boolean;
  log?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  /** How long a question to the editor (an SSH passphrase, a host key) waits for its answer (ms, default 5 min). */
  promptTimeoutMs?: number;
}

interface Client {
  socket: Socket;
  name: string;
  authenticated: boolean;
  subscribed: boolean;
  trialOutput: boolean;
}

const MAX_LINE = 1024 * 1024;

export class ControlService {
  /** Emits once, when the service has shut down (idle, asked to, or by a signal). */
  readonly closed = new Emitter<{ reason: string }>();
  readonly token = randomBytes(32).toString('hex');
  readonly workspace: string;
  private readonly server: Server;
  private readonly clients = new Set<Client>();
  private readonly runs = new Map<string, ServiceRun>();
  /** The client that started each run: its questions go there first. */
  private readonly origins = new Map<string, Client>();
  private readonly prompts: PromptBroker<Client>;
  private readonly tracking: TrackingServers;
  private readonly startedAt = Date.now();
  private idleTimer: NodeJS.Timeout | undefined;
  private shuttingDown: Promise<void> | undefined;
  private port = 0;

  constructor(private readonly options: ServiceOptions) {
    this.workspace = resolve(options.workspace);
    this.tracking = new TrackingServers(this.workspace, options.env);
    this.tracking.notices.on(({ level, text }) => {
      this.log(`tracking: ${text}`);
      this.broadcast({ type: 'serviceNotice', level, text });
    });
    this.server = createServer((socket) => this.accept(socket));
    this.prompts = new PromptBroker<Client>(
      {
        target: (run) => this.promptTarget(run),
        send: (client, message) => {
          if (message.type === 'prompt') this.log(`run ${message.run}: asking ${client.name} (${message.question.kind}, prompt ${message.prompt})`);
          else this.log(`prompt ${message.prompt} closed: ${message.reason}`);
          this.send(client, message);
        },
      },
      options.promptTimeoutMs,
    );
  }

  get info(): ServiceInfo {
    return { pid: process.pid, version: this.options.version, protocol: CONTROL_PROTOCOL_VERSION, workspace: this.workspace, startedAt: this.startedAt };
  }

  /** Listens on a free loopback port and records it; resolves with the port. */
  async listen(): Promise<number> {
    await new Promise<void>((ok, fail) => {
      this.server.once('error', fail);
      this.server.listen(0, '127.0.0.1', () => ok());
    });
    const address = this.server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
    if (this.options.writeServiceFile !== false) {
      writeServiceFile(this.workspace, {
        pid: process.pid,
        port: this.port,
        token: this.token,
        version: this.options.version,
        protocol: CONTROL_PROTOCOL_VERSION,
        startedAt: this.startedAt,
      });
    }
    this.log(`listening on 127.0.0.1:${this.port} for ${this.workspace}`);
    this.armIdle();
    return this.port;
  }

  snapshot(): Snapshot {
    return { service: this.info, runs: [...this.runs.values()].map((r) => r.snapshot()) };
  }

  /** Cancels every run, stops the MLflow servers it started, removes service.json, closes. */
  shutdown(reason: string): Promise<void> {
    this.shuttingDown ??= (async () => {
      this.log(`shutting down: ${reason}`);
      if (this.idleTimer) clearTimeout(this.idleTimer);
      this.broadcast({ type: 'serviceNotice', level: 'info', text: `the background service is shutting down (${reason})` });
      this.server.close();
      await Promise.allSettled([...this.runs.values()].map((run) => run.terminate()));
      await this.tracking.stopAll();
      for (const client of this.clients) client.socket.end();
      if (this.options.writeServiceFile !== false) removeServiceFile(this.workspace, process.pid);
      this.closed.emit({ reason });
    })();
    return this.shuttingDown;
  }

  // ---- connections ------------------------------------------------------------------------------

  private accept(socket: Socket): void {
    if (this.shuttingDown) {
      socket.destroy();
      return;
    }
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    const client: Client = { socket, name: `${socket.remoteAddress}:${socket.remotePort}`, authenticated: false, subscribed: false, trialOutput: false };
    this.clients.add(client);
    this.armIdle();
    const lines = new LineSplitter();
    // A client that never says hello is dropped.
    const helloTimer = setTimeout(() => {
      if (!client.authenticated) socket.destroy();
    }, 10_000);
    socket.on('data', (chunk: string) => {
      if (lines.pendingLength > MAX_LINE) {
        socket.destroy();
        return;
      }
      lines.push(chunk, (line) => this.onLine(client, line));
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(helloTimer);
      this.clients.delete(client);
      this.prompts.detach(client);
      if (client.authenticated) this.log(`client ${client.name} left`);
      this.armIdle();
    });
  }

  private onLine(client: Client, line: string): void {
    const decoded = decodeMessage(line, ClientToService);
    if (!decoded.ok) {
      const id = requestIdOf(line);
      this.log(`invalid message from ${client.name}: ${decoded.error}`);
      if (!client.authenticated) {
        client.socket.destroy();
        return;
      }
      if (id) this.send(client, failure(id, 'invalid_request', decoded.error));
      return;
    }
    const message = decoded.message;
    if (!client.authenticated) {
      if (message.type !== 'hello' || !tokenMatches(this.token, message.token)) {
        this.log(`refused a client ${client.name}: ${message.type === 'hello' ? 'wrong token' : 'no hello first'}`);
        this.send(client, failure(message.id, 'unauthorized', 'wrong or missing token'));
        client.socket.end();
        return;
      }
      if (message.protocol !== CONTROL_PROTOCOL_VERSION) {
        this.send(client, failure(message.id, 'protocol_mismatch', `the service speaks control protocol ${CONTROL_PROTOCOL_VERSION}, the client ${message.protocol}`));
        client.socket.end();
        return;
      }
      client.authenticated = true;
      if (message.client) client.name = `${message.client} (${client.name})`;
      this.log(`client ${client.name} connected`);
      this.send(client, { type: 'reply', id: message.id, ok: true, service: this.info });
      return;
    }
    try {
      this.handle(client, message);
    } catch (error) {
      const code = error instanceof RunnerError ? error.code : 'internal';
      this.send(client, failure(message.id, code, messageOf(error)));
    }
  }

  private handle(client: Client, message: ClientToService): void {
    const id = message.id;
    switch (message.type) {
      case 'hello':
        this.send(client, { type: 'reply', id, ok: true, service: this.info });
        return;
      case 'run': {
        if (this.shuttingDown) {
          this.send(client, failure(id, 'shutting_down', 'the background service is shutting down'));
          return;
        }
        const run = new ServiceRun(RunSpec.parse(message.spec), this.workspace, this.options.createExecutor, this.tracking, (runId, question, signal) =>
          this.prompts.ask(runId, question, signal),
        );
        this.runs.set(run.id, run);
        this.origins.set(run.id, client);
        run.messages.on((m) => {
          if (m.type === 'event') this.broadcastRun(run, { type: 'event', run: run.id, event: m.event }, m.event.type === 'trial.output');
          else if (m.type === 'output') this.broadcastRun(run, { type: 'output', run: run.id, stream: m.stream, text: m.text });
          else {
            this.log(`run ${run.id} ended with code ${m.code}${m.error ? `: ${m.error.message}` : ''}`);
            this.broadcastRun(run, { type: 'runEnded', run: run.id, code: m.code, ...(m.error ? { error: m.error } : {}) });
            this.pruneRuns();
            this.armIdle();
          }
        });
        this.log(`run ${run.id}: ${run.spec.script} on ${run.executors.map((e) => e.label).join(' + ')}`);
        this.send(client, { type: 'reply', id, ok: true, run: run.id });
        this.broadcast({ type: 'runStarted', run: run.snapshot() });
        this.armIdle();
        void run.start();
        return;
      }
      case 'stop':
      case 'cancel': {
        const targets = this.targets(message.study, message.run);
        if (typeof targets === 'string') {
          this.send(client, failure(id, targets, message.study ? `no running study ${message.study}` : `no run ${message.run ?? ''}`));
          return;
        }
        for (const run of targets) {
          if (message.type === 'stop') run.stop(message.study);
          else run.cancel(message.study);
        }
        this.send(client, { type: 'reply', id, ok: true });
        return;
      }
      case 'setTimeout':
      case 'setParallelism':
      case 'setPolicy': {
        const run = this.runOfStudy(message.study);
        if (!run) {
          this.send(client, failure(id, 'unknown_study', `no running study ${message.study}`));
          return;
        }
        if (run.tracks.state(message.study) === 'ended') {
          this.send(client, failure(id, 'not_running', `study ${message.study} has ended`));
          return;
        }
        if (message.type === 'setTimeout') run.setTimeout(message.study, message.seconds);
        else if (message.type === 'setParallelism') run.setParallelism(message.study, message.n);
        else {
          const policy: { lossThreshold?: number | null; noProgressTrials?: number | null } = {};
          if (message.lossThreshold !== undefined) policy.lossThreshold = message.lossThreshold;
          if (message.noProgressTrials !== undefined) policy.noProgressTrials = message.noProgressTrials;
          run.setPolicy(message.study, policy);
        }
        this.send(client, { type: 'reply', id, ok: true });
        return;
      }
      case 'snapshot':
        this.send(client, { type: 'reply', id, ok: true, snapshot: this.snapshot() });
        return;
      case 'subscribe':
        client.subscribed = true;
        client.trialOutput = message.trialOutput === true;
        // Same turn as the snapshot: every later change reaches the client as a message.
        this.send(client, { type: 'reply', id, ok: true, snapshot: this.snapshot() });
        return;
      case 'tracking':
        void this.tracking.resolve(message.trackingUri, message.python).then((tracking) => {
          this.send(client, { type: 'reply', id, ok: true, tracking });
          // A window asks when it opens: the studies a killed command left are closed then, not left RUNNING.
          if (tracking.uri) void this.tracking.closeAbandoned(tracking, defaultServiceJournalDir(this.workspace));
        });
        return;
      case 'answer':
        if (this.prompts.answer(client, message.prompt, message.answer)) this.send(client, { type: 'reply', id, ok: true });
        else this.send(client, failure(id, 'unknown_prompt', `prompt ${message.prompt} is not open (it timed out, was answered or its run stopped)`));
        return;
      case 'shutdown':
        this.send(client, { type: 'reply', id, ok: true });
        void this.shutdown(`asked by ${client.name}`);
        return;
    }
  }

  private targets(study: string | undefined, run: string | undefined): ServiceRun[] | ControlErrorCode {
    if (study) {
      const owner = this.runOfStudy(study);
      return owner ? [owner] : 'unknown_study';
    }
    if (run) {
      const owner = this.runs.get(run);
      return owner ? [owner] : 'unknown_run';
    }
    return [...this.runs.values()].filter((r) => r.active);
  }

  /** The client that started the run while it is attached, else any attached editor. */
  private promptTarget(run: string): Client | undefined {
    const origin = this.origins.get(run);
    if (origin && this.clients.has(origin) && origin.subscribed) return origin;
    for (const client of this.clients) if (client.subscribed) return client;
    return undefined;
  }

  private runOfStudy(study: string): ServiceRun | undefined {
    for (const run of this.runs.values()) if (run.hasStudy(study)) return run;
    return undefined;
  }

  /** Keeps the active runs and the last few ended ones. */
  private pruneRuns(): void {
    const keep = this.options.keepEndedRuns ?? 20;
    const ended = [...this.runs.values()].filter((r) => !r.active);
    for (const run of ended.slice(0, Math.max(0, ended.length - keep))) {
      this.runs.delete(run.id);
      this.origins.delete(run.id);
    }
  }

  // ---- sending ----------------------------------------------------------------------------------

  private send(client: Client, message: ServiceToClient): void {
    if (!client.socket.destroyed && client.socket.writable) client.socket.write(encodeMessage(message));
  }

  private broadcast(message: ServiceToClient): void {
    for (const client of this.clients) if (client.subscribed) this.send(client, message);
  }

  private broadcastRun(_run: ServiceRun, message: ServiceToClient, trialOutput = false): void {
    for (const client of this.clients) {
      if (client.subscribed && (!trialOutput || client.trialOutput)) this.send(client, message);
    }
  }

  // ---- idle -------------------------------------------------------------------------------------

  private armIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.shuttingDown) return;
    const busy = this.clients.size > 0 || [...this.runs.values()].some((r) => r.active);
    if (busy) return;
    const ms = this.options.idleTimeoutMs ?? 5 * 60_000;
    this.idleTimer = setTimeout(() => void this.shutdown(`idle for ${Math.round(ms / 1000)} s`), ms);
  }

  private log(line: string): void {
    this.options.log?.(`${new Date().toISOString()} ${line}`);
  }
}

function failure(id: string, code: string, message: string): Reply {
  return { type: 'reply', id, ok: false, error: { code, message } };
}

function tokenMatches(expected: string, given: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The id of a request that did not validate, so the reply can still name it. */
function requestIdOf(line: string): string | undefined {
  try {
    const raw = JSON.parse(line) as { id?: unknown };
    return typeof raw.id === 'string' && raw.id.length > 0 && raw.id.length <= 100 ? raw.id : undefined;
  } catch {
    return undefined;
  }
}
