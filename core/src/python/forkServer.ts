/**
 * The fork server: one warm Python process (`python -m hyperopt_runner.forkserver`) that has
 * imported hyperopt, cloudpickle and numpy once, from which a run forks its local workers and
 * its driver instead of starting an interpreter (and paying those imports) for each. It lives
 * in the core because both the session (the driver) and the local executor (workers) use it.
 * See docs/protocols.md, "Fork server channel".
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { constants as osConstants } from 'node:os';
import type { Readable, Duplex } from 'node:stream';
import { RunnerError } from '../errors';
import { silentInterpreter } from '../interpreter';
import { killProcessGroup } from '../processTree';
import { ForkServerToCoordinator, type CoordinatorToForkServer, type ForkRequest as ForkRequestMessage, type ForkServerReady } from '../protocol/forkServer';
import { decodeMessage, encodeMessage, LineSplitter } from '../protocol/ndjson';

/**
 * Forking is used only where it is safe and tested: Linux. macOS (fork after Accelerate or
 * Objective-C initialisation) and Windows (no fork) start every process on its own, as does
 * HYPEROPT_RUNNER_FORK=0. See docs/decisions.md.
 */
export function forkServerSupported(env: NodeJS.ProcessEnv): boolean {
  return process.platform === 'linux' && env.HYPEROPT_RUNNER_FORK !== '0';
}

export interface ForkServerOptions {
  readonly python: string;
  /**
   * The server's environment, PYTHONPATH with the runtime first. Children inherit what the
   * interpreter made of it at start-up (sys.path, the hash seed); their os.environ is the one
   * their request carries.
   */
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  /** fd 0, which the driver keeps: the terminal for the CLI, nothing for the background service. */
  readonly stdin?: 'inherit' | 'ignore';
  /** What the server writes to stderr once it is ready (warnings its imports print, say). */
  readonly onDiagnostic?: (text: string) => void;
  /**
   * The script and its arguments, for the command line only: the server ignores them, and the
   * driver it forks shows `python -m hyperopt_runner.launch SCRIPT ARGS` in their room, as a
   * spawned driver does.
   */
  readonly title?: readonly string[];
}

export type ForkRequest = Omit<ForkRequestMessage, 'type' | 'id'>;

/** How a forked child ended: its exit code, or the number of the signal that killed it. */
export interface ChildExit {
  readonly code: number | null;
  readonly signal: number | null;
}

export interface ForkedChild {
  readonly pid: number;
  /** Resolves when the server reports the child's exit; never, if the server is gone first (see `gone`). */
  readonly exited: Promise<ChildExit>;
}

/** An environment as a fork request carries it: only the variables that are set. */
export function requestEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

/** The exit status a shell would show: the code, or 128 + the signal's number. */
export function exitStatus(exit: ChildExit): number {
  return exit.code ?? 128 + (exit.signal ?? 1);
}

export function describeExit(exit: ChildExit): string {
  if (exit.signal === null) return `exit code ${exit.code}`;
  const name = Object.entries(osConstants.signals).find(([, number]) => number === exit.signal)?.[0];
  return `killed by ${name ?? `signal ${exit.signal}`}`;
}

const STDERR_TAIL = 2000;
/** Importing hyperopt takes seconds on a loaded machine, much longer on a cold network file system. */
const READY_TIMEOUT_MS = 120_000;
/** How long the server may take to exit after its control channel ended. */
const CLOSE_GRACE_MS = 2000;

interface PendingFork {
  resolve: (child: ForkedChild) => void;
  reject: (error: Error) => void;
}

export class ForkServer {
  /** Resolves once the server process has exited (or could not start). */
  readonly gone: Promise<void>;
  private markGone!: () => void;
  private process: ChildProcess | undefined;
  private control: Duplex | undefined;
  private readyPromise: Promise<ForkServerReady> | undefined;
  private settleReady: { resolve: (ready: ForkServerReady) => void; reject: (error: Error) => void } | undefined;
  private readyInfo: ForkServerReady | undefined;
  private readonly lines = new LineSplitter();
  private nextId = 1;
  private readonly forks = new Map<number, PendingFork>();
  private readonly exits = new Map<number, (exit: ChildExit) => void>();
  private stderrTail = '';
  private exitInfo: string | undefined;

  constructor(private readonly options: ForkServerOptions) {
    this.gone = new Promise((resolve) => (this.markGone = resolve));
  }

  /** Starts the server (once); resolves with its `ready` once it has imported and can fork. */
  start(): Promise<ForkServerReady> {
    if (!this.readyPromise) {
      this.readyPromise = new Promise((resolve, reject) => (this.settleReady = { resolve, reject }));
      this.readyPromise.catch(() => undefined); // reported to whoever awaits start() or fork()
      this.launch();
    }
    return this.readyPromise;
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  /** The driver's stdout and stderr (the server's fds 4 and 5); EOF once the driver and what it started are gone. */
  get driverOutput(): { stdout: Readable; stderr: Readable } {
    const child = this.process;
    if (!child) throw new Error('the fork server was not started');
    const stdio: readonly unknown[] = child.stdio;
    return { stdout: stdio[4] as Readable, stderr: stdio[5] as Readable };
  }

  /** Forks a worker or the driver; rejects with a RunnerError when the server cannot. */
  async fork(request: ForkRequest): Promise<ForkedChild> {
    await this.start();
    const control = this.control;
    if (this.exitInfo !== undefined || !control) throw this.lost();
    const id = this.nextId++;
    return new Promise<ForkedChild>((resolve, reject) => {
      this.forks.set(id, { resolve, reject });
      const message: CoordinatorToForkServer = { type: 'fork', id, ...request };
      control.write(encodeMessage(message));
    });
  }

  /** Ends the control channel (the server exits; its children do not) and waits for the server to go. */
  async close(): Promise<void> {
    const child = this.process;
    if (!child) return;
    this.control?.end();
    if (this.exitInfo !== undefined) return;
    if (!this.readyInfo) {
      // Still importing, so it has forked nothing and reads no control channel yet: nothing to wait for.
      await killProcessGroup(child, 0);
      await this.gone;
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const exited = await Promise.race([
      this.gone.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), CLOSE_GRACE_MS))),
    ]);
    clearTimeout(timer);
    if (!exited) await killProcessGroup(child, 500);
    await this.gone;
  }

  private launch(): void {
    const { python, env, cwd, stdin, title = [] } = this.options;
    const child = spawn(python, ['-m', 'hyperopt_runner.forkserver', ...title], {
      cwd,
      // Unbuffered as the spawned driver (PYTHONUNBUFFERED) and workers (-u) are: children keep sys.flags.
      env: { ...env, PYTHONUNBUFFERED: '1' },
      // 0: the driver's stdin; 2: diagnostics; 3: control (a socketpair); 4, 5: the driver's stdout and stderr.
      stdio: [stdin ?? 'ignore', 'ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
      // Its own process group: Ctrl+C in the terminal reaches the runner only.
      detached: true,
    });
    this.process = child;
    const control = child.stdio[3] as Duplex;
    this.control = control;
    control.setEncoding('utf8');
    control.on('data', (chunk: string) => this.lines.push(chunk, (line) => this.onLine(line)));
    control.on('error', () => undefined);
    const stderr = child.stderr!;
    const stderrClosed = once(stderr, 'close');
    stderr.setEncoding('utf8');
    stderr.on('data', (text: string) => {
      this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL);
      if (this.readyInfo) this.options.onDiagnostic?.(text);
    });
    const readyTimer = setTimeout(() => {
      this.failReady(new RunnerError('fork_server_failed', { python, what: `did not get ready within ${READY_TIMEOUT_MS / 1000} s`, stderr: this.lastStderr() }));
      void killProcessGroup(child, 0);
    }, READY_TIMEOUT_MS);
    void this.readyPromise!.then(
      () => clearTimeout(readyTimer),
      () => clearTimeout(readyTimer),
    );
    child.on('error', (error) => {
      this.ended(error.message);
      this.failReady(new RunnerError('interpreter_not_found', { python: `${python} (${error.message})` }));
    });
    child.on('exit', (code, signal) => {
      const info = signal ? `killed by ${signal}` : `exit code ${code}`;
      this.ended(info);
      if (this.readyInfo) return;
      // Before ready: not an interpreter that can run the server. Its last stderr says why.
      void Promise.race([stderrClosed, new Promise((resolve) => setTimeout(resolve, 1000))]).then(() => {
        const stderr = this.lastStderr();
        if (!stderr && signal === null) this.failReady(silentInterpreter(python, '', info));
        else this.failReady(new RunnerError('interpreter_not_found', { python: `${python} (${stderr || `${info} before it was ready`})` }));
      });
    });
  }

  private onLine(line: string): void {
    const decoded = decodeMessage(line, ForkServerToCoordinator);
    if (!decoded.ok) {
      this.options.onDiagnostic?.(`fork server: ${decoded.error}\n`);
      return;
    }
    const message = decoded.message;
    switch (message.type) {
      case 'ready': {
        if (message.error) {
          const { code, message: text } = message.error;
          this.failReady(
            code === 'hyperopt_missing'
              ? new RunnerError('hyperopt_missing', { message: text, python: this.options.python })
              : new RunnerError('fork_server_failed', { python: this.options.python, what: 'cannot start', stderr: text }),
          );
          return;
        }
        this.readyInfo = message;
        this.settleReady?.resolve(message);
        if (this.stderrTail) this.options.onDiagnostic?.(this.stderrTail);
        return;
      }
      case 'forked': {
        const pending = this.forks.get(message.id);
        this.forks.delete(message.id);
        // Registered before anyone hears of the child: its exit report may be the next line.
        const exited = new Promise<ChildExit>((resolve) => this.exits.set(message.pid, resolve));
        pending?.resolve({ pid: message.pid, exited });
        return;
      }
      case 'fork_failed': {
        const pending = this.forks.get(message.id);
        this.forks.delete(message.id);
        pending?.reject(new RunnerError('fork_server_failed', { python: this.options.python, what: 'could not fork', stderr: message.message }));
        return;
      }
      case 'exited': {
        const resolve = this.exits.get(message.pid);
        this.exits.delete(message.pid);
        resolve?.({ code: message.code, signal: message.signal });
        return;
      }
    }
  }

  private failReady(error: Error): void {
    if (this.readyInfo) return;
    this.settleReady?.reject(error);
  }

  private ended(info: string): void {
    if (this.exitInfo !== undefined) return;
    this.exitInfo = info;
    const error = this.lost();
    for (const pending of this.forks.values()) pending.reject(error);
    this.forks.clear();
    this.markGone();
  }

  private lost(): RunnerError {
    return new RunnerError('fork_server_failed', { python: this.options.python, what: `exited (${this.exitInfo ?? 'not running'})`, stderr: this.lastStderr() });
  }

  private lastStderr(): string {
    return this.stderrTail.trim().split('\n').slice(-3).join(' | ');
  }
}
