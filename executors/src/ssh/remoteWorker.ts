/**
 * One Python worker on a remote host, speaking the worker protocol over an SSH exec channel.
 *
 * Closing an SSH channel does not kill the process behind it, so the worker is started as the
 * leader of a process group of its own (sshd already makes an exec'd command a session
 * leader; the bootstrap calls setsid() when it is not) and reports that group's id before
 * anything else. A cancel kills the group from a second exec on the same connection: TERM,
 * then KILL after a grace period. If the connection itself is lost, the worker reads EOF on
 * its stdin and kills its own group.
 */
import type { ClientChannel } from 'ssh2';
import { InfrastructureError } from '../../../core/src/errors';
import type { TrialJob } from '../../../core/src/executor';
import type { TrialError } from '../../../core/src/protocol/common';
import { decodeMessage, encodeMessage, LineSplitter } from '../../../core/src/protocol/ndjson';
import {
  TRIAL_MARK_RE,
  WorkerToCoordinator,
  type CoordinatorToWorker,
  type WorkerHello,
  type WorkerResult,
} from '../../../core/src/protocol/worker';
import type { SshConnection } from './connection';
import { shellQuote } from './shellQuote';

/** The first line a worker prints on its protocol stream: its process group id. */
const PGID_LINE = /^hr-pgid (\d+)$/;

/**
 * Python run with `-c` on the host: becomes a process group leader, reports the group id,
 * puts the runtime (argv[1]) and the script's code (argv[2]) first on sys.path and
 * PYTHONPATH, then runs the worker module in the same process.
 */
export const WORKER_BOOTSTRAP = [
  'import os, sys',
  'if os.getpgrp() != os.getpid(): os.setsid()',
  'extra = [p for p in sys.argv[1:3] if p]',
  'sys.path[0:0] = extra',
  'os.environ["PYTHONPATH"] = os.pathsep.join(extra + [p for p in [os.environ.get("PYTHONPATH")] if p])',
  'os.write(1, ("hr-pgid %d\\n" % os.getpgrp()).encode())',
  'sys.argv = [sys.argv[0]]',
  'import runpy',
  'runpy.run_module("hyperopt_runner.worker", run_name="__main__", alter_sys=True)',
].join('\n');

/**
 * A script for /bin/sh, run as one exec, that ends process groups as the local executor does:
 * TERM to each group, a wait (up to the grace) for the group leaders to exit, then KILL to
 * each group so no descendant survives. (Waiting on the leader rather than the whole group:
 * orphans that died but were not yet reaped still count as members.)
 */
export function killGroupScript(pgids: readonly number[], graceMs: number): string {
  const groups = pgids.filter((g) => Number.isInteger(g) && g > 1);
  if (groups.length === 0) return 'exit 0';
  const ticks = Math.max(0, Math.ceil(graceMs / 100));
  const list = groups.join(' ');
  return [
    `for g in ${list}; do kill -s TERM -- -$g 2>/dev/null; done`,
    'n=0',
    `while [ $n -lt ${ticks} ]; do`,
    `  alive=; for g in ${list}; do kill -s 0 $g 2>/dev/null && alive=1; done`,
    '  [ -z "$alive" ] && break',
    '  sleep 0.1; n=$((n+1))',
    'done',
    `for g in ${list}; do kill -s KILL -- -$g 2>/dev/null; done`,
    'exit 0',
  ].join('\n');
}

/** Every remote command runs under /bin/sh, whatever the user's login shell is. */
export function viaSh(script: string): string {
  return `exec /bin/sh -c ${shellQuote(script)}`;
}

type Waiter =
  | { kind: 'hello'; resolve: (m: WorkerHello) => void; reject: (e: Error) => void }
  | { kind: 'load'; study: string; resolve: (e: TrialError | undefined) => void; reject: (e: Error) => void }
  | { kind: 'result'; tid: number; resolve: (m: WorkerResult) => void; reject: (e: Error) => void };

const STDERR_TAIL = 2000;

export interface RemoteWorkerOptions {
  readonly connection: SshConnection;
  /** The full command line sent in the exec request. */
  readonly command: string;
  readonly slot: string;
  readonly startTimeoutMs?: number;
}

export class RemoteWorker {
  private channel: ClientChannel | undefined;
  private readonly lines = new LineSplitter();
  private waiter: Waiter | undefined;
  private stderrTail = '';
  private stderrCarry = '';
  private currentTid: number | undefined;
  private onOutput: ((text: string) => void) | undefined;
  private exitInfo: string | undefined;
  private exitCode: number | null = null;
  private killing: Promise<void> | undefined;
  private resolveExited!: (info: string) => void;
  private pgidWaiters: Array<(pgid: number | undefined) => void> = [];
  readonly exited: Promise<string>;
  pgid: number | undefined;
  loadedStudy: string | undefined;
  hello: WorkerHello | undefined;
  /** When the exec request was sent, and when the hello arrived (for timings). */
  readonly startedAt = performance.now();
  helloAt: number | undefined;

  constructor(
    private readonly options: RemoteWorkerOptions,
    private readonly onStray: (text: string) => void,
  ) {
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
    options.connection.openExec(options.command).then(
      (channel) => this.attach(channel),
      (error: Error) => this.onExit(`could not start: ${error.message}`),
    );
  }

  private attach(channel: ClientChannel): void {
    if (this.exitInfo !== undefined) {
      channel.close();
      return;
    }
    this.channel = channel;
    channel.setEncoding('utf8');
    channel.stderr.setEncoding('utf8');
    channel.on('data', (chunk: string) => this.lines.push(chunk, (line) => this.onLine(line)));
    channel.stderr.on('data', (chunk: string) => this.onStderr(chunk));
    channel.on('error', () => undefined);
    channel.on('exit', (code: number | null, signal?: string) => {
      this.exitCode = code;
      this.exitInfo ??= signal ? `killed by ${signal}` : `exit code ${code}`;
    });
    channel.on('close', () => this.onExit(this.exitInfo ?? 'its channel closed'));
  }

  private onExit(info: string): void {
    if (this.closedOnce) return;
    this.closedOnce = true;
    this.exitInfo ??= info;
    for (const waiter of this.pgidWaiters.splice(0)) waiter(this.pgid);
    const why = this.options.connection.alive ? this.exitInfo : `the connection was lost (${this.exitInfo})`;
    this.fail(new InfrastructureError(`worker on ${this.options.slot} ended: ${why}`, this.options.slot));
    this.resolveExited(this.exitInfo);
  }

  private closedOnce = false;

  get alive(): boolean {
    return !this.closedOnce;
  }

  get connection(): SshConnection {
    return this.options.connection;
  }

  /** The exit status the remote command reported (127: interpreter not found). */
  get code(): number | null {
    return this.exitCode;
  }

  /** The last lines the worker wrote to stderr (for start-up failures). */
  get stderr(): string {
    return this.stderrTail.trim().split('\n').slice(-3).join(' | ');
  }

  ready(): Promise<WorkerHello> {
    this.readyPromise ??= this.waitForHello();
    return this.readyPromise;
  }

  private readyPromise: Promise<WorkerHello> | undefined;

  private waitForHello(): Promise<WorkerHello> {
    if (this.hello) return Promise.resolve(this.hello);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new InfrastructureError(`worker on ${this.options.slot} sent no hello in time`, this.options.slot));
        void this.kill(0);
      }, this.options.startTimeoutMs ?? 60_000);
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

  load(study: string, domain: string): Promise<TrialError | undefined> {
    return new Promise<TrialError | undefined>((resolve, reject) => {
      this.await({ kind: 'load', study, resolve, reject });
      this.send({ type: 'load', study, domain });
    }).then((error) => {
      if (!error) this.loadedStudy = study;
      return error;
    });
  }

  evaluate(job: Pick<TrialJob, 'study' | 'tid' | 'spec' | 'env' | 'tracking' | 'onOutput'>): Promise<WorkerResult> {
    this.onOutput = job.onOutput;
    const { study, tid, spec, env, tracking } = job;
    return new Promise<WorkerResult>((resolve, reject) => {
      this.await({ kind: 'result', tid, resolve, reject });
      this.send({ type: 'evaluate', study, tid, spec, ...(env ? { env: { ...env } } : {}), ...(tracking ? { tracking } : {}) });
    });
  }

  /** Resolves with the process group id once the worker reported it (undefined if it died first). */
  groupId(): Promise<number | undefined> {
    if (this.pgid !== undefined || !this.alive) return Promise.resolve(this.pgid);
    return new Promise((resolve) => this.pgidWaiters.push(resolve));
  }

  /**
   * Kills the worker's process group on the host and waits (bounded) for its channel to close.
   * Safe to call more than once.
   */
  kill(graceMs = 2000): Promise<void> {
    this.killing ??= (async () => {
      const connection = this.options.connection;
      const pgid = await Promise.race([this.groupId(), delay(graceMs + 2000).then(() => undefined)]);
      if (pgid !== undefined && connection.alive) {
        await connection.exec(viaSh(killGroupScript([pgid], graceMs)), { timeoutMs: graceMs + 5000 }).catch(() => undefined);
      }
      this.channel?.close();
      if (!connection.alive) this.onExit('the connection was lost');
      await Promise.race([this.exited, delay(2000)]);
      this.onExit('killed');
    })();
    return this.killing;
  }

  /** Asks the worker to exit and closes its stdin (EOF ends it as well). */
  shutdown(): void {
    this.send({ type: 'shutdown' });
    try {
      this.channel?.end();
    } catch {
      // Already closed.
    }
  }

  private send(message: CoordinatorToWorker): void {
    if (!this.alive || !this.channel) return;
    try {
      this.channel.write(encodeMessage(message));
    } catch {
      // The channel closed under us; the close handler reports it.
    }
  }

  private await(waiter: Waiter): void {
    if (!this.alive) {
      waiter.reject(new InfrastructureError(`worker on ${this.options.slot} ended: ${this.exitInfo}`, this.options.slot));
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
    if (this.pgid === undefined) {
      const match = PGID_LINE.exec(line.trim());
      if (match) {
        this.pgid = Number(match[1]);
        for (const waiter of this.pgidWaiters.splice(0)) waiter(this.pgid);
        return;
      }
    }
    const decoded = decodeMessage(line, WorkerToCoordinator);
    if (!decoded.ok) {
      this.onStray(`worker on ${this.options.slot}: ${decoded.error}`);
      return;
    }
    const message = decoded.message;
    const waiter = this.waiter;
    if (message.type === 'hello') {
      this.hello = message;
      this.helloAt = performance.now();
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
    const open = text.indexOf('\x1e', last);
    const cut = open !== -1 && text.length - open < 32 ? open : text.length;
    this.emitOutput(text.slice(last, cut));
    this.stderrCarry = text.slice(cut);
  }

  private emitOutput(text: string): void {
    if (text.length === 0) return;
    if (this.currentTid !== undefined && this.onOutput) this.onOutput(text);
    else if (this.hello && text.trim() !== '') this.onStray(text);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
