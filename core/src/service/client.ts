/**
 * The client end of the control protocol, vscode-free: the extension and the tests use it.
 * `connectService` finds the workspace's service through service.json and starts one when there
 * is none (or only a dead or outdated one).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import type { z } from 'zod';
import { RunnerError } from '../errors';
import { Emitter } from '../events';
import { ensurePrivateDir } from '../privateDir';
import {
  CONTROL_PROTOCOL_VERSION,
  ServiceToClient,
  type ClientToService,
  type ControlError,
  type Reply,
  type ServiceFile,
  type ServiceInfo,
} from '../protocol/control';
import { decodeMessage, encodeMessage, LineSplitter } from '../protocol/ndjson';
import { pidAlive, readServiceFile, serviceLogPath, stateDir } from './serviceFile';

/** A request as the caller writes it (defaults may be left out): the client adds the id. */
type RequestInput = z.input<typeof ClientToService>;
export type ControlRequestInput = RequestInput extends infer M ? (M extends { id: string } ? Omit<M, 'id'> : never) : never;

export class ControlRequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ControlRequestError';
  }
}

export type PushMessage = Exclude<ServiceToClient, { type: 'reply' }>;

export class ControlClient {
  /** Everything the service pushes after `subscribe`. */
  readonly messages = new Emitter<PushMessage>();
  /** Emits once when the connection ends. */
  readonly disconnected = new Emitter<{ error?: string }>();
  private readonly pending = new Map<string, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();
  private seq = 0;
  private closed = false;
  service: ServiceInfo | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly log?: (line: string) => void,
  ) {
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    const lines = new LineSplitter();
    socket.on('data', (chunk: string) => lines.push(chunk, (line) => this.onLine(line)));
    socket.on('error', (error) => this.end(error.message));
    socket.on('close', () => this.end());
  }

  /** Connects and says hello; rejects on a refused token or another protocol version. */
  static async connect(port: number, token: string, options: { client?: string; timeoutMs?: number; log?: (line: string) => void } = {}): Promise<ControlClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new ControlRequestError('unreachable', new RunnerError('service_unreachable', { port, reason: 'no answer' }).message));
      }, options.timeoutMs ?? 5_000);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (error) => {
        clearTimeout(timer);
        reject(new ControlRequestError('unreachable', new RunnerError('service_unreachable', { port, reason: error.message }).message));
      });
    });
    const client = new ControlClient(socket, options.log);
    try {
      const reply = await client.request({ type: 'hello', protocol: CONTROL_PROTOCOL_VERSION, token, ...(options.client ? { client: options.client } : {}) }, options.timeoutMs ?? 5_000);
      client.service = reply.service;
    } catch (error) {
      client.close();
      throw error;
    }
    return client;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Sends a request; resolves with its successful reply, rejects with the service's error. */
  request(message: ControlRequestInput, timeoutMs = 30_000): Promise<Reply> {
    if (this.closed) return Promise.reject(new ControlRequestError('disconnected', 'the background service connection is closed'));
    const id = `c${++this.seq}`;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ControlRequestError('timeout', `the background service did not answer '${message.type}' within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (reply) => {
          clearTimeout(timer);
          if (reply.ok) resolve(reply);
          else reject(new ControlRequestError(reply.error?.code ?? 'failed', reply.error?.message ?? `'${message.type}' failed`));
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.socket.write(encodeMessage({ ...message, id }));
    });
  }

  close(): void {
    this.socket.end();
    this.socket.destroy();
    this.end();
  }

  private onLine(line: string): void {
    const decoded = decodeMessage(line, ServiceToClient);
    if (!decoded.ok) {
      this.log?.(`dropped a message from the background service: ${decoded.error}`);
      return;
    }
    const message = decoded.message;
    if (message.type === 'reply') {
      const waiter = this.pending.get(message.id);
      this.pending.delete(message.id);
      waiter?.resolve(message);
      return;
    }
    this.messages.emit(message);
  }

  private end(error?: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const waiter of this.pending.values()) waiter.reject(new ControlRequestError('disconnected', 'the background service connection closed'));
    this.pending.clear();
    this.disconnected.emit(error ? { error } : {});
  }
}

export interface LaunchOptions {
  workspace: string;
  /** The program that runs the CLI bundle: `process.execPath` (Node, or Electron as Node). */
  node: string;
  /** The CLI entry (dist/cli.js), or arguments before `serve` (for tsx in tests). */
  cli: string | string[];
  /** The build the client expects (see buildVersion); a service of another build is replaced when idle. */
  version?: string;
  env?: NodeJS.ProcessEnv;
  /** Idle timeout of a service started here, in seconds. */
  idleTimeoutSeconds?: number;
  /** Client name sent in hello. */
  client?: string;
  /** How long to wait for a started service (ms, default 20 s). */
  startTimeoutMs?: number;
  log?: (line: string) => void;
}

/** Connects to the workspace's service, starting one when needed. */
export async function connectService(options: LaunchOptions): Promise<{ client: ControlClient; started: boolean }> {
  const existing = await tryExisting(options);
  if (existing) return { client: existing, started: false };
  const child = startService(options);
  const deadline = Date.now() + (options.startTimeoutMs ?? 20_000);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  for (;;) {
    await sleep(100);
    const client = await tryExisting(options, true);
    if (client) return { client, started: true };
    // Our child may have exited because another window's service won the lock: keep looking.
    if (Date.now() > deadline) {
      throw new RunnerError('service_start_failed', {
        seconds: Math.round((options.startTimeoutMs ?? 20_000) / 1000),
        why: exited ? 'it exited' : undefined,
        log: serviceLogPath(options.workspace),
      });
    }
  }
}

/** Starts `serve` detached in its own process group, its output appended to service.log. */
export function startService(options: LaunchOptions): { once(event: 'exit', listener: () => void): unknown; pid?: number } {
  ensurePrivateDir(stateDir(options.workspace));
  const log = openSync(serviceLogPath(options.workspace), 'a', 0o600);
  const cli = Array.isArray(options.cli) ? options.cli : [options.cli];
  const args = [...cli, 'serve', '--workspace', options.workspace];
  if (options.idleTimeoutSeconds !== undefined) args.push('--idle-timeout', String(options.idleTimeoutSeconds));
  options.log?.(`starting the background service: ${options.node} ${args.join(' ')}`);
  try {
    const child = spawn(options.node, args, {
      cwd: options.workspace,
      env: { ...(options.env ?? process.env), ELECTRON_RUN_AS_NODE: '1' },
      detached: true,
      stdio: ['ignore', log, log],
      windowsHide: true,
    });
    child.unref();
    return child;
  } finally {
    closeSync(log);
  }
}

async function tryExisting(options: LaunchOptions, freshOnly = false): Promise<ControlClient | undefined> {
  const record = readServiceFile(options.workspace);
  if (!record || !pidAlive(record.pid)) return undefined;
  let client: ControlClient;
  try {
    // A live service that is slow to answer (a busy machine) is still better than starting a
    // second one that loses the lock: the first attempt waits longer than the polling ones.
    client = await ControlClient.connect(record.port, record.token, { client: options.client, log: options.log, timeoutMs: freshOnly ? 3_000 : 10_000 });
  } catch (error) {
    if (error instanceof ControlRequestError && error.code === 'protocol_mismatch') return replaceOutdated(record, options);
    return undefined;
  }
  if (freshOnly || !options.version || client.service?.version === options.version) return client;
  // Another build: replace it when it has nothing running, else keep using it.
  try {
    const snapshot = (await client.request({ type: 'snapshot' })).snapshot;
    if (snapshot && snapshot.runs.some((r) => r.state !== 'ended')) {
      options.log?.(`the background service (build ${client.service?.version}) has runs going; using it until they end`);
      return client;
    }
    options.log?.(`replacing the background service of build ${client.service?.version} with ${options.version}`);
    await client.request({ type: 'shutdown' }).catch(() => undefined);
  } finally {
    if (!client.isClosed) client.close();
  }
  await waitForExit(record.pid, 15_000);
  return undefined;
}

async function replaceOutdated(record: ServiceFile, options: LaunchOptions): Promise<undefined> {
  options.log?.(`the background service (pid ${record.pid}) speaks another protocol; ending it`);
  try {
    process.kill(-record.pid, 'SIGTERM');
  } catch {
    try {
      process.kill(record.pid, 'SIGTERM');
    } catch {
      // gone
    }
  }
  await waitForExit(record.pid, 15_000);
  return undefined;
}

async function waitForExit(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pidAlive(pid) && Date.now() < deadline) await sleep(100);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export type { ControlError };
