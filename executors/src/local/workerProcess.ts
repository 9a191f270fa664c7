/** One warm Python worker process, in its own process group, speaking the worker protocol. */
import { spawn, type ChildProcess } from 'node:child_process';
import { InfrastructureError } from '../../../core/src/errors';
import type { TrialJob } from '../../../core/src/executor';
import type { TrialError } from '../../../core/src/protocol/common';
import type { WorkerHello, WorkerResult } from '../../../core/src/protocol/worker';
import { killProcessGroup } from '../../../core/src/processTree';
import { ChannelWorker, WorkerChannel } from '../workerChannel';

export interface WorkerSpawnOptions {
  readonly python: string;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  readonly slot: string;
  readonly startTimeoutMs?: number;
}

/** What a local slot needs of its worker, whether spawned (here) or forked (forkedWorker.ts). */
export interface LocalWorker {
  readonly pid: number | undefined;
  readonly alive: boolean;
  readonly hello: WorkerHello | undefined;
  readonly loadedStudy: string | undefined;
  /** The last lines the worker wrote to stderr (for start-up failures). */
  readonly stderr: string;
  /** Resolves with how the worker ended ("exit code 1", "killed by SIGKILL"). */
  readonly exited: Promise<string>;
  ready(): Promise<WorkerHello>;
  load(study: string, domain: string): Promise<TrialError | undefined>;
  evaluate(job: TrialJob): Promise<WorkerResult>;
  /** Kills the worker's whole process group; safe to call more than once. */
  kill(graceMs?: number): Promise<void>;
  shutdown(): void;
}

export class WorkerProcess extends ChannelWorker implements LocalWorker {
  private readonly child: ChildProcess;
  protected readonly channel: WorkerChannel;
  private exitInfo: string | undefined;
  private killing: Promise<void> | undefined;
  readonly exited: Promise<string>;

  constructor(options: WorkerSpawnOptions, onStray: (text: string) => void) {
    super();
    this.child = spawn(options.python, ['-u', '-m', 'hyperopt_runner.worker'], {
      cwd: options.cwd,
      env: options.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      // A process group of its own: a cancel kills the trial and everything it started.
      detached: process.platform !== 'win32',
      windowsHide: true,
    });
    const stdin = this.child.stdin!;
    stdin.on('error', () => undefined);
    this.channel = new WorkerChannel({
      slot: options.slot,
      write: (text) => {
        if (this.alive) stdin.write(text);
      },
      onStray,
      startTimeoutMs: options.startTimeoutMs,
    });
    this.child.stdout!.setEncoding('utf8');
    this.child.stderr!.setEncoding('utf8');
    this.child.stdout!.on('data', (chunk: string) => this.channel.feedStdout(chunk));
    this.child.stderr!.on('data', (chunk: string) => this.channel.feedStderr(chunk));
    this.exited = new Promise((resolve) => {
      const ended = (info: string, message: string): void => {
        this.exitInfo ??= info;
        this.channel.end(new InfrastructureError(message, options.slot));
        resolve(this.exitInfo);
      };
      this.child.on('error', (error) => ended(error.message, `worker could not start: ${error.message}`));
      this.child.on('exit', (code, signal) => {
        const info = signal ? `killed by ${signal}` : `exit code ${code}`;
        ended(info, `worker on ${options.slot} ${info}`);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }


  /** Kills the worker's whole process group; safe to call more than once. */
  kill(graceMs?: number): Promise<void> {
    this.killing ??= killProcessGroup(this.child, graceMs).then(() => this.exited.then(() => undefined));
    return this.killing;
  }

  shutdown(): void {
    this.channel.send({ type: 'shutdown' });
    this.child.stdin!.end();
  }
}
