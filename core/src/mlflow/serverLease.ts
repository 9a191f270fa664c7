/**
 * Using the workspace's tracking server (serverDaemon.ts): find the daemon from its record and
 * hold a lease on it, or start one. Two callers at once end up on one daemon (its lock decides);
 * a stale record (its daemon gone, or its port now answering for another program) is replaced
 * with one notice. Nothing here ever kills a process that is not a daemon of ours for this store.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { RunnerError } from '../errors';
import { Emitter } from '../events';
import { pidAlive } from '../lockFile';
import { ensurePrivateDir } from '../privateDir';
import {
  BrowserCode,
  CONTROL_PREFIX,
  DaemonHandshake,
  TOKEN_HEADER,
  TrackingServerState,
  TrackingServerStatus,
  type BackendState,
  type SyncRequest,
} from '../protocol/trackingServer';
import type { MlflowAuth } from './client';
import { readEarlierRecord, readTrackingRecord, removeTrackingRecord, trackingServerPaths, type TrackingServerRecord } from './serverRecord';

/** How to run this program's CLI (`hyperopt-runner`): the daemon is its `tracking-server` command. */
export interface CliCommand {
  /** Node, or Electron run as Node. */
  readonly node: string;
  /** What comes before the command name: the bundle's path, or a loader and the entry in tests. */
  readonly args: readonly string[];
}

/** The command line this process was started with, for starting a daemon of the same build. */
export function currentCliCommand(): CliCommand {
  return { node: process.execPath, args: [...process.execArgv, process.argv[1] ?? ''] };
}

export interface AcquireOptions {
  readonly workspace: string;
  readonly storeUri: string;
  readonly python: string;
  readonly cli: CliCommand;
  readonly env?: NodeJS.ProcessEnv;
  /** For a daemon started here. */
  readonly idleTimeoutSeconds?: number;
  readonly notice?: (text: string) => void;
  /** How long a daemon started here may take to listen (default 20 s; it listens before MLflow starts). */
  readonly startTimeoutMs?: number;
}

export type LeaseState = BackendState | 'lost';

/** What reaching a daemon's control paths takes. */
type DaemonAddress = Pick<TrackingServerRecord, 'port' | 'token'>;

/** An open lease: the server stays up while it is held. */
export class TrackingServerLease {
  readonly changes = new Emitter<{ state: LeaseState; message?: string }>();
  private current: LeaseState;
  private currentMessage: string | undefined;
  private released = false;

  constructor(
    /** The tracking URI: valid at once, even while MLflow still starts. */
    readonly uri: string,
    readonly record: TrackingServerRecord,
    /** True when this call started the daemon (MLflow starts from scratch). */
    readonly started: boolean,
    first: TrackingServerState,
    private readonly response: IncomingMessage,
    /** What came after the first line in the same read. */
    rest: string,
  ) {
    this.current = first.state;
    this.currentMessage = first.message;
    let carry = '';
    const feed = (chunk: string): void => {
      const lines = (carry + chunk).split('\n');
      carry = lines.pop() ?? '';
      for (const line of lines) {
        const parsed = line.trim() ? TrackingServerState.safeParse(safeJson(line)) : undefined;
        if (parsed?.success) this.set(parsed.data.state, parsed.data.message);
      }
    };
    feed(rest);
    response.on('data', (chunk: Buffer) => feed(chunk.toString('utf8')));
    const lost = (): void => {
      if (!this.released) this.set('lost', `the tracking server (pid ${record.pid}) went away`);
    };
    response.once('close', lost);
    response.once('error', lost);
    response.socket.setKeepAlive(true, 10_000);
  }

  get state(): LeaseState {
    return this.current;
  }

  /** What every MLflow client of this server sends (the record's API token). */
  get auth(): MlflowAuth {
    return { kind: 'bearer', token: this.record.apiToken };
  }

  get message(): string | undefined {
    return this.currentMessage;
  }

  /** Resolves once MLflow answers; rejects with the reason when it failed or the daemon went away. */
  ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      const settle = (): boolean => {
        if (this.current === 'ready') resolve();
        else if (this.current === 'failed' || this.current === 'lost') reject(new Error(this.currentMessage ?? this.current));
        else return false;
        return true;
      };
      if (settle()) return;
      const off = this.changes.on(() => {
        if (settle()) off();
      });
    });
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.response.destroy();
  }

  private set(state: LeaseState, message: string | undefined): void {
    if (this.current === 'lost') return;
    if (state === this.current && message === this.currentMessage) return;
    this.current = state;
    this.currentMessage = message;
    this.changes.emit({ state, message });
  }
}

/** Leases the workspace's tracking server for `storeUri`, starting its daemon when none answers. */
export async function acquireTrackingServer(options: AcquireOptions): Promise<TrackingServerLease> {
  const paths = trackingServerPaths(options.workspace, options.storeUri);
  const earlier = readEarlierRecord(paths.record);
  if (earlier) {
    options.notice?.(`MLflow: replacing the workspace's tracking server of an earlier version (pid ${earlier.pid})`);
    if (!(await stopTrackingServer(earlier))) endStaleDaemon(earlier, options.storeUri);
    removeTrackingRecord(paths.record, earlier.pid);
  }
  for (let attempt = 0; attempt < 4; attempt++) {
    const record = readTrackingRecord(paths.record);
    if (record) {
      const lease = await openLease(record, false).catch(() => undefined);
      if (lease) return lease;
      options.notice?.(staleReason(record, options.storeUri));
      endStaleDaemon(record, options.storeUri);
      removeTrackingRecord(paths.record, record.pid);
    }
    const handshake = await startDaemon(options, paths.log);
    if (handshake.started) {
      const started = readTrackingRecord(paths.record);
      if (started && started.pid === handshake.pid) return openLease(started, true);
    } else {
      // Another caller's daemon won the lock a moment ago; it records itself right after listening.
      await waitForRecord(paths.record, handshake.runningPid, 5_000);
    }
  }
  throw new RunnerError('tracking_server_start_failed', { why: 'no daemon could be reached after several attempts', log: paths.log });
}

/** The status of a recorded daemon, or undefined when it does not answer. */
export async function trackingServerStatus(record: TrackingServerRecord, timeoutMs = 3_000): Promise<TrackingServerStatus | undefined> {
  try {
    const text = await controlRequest(record, 'GET', 'status', timeoutMs);
    const parsed = TrackingServerStatus.safeParse(safeJson(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Asks a recorded daemon to stop; resolves once it has stopped its `mlflow server` and removed its
 * record (it answers then), false when it did not answer.
 */
export async function stopTrackingServer(record: DaemonAddress, timeoutMs = 30_000): Promise<boolean> {
  try {
    await controlRequest(record, 'POST', 'stop', timeoutMs);
    return true;
  } catch {
    return false;
  }
}

/** A request to one of the daemon's own paths, with the record's token; it fails after `timeoutMs` without an answer. */
function control(record: DaemonAddress, method: 'GET' | 'POST', path: string, timeoutMs: number): ClientRequest {
  const req = httpRequest({
    host: '127.0.0.1',
    port: record.port,
    method,
    path: `${CONTROL_PREFIX}${path}`,
    headers: { [TOKEN_HEADER]: record.token },
    agent: false,
    timeout: timeoutMs,
  });
  req.once('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
  return req;
}

function openLease(record: TrackingServerRecord, started: boolean, timeoutMs = 3_000): Promise<TrackingServerLease> {
  return new Promise((resolve, reject) => {
    const req = control(record, 'GET', 'lease', timeoutMs);
    req.once('error', reject);
    req.once('response', (response) => {
      if (response.statusCode !== 200) {
        response.resume();
        reject(new Error(`answered ${response.statusCode}`));
        return;
      }
      let carry = '';
      const onData = (chunk: Buffer): void => {
        carry += chunk.toString('utf8');
        const end = carry.indexOf('\n');
        if (end === -1) return;
        response.off('data', onData);
        const first = TrackingServerState.safeParse(safeJson(carry.slice(0, end)));
        if (!first.success || first.data.pid !== record.pid || first.data.storeUri !== record.storeUri) {
          response.destroy();
          reject(new Error('answered for another store or process'));
          return;
        }
        req.setTimeout(0);
        resolve(new TrackingServerLease(`http://127.0.0.1:${record.port}`, record, started, first.data, response, carry.slice(end + 1)));
      };
      response.on('data', onData);
    });
    req.end();
  });
}

/**
 * The path (from the server's root) of a link that opens the workspace's MLflow UI in a browser, at
 * `route` (`#/experiments/1`, say): the daemon's one-time browser code, asked for at `uri` with the
 * API token. The editor puts it after the address it made of the port for the browser's side.
 */
export async function browserLinkPath(uri: string, apiToken: string, route = '', timeoutMs = 5_000): Promise<string> {
  const base = uri.replace(/\/+$/, '');
  const response = await fetch(`${base}${CONTROL_PREFIX}browser-code`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiToken}` },
    signal: AbortSignal.timeout(timeoutMs),
  });
  const parsed = BrowserCode.safeParse(safeJson(await response.text()));
  if (!response.ok || !parsed.success) throw new Error(`the tracking server at ${base} answered ${response.status} to a browser link`);
  const segments = route.replace(/^#?\/?/, '');
  return segments ? `${parsed.data.path}/${segments}` : parsed.data.path;
}

/**
 * Hands journals to a recorded daemon, which writes their missing runs in the background; false
 * when it did not take them.
 */
export async function handOffSync(record: TrackingServerRecord, journals: readonly string[], timeoutMs = 3_000): Promise<boolean> {
  const body: SyncRequest = { journals: [...journals] };
  try {
    await controlRequest(record, 'POST', 'sync', timeoutMs, JSON.stringify(body));
    return true;
  } catch {
    return false;
  }
}

function controlRequest(record: DaemonAddress, method: 'GET' | 'POST', path: string, timeoutMs: number, body?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = control(record, method, path, timeoutMs);
    req.once('error', reject);
    req.once('response', (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.once('end', () => ((response.statusCode ?? 0) >= 200 && (response.statusCode ?? 0) < 300 ? resolve(text) : reject(new Error(`answered ${response.statusCode}`))));
      response.once('error', reject);
    });
    req.end(body);
  });
}

/** Spawns the daemon detached, in its own process group, and reads its handshake line (fd 3). */
function startDaemon(options: AcquireOptions, logPath: string): Promise<DaemonHandshake> {
  const args = [
    ...options.cli.args,
    'tracking-server',
    '--workspace', options.workspace,
    '--store', options.storeUri,
    '--python', options.python,
    ...(options.idleTimeoutSeconds !== undefined ? ['--idle-timeout', String(options.idleTimeoutSeconds)] : []),
  ];
  ensurePrivateDir(dirname(logPath));
  const log = openSync(logPath, 'a', 0o600);
  let child;
  try {
    child = spawn(options.cli.node, args, {
      cwd: options.workspace,
      env: { ...(options.env ?? process.env), ELECTRON_RUN_AS_NODE: '1' },
      detached: process.platform !== 'win32',
      stdio: ['ignore', 'ignore', log, 'pipe'],
      windowsHide: true,
    });
  } finally {
    closeSync(log);
  }
  const pipe = child.stdio[3] as NodeJS.ReadableStream | null;
  const timeoutMs = options.startTimeoutMs ?? 20_000;
  return new Promise<DaemonHandshake>((resolve, reject) => {
    let text = '';
    let settled = false;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new RunnerError('tracking_server_start_failed', { why, log: logPath }));
    };
    const timer = setTimeout(() => fail(`it did not answer within ${Math.round(timeoutMs / 1000)} s`), timeoutMs);
    child.once('error', (error) => fail(error.message));
    child.once('exit', (code, signal) => fail(`it exited (${signal ?? `code ${code}`})${lastLogLine(logPath)}`));
    pipe?.setEncoding('utf8');
    pipe?.on('data', (chunk: string) => {
      text += chunk;
      const end = text.indexOf('\n');
      if (end === -1 || settled) return;
      const parsed = DaemonHandshake.safeParse(safeJson(text.slice(0, end)));
      if (!parsed.success) {
        fail(`it answered "${text.slice(0, 80)}"`);
        return;
      }
      settled = true;
      clearTimeout(timer);
      (pipe as NodeJS.ReadableStream & { destroy(): void }).destroy();
      child.unref();
      resolve(parsed.data);
    });
  });
}

async function waitForRecord(path: string, pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && pidAlive(pid) && readTrackingRecord(path)?.pid !== pid) await new Promise((r) => setTimeout(r, 50));
}

function staleReason(record: TrackingServerRecord, storeUri: string): string {
  if (!pidAlive(record.pid)) return `MLflow: the workspace's tracking server record names pid ${record.pid}, which is gone; starting a new server`;
  if (isOurDaemon(record.pid, storeUri)) return `MLflow: the workspace's tracking server (pid ${record.pid}) does not answer; replacing it`;
  return `MLflow: port ${record.port} of the workspace's tracking server record now belongs to another program; starting a new server`;
}

/** A recorded daemon that is alive but does not answer is ended; any other process is left alone. */
function endStaleDaemon(record: Pick<TrackingServerRecord, 'pid'>, storeUri: string): void {
  if (!pidAlive(record.pid) || !isOurDaemon(record.pid, storeUri)) return;
  try {
    process.kill(-record.pid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
}

/** Whether `pid` runs `tracking-server` for this store, read from its command line (false where it cannot be read). */
function isOurDaemon(pid: number, storeUri: string): boolean {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const store = args.indexOf('--store');
    return args.includes('tracking-server') && store >= 0 && args[store + 1] === storeUri;
  } catch {
    return false;
  }
}

function lastLogLine(path: string): string {
  try {
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    const last = lines[lines.length - 1]?.trim();
    return last ? `: ${last.slice(0, 300)}` : '';
  } catch {
    return '';
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
