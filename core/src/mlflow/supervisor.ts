/**
 * The embedded tracking server: with no tracking URI configured (or a file or SQLite store),
 * a local `mlflow server` started with the user's interpreter, on loopback and a free port.
 *
 * One server per workspace store: a state file in `<workspace>/.hyperopt-runner/` records it,
 * so a second caller (the CLI while the editor runs, say) reuses a live server instead of
 * starting another. The server runs in its own process group; stopping it ends the group.
 *
 * Facts about mlflow 3.17's server this relies on:
 * - `mlflow server` is a launcher: it starts uvicorn (and, unless
 *   MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false, a job runner with several huey consumers) and
 *   forwards TERM. The embedded server turns job execution off: tracking does not need it.
 * - When its port is taken it logs `[Errno 98] ... address already in use` and exits with
 *   status 0, after the full import (several seconds): exit before `/health` means failure.
 * - A fresh SQLite store takes several seconds to create (migrations) on top of the import.
 * - The file store (`./mlruns`) is in maintenance mode: the server refuses it unless
 *   MLFLOW_ALLOW_FILE_STORE=true. A user who configured a `file:` store asked for it, so the
 *   embedded server sets that variable and says once that `mlflow migrate-filestore` exists.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, promises as fs } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Emitter, type Unsubscribe } from '../events';
import { ensurePrivateDir, makePrivateFile } from '../privateDir';
import { endpointClient, endpointUri } from './backendEndpoint';
import { MlflowClient, MlflowError } from './client';

export const STATE_DIR = '.hyperopt-runner';
/** The state, lock and log files are `<stem>.json`, `<stem>.lock` and `<stem>.log` in the state folder. */
const DEFAULT_FILE_STEM = 'mlflow-server';
const HOST = '127.0.0.1';
const LOG_MAX_BYTES = 2 * 1024 * 1024;
const PORT_TAKEN = /address already in use|Errno 98|Errno 48|EADDRINUSE|error while attempting to bind/i;

// --- tracking URI resolution --------------------------------------------------------------------

export type TrackingSource = 'flag' | 'env' | 'setting' | 'default';

export type TrackingTarget =
  /** An http(s) tracking server, used as it is. */
  | { kind: 'remote'; uri: string; source: TrackingSource }
  /** A file or SQLite store, served by the embedded server. */
  | { kind: 'embedded'; storeUri: string; source: TrackingSource }
  | { kind: 'unsupported'; uri: string; source: TrackingSource; reason: string };

export interface TrackingUriInput {
  /** `--tracking-uri` of the CLI. */
  cliUri?: string;
  /** The environment to read MLFLOW_TRACKING_URI from. */
  env?: Record<string, string | undefined>;
  /** The editor setting. */
  setting?: string;
  /** Absolute workspace folder; relative stores resolve against it. */
  workspace: string;
}

/** Precedence: flag, then MLFLOW_TRACKING_URI, then the setting, then the embedded default store. */
export function resolveTrackingUri(input: TrackingUriInput): TrackingTarget {
  const candidates: Array<[TrackingSource, string | undefined]> = [
    ['flag', input.cliUri],
    ['env', input.env?.MLFLOW_TRACKING_URI],
    ['setting', input.setting],
  ];
  for (const [source, raw] of candidates) {
    const value = raw?.trim();
    if (value) return classifyUri(value, source, input.workspace);
  }
  return { kind: 'embedded', storeUri: defaultStoreUri(input.workspace), source: 'default' };
}

/** `sqlite:///<workspace>/.hyperopt-runner/mlflow.db`. */
export function defaultStoreUri(workspace: string): string {
  return sqliteUri(join(resolve(workspace), STATE_DIR, 'mlflow.db'));
}

function sqliteUri(absolutePath: string): string {
  const path = absolutePath.replace(/\\/g, '/');
  return `sqlite:///${path}`;
}

function classifyUri(uri: string, source: TrackingSource, workspace: string): TrackingTarget {
  if (/^https?:\/\//i.test(uri)) return { kind: 'remote', uri: uri.replace(/\/+$/, ''), source };
  if (/^sqlite:/i.test(uri)) {
    const match = /^sqlite:\/\/\/(.+)$/i.exec(uri);
    if (!match?.[1]) {
      return {
        kind: 'unsupported',
        uri,
        source,
        reason: 'an in-memory SQLite store would lose every run; give a file, e.g. sqlite:///mlflow.db',
      };
    }
    const path = match[1];
    const absolute = isAbsolute(path) || /^[A-Za-z]:[\\/]/.test(path);
    return { kind: 'embedded', storeUri: absolute ? uri : sqliteUri(resolve(workspace, path)), source };
  }
  if (/^file:/i.test(uri)) {
    const storeUri = uri.startsWith('file://') ? uri : pathToFileURL(resolve(workspace, uri.slice('file:'.length))).href;
    return { kind: 'embedded', storeUri, source };
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(uri)?.[1];
  if (scheme !== undefined && scheme.length > 1) {
    const reason =
      scheme === 'databricks'
        ? 'Databricks tracking goes through the Databricks workspace; give the http(s) URI of a tracking server instead'
        : `the embedded server only serves file and SQLite stores; run \`mlflow server --backend-store-uri ${uri}\` yourself and give its http:// URI`;
    return { kind: 'unsupported', uri, source, reason };
  }
  // A bare path, which mlflow reads as a file store.
  return { kind: 'embedded', storeUri: pathToFileURL(resolve(workspace, uri)).href, source };
}

// --- installation check -------------------------------------------------------------------------

export interface MlflowInstallation {
  python: string;
  /** The interpreter ran and found the `mlflow` module. */
  installed: boolean;
  /** The full `mlflow` package is there with what `mlflow server` needs (not only mlflow-skinny). */
  canServe: boolean;
  version?: string;
  skinnyVersion?: string;
  /** Modules `mlflow server` needs that are missing. */
  missing: string[];
  /** One clear sentence with the install command, when something is missing. */
  warning?: string;
}

const CHECK_SCRIPT = `
import importlib.metadata as md, importlib.util as iu, json
def version(name):
    try:
        return md.version(name)
    except Exception:
        return None
print(json.dumps({
    "mlflow": version("mlflow"),
    "skinny": version("mlflow-skinny"),
    "module": iu.find_spec("mlflow") is not None,
    "missing": [m for m in ("flask", "sqlalchemy", "alembic") if iu.find_spec(m) is None],
}))
`;

/** Whether mlflow is installed for `python` and can run a server; never throws (but for an abort). */
export async function checkMlflowInstallation(
  python: string,
  options: { env?: Record<string, string | undefined>; signal?: AbortSignal } = {},
): Promise<MlflowInstallation> {
  const { signal } = options;
  const install = `${shellQuote(python)} -m pip install mlflow`;
  let out: string;
  try {
    out = await run(python, ['-c', CHECK_SCRIPT], 30_000, signal, options.env);
  } catch (error) {
    signal?.throwIfAborted();
    return {
      python,
      installed: false,
      canServe: false,
      missing: [],
      warning: `cannot run ${python} (${firstLine(error)}); select a working Python interpreter`,
    };
  }
  let facts: { mlflow: string | null; skinny: string | null; module: boolean; missing: string[] };
  try {
    facts = JSON.parse(out.trim().split('\n').pop() ?? '');
  } catch {
    return { python, installed: false, canServe: false, missing: [], warning: `${python} gave an unreadable answer` };
  }
  const result: MlflowInstallation = {
    python,
    installed: facts.module,
    canServe: facts.module && facts.mlflow !== null && facts.missing.length === 0,
    version: facts.mlflow ?? undefined,
    skinnyVersion: facts.skinny ?? undefined,
    missing: facts.missing,
  };
  if (!facts.module) {
    result.warning = `MLflow is not installed for ${python}, so trials are not tracked; install it with: ${install}`;
  } else if (facts.mlflow === null) {
    const what = facts.skinny ? `only mlflow-skinny ${facts.skinny} is installed` : 'the mlflow found is not the full package';
    result.warning =
      `${what} for ${python}: it can log to a tracking server but cannot run one; ` +
      `install the full package with: ${install}`;
  } else if (facts.missing.length > 0) {
    result.warning =
      `mlflow ${facts.mlflow} for ${python} lacks ${facts.missing.join(', ')}, which \`mlflow server\` needs; ` +
      `reinstall it with: ${install}`;
  }
  return result;
}

// --- ports --------------------------------------------------------------------------------------

/** A port the OS reports free on loopback (bound to port 0, then released). */
export function findFreePort(host = HOST): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

export function isPortFree(port: number, host = HOST): Promise<boolean> {
  return new Promise((resolveFree) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolveFree(false));
    server.listen(port, host, () => server.close(() => resolveFree(true)));
  });
}

// --- supervisor ---------------------------------------------------------------------------------

export type MlflowServerErrorCode =
  | 'not_installed'
  | 'cannot_serve'
  | 'start_failed'
  | 'start_timeout'
  | 'port_unavailable'
  | 'died';

export class MlflowServerError extends Error {
  constructor(
    readonly code: MlflowServerErrorCode,
    message: string,
    /** The last lines the server logged, when it got that far. */
    readonly logTail?: string,
  ) {
    super(message);
    this.name = 'MlflowServerError';
  }
}

export type SupervisorEvent =
  | { type: 'starting'; port: number; attempt: number }
  | { type: 'port-taken'; port: number }
  | { type: 'ready'; uri: string; pid: number; reused: boolean; startupMs: number }
  | { type: 'exited'; pid: number; code: number | null; signal: string | null; logTail: string }
  | { type: 'restarting'; reason: string }
  /** Something the user should know that does not stop the server. */
  | { type: 'warning'; text: string }
  | { type: 'error'; error: MlflowServerError }
  | { type: 'stopped'; killed: boolean };

export interface SupervisorOptions {
  /** The interpreter that has mlflow installed. */
  python: string;
  /** Absolute workspace folder; state, log, default store and artifacts live in its `.hyperopt-runner/`. */
  workspace: string;
  /** `sqlite:///...` or `file:///...`; defaults to {@link defaultStoreUri}. */
  storeUri?: string;
  /** Defaults to `<workspace>/.hyperopt-runner/mlartifacts`. */
  artifactsDir?: string;
  /** Preferred port; when taken, any free port. */
  port?: number;
  /** Who started the server, recorded in the state file (e.g. `cli`, `vscode`). */
  ownerLabel?: string;
  /** uvicorn workers (default 1: one local user). */
  workers?: number;
  /** Bound on the wait for `/health` (default 120 s: a first start on 2 busy cores takes 10-20 s). */
  startTimeoutMs?: number;
  /** Between TERM and KILL when stopping (default 5 s). */
  stopGraceMs?: number;
  /** Ports tried when the chosen one turns out taken (default 3). */
  maxPortAttempts?: number;
  /** How often a reused server (not our child) is checked for life (default 2 s). */
  watchIntervalMs?: number;
  /** The server's environment (default `process.env`). */
  env?: Record<string, string | undefined>;
  /** Names its state, lock and log files (default `mlflow-server`); one stem per store. */
  fileStem?: string;
  /**
   * Serve on this Unix socket instead of a loopback port (see backendEndpoint.ts): the URI is then
   * `unix:<path>`. Its folder must be private; a socket left by a dead server is replaced.
   */
  socketPath?: string;
}

interface ServerState {
  version: 1;
  pid: number;
  port: number;
  uri: string;
  storeUri: string;
  artifactsDir: string;
  owner: { pid: number; label: string };
  startedAt: string;
}

class PortTakenError extends Error {
  constructor(readonly port: number) {
    super(`port ${port} is taken`);
  }
}

export type SupervisorState = 'idle' | 'starting' | 'ready' | 'stopping' | 'stopped' | 'failed';

/**
 * Starts or reuses the workspace's tracking server, keeps it alive (one restart) and stops it.
 * `start()` resolves with the server's URI; `onEvent` reports what happens.
 */
export class MlflowServerSupervisor {
  readonly storeUri: string;
  readonly stateDir: string;
  readonly logPath: string;
  private readonly stateFile: string;
  private readonly lockFile: string;
  private readonly options: SupervisorOptions;
  private readonly artifactsDir: string;
  private readonly events = new Emitter<SupervisorEvent>();
  private phase: SupervisorState = 'idle';
  private child: ChildProcess | undefined;
  private serverPid: number | undefined;
  private serverPort: number | undefined;
  private serverUri: string | undefined;
  private ownsServer = false;
  private restarts = 0;
  private watchTimer: NodeJS.Timeout | undefined;
  private lifetime = new AbortController();
  private pending: Promise<string> | undefined;
  private installation: MlflowInstallation | undefined;

  constructor(options: SupervisorOptions) {
    this.options = options;
    const workspace = resolve(options.workspace);
    this.stateDir = join(workspace, STATE_DIR);
    const stem = options.fileStem ?? DEFAULT_FILE_STEM;
    this.logPath = join(this.stateDir, `${stem}.log`);
    this.stateFile = join(this.stateDir, `${stem}.json`);
    this.lockFile = join(this.stateDir, `${stem}.lock`);
    this.storeUri = options.storeUri ?? defaultStoreUri(workspace);
    this.artifactsDir = options.artifactsDir ?? join(this.stateDir, 'mlartifacts');
  }

  onEvent(listener: (event: SupervisorEvent) => void): Unsubscribe {
    return this.events.on(listener);
  }

  /** `http://127.0.0.1:<port>` (or `unix:<socket>`) once ready. */
  get uri(): string | undefined {
    return this.phase === 'ready' ? this.serverUri : undefined;
  }

  get pid(): number | undefined {
    return this.serverPid;
  }

  /** True when `stop()` ends the server: this supervisor started it, or adopted an orphan. */
  get owned(): boolean {
    return this.ownsServer;
  }

  get state(): SupervisorState {
    return this.phase;
  }

  /** Starts the server, or reuses the workspace's live one; resolves with its URI. */
  start(signal?: AbortSignal): Promise<string> {
    if (this.phase === 'ready' && this.serverUri) return Promise.resolve(this.serverUri);
    if (this.pending) return this.pending;
    if (this.lifetime.signal.aborted) this.lifetime = new AbortController();
    this.restarts = 0;
    this.phase = 'starting';
    const combined = signal ? AbortSignal.any([signal, this.lifetime.signal]) : this.lifetime.signal;
    this.pending = this.acquire(this.options.port, combined)
      .catch((error: unknown) => {
        if (this.phase === 'starting') this.phase = 'idle';
        throw error;
      })
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }

  /**
   * Stops supervising. The server itself is ended (TERM to its group, KILL after the grace) when
   * this supervisor owns it or `force` is set; a reused server is left to its owner.
   */
  async stop(options: { force?: boolean } = {}): Promise<void> {
    if (this.phase === 'stopped' || this.phase === 'idle') return;
    this.phase = 'stopping';
    this.lifetime.abort(new Error('the supervisor stopped'));
    this.clearWatch();
    await this.pending?.catch(() => undefined);
    const pid = this.serverPid;
    const kill = pid !== undefined && (this.ownsServer || options.force === true);
    if (kill) {
      await terminateGroup(pid, this.options.stopGraceMs ?? 5000);
      await this.removeStateIf(pid);
      await this.removeSocket();
    }
    this.child = undefined;
    this.serverPid = undefined;
    this.serverUri = undefined;
    this.ownsServer = false;
    this.phase = 'stopped';
    this.events.emit({ type: 'stopped', killed: kill });
  }

  // --- acquiring a server -----------------------------------------------------------------------

  private async acquire(preferredPort: number | undefined, signal: AbortSignal): Promise<string> {
    ensurePrivateDir(this.stateDir);
    const release = await this.lock(signal);
    try {
      const reused = await this.tryReuse(signal);
      if (reused !== undefined) return reused;
      await this.ensureInstalled(signal);
      if (this.options.socketPath !== undefined) return await this.launch(0, 1, signal);
      return await this.launchOnSomePort(preferredPort, signal);
    } finally {
      await release();
    }
  }

  /** Reuses the server the state file records when it is alive, answers and serves our store. */
  private async tryReuse(signal: AbortSignal): Promise<string | undefined> {
    const state = await this.readState();
    if (!state) return undefined;
    const alive = pidAlive(state.pid);
    const ownerAlive = pidAlive(state.owner.pid);
    if (!alive) {
      await this.removeStateIf(state.pid);
      return undefined;
    }
    const serves = await servesStore(state.pid, state.storeUri);
    if (serves === false) {
      // The pid now belongs to some other process: the record is stale.
      await this.removeStateIf(state.pid);
      return undefined;
    }
    const healthy = await probeHealth(state.uri, 3000, signal);
    if (state.storeUri !== this.storeUri || !healthy) {
      // Another store, or a server that no longer answers: end it if nobody owns it any more.
      if (!ownerAlive) {
        await terminateGroup(state.pid, this.options.stopGraceMs ?? 5000);
        await this.removeStateIf(state.pid);
      }
      return undefined;
    }
    const adopt = !ownerAlive;
    if (adopt) {
      await this.writeState({ ...state, owner: this.ownerRecord() });
    }
    this.attach({ pid: state.pid, port: state.port, uri: state.uri, owned: adopt });
    this.watchByPid(state.pid);
    this.events.emit({ type: 'ready', uri: state.uri, pid: state.pid, reused: true, startupMs: 0 });
    return state.uri;
  }

  private async ensureInstalled(signal: AbortSignal): Promise<void> {
    this.installation ??= await checkMlflowInstallation(this.options.python, { env: this.options.env, signal });
    const found = this.installation;
    if (!found.installed) throw new MlflowServerError('not_installed', found.warning ?? 'mlflow is not installed');
    if (!found.canServe) throw new MlflowServerError('cannot_serve', found.warning ?? 'mlflow cannot serve');
  }

  private async launchOnSomePort(preferredPort: number | undefined, signal: AbortSignal): Promise<string> {
    const attempts = this.options.maxPortAttempts ?? 3;
    let preferred = preferredPort;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      let port: number;
      if (preferred !== undefined && preferred > 0 && (await isPortFree(preferred))) {
        port = preferred;
      } else {
        if (preferred !== undefined && preferred > 0) this.events.emit({ type: 'port-taken', port: preferred });
        port = await findFreePort();
      }
      preferred = undefined;
      try {
        return await this.launch(port, attempt, signal);
      } catch (error) {
        if (!(error instanceof PortTakenError)) throw error;
        this.events.emit({ type: 'port-taken', port: error.port });
      }
    }
    throw new MlflowServerError(
      'port_unavailable',
      `mlflow server found its port taken ${attempts} times in a row; close whatever is grabbing loopback ports or set a fixed free port`,
    );
  }

  /** Spawns the server on `port` and waits for `/health`, reacting at once to an early exit. */
  private async launch(port: number, attempt: number, signal: AbortSignal): Promise<string> {
    this.events.emit({ type: 'starting', port, attempt });
    const storeDir = storeDirectory(this.storeUri);
    if (storeDir) await fs.mkdir(storeDir, { recursive: true });
    await fs.mkdir(this.artifactsDir, { recursive: true });
    if (attempt === 1 && this.storeUri === defaultStoreUri(this.options.workspace)) {
      const db = join(this.stateDir, 'mlflow.db');
      await useWriteAheadLog(this.options.python, db);
      for (const file of [db, `${db}-wal`, `${db}-shm`]) makePrivateFile(file);
    }
    const logOffset = await this.prepareLog();
    const env: Record<string, string | undefined> = { ...(this.options.env ?? process.env) };
    env.PYTHONUNBUFFERED = '1';
    env.MLFLOW_SERVER_ENABLE_JOB_EXECUTION ??= 'false';
    if (this.storeUri.startsWith('file:') && env.MLFLOW_ALLOW_FILE_STORE === undefined) {
      env.MLFLOW_ALLOW_FILE_STORE = 'true';
      if (attempt === 1) {
        this.events.emit({
          type: 'warning',
          text:
            `MLflow keeps file stores such as ${this.storeUri} in maintenance mode; ` +
            `move it to SQLite with: mlflow migrate-filestore --source <folder holding mlruns> --target sqlite:///mlflow.db`,
        });
      }
    }
    const socketPath = this.options.socketPath;
    // uvicorn's --uds takes precedence over the host and port mlflow always passes.
    if (socketPath !== undefined) await fs.rm(socketPath, { force: true });
    const args = [
      '-m', 'mlflow', 'server',
      '--backend-store-uri', this.storeUri,
      '--artifacts-destination', this.artifactsDir,
      '--serve-artifacts',
      ...(socketPath !== undefined ? ['--uvicorn-opts', `--uds ${shellQuote(socketPath)}`] : []),
      '--host', HOST,
      '--port', String(port),
      '--workers', String(this.options.workers ?? 1),
    ];
    const log = openSync(this.logPath, 'a');
    let child: ChildProcess;
    try {
      child = spawn(this.options.python, args, {
        cwd: this.stateDir,
        env,
        detached: process.platform !== 'win32',
        stdio: ['ignore', log, log],
        windowsHide: true,
      });
    } finally {
      closeSync(log);
    }
    const startedAt = Date.now();
    const uri = endpointUri(socketPath !== undefined ? { kind: 'socket', path: socketPath } : { kind: 'tcp', host: HOST, port });
    const wake = new AbortController();
    let ended: { code: number | null; signal: string | null; error?: Error } | undefined;
    const onExit = (code: number | null, sig: string | null): void => {
      ended = { code, signal: sig };
      wake.abort();
    };
    const onError = (error: Error): void => {
      ended = { code: null, signal: null, error };
      wake.abort();
    };
    const onAbort = (): void => wake.abort();
    child.once('exit', onExit);
    child.once('error', onError);
    signal.addEventListener('abort', onAbort, { once: true });
    const deadline = startedAt + (this.options.startTimeoutMs ?? 120_000);
    try {
      let delay = 100;
      for (;;) {
        if (ended) return await this.failedLaunch(child, port, ended, logOffset);
        if (signal.aborted) {
          await terminateGroup(child.pid, 0);
          throw signal.reason;
        }
        if (Date.now() >= deadline) {
          await terminateGroup(child.pid, 0);
          const tail = await this.logTail(logOffset);
          throw new MlflowServerError(
            'start_timeout',
            `mlflow server on ${uri} did not answer /health within ${Math.round((deadline - startedAt) / 1000)} s${lastLines(tail)}; see ${this.logPath}`,
            tail,
          );
        }
        const healthy = await probeHealth(uri, Math.min(2000, deadline - Date.now()), wake.signal);
        if (healthy && !ended && (await this.storeAnswers(child, uri, deadline, wake.signal, logOffset))) break;
        await sleep(delay, wake.signal);
        delay = Math.min(delay * 1.5, 1000);
      }
    } finally {
      child.off('exit', onExit);
      child.off('error', onError);
      signal.removeEventListener('abort', onAbort);
    }
    const pid = child.pid as number;
    child.unref();
    this.child = child;
    this.attach({ pid, port, uri, owned: true });
    child.once('exit', (code, sig) => void this.serverGone(pid, code, sig));
    await this.writeState({
      version: 1,
      pid,
      port,
      uri,
      storeUri: this.storeUri,
      artifactsDir: this.artifactsDir,
      owner: this.ownerRecord(),
      startedAt: new Date(startedAt).toISOString(),
    });
    this.events.emit({ type: 'ready', uri, pid, reused: false, startupMs: Date.now() - startedAt });
    return uri;
  }

  /**
   * `/health` says the web server is up, not that the store works: one real call (search one
   * experiment) checks that. A server error there ends the launch; a connection error means the
   * server is going away (its exit comes next).
   */
  private async storeAnswers(
    child: ChildProcess,
    uri: string,
    deadline: number,
    signal: AbortSignal,
    logOffset: number,
  ): Promise<boolean> {
    const client = new MlflowClient({ ...endpointClient(uri), maxRetries: 0, requestTimeoutMs: Math.max(1, deadline - Date.now()) });
    try {
      await client.searchExperimentsPage({ pageSize: 1 }, undefined, signal);
      return true;
    } catch (error) {
      if (!(error instanceof MlflowError) || error.code === 'unreachable') return false;
      await terminateGroup(child.pid, 0);
      const tail = await this.logTail(logOffset);
      throw new MlflowServerError(
        'start_failed',
        `mlflow server on ${uri} cannot use the store ${this.storeUri} (${error.message}); see ${this.logPath}`,
        tail,
      );
    }
  }

  private async failedLaunch(
    child: ChildProcess,
    port: number,
    ended: { code: number | null; signal: string | null; error?: Error },
    logOffset: number,
  ): Promise<never> {
    await terminateGroup(child.pid, 0);
    if (ended.error) {
      throw new MlflowServerError(
        'start_failed',
        `cannot run ${this.options.python} (${ended.error.message}); select a working Python interpreter`,
      );
    }
    const tail = await this.logTail(logOffset);
    if (PORT_TAKEN.test(tail)) throw new PortTakenError(port);
    const how = ended.signal ? `was killed by ${ended.signal}` : `exited with code ${ended.code}`;
    throw new MlflowServerError(
      'start_failed',
      `mlflow server ${how} before answering /health${lastLines(tail)}; see ${this.logPath}`,
      tail,
    );
  }

  private attach(server: { pid: number; port: number; uri: string; owned: boolean }): void {
    this.serverPid = server.pid;
    this.serverPort = server.port;
    this.serverUri = server.uri;
    this.ownsServer = server.owned;
    this.phase = 'ready';
  }

  // --- supervision ------------------------------------------------------------------------------

  /** A reused server is not our child, so no exit event: check its pid now and then. */
  private watchByPid(pid: number): void {
    this.clearWatch();
    this.watchTimer = setInterval(() => {
      if (!pidAlive(pid)) void this.serverGone(pid, null, null);
    }, this.options.watchIntervalMs ?? 2000);
    this.watchTimer.unref();
  }

  private clearWatch(): void {
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.watchTimer = undefined;
  }

  /** The server died while supervised: restart it once (same port if free), then give up. */
  private async serverGone(pid: number, code: number | null, sig: string | null): Promise<void> {
    if (this.phase !== 'ready' || pid !== this.serverPid) return;
    this.clearWatch();
    const tail = await this.logTail(0);
    this.events.emit({ type: 'exited', pid, code, signal: sig, logTail: tail });
    // Whatever the leader left behind (a uvicorn worker) still holds the port.
    await terminateGroup(pid, 0);
    const port = this.serverPort;
    this.child = undefined;
    this.serverPid = undefined;
    this.serverUri = undefined;
    if (this.restarts >= 1) {
      await this.removeStateIf(pid);
      await this.removeSocket();
      this.phase = 'failed';
      const how = sig ? `was killed by ${sig}` : code === null ? 'disappeared' : `exited with code ${code}`;
      this.events.emit({
        type: 'error',
        error: new MlflowServerError(
          'died',
          `the MLflow server (pid ${pid}) ${how} again after one restart${lastLines(tail)}; tracking is off until it is started again, see ${this.logPath}`,
          tail,
        ),
      });
      return;
    }
    this.restarts++;
    this.phase = 'starting';
    this.events.emit({ type: 'restarting', reason: `the MLflow server (pid ${pid}) stopped unexpectedly` });
    this.pending = this.acquire(port, this.lifetime.signal).finally(() => {
      this.pending = undefined;
    });
    try {
      await this.pending;
    } catch (error) {
      if (this.lifetime.signal.aborted) return;
      this.phase = 'failed';
      const failure =
        error instanceof MlflowServerError
          ? error
          : new MlflowServerError('start_failed', `restarting the MLflow server failed: ${firstLine(error)}`);
      this.events.emit({ type: 'error', error: failure });
    }
  }

  // --- files ------------------------------------------------------------------------------------

  /** The ended server's socket, and its folder when that is the private one under the temporary folder (and empty). */
  private async removeSocket(): Promise<void> {
    const socketPath = this.options.socketPath;
    if (socketPath === undefined) return;
    await fs.rm(socketPath, { force: true });
    if (dirname(socketPath) !== this.stateDir) await fs.rmdir(dirname(socketPath)).catch(() => undefined);
  }

  private ownerRecord(): ServerState['owner'] {
    return { pid: process.pid, label: this.options.ownerLabel ?? 'hyperopt-runner' };
  }

  private async readState(): Promise<ServerState | undefined> {
    try {
      const raw: unknown = JSON.parse(await fs.readFile(this.stateFile, 'utf8'));
      if (!isState(raw)) return undefined;
      return raw;
    } catch {
      return undefined;
    }
  }

  private async writeState(state: ServerState): Promise<void> {
    const path = this.stateFile;
    const temporary = `${path}.${process.pid}.tmp`;
    await fs.writeFile(temporary, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
    await fs.rename(temporary, path);
  }

  /** Removes the state file only when it still describes server `pid`. */
  private async removeStateIf(pid: number): Promise<void> {
    const state = await this.readState();
    if (state && state.pid !== pid) return;
    await fs.rm(this.stateFile, { force: true });
  }

  /** Serialises starts across processes sharing the workspace: a lock file created exclusively. */
  private async lock(signal: AbortSignal): Promise<() => Promise<void>> {
    const path = this.lockFile;
    const staleAfterMs = (this.options.startTimeoutMs ?? 120_000) + 30_000;
    let delay = 50;
    for (;;) {
      signal.throwIfAborted();
      try {
        const handle = await fs.open(path, 'wx');
        await handle.writeFile(JSON.stringify({ pid: process.pid }));
        await handle.close();
        return () => fs.rm(path, { force: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const holder = await readLockHolder(path);
      if (holder.ageMs > staleAfterMs || (holder.pid !== undefined && !pidAlive(holder.pid))) {
        await fs.rm(path, { force: true });
        continue;
      }
      await sleep(delay, signal);
      signal.throwIfAborted();
      delay = Math.min(delay * 2, 500);
    }
  }

  /** Keeps the log small and returns where this launch's output starts. */
  private async prepareLog(): Promise<number> {
    try {
      const { size } = await fs.stat(this.logPath);
      if (size <= LOG_MAX_BYTES) return size;
      await fs.truncate(this.logPath, 0);
    } catch {
      // no log yet
    }
    return 0;
  }

  private async logTail(fromOffset: number, maxBytes = 8192): Promise<string> {
    try {
      const handle = await fs.open(this.logPath, 'r');
      try {
        const { size } = await handle.stat();
        const start = Math.max(fromOffset, size - maxBytes);
        const buffer = Buffer.alloc(Math.max(0, size - start));
        await handle.read(buffer, 0, buffer.length, start);
        return buffer.toString('utf8');
      } finally {
        await handle.close();
      }
    } catch {
      return '';
    }
  }
}

// --- processes ----------------------------------------------------------------------------------

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function groupAlive(pid: number): boolean {
  if (process.platform === 'win32') return pidAlive(pid);
  try {
    process.kill(-pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is gone.
  }
}

/** Ends the process group led by `pid`: TERM, up to `graceMs` for it to go, then KILL. */
async function terminateGroup(pid: number | undefined, graceMs: number): Promise<void> {
  if (pid === undefined) return;
  if (process.platform === 'win32') {
    await run('taskkill', ['/pid', String(pid), '/T', '/F'], 10_000).catch(() => undefined);
    return;
  }
  if (graceMs > 0) {
    signalGroup(pid, 'SIGTERM');
    if (await waitGroupGone(pid, graceMs)) return;
  }
  signalGroup(pid, 'SIGKILL');
  await waitGroupGone(pid, 5000);
}

/** Polls with backoff until no process of the group is left; false when `limitMs` runs out. */
async function waitGroupGone(pid: number, limitMs: number): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  let delay = 20;
  while (groupAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(delay, Math.max(1, deadline - Date.now())));
    delay = Math.min(delay * 2, 250);
  }
  return true;
}

/**
 * Whether process `pid` is an `mlflow server` for `storeUri`, read from its command line;
 * undefined where the command line cannot be read.
 */
async function servesStore(pid: number, storeUri: string): Promise<boolean | undefined> {
  try {
    const args = (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    const storeAt = args.indexOf('--backend-store-uri');
    return args.includes('mlflow') && args.includes('server') && storeAt >= 0 && args[storeAt + 1] === storeUri;
  } catch {
    // No procfs (macOS): ps joins the arguments with spaces.
  }
  try {
    const line = await run('ps', ['-o', 'args=', '-p', String(pid)], 5000);
    return /\bmlflow server\b/.test(line) && line.includes(`--backend-store-uri ${storeUri}`);
  } catch {
    return process.platform === 'win32' ? undefined : false;
  }
}

async function probeHealth(uri: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted || timeoutMs <= 0) return false;
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    const { trackingUri, fetch: endpointFetch = fetch } = endpointClient(uri);
    const response = await endpointFetch(`${trackingUri}/health`, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
    return response.ok && (await response.text()).trim() === 'OK';
  } catch {
    return false;
  }
}

// --- helpers ------------------------------------------------------------------------------------

function isState(value: unknown): value is ServerState {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<ServerState>;
  return (
    v.version === 1 &&
    typeof v.pid === 'number' &&
    typeof v.port === 'number' &&
    typeof v.uri === 'string' &&
    typeof v.storeUri === 'string' &&
    typeof v.owner === 'object' &&
    v.owner !== null &&
    typeof v.owner.pid === 'number'
  );
}

async function readLockHolder(path: string): Promise<{ pid?: number; ageMs: number }> {
  try {
    const [text, stat] = await Promise.all([fs.readFile(path, 'utf8'), fs.stat(path)]);
    const ageMs = Date.now() - stat.mtimeMs;
    try {
      const parsed: unknown = JSON.parse(text);
      const pid = (parsed as { pid?: unknown }).pid;
      return { pid: typeof pid === 'number' ? pid : undefined, ageMs };
    } catch {
      // Being written right now, or garbage: judged by age alone.
      return { ageMs: ageMs > 5000 ? Infinity : ageMs };
    }
  } catch {
    return { ageMs: 0 };
  }
}

/** The directory a store lives in (the SQLite file's folder, or the file store itself). */
/**
 * Puts the default store in SQLite's write-ahead-log mode. Each MLflow write then syncs the log
 * once instead of the rollback journal and the database file (with MLflow's own store on this
 * project's 2-core test machine: 15-20 ms a write instead of 47 ms), and a trial's run is four
 * writes. The mode is kept in the file, so after the first start this changes nothing. Only the
 * default store: it lives in the workspace, on a local disk, which the mode needs (its shared
 * memory does not work over network file systems). A failure (another process holding the file,
 * say) leaves the store as it was.
 */
function useWriteAheadLog(python: string, dbPath: string): Promise<void> {
  const code = 'import sqlite3, sys; sqlite3.connect(sys.argv[1], timeout=2).execute("PRAGMA journal_mode=WAL")';
  return new Promise((done) => {
    execFile(python, ['-c', code, dbPath], { timeout: 15_000 }, () => done());
  });
}

function storeDirectory(storeUri: string): string | undefined {
  const sqlite = /^sqlite:\/\/\/(.+?)(\?.*)?$/i.exec(storeUri);
  if (sqlite?.[1]) return dirname(sqlite[1]);
  if (storeUri.startsWith('file://')) return fileURLToPath(storeUri);
  return undefined;
}

function lastLines(tail: string, count = 2): string {
  const lines = tail
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  if (lines.length === 0) return '';
  const errors = lines.filter((l) => /error|exception|fatal|failed|denied|no such|not found/i.test(l));
  const chosen = (errors.length > 0 ? errors : lines).slice(-count);
  return `: ${chosen.join(' | ').slice(0, 400)}`;
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0] ?? text;
}

function shellQuote(text: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

function run(
  command: string,
  args: string[],
  timeoutMs: number,
  signal?: AbortSignal,
  env?: Record<string, string | undefined>,
): Promise<string> {
  return new Promise((resolveOut, reject) => {
    execFile(command, args, { timeout: timeoutMs, signal, env, windowsHide: true }, (error, stdout) => {
      if (error) reject(error);
      else resolveOut(stdout);
    });
  });
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolveSleep) => {
    if (signal?.aborted) {
      resolveSleep();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolveSleep();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
