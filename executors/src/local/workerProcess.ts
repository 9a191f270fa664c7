/** One warm Python worker process, in its own process group, speaking the worker protocol. */
import { spawn, type ChildProcess } from 'node:child_process';
import { InfrastructureError } from '../../../core/src/errors';
import type { TrialError } from '../../../core/src/protocol/common';
import type { TrialJob } from '../../../core/src/executor';
import { decodeMessage, encodeMessage, LineSplitter } from '../../../core/src/protocol/ndjson';
import {
  TRIAL_MARK_RE,
  WorkerToCoordinator,
  type CoordinatorToWorker,
  type WorkerHello,
  type WorkerResult,
} from '../../../core/src/protocol/worker';
import { killProcessGroup } from '../processTree';

export interface WorkerSpawnOptions {
  readonly python: string;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  readonly slot: string;
  readonly startTimeoutMs?: number;
}

type Waiter =
  | { kind: 'hello'; resolve: (m: WorkerHello) => void; reject: (e: Error) => void }
  | { kind: 'load'; study: string; resolve: (e: TrialError | undefined) => void; reject: (e: Error) => void }
  | { kind: 'result'; tid: number; resolve: (m: WorkerResult) => void; reject: (e: Error) => void };

const STDERR_TAIL = 2000;

export class WorkerProcess {
  private readonly child: ChildProcess;
  private readonly lines = new LineSplitter();
  private waiter: Waiter | undefined;
  private stderrTail = '';
  private stderrCarry = '';
  private currentTid: number | undefined;
  private onOutput: ((text: string) => void) | undefined;
  private exitInfo: string | undefined;
  private killing: Promise<void> | undefined;
  readonly exited: Promise<string>;
  loadedStudy: string | undefined;
  hello: WorkerHello | undefined;

  constructor(
    private readonly options: WorkerSpawnOptions,
    private readonly onStray: (text: string) => void,
  ) {
    this.child = spawn(options.python, ['-u', '-m', 'hyperopt_runner.worker'], {
      cwd: options.cwd,
      env: options.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      // A process group of its own: a cancel kills the trial and everything it started.
      detached: process.platform !== 'win32',
      windowsHide: true,
    });
    this.child.stdout!.setEncoding('utf8');
    this.child.stderr!.setEncoding('utf8');
    this.child.stdout!.on('data', (chunk: string) => this.lines.push(chunk, (line) => this.onLine(line)));
    this.child.stderr!.on('data', (chunk: string) => this.onStderr(chunk));
    this.child.stdin!.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      this.child.on('error', (error) => {
        this.exitInfo = error.message;
        this.fail(new InfrastructureError(`worker could not start: ${error.message}`, options.slot));
        resolve(this.exitInfo);
      });
      this.child.on('exit', (code, signal) => {
        this.exitInfo = signal ? `killed by ${signal}` : `exit code ${code}`;
        this.fail(new InfrastructureError(`worker on ${options.slot} ${this.exitInfo}`, options.slot));
        resolve(this.exitInfo);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  /** The last lines the worker wrote to stderr (for start-up failures). */
  get stderr(): string {
    return this.stderrTail.trim().split('\n').slice(-3).join(' | ');
  }

  /** Resolves with the worker's hello; every caller shares one wait. */
  ready(): Promise<WorkerHello> {
    this.readyPromise ??= this.waitForHello();
    return this.readyPromise;
  }

  private readyPromise: Promise<WorkerHello> | undefined;

  private waitForHello(): Promise<WorkerHello> {
    if (this.hello) return Promise.resolve(this.hello);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new InfrastructureError(`worker on ${this.options.slot} sent no hello in time`, this.options.slot)),
        this.options.startTimeoutMs ?? 60_000,
      );
      this.await({
        kind: 'hello',
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  /** Loads a study's domain; resolves with the worker's error when it could not. */
  load(study: string, domain: string): Promise<TrialError | undefined> {
    return new Promise((resolve, reject) => {
      this.await({ kind: 'load', study, resolve, reject });
      this.send({ type: 'load', study, domain });
    }).then((error) => {
      if (!error) this.loadedStudy = study;
      return error as TrialError | undefined;
    });
  }

  evaluate(job: TrialJob): Promise<WorkerResult> {
    this.onOutput = job.onOutput;
    const { study, tid, spec, env, tracking } = job;
    return new Promise<WorkerResult>((resolve, reject) => {
      this.await({ kind: 'result', tid, resolve, reject });
      this.send({ type: 'evaluate', study, tid, spec, ...(env ? { env: { ...env } } : {}), ...(tracking ? { tracking } : {}) });
    });
  }

  /** Kills the worker's whole process group; safe to call more than once. */
  kill(graceMs?: number): Promise<void> {
    this.killing ??= killProcessGroup(this.child, graceMs).then(() => this.exited.then(() => undefined));
    return this.killing;
  }

  shutdown(): void {
    this.send({ type: 'shutdown' });
    this.child.stdin!.end();
  }

  private send(message: CoordinatorToWorker): void {
    if (!this.alive) return;
    this.child.stdin!.write(encodeMessage(message));
  }

  private await(waiter: Waiter): void {
    if (!this.alive) {
      waiter.reject(new InfrastructureError(`worker on ${this.options.slot} ${this.exitInfo}`, this.options.slot));
      return;
    }
    if (this.waiter) throw new Error('worker is busy');
    this.waiter = waiter;
  }

  private fail(error: Error): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(error);
  }

  private onLine(line: string): void {
    const decoded = decodeMessage(line, WorkerToCoordinator);
    if (!decoded.ok) {
      this.onStray(`worker on ${this.options.slot}: ${decoded.error}`);
      return;
    }
    const message = decoded.message;
    const waiter = this.waiter;
    if (message.type === 'hello') {
      this.hello = message;
      if (waiter?.kind === 'hello') {
        this.waiter = undefined;
        waiter.resolve(message);
      }
    } else if ((message.type === 'loaded' || message.type === 'load_failed') && waiter?.kind === 'load') {
      this.waiter = undefined;
      waiter.resolve(message.type === 'load_failed' ? message.error : undefined);
    } else if (message.type === 'result' && waiter?.kind === 'result' && waiter.tid === message.tid) {
      this.waiter = undefined;
      waiter.resolve(message);
    } else {
      this.onStray(`worker on ${this.options.slot}: unexpected ${message.type}`);
    }
  }

  /** Splits stderr at the trial markers so every byte lands with the trial that printed it. */
  private onStderr(chunk: string): void {
    this.stderrTail = (this.stderrTail + chunk).slice(-STDERR_TAIL);
    const text = this.stderrCarry + chunk;
    this.stderrCarry = '';
    let last = 0;
    for (const match of text.matchAll(TRIAL_MARK_RE)) {
      this.emitOutput(text.slice(last, match.index));
      last = match.index + match[0].length;
      this.currentTid = match[1] === 'begin' ? Number(match[2]) : undefined;
      if (match[1] === 'end') this.onOutput = undefined;
    }
    // A marker cut in two by the pipe: hold its start back until the rest arrives.
    const open = text.indexOf('\x1e', last);
    const cut = open !== -1 && text.length - open < 32 ? open : text.length;
    this.emitOutput(text.slice(last, cut));
    this.stderrCarry = text.slice(cut);
  }

  private emitOutput(text: string): void {
    if (text.length === 0) return;
    if (this.currentTid !== undefined && this.onOutput) this.onOutput(text);
    else this.onStray(text);
  }
}
