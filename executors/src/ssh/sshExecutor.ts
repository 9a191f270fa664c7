/**
 * The SSH executor: per host one SSH connection carrying N slots, each a warm remote worker.
 * The runtime package is uploaded once per version into a cache directory on the host, the
 * script's Python files once per run. A lost host's running trials are re-queued (the slots
 * reject with InfrastructureError), the host is reconnected with backoff and rejoins, and a
 * host that keeps failing is retired with one notice.
 */
import { randomBytes } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { isAbsolute } from 'node:path';
import type { SFTPWrapper } from 'ssh2';
import { InfrastructureError, messageOf, RunnerError } from '../../../core/src/errors';
import { abortedForStudyEnd, type Executor, type ExecutorEvents, type Slot, type SlotOutcome, type TrialJob } from '../../../core/src/executor';
import { probeInterpreter } from '../../../core/src/interpreter';
import type { TrialTracking, WorkerHello } from '../../../core/src/protocol/worker';
import { uploadOverExec } from './execUpload';
import { isPermanentFailure, SshConnection, type ConnectOptions } from './connection';
import { EMPTY_HOSTS_FILE, type HostsFile, type ReconnectSettings } from './hostsFile';
import { delay, killGroupScript, RemoteWorker, viaSh, WORKER_BOOTSTRAP } from './remoteWorker';
import { shellPath, shellQuote } from './shellQuote';
import type { SshConfig } from './sshConfig';
import { describeTarget, resolveHost, sshConfigFor, targetAddress, type HostTarget } from './target';
import { codeBundle, ensureRuntime, runtimeBundle, sftpMkdirs, sftpRealpath, writeBundle, type Bundle, type RuntimeBundle } from './upload';
import { compareVersions, type Versions } from './versions';

export interface ReverseForward {
  /** Port to listen on at the host's loopback; 0 or absent lets the host choose. */
  readonly remotePort?: number;
  /** Where connections to it go on this machine. */
  readonly localHost: string;
  readonly localPort: number;
}

export interface SshExecutorOptions extends ConnectOptions {
  /** Hosts as the user named them. */
  readonly hosts: readonly string[];
  readonly label?: string;
  readonly hostsFile?: HostsFile;
  /** The SSH config to read; by default the hosts file's sshConfig or ~/.ssh/config. */
  readonly sshConfig?: SshConfig;
  /** A local folder whose Python files are shipped to every host for this run (the script's folder). */
  readonly codeDir?: string;
  /** Forwards from each host's loopback to this machine (for example a tracking server). */
  readonly reverseForwards?: readonly ReverseForward[];
  /** Grace between TERM and KILL when a trial is cancelled. */
  readonly killGraceMs?: number;
  readonly reconnect?: ReconnectSettings;
  /** The driver's Python and packages: mismatches that break unpickling are reported. */
  readonly driverVersions?: Versions;
  /** Or the driver's interpreter, probed for them while the hosts connect. */
  readonly driverPython?: string;
  /** Where the runtime package's sources are (default: the one shipped with this code). */
  readonly runtimeSourceDir?: string;
  readonly startTimeoutMs?: number;
  /** Told one line of per-host timings when the hosts are ready (HYPEROPT_RUNNER_DEBUG in the CLI). */
  readonly debug?: (text: string) => void;
}

/** Per-host facts for status displays, benchmarks and tests. */
export interface HostStatus {
  readonly host: string;
  readonly state: HostState;
  readonly address: string;
  readonly slots: number;
  /** When the last attempt began, in ms since this process started (performance.now()). */
  readonly startedAtMs?: number;
  /** Connection (TCP, key exchange, authentication) of the last successful attempt. */
  readonly connectMs?: number;
  /** Creating folders and uploading (runtime when not cached, the script's code). */
  readonly prepareMs?: number;
  /** From the start of the attempt until every slot's worker said hello. */
  readonly readyMs?: number;
  /** Whether the last preparation uploaded the runtime (false: it was cached). */
  readonly runtimeUploaded?: boolean;
  readonly runtimeDir?: string;
  readonly runDir?: string;
  readonly connections: number;
  readonly failures: number;
  readonly lastError?: string;
  /** Remote ports of the reverse forwards, by "localHost:localPort". */
  readonly forwards: Readonly<Record<string, number>>;
}

export type HostState = 'connecting' | 'ready' | 'down' | 'retired' | 'failed' | 'closed';

const DEFAULT_RECONNECT: Required<ReconnectSettings> = { initialDelayMs: 1000, maxDelayMs: 15_000, maxFailures: 5 };
/** A worker that dies this many times in a row before its hello retires the slot. */
const MAX_START_FAILURES = 3;
/** Exit status of the worker command when the working directory cannot be entered. */
const EXIT_NO_WORKDIR = 97;

function absolute(path: string, home: string): string {
  if (path === '~') return home;
  if (path.startsWith('~/')) return `${home}/${path.slice(2)}`;
  if (isAbsolute(path)) return path;
  return `${home}/${path}`;
}

function newRunKey(): string {
  return `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

class SshSlot implements Slot {
  readonly id: string;
  readonly host: string;
  worker: RemoteWorker | undefined;
  private startFailures = 0;
  retired = false;

  constructor(
    private readonly session: HostSession,
    readonly index: number,
  ) {
    this.id = `${session.target.name}/${index}`;
    this.host = session.target.name;
  }

  get usable(): boolean {
    return !this.retired && this.session.state === 'ready';
  }

  /** For good: the slot's worker keeps failing, or its host was retired or failed. */
  get gone(): boolean {
    return this.retired || this.session.state === 'retired' || this.session.state === 'failed' || this.session.state === 'closed';
  }

  get hello(): WorkerHello | undefined {
    return this.worker?.hello;
  }

  /** Starts a worker (if none is alive on the current connection) and waits for its hello. */
  async warm(): Promise<RemoteWorker> {
    const connection = this.session.connection;
    if (!connection || !connection.alive) throw new InfrastructureError(`${this.session.target.name} is not connected`, this.id);
    let worker = this.worker;
    if (!worker || !worker.alive || worker.connection !== connection) {
      worker = new RemoteWorker(
        { connection, command: this.session.workerCommand(this.index), slot: this.id, startTimeoutMs: this.session.options.startTimeoutMs },
        (text) => this.session.events?.notice(`[${this.id}] ${text.trimEnd()}`),
      );
      this.worker = worker;
    }
    let hello: WorkerHello;
    try {
      hello = await worker.ready();
    } catch (error) {
      await worker.exited;
      if (!connection.alive) {
        this.session.connectionLost(connection, 'the connection was lost');
        throw new InfrastructureError(`${this.session.target.name}: the connection was lost`, this.id);
      }
      const failure = this.session.startFailure(worker, error);
      if (failure instanceof RunnerError && failure.code === 'ssh_remote_python') throw failure;
      this.startFailures += 1;
      if (this.startFailures >= MAX_START_FAILURES && !this.retired) {
        this.retired = true;
        this.session.events?.notice(`${this.id} retired: its worker failed to start ${MAX_START_FAILURES} times (${messageOf(failure)})`);
        this.session.events?.slotsChanged();
      }
      throw failure;
    }
    const missing = !hello.versions.hyperopt ? 'hyperopt is not installed' : !hello.versions.cloudpickle ? 'cloudpickle is not installed' : undefined;
    if (missing) {
      await worker.kill(0);
      throw new RunnerError('ssh_remote_python', { host: describeTarget(this.session.target), what: missing, python: hello.executable });
    }
    this.startFailures = 0;
    return worker;
  }

  async run(job: TrialJob, signal: AbortSignal): Promise<SlotOutcome> {
    if (signal.aborted) return { kind: 'aborted' };
    let worker: RemoteWorker;
    try {
      worker = await this.warm();
    } catch (error) {
      throw error instanceof InfrastructureError ? error : new InfrastructureError(messageOf(error), this.id);
    }
    const grace = this.session.options.killGraceMs;
    const onAbort = (): void => {
      // A study that ends needs no warm replacement; the next study's first trial starts one.
      void worker.kill(grace).then(() => {
        if (!abortedForStudyEnd(signal)) this.replace(worker);
      });
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      if (worker.loadedStudy !== job.study) {
        const loadError = await worker.load(job.study, job.domain);
        if (loadError) return { kind: 'load_failed', error: loadError };
      }
      const env = this.session.trialEnv(job.env);
      const tracking = job.tracking ? await this.session.trialTracking(job.tracking) : undefined;
      job.onEvaluating?.();
      const result = await worker.evaluate({ ...job, env, tracking });
      this.session.noteHealthy();
      return { kind: 'result', result };
    } catch (error) {
      if (signal.aborted) {
        await worker.kill(grace);
        return { kind: 'aborted' };
      }
      // The worker died under the trial or the host went away: the trial goes back to the queue.
      if (worker.connection.alive) {
        await worker.kill(0);
        this.replace(worker);
      } else {
        // Settle the host's state before the engine sees the failure, so it does not pick this slot again.
        this.session.connectionLost(worker.connection, 'the connection was lost');
      }
      throw error instanceof InfrastructureError ? error : new InfrastructureError(messageOf(error), this.id);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Starts a replacement in the background so the next trial finds a warm worker. */
  private replace(dead: RemoteWorker): void {
    if (this.worker !== dead || !this.usable || this.session.closing) return;
    this.worker = undefined;
    this.warm().catch(() => undefined);
  }
}

/** A host: its connection, its slots, and what was prepared on it. */
class HostSession {
  state: HostState = 'connecting';
  connection: SshConnection | undefined;
  readonly slots: SshSlot[];
  events: ExecutorEvents | undefined;
  closing = false;
  private failures = 0;
  private connections = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private lastError: string | undefined;
  private startedAtMs: number | undefined;
  private connectMs: number | undefined;
  private readyMs: number | undefined;
  private prepareMs: number | undefined;
  private runtimeUploaded: boolean | undefined;
  private paths: { home: string; cacheRoot: string; runtimeDir: string; runDir: string; workdir: string } | undefined;
  private forwards = new Map<string, number>();
  private attempt: Promise<void> | undefined;
  private readonly reconnect: Required<ReconnectSettings>;

  constructor(
    readonly target: HostTarget,
    readonly options: SshExecutorOptions,
    private readonly runKey: string,
    private readonly runtime: RuntimeBundle,
    private readonly code: Bundle | undefined,
    reconnect: ReconnectSettings,
  ) {
    this.slots = Array.from({ length: target.settings.slots }, (_, i) => new SshSlot(this, i));
    this.reconnect = { ...DEFAULT_RECONNECT, ...reconnect };
  }

  status(): HostStatus {
    return {
      host: this.target.name,
      state: this.state,
      address: describeTarget(this.target),
      slots: this.slots.length,
      ...(this.startedAtMs !== undefined ? { startedAtMs: this.startedAtMs } : {}),
      ...(this.connectMs !== undefined ? { connectMs: this.connectMs } : {}),
      ...(this.prepareMs !== undefined ? { prepareMs: this.prepareMs } : {}),
      ...(this.readyMs !== undefined ? { readyMs: this.readyMs } : {}),
      ...(this.runtimeUploaded !== undefined ? { runtimeUploaded: this.runtimeUploaded } : {}),
      ...(this.paths ? { runtimeDir: this.paths.runtimeDir, runDir: this.paths.runDir } : {}),
      connections: this.connections,
      failures: this.failures,
      ...(this.lastError ? { lastError: this.lastError } : {}),
      forwards: Object.fromEntries(this.forwards),
    };
  }

  /** The first attempt; resolves either way (the state tells). */
  async start(events: ExecutorEvents): Promise<RunnerError | undefined> {
    this.events = events;
    const attempt = this.connectOnce();
    this.attempt = attempt;
    let error: unknown;
    try {
      await attempt;
    } catch (caught) {
      error = caught ?? new Error('unknown failure');
    } finally {
      this.attempt = undefined;
    }
    if (error === undefined) return undefined;
    const failure = error instanceof RunnerError ? error : new RunnerError('ssh_remote_failed', { host: describeTarget(this.target), what: 'cannot start', reason: messageOf(error) });
    this.lastError = failure.message;
    if (this.closing) return failure;
    if (isPermanentFailure(failure) || failure.code === 'ssh_remote_python' || failure.code === 'ssh_remote_failed') {
      this.state = 'failed';
    } else {
      this.failures += 1;
      this.state = 'down';
      this.scheduleReconnect();
    }
    return failure;
  }

  /** Connects, prepares the host and warms every slot. */
  private async connectOnce(): Promise<void> {
    const started = performance.now();
    this.startedAtMs = started;
    const connection = await SshConnection.open(this.target, this.options);
    if (this.closing) {
      connection.end();
      throw new RunnerError('ssh_remote_failed', { host: this.target.name, what: 'start', reason: 'closed' });
    }
    this.connection = connection;
    this.connections += 1;
    this.connectMs = connection.connectMs;
    void connection.closed.then((reason) => this.connectionLost(connection, reason));
    try {
      const preparing = performance.now();
      await Promise.all([this.prepare(connection), this.openForwards(connection)]);
      this.prepareMs = performance.now() - preparing;
      if (this.closing) throw new RunnerError('ssh_remote_failed', { host: this.target.name, what: 'start', reason: 'closed' });
      const warmed = await Promise.allSettled(this.slots.filter((s) => !s.retired).map((slot) => slot.warm()));
      const failures = warmed.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
      const python = failures.find((e) => e instanceof RunnerError && e.code === 'ssh_remote_python');
      if (python) throw python;
      if (failures.length === warmed.length && failures.length > 0) {
        const first = failures[0];
        throw first instanceof RunnerError ? first : new RunnerError('ssh_remote_failed', { host: describeTarget(this.target), what: 'no worker started', reason: messageOf(first) });
      }
      this.readyMs = performance.now() - started;
      this.state = 'ready';
    } catch (error) {
      this.state = 'connecting';
      const lost = !connection.alive;
      if (this.connection === connection) this.connection = undefined;
      connection.end();
      // A connection that dropped while the host was being prepared is worth another try.
      if (lost && !isPermanentFailure(error) && !(error instanceof RunnerError && error.code === 'ssh_remote_python')) {
        throw new RunnerError('ssh_connect_failed', { host: this.target.name, address: targetAddress(this.target), reason: `the connection was lost while the host was prepared (${messageOf(error)})` });
      }
      throw error;
    }
  }

  /**
   * Over SFTP where the host offers it (an exec costs a shell start, and login shells can be
   * slow): finds the home folder, creates the cache and run folders, uploads the runtime when this
   * version is not cached yet, and the script's code. A host without SFTP gets the same over exec
   * channels (execUpload.ts).
   */
  private async prepare(connection: SshConnection): Promise<void> {
    const settings = this.target.settings;
    const cache = settings.cacheDir.replace(/\/+$/, '');
    const sftp = await connection.sftp().catch(() => undefined);
    if (!sftp) {
      await this.prepareOverExec(connection, cache);
      return;
    }
    try {
      const home = await sftpRealpath(sftp, '.');
      const cacheRoot = absolute(cache, home);
      const runtimeRoot = `${cacheRoot}/runtime`;
      const runDir = `${cacheRoot}/runs/${this.runKey}`;
      try {
        await sftpMkdirs(sftp, [runtimeRoot, runDir]);
      } catch (error) {
        throw new RunnerError('ssh_remote_failed', { host: describeTarget(this.target), what: `cannot create the cache folder ${settings.cacheDir}`, reason: messageOf(error) });
      }
      const cleanup = async (path: string): Promise<void> => {
        await connection.exec(viaSh(`rm -rf -- ${shellQuote(path)}`));
      };
      const [runtime] = await Promise.all([
        ensureRuntime(sftp, runtimeRoot, this.runtime, cleanup),
        this.code ? writeBundle(sftp, runDir, this.code) : Promise.resolve(),
      ]);
      this.runtimeUploaded = runtime.uploaded;
      this.paths = { home, cacheRoot, runtimeDir: runtime.dir, runDir, workdir: settings.workdir ?? runDir };
    } catch (error) {
      if (error instanceof RunnerError) throw error;
      throw new RunnerError('ssh_remote_failed', { host: describeTarget(this.target), what: 'upload over SFTP failed', reason: messageOf(error) });
    } finally {
      endSftp(sftp);
    }
  }

  private async prepareOverExec(connection: SshConnection, cache: string): Promise<void> {
    const settings = this.target.settings;
    try {
      const uploaded = await uploadOverExec(connection, { python: settings.python, cacheDir: cache, runKey: this.runKey, runtime: this.runtime, code: this.code });
      this.runtimeUploaded = uploaded.uploaded;
      this.paths = { home: uploaded.home, cacheRoot: uploaded.cacheRoot, runtimeDir: uploaded.runtimeDir, runDir: uploaded.runDir, workdir: settings.workdir ?? uploaded.runDir };
    } catch (error) {
      if (!connection.alive) throw error;
      throw new RunnerError('ssh_remote_failed', {
        host: describeTarget(this.target),
        what: `the host has no SFTP, and uploading over an exec channel with ${settings.python} failed`,
        reason: messageOf(error),
      });
    }
  }

  /** Routes the host's forwarded connections to this machine; opens the configured forwards. */
  private async openForwards(connection: SshConnection): Promise<void> {
    const routes = new Map<number, { localHost: string; localPort: number }>();
    this.routes = routes;
    this.forwards = new Map();
    this.pendingForwards = new Map();
    connection.client.on('tcp connection', (info, accept, reject) => {
      const route = routes.get(info.destPort);
      if (!route) {
        reject();
        return;
      }
      const local = netConnect(route.localPort, route.localHost);
      local.once('error', () => {
        reject();
        local.destroy();
      });
      local.once('connect', () => {
        const remote = accept();
        local.removeAllListeners('error');
        local.on('error', () => remote.destroy());
        remote.on('error', () => local.destroy());
        remote.pipe(local).pipe(remote);
      });
    });
    for (const spec of this.options.reverseForwards ?? []) {
      await this.forward(connection, spec.localHost, spec.localPort, spec.remotePort ?? 0).catch((error: unknown) => {
        throw new RunnerError('ssh_remote_failed', {
          host: describeTarget(this.target),
          what: `cannot forward port ${spec.remotePort ?? 0} on the host to ${spec.localHost}:${spec.localPort}`,
          reason: `${messageOf(error)} (AllowTcpForwarding must be yes in its sshd_config)`,
        });
      });
    }
  }

  private routes = new Map<number, { localHost: string; localPort: number }>();
  private pendingForwards = new Map<string, Promise<number>>();

  /** Asks the host to listen on its loopback and send connections to localHost:localPort here. */
  private forward(connection: SshConnection, localHost: string, localPort: number, remotePort = 0): Promise<number> {
    const key = `${localHost}:${localPort}`;
    const known = this.forwards.get(key);
    if (known !== undefined) return Promise.resolve(known);
    let pending = this.pendingForwards.get(key);
    if (!pending) {
      const routes = this.routes;
      const forwards = this.forwards;
      pending = new Promise<number>((resolve, reject) => {
        try {
          connection.client.forwardIn('127.0.0.1', remotePort, (error, bound) => (error ? reject(error) : resolve(bound)));
        } catch (error) {
          reject(error as Error);
        }
      }).then(
        (port) => {
          routes.set(port, { localHost, localPort });
          forwards.set(key, port);
          return port;
        },
        (error: unknown) => {
          throw error;
        },
      );
      pending.finally(() => this.pendingForwards.delete(key)).catch(() => undefined);
      this.pendingForwards.set(key, pending);
    }
    return pending;
  }

  /**
   * The trial's tracking settings as the host must see them: a tracking server on this
   * machine's loopback is reached through a reverse forward (opened on first use).
   */
  async trialTracking<T extends TrialTracking>(tracking: T): Promise<T> {
    let url: URL;
    try {
      url = new URL(tracking.uri);
    } catch {
      return tracking;
    }
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname) || !/^https?:$/.test(url.protocol)) return tracking;
    const connection = this.connection;
    if (!connection) return tracking;
    const localPort = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    const localHost = url.hostname === '[::1]' ? '::1' : url.hostname === 'localhost' ? '127.0.0.1' : url.hostname;
    try {
      const port = await this.forward(connection, localHost, localPort);
      url.hostname = '127.0.0.1';
      url.port = String(port);
      return { ...tracking, uri: url.toString().replace(/\/$/, tracking.uri.endsWith('/') ? '/' : '') };
    } catch (error) {
      if (!this.forwardWarned) {
        this.forwardWarned = true;
        this.events?.notice(`${this.target.name}: cannot forward the tracking server ${tracking.uri} to the host (${messageOf(error)}); its trials are logged from the journal later`);
      }
      return tracking;
    }
  }

  private forwardWarned = false;

  /** The remote port that reaches localHost:localPort, while connected. */
  forwardedPort(localHost: string, localPort: number): number | undefined {
    return this.forwards.get(`${localHost}:${localPort}`);
  }

  /** A trial's environment with loopback URLs of forwarded ports pointed at their remote ends. */
  trialEnv(env: Readonly<Record<string, string>> | undefined): Record<string, string> | undefined {
    if (!env) return undefined;
    if (this.forwards.size === 0) return { ...env };
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(env)) out[name] = this.rewrite(value);
    return out;
  }

  private rewrite(value: string): string {
    let result = value;
    for (const [key, remotePort] of this.forwards) {
      const localPort = key.slice(key.lastIndexOf(':') + 1);
      const pattern = new RegExp(`(//)(?:127\\.0\\.0\\.1|localhost|\\[::1\\]):${localPort}(?![0-9])`, 'g');
      result = result.replace(pattern, `$1127.0.0.1:${remotePort}`);
    }
    return result;
  }

  /** The exec command of slot `index`'s worker. */
  workerCommand(index: number): string {
    const paths = this.paths!;
    const settings = this.target.settings;
    const env: Record<string, string> = {
      ...settings.slotEnvs[index],
      HYPEROPT_RUNNER_HOST: this.target.name,
      HYPEROPT_RUNNER_SLOT: `${this.target.name}/${index}`,
      PYTHONUNBUFFERED: '1',
    };
    const exports = Object.entries(env).map(([name, value]) => `${name}=${shellQuote(value)}`);
    const python = settings.python.includes('/') ? shellPath(settings.python) : shellQuote(settings.python);
    const workdir = settings.workdir ? shellPath(settings.workdir) : shellQuote(paths.workdir);
    return viaSh(
      [
        `cd -- ${workdir} || exit ${EXIT_NO_WORKDIR}`,
        `export ${exports.join(' ')}`,
        `exec ${python} -u -c ${shellQuote(WORKER_BOOTSTRAP)} ${shellQuote(paths.runtimeDir)} ${shellQuote(paths.runDir)}`,
      ].join('\n'),
    );
  }

  /** The one-line error for a worker that ended before its hello. */
  startFailure(worker: RemoteWorker, error: unknown): RunnerError | InfrastructureError {
    const host = describeTarget(this.target);
    const python = this.target.settings.python;
    if (worker.code === 127 || worker.code === 126) {
      return new RunnerError('ssh_remote_python', { host, what: `the interpreter was not found or cannot run (${worker.stderr || `exit code ${worker.code}`})`, python });
    }
    if (worker.code === EXIT_NO_WORKDIR) {
      return new RunnerError('ssh_remote_failed', { host, what: `cannot enter the working directory ${this.target.settings.workdir ?? ''}`, reason: worker.stderr || 'no such directory' });
    }
    const stderr = worker.stderr;
    if (/No module named ['"]?hyperopt_runner/.test(stderr)) {
      return new RunnerError('ssh_remote_failed', { host, what: 'the uploaded runtime package cannot be imported', reason: stderr });
    }
    return new RunnerError('ssh_remote_failed', { host, what: 'a worker exited before it was ready', reason: `${messageOf(error)}${stderr ? `: ${stderr}` : ''}` });
  }

  checkVersions(driver: Versions | undefined): void {
    const hello = this.slots.map((s) => s.hello).find((h): h is WorkerHello => h !== undefined);
    if (!driver || !hello) return;
    const findings = compareVersions({ python: hello.python, packages: hello.versions }, driver).filter((f) => f.level === 'error');
    for (const finding of findings) {
      this.events?.notice(`${this.target.name}: ${finding.name} ${finding.remote ?? 'missing'} there, ${finding.local ?? 'missing'} here: ${finding.note ?? 'differs'}`);
    }
  }

  /** A trial came back from this host: it is healthy again. */
  noteHealthy(): void {
    this.failures = 0;
  }

  /** The connection ended (its close event, or a slot that noticed first); once per connection. */
  connectionLost(connection: SshConnection, reason: string): void {
    if (this.connection !== connection) return;
    this.connection = undefined;
    // During an attempt, the attempt itself fails and counts it.
    if (this.closing || this.state === 'retired' || this.state === 'failed' || this.state === 'connecting') return;
    const wasReady = this.state === 'ready';
    this.state = 'down';
    this.failures += 1;
    this.lastError = reason;
    if (wasReady) {
      this.events?.slotsChanged();
      if (this.failures < this.reconnect.maxFailures) this.events?.notice(`${this.target.name}: connection lost (${reason}); its trials go back to the queue, reconnecting`);
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closing || this.reconnectTimer || this.attempt) return;
    if (this.failures >= this.reconnect.maxFailures) {
      this.retire();
      return;
    }
    const wait = Math.min(this.reconnect.maxDelayMs, this.reconnect.initialDelayMs * 2 ** Math.max(0, this.failures - 1));
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.attempt = this.connectOnce().then(
        () => {
          this.attempt = undefined;
          this.events?.notice(`${this.target.name}: reconnected; its ${this.slots.filter((s) => s.usable).length} slots take trials again`);
          this.events?.slotsChanged();
        },
        (error: unknown) => {
          this.attempt = undefined;
          this.lastError = messageOf(error);
          if (this.closing) return;
          if (isPermanentFailure(error)) {
            this.failures = this.reconnect.maxFailures;
          } else {
            this.failures += 1;
          }
          this.state = 'down';
          this.scheduleReconnect();
        },
      );
    }, wait);
  }

  private retire(): void {
    if (this.state === 'retired') return;
    this.state = 'retired';
    this.events?.notice(
      `${this.target.name} retired after ${this.failures} failed attempts to reach it (last: ${this.lastError ?? 'unknown'}); the other slots carry on`,
    );
    this.events?.slotsChanged();
    this.connection?.end();
  }

  /** Ends every worker, removes the run's folder, and closes the connection. */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    // An attempt in progress notices `closing` and ends its own connection; wait for it a little.
    if (this.attempt) await Promise.race([this.attempt.catch(() => undefined), delay(3000)]);
    if (this.state !== 'failed') this.state = 'closed';
    const connection = this.connection;
    const workers = this.slots.map((s) => s.worker).filter((w): w is RemoteWorker => w !== undefined);
    for (const worker of workers) worker.shutdown();
    if (connection && connection.alive) {
      const groups = await Promise.all(workers.map((w) => Promise.race([w.groupId(), delay(1000).then(() => undefined)])));
      const pgids = groups.filter((g): g is number => g !== undefined);
      const runs = this.paths ? `${this.paths.cacheRoot}/runs` : undefined;
      const script = [
        killGroupScript(pgids, graceMs).replace(/\nexit 0$/, ''),
        this.paths ? `rm -rf -- ${shellQuote(this.paths.runDir)}` : '',
        // Folders of runs that ended without cleaning up (a crash, a lost connection).
        runs ? `find ${shellQuote(runs)} -mindepth 1 -maxdepth 1 -type d -mtime +14 -exec rm -rf -- {} + 2>/dev/null` : '',
        'exit 0',
      ]
        .filter((l) => l)
        .join('\n');
      // A worker that had no trial running exits on shutdown; the group kill covers the rest.
      await connection.exec(viaSh(script), { timeoutMs: graceMs + 10_000 }).catch(() => undefined);
      await Promise.race([Promise.all(workers.map((w) => w.exited)), delay(2000)]);
      connection.end();
      await Promise.race([connection.closed, delay(2000)]);
    }
  }
}

function endSftp(sftp: SFTPWrapper): void {
  try {
    sftp.end();
  } catch {
    // Already closed with its connection.
  }
}

export class SshExecutor implements Executor {
  readonly label: string;
  private readonly sessions: HostSession[] = [];
  private readonly runKey = newRunKey();
  private closed = false;

  constructor(private readonly options: SshExecutorOptions) {
    this.label = options.label ?? `ssh:${options.hosts.join(',')}`;
  }

  get slots(): readonly Slot[] {
    return this.sessions.flatMap((s) => s.slots);
  }

  get workerInfo(): readonly WorkerHello[] {
    return this.sessions.flatMap((s) => s.slots.flatMap((slot) => (slot.hello ? [slot.hello] : [])));
  }

  /** Per-host connection facts (timings, upload, state). */
  hosts(): HostStatus[] {
    return this.sessions.map((s) => s.status());
  }

  /** The port on `host`'s loopback that reaches localHost:localPort here, while it is connected. */
  forwardedPort(host: string, localHost: string, localPort: number): number | undefined {
    return this.sessions.find((s) => s.target.name === host)?.forwardedPort(localHost, localPort);
  }

  async start(events: ExecutorEvents, signal: AbortSignal): Promise<void> {
    const hostsFile = this.options.hostsFile ?? EMPTY_HOSTS_FILE;
    const sshConfig = this.options.sshConfig ?? sshConfigFor(hostsFile, this.options.env);
    const runtime = runtimeBundle(this.options.runtimeSourceDir);
    let code: Bundle | undefined;
    if (this.options.codeDir) {
      const bundle = codeBundle(this.options.codeDir);
      if (bundle.truncated) events.notice(`shipping only part of the script's folder to the SSH hosts: ${bundle.truncated}`);
      code = bundle;
    }
    const errors: RunnerError[] = [];
    for (const name of this.options.hosts) {
      if (this.sessions.some((s) => s.target.name === name)) continue;
      try {
        const target = resolveHost(name, { sshConfig, hostsFile, env: this.options.env });
        this.sessions.push(new HostSession(target, this.options, this.runKey, runtime, code, { ...hostsFile.reconnect, ...this.options.reconnect }));
      } catch (error) {
        if (!(error instanceof RunnerError)) throw error;
        errors.push(error);
      }
    }
    const driver: Promise<Versions | undefined> = this.options.driverVersions
      ? Promise.resolve(this.options.driverVersions)
      : this.options.driverPython
        ? probeInterpreter(this.options.driverPython, this.options.env).then(
            (info) => ({ python: info.version, packages: info.packages }),
            () => undefined,
          )
        : Promise.resolve(undefined);
    const onAbort = (): void => void this.close();
    signal.addEventListener('abort', onAbort, { once: true });
    const results = await Promise.all(this.sessions.map((s) => s.start(events)));
    const versions = await driver;
    signal.removeEventListener('abort', onAbort);
    if (signal.aborted || this.closed) return;
    errors.push(...results.filter((e): e is RunnerError => e !== undefined));
    if (!this.sessions.some((s) => s.state === 'ready')) {
      await this.close();
      if (errors.length === 1) throw errors[0];
      throw new RunnerError('ssh_no_host', { errors: errors.map((e) => e.message).join('; ') });
    }
    for (const error of errors) events.notice(error.message);
    if (this.options.debug) for (const session of this.sessions) this.options.debug(`ssh host ${JSON.stringify(session.status())}`);
    for (const session of this.sessions) if (session.state === 'ready') session.checkVersions(versions);
    events.slotsChanged();
  }

  async close(): Promise<void> {
    this.closed = true;
    const grace = this.options.killGraceMs ?? 2000;
    const started = performance.now();
    await Promise.all(this.sessions.map((s) => s.close(grace)));
    this.options.debug?.(`ssh closed ${JSON.stringify({ hosts: this.sessions.length, closeMs: performance.now() - started })}`);
  }
}
